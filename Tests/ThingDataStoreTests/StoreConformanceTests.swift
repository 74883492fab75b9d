import Testing
import ThingDataCore
@testable import ThingDataStore
import SQLKit
import SQLiteNIO
import Synchronization
import ThingDataSigning

/// One suite, every backend: the stores must be indistinguishable through the catalog.
@Suite struct StoreConformanceTests {
    /// The audit log: one entry per revision, in the write's transaction (none for a failed
    /// write), queried by actor, time and sequence; the SQL tables refuse updates and deletes.
    @Test(arguments: Backend.available)
    func auditLogIsWrittenWithTheWriteAndAppendOnly(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let alice = catalog.acting(as: Catalog.Actor(name: "user:alice", address: "192.0.2.7"))
            let e = try #require(try await alice.apply(Operation(.create, .thing, body: Sample.thing("Kettle K1"))))
            _ = try await alice.apply(Operation(.patch, .thing, id: e.id, body: ["tags": ["kitchen"]]))
            await #expect(throws: CatalogError.self) { try await alice.apply(Operation(.create, .thing, body: ["type": "spaceship"])) }
            try await catalog.apply(Operation(.delete, .thing, id: e.id))
            let all = try await catalog.store.audit(AuditQuery())
            #expect(all.map(\.action) == ["thing.create", "thing.update", "thing.delete"])
            #expect(all.map(\.actor) == ["user:alice", "user:alice", "node"])
            #expect(all.allSatisfy { $0.target == "thing/\(e.id)" })
            let history = try await catalog.store.revisions(ofEntity: e.id, beforeSequence: nil, limit: 10).map { try $0.decoded().id }
            #expect(Set(all.compactMap(\.revision)) == Set(history))
            #expect(all.first?.address == "192.0.2.7")
            #expect(try await catalog.store.audit(AuditQuery(actor: "user:alice")).count == 2)
            #expect(try await catalog.store.audit(AuditQuery(afterSequence: all[1].sequence)).map(\.action) == ["thing.delete"])
            #expect(try await catalog.store.audit(AuditQuery(since: Timestamp(microsecondsSinceEpoch: all[2].at.microsecondsSinceEpoch + 1))).isEmpty)
            try await catalog.store.appendAudit([AuditEntry(at: Timestamp.now(), actor: "admin-token", address: nil, action: "user.add", target: "user/bob")])
            #expect(try await catalog.store.audit(AuditQuery()).last?.action == "user.add")
            if let sql = catalog.store as? SQLContentStore {
                for statement in ["DELETE FROM audit_log", "UPDATE audit_log SET actor = 'nobody'"] {
                    await #expect(throws: (any Error).self, "\(statement)") {
                        try await sql.sessions.transaction { db in try await db.raw(SQLQueryString(statement)).run() }
                    }
                }
                #expect(try await catalog.store.audit(AuditQuery()).count == 4)
            }
        }
    }

    /// What federation keeps in node state (peers, checkpoints), the feed's head, and the
    /// convergence digest.
    @Test(arguments: Backend.available)
    func nodeStatePrefixesHeadAndDigest(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let store = catalog.store
            #expect(try await store.latestSequence() == 0)
            try await store.setNodeState("peer/B", "2")
            try await store.setNodeState("peer/A", "1")
            try await store.setNodeState("peerlog/A", "x")
            try await store.setNodeState("peer", "not a peer")
            let peers = try await store.nodeStates(prefix: "peer/")
            #expect(peers.map(\.key) == ["peer/A", "peer/B"] && peers.map(\.value) == ["1", "2"])
            try await store.removeNodeState("peer/A")
            #expect(try await store.nodeStates(prefix: "peer/").map(\.key) == ["peer/B"])
            #expect(try await store.nodeState("peerlog/A") == "x")

            let before = try await catalog.digest()
            let e = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle K9"))))
            #expect(try await store.latestSequence() == Int64(try await store.revisionCount()))
            let after = try await catalog.digest()
            #expect(after["revisions"]?.intValue == 1 && after["views"]?.intValue == 1)
            #expect(after["revision_digest"] != before["revision_digest"] && after["view_digest"] != before["view_digest"])
            _ = try await catalog.apply(Operation(.patch, .thing, id: e.id, body: ["properties": ["serial_number": "S"]]))
            let patched = try await catalog.digest()
            #expect(patched["view_digest"] != after["view_digest"])
            #expect(try await catalog.digest() == patched, "the digest is a function of the content")
        }
    }

    @Test(arguments: Backend.available)
    func createReadReplacePatchDelete(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let created = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle K3", translations: ["de": "Wasserkocher K3"]))))
            let got = try await catalog.get(.thing, id: created.id)
            #expect(got["name"]?["translations"]?["de"] == "Wasserkocher K3")
            #expect(got["relationships"] == [])
            let replaced = try #require(try await catalog.apply(Operation(.update, .thing, id: created.id, body: Sample.thing("Kettle K4"))))
            #expect(replaced.body["name"]?["default"] == "Kettle K4")
            #expect(replaced.createdAt == created.createdAt && replaced.updatedAt != nil)
            let patched = try #require(try await catalog.apply(Operation(.patch, .thing, id: created.id, body: ["properties": ["serial_number": "SN-1"], "tags": ["kitchen"]])))
            #expect(patched.body["properties"]?["serial_number"] == "SN-1")
            #expect(patched.body["name"]?["default"] == "Kettle K4")
            let stored = try #require(try await catalog.store.entity(.thing, id: created.id))
            #expect(stored == patched)
            try await catalog.apply(Operation(.delete, .thing, id: created.id))
            #expect(try await catalog.store.entity(.thing, id: created.id) == nil)
            await #expect(throws: CatalogError.self) { try await catalog.apply(Operation(.delete, .thing, id: created.id)) }
        }
    }

    @Test(arguments: Backend.available)
    func listFiltersPagesAndCursorsInInsertionOrder(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            var ids: [String] = []
            for i in 0..<7 {
                let e = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Item \(i)", type: i % 2 == 0 ? "device" : "tool")))
                ids.append(e!.id)
            }
            // An update keeps an entity's place.
            try await catalog.apply(Operation(.patch, .thing, id: ids[0], body: ["tags": ["moved"]]))
            let all = try await catalog.list(ListQuery(kind: .thing, limit: 100))
            #expect(all.map(\.entity.id) == ids)
            var tools = ListQuery(kind: .thing)
            tools.filters[.type] = "tool"
            #expect(try await catalog.list(tools).map(\.entity.id) == [ids[1], ids[3], ids[5]])
            #expect(try await catalog.list(ListQuery(kind: .thing, offset: 2, limit: 2)).map(\.entity.id) == [ids[2], ids[3]])
            var after = ListQuery(kind: .thing, limit: 3)
            after.afterSequence = all[2].sequence
            #expect(try await catalog.list(after).map(\.entity.id) == [ids[3], ids[4], ids[5]])
            #expect(try await catalog.store.count(.thing) == 7)
            #expect(try await catalog.store.count(.story) == 0)
        }
    }

    @Test(arguments: Backend.available)
    func batchResolvesReferencesAndIsAllOrNothing(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let plan = try await catalog.apply([
                Operation(.create, .thing, ref: "m", body: Sample.thing("Coffee Machine")),
                Operation(.create, .thing, ref: "t", body: Sample.thing("Water Tank", type: "component")),
                Operation(.create, .relationship, body: Sample.relationship("$ref:m", "$ref:t")),
                Operation(.create, .story, body: Sample.story(thing: "$ref:m")),
                Operation(.patch, .thing, id: "$ref:t", body: ["tags": ["spare"]]),
            ], path: { [.index($0)] })
            let machine = try #require(plan.entities[0])
            #expect(plan.entities[2]?.body["source_id"] == .string(machine.id))
            #expect(plan.entities[3]?.body["thing_id"] == .string(machine.id))
            #expect(try await catalog.store.entity(.thing, id: plan.entities[1]!.id)?.body["tags"] == ["spare"])
            let related = try await catalog.relationships(of: .thing, id: machine.id, direction: .out)
            #expect(related.count == 1 && related[0]["metadata"] == ["removable": true])

            // One bad operation at the end: nothing of the batch is written.
            let before = try await catalog.store.count(.thing)
            await #expect(throws: CatalogError.self) {
                try await catalog.apply([
                    Operation(.create, .thing, body: Sample.thing("Should not stay")),
                    Operation(.create, .story, body: Sample.story(thing: "00000000-0000-0000-0000-000000000000")),
                ], path: { [.index($0)] })
            }
            #expect(try await catalog.store.count(.thing) == before)
            #expect(try await catalog.store.count(.story) == 1)
        }
    }

    @Test(arguments: Backend.available)
    func referencesAreEnforcedAndDeletesCascadeOnlyWhenAsked(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            do {
                try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: "00000000-0000-0000-0000-000000000000")))
                Issue.record("a story about a missing thing was stored")
            } catch let error as CatalogError {
                #expect(error.status == .notFound)
                #expect(error.message == "Thing 00000000-0000-0000-0000-000000000000 not found")
            }
            let m = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Toaster")))!
            let c = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lever", type: "component")))!
            try await catalog.apply(Operation(.create, .relationship, body: Sample.relationship(m.id, c.id)))
            let s = try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: m.id)))!
            do {
                try await catalog.apply(Operation(.delete, .thing, id: m.id))
                Issue.record("a referenced thing was deleted")
            } catch let error as CatalogError {
                #expect(error.status == .conflict)
            }
            try await catalog.apply(Operation(.delete, .thing, id: m.id, cascade: true))
            #expect(try await catalog.store.entity(.story, id: s.id) == nil)
            #expect(try await catalog.store.count(.relationship) == 0)
            #expect(try await catalog.store.entity(.thing, id: c.id) != nil)
        }
    }

    @Test(arguments: Backend.available)
    func searchIsRankedMultilingualAndAccentBlind(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let kettle = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Electric Kettle", translations: ["ja": "電気ケトル", "el": "Βραστήρας", "es": "Hervidor eléctrico"])))!
            let machine = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Máquina de café", manufacturer: "Cafetera SA")))!
            _ = try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: kettle.id, steps: ["Descale the kettle with citric acid", "Rinse the kettle twice"], category: "Kettle")))
            _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Toaster", type: "tool")))

            func ids(_ q: String, kinds: [EntityKind] = EntityKind.allCases, type: String? = nil, category: String? = nil) async throws -> [String] {
                let r = try await catalog.search(q, lang: nil, kinds: kinds, type: type, category: category, limit: 20, offset: 0)
                return r["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            #expect(try await ids("CAFE") == [machine.id])
            #expect(try await ids("maqui caf") == [machine.id])
            #expect(try await ids("ケトル") == [kettle.id])
            #expect(try await ids("βραστηρας") == [kettle.id])
            #expect(try await ids("electrico") == [kettle.id])
            let kettleHits = try await ids("kettle")
            #expect(kettleHits.count == 2)
            #expect(try await ids("kettle", kinds: [.story]).count == 1)
            #expect(try await ids("kettle", category: "Kettle").count == 1)
            #expect(try await ids("toaster", type: "device").isEmpty)
            #expect(try await ids("nothing-like-this").isEmpty)
            let r = try await catalog.search("ケトル", lang: "ja", kinds: [.thing], type: nil, category: nil, limit: 5, offset: 0)
            #expect(r["results"]?.arrayValue?.first?["title"] == "電気ケトル")
            #expect(r["results"]?.arrayValue?.first?["snippet"] == "電気<mark>ケトル</mark>")
            // Deleted content leaves the index.
            try await catalog.apply(Operation(.delete, .thing, id: machine.id))
            #expect(try await ids("cafe").isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func preflightWritesNothingAndFindsDuplicates(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let existing = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lamp Lumo", manufacturer: "Lumo")))!
            let report = try await catalog.preflight([
                Operation(.create, .thing, body: Sample.thing("  lamp   LUMO ", manufacturer: "lumo")),
                Operation(.create, .thing, body: ["type": "gadget"]),
                Operation(.create, .story, body: Sample.story(thing: "00000000-0000-0000-0000-000000000000")),
            ], path: { [.index($0)] })
            #expect(report["ok"] == false)
            let issues = report["issues"]?.arrayValue ?? []
            #expect(issues.contains { $0["check"] == "duplicates" && $0["duplicate_of"] == .string(existing.id) && $0["severity"] == "warning" })
            #expect(issues.contains { $0["check"] == "schema" && $0["loc"] == [1, "body", "type"] })
            #expect(issues.contains { $0["check"] == "references" && $0["loc"] == [2, "body", "thing_id"] })
            #expect(try await catalog.store.count(.thing) == 1)
        }
    }

    @Test(arguments: Backend.available)
    func graphFollowsRelationshipsAndStories(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let plan = try await catalog.apply([
                Operation(.create, .thing, ref: "a", body: Sample.thing("Vacuum")),
                Operation(.create, .thing, ref: "b", body: Sample.thing("Battery", type: "component")),
                Operation(.create, .thing, ref: "c", body: Sample.thing("Cell", type: "component")),
                Operation(.create, .relationship, body: Sample.relationship("$ref:a", "$ref:b")),
                Operation(.create, .relationship, body: Sample.relationship("$ref:b", "$ref:c")),
                Operation(.create, .story, body: Sample.story(thing: "$ref:a")),
            ], path: { [.index($0)] })
            let root = plan.entities[0]!.id
            let one = try await catalog.graph(thingID: root, depth: 1)
            #expect(one["nodes"]?.arrayValue?.count == 3)  // vacuum, battery, story
            let two = try await catalog.graph(thingID: root, depth: 2)
            #expect(two["nodes"]?.arrayValue?.count == 4)
            #expect(two["edges"]?.arrayValue?.count == 3)
        }
    }

    /// A caller cancelled in the middle of a transaction neither cuts it in half nor leaves the
    /// connection inside it: the transaction ends whole, and the next write works. (SQLiteNIO
    /// skips statements of a cancelled task, ROLLBACK included; before the fix this left
    /// SQLite's one writer in the transaction, and every later write failed.)
    @Test(arguments: Backend.available.filter { $0 != .memory })
    func aCancelledCallerLeavesNoTransactionHalfDone(_ backend: Backend) async throws {
        try await backend.withStore { store in
            let sessions = try #require(store as? SQLContentStore).sessions
            let (inside, insideContinuation) = AsyncStream<Void>.makeStream()
            let (cancelled, cancelledContinuation) = AsyncStream<Void>.makeStream()
            let write = Task {
                try await sessions.transaction { db in
                    try await db.raw("INSERT INTO node_state (key, value) VALUES ('first', '1')").run()
                    insideContinuation.yield()
                    for await _ in cancelled { break }
                    try await db.raw("INSERT INTO node_state (key, value) VALUES ('second', '2')").run()
                }
            }
            for await _ in inside { break }
            write.cancel()
            cancelledContinuation.yield()
            try await write.value
            #expect(try await store.nodeState("first") == "1")
            #expect(try await store.nodeState("second") == "2")
            try await store.setNodeState("after", "ok")
            #expect(try await store.nodeState("after") == "ok")
        }
    }

    @Test func sqliteDataSurvivesReopeningAndMigrationsAreIdempotent() async throws {
        let dir = "/tmp/thingdata-reopen-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManagerShim.mkdir(dir)
        let path = dir + "/t.sqlite"
        let id = try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            try await Catalog.open(store: store, key: .generate()).apply(Operation(.create, .thing, body: Sample.thing("Radio")))!.id
        }
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            try await store.migrate()
            #expect(try await store.entity(.thing, id: id)?.body["name"]?["default"] == "Radio")
        }
        FileManagerShim.remove(dir)
    }

    /// Committed pages reach the database file by the background checkpoint, though the WAL is
    /// far below SQLite's automatic checkpoint (20,000 pages), which would otherwise copy them.
    @Test func committedPagesReachTheDatabaseFileWithoutTheWriter() async throws {
        let dir = "/tmp/thingdata-checkpoint-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/t.sqlite"
        @Sendable func size(_ file: String) -> Int { FileManagerShim.size(file) ?? 0 }
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            // Let any checkpoint of the schema's pages happen first.
            try await Task.sleep(for: SQLiteUpkeep.interval * 3)
            let before = size(path)
            let ops = (0..<300).map { i in Operation(.create, .thing, body: Sample.thing("Checkpointed radio \(i) with a name long enough to fill pages")) }
            _ = try await catalog.apply(ops, path: { [.index($0)] })
            #expect(size(path + "-wal") > 100_000, "the writes went to the WAL")
            #expect(try await eventually(5) { size(path) > before + 100_000 }, "the database file grew from \(before) bytes")
        }
    }

    /// The WAL file keeps the size it reached under writes (SQLite overwrites it from the
    /// start after a checkpoint); once writes pause, the upkeep truncates it. A reader whose
    /// snapshot is older than the last write holds the WAL: the truncation is left for the
    /// next pause.
    @Test func theWALIsTruncatedWhenWritesPause() async throws {
        let dir = "/tmp/thingdata-truncate-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/t.sqlite"
        @Sendable func size(_ file: String) -> Int { FileManagerShim.size(file) ?? -1 }
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            @Sendable func write(_ round: Int) async throws {
                let ops = (0..<50).map { i in Operation(.create, .thing, body: Sample.thing("Truncated lamp \(round)-\(i) with a name long enough to fill pages")) }
                _ = try await catalog.apply(ops, path: { [.index($0)] })
            }
            try await write(0)
            // A reader's snapshot from before the next writes: no checkpoint can copy them
            // while it lasts, so the WAL cannot be emptied.
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: Backend.logger)
            _ = try await reader.query("BEGIN", [])
            _ = try await reader.query("SELECT count(*) FROM entities", [])
            for round in 1...3 { try await write(round) }
            #expect(size(path + "-wal") > 100_000, "the writes went to the WAL")
            try await Task.sleep(for: SQLiteUpkeep.quietBeforeMerging + SQLiteUpkeep.interval * 10)
            #expect(size(path + "-wal") > 100_000, "the WAL stays while a reader needs it")
            _ = try await reader.query("COMMIT", [])
            try await reader.close()

            // The next pause truncates it.
            try await write(4)
            #expect(try await eventually(10) { size(path + "-wal") == 0 }, "the WAL was truncated (\(size(path + "-wal")) bytes)")
            let count = try await sessions.read { db in try await db.raw("SELECT count(*) AS n FROM entities").first()?.decode(column: "n", as: Int.self) }
            #expect(count == 250)
        }
    }

    /// Under writes that never pause, the upkeep starts the WAL over once it has reached
    /// `restartAt` frames, with the writer's own automatic checkpoint off: the WAL file stays a
    /// fraction of all that went through it.
    @Test func theWALStartsOverUnderSustainedWrites() async throws {
        let dir = "/tmp/thingdata-restart-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/t.sqlite"
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            _ = try await sessions.transaction { db in try await db.raw("PRAGMA wal_autocheckpoint=0").all() }
            sessions.upkeep.restartAt.store(250, ordering: .relaxed)
            let before = sessions.writer.walBytesWritten
            // The WAL file's largest size, sampled every 5 ms.
            let largest = Atomic<Int>(0)
            let monitor = Task {
                while !Task.isCancelled {
                    largest.max(FileManagerShim.size(path + "-wal") ?? 0, ordering: .relaxed)
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            // Three writers committing 20 creates at a time, back to back.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<3 {
                    group.addTask {
                        for round in 0..<40 {
                            let ops = (0..<20).map { i in Operation(.create, .thing, body: Sample.thing("Restarted kettle \(writer)-\(round)-\(i) with a name long enough to fill pages")) }
                            _ = try await catalog.apply(ops, path: { [.index($0)] })
                        }
                    }
                }
                try await group.waitForAll()
            }
            monitor.cancel()
            await monitor.value
            largest.max(FileManagerShim.size(path + "-wal") ?? 0, ordering: .relaxed)
            let written = sessions.writer.walBytesWritten - before
            let count = try await sessions.read { db in try await db.raw("SELECT count(*) AS n FROM entities").first()?.decode(column: "n", as: Int.self) }
            #expect(count == 2_400)
            let restarts = sessions.upkeep.restarts.load(ordering: .relaxed)
            #expect(restarts >= 2, "the upkeep started the WAL over \(restarts) times")
            #expect(largest.load(ordering: .relaxed) * 3 < written, "WAL file at most \(largest.load(ordering: .relaxed)) bytes, of \(written) written to it")
        }
    }

    /// Writes in many transactions leave the full-text index in many segments; once writes
    /// pause, the background merge brings them down, and search still finds every thing.
    @Test func theSearchIndexIsMergedWhenWritesPause() async throws {
        let dir = "/tmp/thingdata-merge-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        try await withContentStore(.sqlite(path: dir + "/t.sqlite"), logger: Backend.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            @Sendable func segments() async throws -> Int {
                try await sessions.read { db in try await db.raw("SELECT count(DISTINCT segid) AS n FROM entity_search_idx").first()?.decode(column: "n", as: Int.self) ?? -1 }
            }
            let usermerge = try await sessions.read { db in try await db.raw("SELECT v FROM entity_search_config WHERE k = 'usermerge'").first()?.decode(column: "v", as: Int.self) }
            #expect(usermerge == 2, "the migration sets the index's usermerge")
            // One transaction each: FTS5 writes a segment per transaction.
            for i in 0..<24 { _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Merged toaster \(i)"))) }
            let written = try await segments()
            #expect(written >= 4, "automerge alone leaves several segments")
            #expect(try await eventually(10) { try await segments() <= 2 }, "merged down from \(written)")
            let found = try await catalog.search("toaster", lang: nil, kinds: EntityKind.allCases, type: nil, category: nil, limit: 100, offset: 0)
            #expect(found["count"]?.intValue == 24, "search finds every thing after the merge")
        }
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

import Foundation
enum FileManagerShim {
    static func mkdir(_ p: String) throws { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true) }
    /// The file's size in bytes, nil if there is no such file.
    static func size(_ p: String) -> Int? { ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? NSNumber)?.intValue }
    static func remove(_ p: String) { try? FileManager.default.removeItem(atPath: p) }
}

@Suite struct RenderedEntityTests {
    /// The single-GET bytes (spliced on SQLite) say exactly what `Entity.rendered` says.
    @Test(arguments: Backend.available)
    func renderedBytesMatchTheModel(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let plan = try await catalog.apply([
                Operation(.create, .thing, ref: "a", body: ["type": "device", "name": ["default": "Lamp \"Lumo\"", "translations": ["ja": "ランプ"]], "manufacturer": ["name": "Lumo"], "x": ["nested": [1, 2.5, nil]]]),
                Operation(.create, .thing, ref: "b", body: Sample.thing("Cord", type: "component")),
                Operation(.create, .relationship, body: Sample.relationship("$ref:a", "$ref:b")),
                Operation(.create, .relationship, body: Sample.relationship("$ref:a", "$ref:a", type: "alternative")),
                Operation(.create, .story, body: Sample.story(thing: "$ref:a")),
            ], path: { [.index($0)] })
            for entity in plan.entities.compactMap({ $0 }) {
                let rendered = try #require(try await catalog.store.renderedEntity(entity.kind, id: entity.id))
                let bytes = rendered.bytes
                // The ETag comes with the same read, and is the entity's current version.
                #expect(rendered.etag == (try await catalog.etag(entity.kind, id: entity.id)))
                #expect(rendered.etag != nil)
                let viaModel = try await catalog.get(entity.kind, id: entity.id)
                #expect(try JSONParser.parse(bytes) == viaModel)
                #expect(try JSONParser.parse(bytes).objectValue?.keys == viaModel.objectValue?.keys)
            }
            let a = try await catalog.get(.thing, id: plan.entities[0]!.id)
            #expect(a["relationships"]?.arrayValue?.count == 2)  // the self-loop once
            #expect(try await catalog.store.renderedEntity(.thing, id: "00000000-0000-0000-0000-000000000000") == nil)
        }
    }
}

@Suite struct SearchWindowTests {
    /// Past `rankWindow` matches, the newest matches are ranked; deeper pages widen the window,
    /// so paging still reaches every match exactly once.
    @Test(arguments: Backend.available)
    func rankingWindowAndPaging(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let total = SearchQuery.rankWindow + 40
            let ops = (0..<total).map { i in
                // The first (oldest) thing is the best match: the word three times in a short name.
                Operation(.create, .thing, body: Sample.thing(i == 0 ? "Widget widget widget" : "Widget \(i) with a much longer descriptive name for ranking"))
            }
            let plan = try await catalog.apply(ops, path: { [.index($0)] })
            let oldest = plan.entities[0]!.id
            let first = try await catalog.store.search(SearchQuery(terms: SearchText.terms("widget"), limit: 20))
            #expect(first.count == 20)
            #expect(!first.map(\.entity.id).contains(oldest))  // outside the window of the newest rankWindow matches
            var seen: [String] = []
            var offset = 0
            while true {
                let page = try await catalog.store.search(SearchQuery(terms: SearchText.terms("widget"), limit: 100, offset: offset))
                if page.isEmpty { break }
                seen += page.map(\.entity.id)
                offset += 100
            }
            #expect(seen.count == total)
            #expect(Set(seen).count == total)
            #expect(seen.contains(oldest))
        }
    }

    /// Ranking works from each candidate's term statistics. SQLite reads them from its FTS5
    /// index (positions and token counts); they must be exactly what the core computes from
    /// the candidate's search document, or the stores would rank differently.
    @Test(arguments: Backend.available)
    func theIndexsTermStatisticsAreTheCoresOwn(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let kettle = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle kettle KETTLES descaler", translations: ["ja": "電気ケトルとケトルの蓋", "el": "Βραστήρας νερού", "de": "Wasserkocher Kessel"])))!
            _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Café-Maschine BA-5 model 5, ba 5 spare", manufacturer: "Kaffee Ba")))
            _ = try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: kettle.id, steps: ["Descale the kettle with citric acid", "Rinse the kettle twice, then the kettle lid", "Kettle done"], category: "Kettle")))
            let spares = (0..<(SearchQuery.rankWindow + 5)).map { i in Operation(.create, .thing, body: Sample.thing("Kettle \(i) spare part for the kettle ba \(i % 7)")) }
            _ = try await catalog.apply(spares, path: { [.index($0)] })
            let queries = ["kettle", "kett desc", "ケトル", "βραστηρας", "ba-5", "ba 5", "the kettle", "cafe maschine", "5", "spare kettle part"]
            var compared = 0
            for text in queries {
                let terms = SearchText.terms(text)
                for older in [false, true] {
                    let candidates = try await catalog.store.searchCandidates(SearchQuery(terms: terms), older: older)
                    let entities = Dictionary(try await catalog.store.entities(atSequences: candidates.map(\.sequence)).map { ($0.sequence, $0.entity) }, uniquingKeysWith: { a, _ in a })
                    for candidate in candidates {
                        let entity = try #require(entities[candidate.sequence])
                        let document = SearchText.document(for: entity)
                        if let given = candidate.statistics {
                            #expect(given == SearchRanking.statistics(of: document, terms: terms), "\(text) in \(document)")
                        } else {
                            // A store that keeps the text keeps the entity's document (PostgreSQL's
                            // JSONB gives translations back in another order: the same tokens).
                            #expect(candidate.document.split(separator: " ").sorted() == document.split(separator: " ").sorted(), "\(text)")
                        }
                        let given = candidate.statistics ?? SearchRanking.statistics(of: candidate.document, terms: terms)
                        #expect(given.terms.allSatisfy { $0.count > 0 }, "\(text): every term of a match occurs")
                        compared += 1
                    }
                }
            }
            #expect(compared > 2 * SearchQuery.rankWindow)
            if backend == .sqlite {
                let candidates = try await catalog.store.searchCandidates(SearchQuery(terms: SearchText.terms("kettle")), older: false)
                #expect(candidates.allSatisfy { $0.statistics != nil && $0.document.isEmpty }, "SQLite ranks from the index, not the text")
            }
        }
    }

    /// A document's length, which SQLite's readers remember per connection, follows each edit
    /// and delete: every reader, asked again after the change, gives the new document's count.
    @Test(arguments: Backend.available)
    func aDocumentsLengthFollowsItsEdits(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let lamp = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lamp")))!
            _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lamp shade")))
            let terms = SearchText.terms("lamp")
            func lengths() async throws -> [Int64: Int] {
                let candidates = try await catalog.store.searchCandidates(SearchQuery(terms: terms), older: false)
                let entities = Dictionary(try await catalog.store.entities(atSequences: candidates.map(\.sequence)).map { ($0.sequence, $0.entity) }, uniquingKeysWith: { a, _ in a })
                var lengths: [Int64: Int] = [:]
                for c in candidates {
                    let given = c.statistics ?? SearchRanking.statistics(of: c.document, terms: terms)
                    let entity = try #require(entities[c.sequence])
                    #expect(given == SearchRanking.statistics(of: SearchText.document(for: entity), terms: terms))
                    lengths[c.sequence] = given.length
                }
                return lengths
            }
            // More asks than readers, so every reader has met both documents.
            for _ in 0..<8 { #expect(try await lengths().count == 2) }
            let before = try await lengths()
            try await catalog.apply(Operation(.patch, .thing, id: lamp.id, body: ["name": ["default": "Lamp with a long name of many words, a desk lamp"]]))
            for _ in 0..<8 {
                let after = try await lengths()
                #expect(after.count == 2)
                #expect(after.values.sorted() != before.values.sorted(), "the edited document's length changed")
            }
            try await catalog.apply(Operation(.delete, .thing, id: lamp.id))
            for _ in 0..<8 { #expect(try await lengths().count == 1) }
        }
    }
}
