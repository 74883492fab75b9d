import Foundation
import Testing
import ThingDataCore
import ThingDataSigning
@testable import ThingDataStore

/// Revisions on every backend: writes become signed revisions, concurrent histories from
/// another node merge, and bad revisions are refused with nothing stored.
@Suite struct RevisionStoreTests {
    /// Every revision a catalog's store holds, oldest first.
    static func all(_ catalog: Catalog) async throws -> [SignedRevision] {
        try await catalog.store.revisions(afterSequence: 0, limit: 100_000).map { try $0.decoded() }
    }

    /// A second node: its own key and memory store, seeded with `revisions`.
    static func otherNode(with revisions: [SignedRevision]) async throws -> Catalog {
        let other = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        _ = try await other.ingest(revisions)
        return other
    }

    @Test(arguments: Backend.available)
    func everyWriteIsASignedRevisionWithHistory(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle"))))
            let story = try #require(try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: thing.id))))
            let rel = try #require(try await catalog.apply(Operation(.create, .relationship, body: Sample.relationship(thing.id, thing.id, type: "similar_to"))))
            try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["manufacturer": ["name": "Acme"]]))
            try await catalog.apply(Operation(.delete, .thing, id: thing.id, cascade: true))
            // The delete tombstoned the story and the relationship too, each in its own revision.
            let revisions = try await Self.all(catalog)
            #expect(revisions.count == 7)
            #expect(revisions.filter(\.revision.isTombstone).map(\.revision.entityID).sorted() == [thing.id, story.id, rel.id].sorted())
            let keys = try await catalog.keyBook()
            for r in revisions {
                try r.verify(keys: keys)
                #expect(r.revision.author.nodeID == catalog.signer.key.nodeID)
            }
            // History: newest first, parents chained, vectors counting up, changed fields named.
            let (items, _) = try await catalog.history(.thing, id: thing.id, limit: 10, before: nil)
            #expect(items.map { $0["operation"]?.stringValue } == ["delete", "update", "create"])
            #expect(items[1]["changed_fields"] == ["manufacturer"])
            #expect(items[0]["parents"] == [items[1]["id"]!])
            #expect(items[0]["version_vector"]?[catalog.signer.actor] == 3)
            #expect(items.allSatisfy { $0["signature"] == "valid" })
            let diff = try await catalog.diff(.thing, id: thing.id, from: items[2]["id"]?.stringValue, to: items[1]["id"]?.stringValue)
            #expect(diff["changes"]?.arrayValue?.contains { $0["path"] == ["manufacturer", "name"] && $0["to"] == "Acme" } == true)
            // A deleted entity's history stays readable.
            #expect(try await catalog.store.heads(.thing, id: thing.id)?.deleted == true)
        }
    }

    @Test(arguments: Backend.available)
    func ifMatchRefusesStaleWrites(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lamp"))))
            let tag = try #require(try await catalog.etag(.thing, id: thing.id))
            try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["tags": ["a"]], ifMatch: tag))
            await #expect { try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["tags": ["b"]], ifMatch: tag)) } throws: {
                ($0 as? CatalogError)?.status == .preconditionFailed
            }
            #expect(try await catalog.store.entity(.thing, id: thing.id)?.body["tags"] == ["a"])
            #expect(try await catalog.store.revisionCount() == 2)
        }
    }

    /// Two nodes edit the same thing concurrently: different fields merge, the same field is a
    /// conflict with a provisional winner, and a resolve closes it with every head as parent.
    @Test(arguments: Backend.available)
    func concurrentEditsMergeAndConflictsResolve(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Toaster", translations: ["fr": "Grille-pain"]))))
            let other = try await Self.otherNode(with: try await Self.all(catalog))
            // Here: a Spanish name and a new default name. There: a German name, the maker, another default name.
            try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["name": ["translations": ["es": "Tostadora"], "default": "Toaster T1"]]))
            try await other.apply(Operation(.patch, .thing, id: thing.id, body: ["name": ["translations": ["de": "Toaster"], "default": "Toaster T2"], "manufacturer": ["name": "Acme"]]))
            let theirs = try await Self.all(other)
            let mineBefore = try await Self.all(catalog).last!.revision
            let summary = try await catalog.ingest(theirs)
            #expect(summary.stored == 1 && summary.duplicates == 1 && summary.conflicts == 1)
            let view = try #require(try await catalog.store.entity(.thing, id: thing.id))
            #expect(view.body["name"]?["translations"] == ["fr": "Grille-pain", "es": "Tostadora", "de": "Toaster"])
            #expect(view.body["manufacturer"]?["name"] == "Acme")
            // The better ranked head (later HLC, then larger node id) wins the default name provisionally.
            let mine = mineBefore
            let winner: JSONValue = (theirs.last!.revision.hlc, theirs.last!.revision.author.nodeID) > (mine.hlc, mine.author.nodeID) ? "Toaster T2" : "Toaster T1"
            #expect(view.body["name"]?["default"] == winner)
            let conflicts = try await catalog.conflicts(kind: .thing, limit: 10, offset: 0)
            #expect(conflicts.count == 1)
            let detail = try await catalog.conflict(.thing, id: thing.id)
            #expect(detail["fields"]?.arrayValue?.map { $0["path"] } == [["name", "default"]])
            #expect(detail["sides"]?.arrayValue?.count == 2)
            #expect(detail["base"]?["body"]?["name"]?["default"] == "Toaster")
            // Re-delivery changes nothing.
            #expect(try await catalog.ingest(theirs).stored == 0)
            // The other node gets ours and reaches the same view and conflict.
            _ = try await other.ingest(try await Self.all(catalog))
            #expect(try await other.store.entity(.thing, id: thing.id) == view)
            #expect(try await other.store.heads(.thing, id: thing.id)?.conflict == (try await catalog.store.heads(.thing, id: thing.id))?.conflict)
            // Resolve by choosing our side: one new revision on both heads, no open conflict.
            let ours = try #require(detail["sides"]?.arrayValue?.first { $0["author"]?["node_id"]?.stringValue == catalog.signer.key.nodeID.longForm }?["id"]?.stringValue)
            // Only a head can be chosen.
            let base = try #require(detail["base"]?["id"]?.stringValue)
            await #expect { try await catalog.resolve(.thing, id: thing.id, with: ["choose": .string(base)]) } throws: { ($0 as? CatalogError)?.status == .badRequest }
            let resolved = try #require(try await catalog.resolve(.thing, id: thing.id, with: ["choose": .string(ours)]))
            #expect(resolved.body["name"]?["default"] == "Toaster T1")
            // What merged cleanly from their side stays: choosing settles only the conflicting field.
            #expect(resolved.body["name"]?["translations"] == ["fr": "Grille-pain", "es": "Tostadora", "de": "Toaster"])
            #expect(resolved.body["manufacturer"]?["name"] == "Acme")
            let heads = try #require(try await catalog.store.heads(.thing, id: thing.id))
            #expect(heads.heads.count == 1 && heads.conflict == nil)
            let head = try #require(try await catalog.store.revision(heads.heads[0].id)).bytes
            #expect(try SignedRevision.decode(head).revision.parents.count == 2)
            #expect(try await catalog.conflicts(kind: nil, limit: 10, offset: 0).isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func deleteAgainstEditKeepsTheEdit(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Fan"))))
            let other = try await Self.otherNode(with: try await Self.all(catalog))
            try await other.apply(Operation(.patch, .thing, id: thing.id, body: ["tags": ["fixed"]]))
            try await catalog.apply(Operation(.delete, .thing, id: thing.id))
            #expect(try await catalog.store.entity(.thing, id: thing.id) == nil)
            _ = try await catalog.ingest(try await Self.all(other))
            #expect(try await catalog.store.entity(.thing, id: thing.id)?.body["tags"] == ["fixed"])
            #expect(try await catalog.conflict(.thing, id: thing.id)["deleted_by"]?.arrayValue?.count == 1)
        }
    }

    /// Bad revisions: each is refused with its reason, and the store is unchanged.
    @Test(arguments: Backend.available)
    func badRevisionsAreRefusedAndNothingIsStored(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Radio"))))
            let other = try await Self.otherNode(with: try await Self.all(catalog))
            try await other.apply(Operation(.patch, .thing, id: thing.id, body: ["tags": ["x"]]))
            let good = try await Self.all(other)
            let before = try await catalog.store.revisionCount()
            let key = other.signer.key
            func forge(_ r: Revision) -> SignedRevision { r.signed(signature: key.sign(r.signingBytes)) }
            let base = good[1].revision
            var missingParent = base
            missingParent.parents = [String(repeating: "0", count: 64)]
            var regressed = base
            regressed.versionVector = VersionVector([other.signer.actor: 5])
            var invalid = base
            invalid.body?["type"] = "spaceship"
            var tampered = good[1].bytes
            tampered[tampered.count / 2] ^= 0x20
            let cases: [([SignedRevision], RevisionError.Code)] = [
                ([forge(missingParent)], .missingParent),
                ([forge(regressed)], .vectorRegression),
                ([forge(invalid)], .invalidBody),
                ([good[1], forge(missingParent)], .missingParent),  // all or nothing
            ]
            for (batch, code) in cases {
                await #expect { try await catalog.ingest(batch) } throws: { ($0 as? IngestError)?.error.code == code }
            }
            // A tampered byte fails decoding or the signature.
            if let decoded = try? SignedRevision.decode(tampered) {
                await #expect(throws: IngestError.self) { try await catalog.ingest([decoded]) }
            }
            #expect(try await catalog.store.revisionCount() == before)
            #expect(try await catalog.store.entity(.thing, id: thing.id)?.body["tags"] == nil)
        }
    }

    @Test(arguments: Backend.available)
    func concurrentLocalWritesToOneEntityNeverFork(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let thing = try #require(try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Mixer"))))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<12 {
                    group.addTask { try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["properties": ["serial_number": .string("SN-\(i)")]])) }
                }
                try await group.waitForAll()
            }
            let heads = try #require(try await catalog.store.heads(.thing, id: thing.id))
            #expect(heads.heads.count == 1)
            #expect(heads.heads[0].vector[catalog.signer.actor] == 13)
        }
    }

    /// Entities stored before revisions existed get a first revision when the node opens.
    @Test(arguments: Backend.available)
    func unversionedEntitiesAreAdoptedAtOpen(_ backend: Backend) async throws {
        try await backend.withStore { store in
            // A store written before revisions: an entity row and no revision.
            let legacy = ContentRules.create(.thing, body: try ContentRules.normalize(.thing, Sample.thing("Old radio")), id: UUID().uuidString.lowercased(), now: Timestamp(microsecondsSinceEpoch: 1_000_000))
            try await store.commit(ChangeSet(writes: [.insert(legacy)]))
            #expect(try await store.heads(.thing, id: legacy.id) == nil)
            let reopened = try await Catalog.open(store: store, key: .generate())
            let (history, _) = try await reopened.history(.thing, id: legacy.id, limit: 10, before: nil)
            #expect(history.map { $0["operation"] } == ["create"])
            #expect(try await reopened.store.entity(.thing, id: legacy.id) == legacy)
            #expect(try await reopened.adoptUnversioned() == 0)
            // Done once per store: later opens skip the scan.
            #expect(try await store.nodeState("unversioned_adopted") != nil)
        }
    }

    /// An ingest of more than 200 entities at once (on SQLite: through a staging table, then
    /// one statement, so the search index takes them as one segment) stores every one, in
    /// order: new entities and updates of existing ones, each found by its new text only.
    /// Twice on one store, so the staging table is reused and left empty.
    @Test(arguments: Backend.available)
    func largeIngestsLandWholeInOrderAndSearchable(_ backend: Backend) async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        var kettles: [String] = []
        for i in 0..<250 {
            kettles.append(try #require(try await source.apply(Operation(.create, .thing, body: Sample.thing("Staged kettle k\(i)x")))).id)
        }
        let initial = try await Self.all(source)
        for i in 0..<30 {
            try await source.apply(Operation(.patch, .thing, id: kettles[i], body: ["name": ["default": .string("Renamed toaster t\(i)y")]]))
        }
        var lamps: [String] = []
        for i in 0..<220 {
            lamps.append(try #require(try await source.apply(Operation(.create, .thing, body: Sample.thing("Staged lamp l\(i)z")))).id)
        }
        let rest = Array(try await Self.all(source).dropFirst(initial.count))
        #expect(rest.count == 250)
        try await backend.withCatalog { [kettles, lamps] target in
            #expect(try await target.ingest(initial).stored == 250)
            #expect(try await target.ingest(rest).stored == 250)
            let listed = try await target.list(ListQuery(kind: .thing, limit: 1000))
            // Updates keep their place; new entities follow in order.
            let ids = listed.map(\.entity.id), expected = kettles + lamps
            #expect(ids.count == expected.count)
            #expect(Array(zip(ids, expected)).firstIndex { $0.0 != $0.1 } == nil, "the first entity out of place")
            func found(_ q: String) async throws -> [String] {
                let r = try await target.search(q, lang: nil, kinds: [.thing], type: nil, category: nil, limit: 10, offset: 0)
                return r["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            for i in [0, 17, 29] {
                #expect(try await found("t\(i)y") == [kettles[i]])
                #expect(try await found("k\(i)x").isEmpty, "the old name left the index")
            }
            #expect(try await found("k30x") == [kettles[30]])
            #expect(try await found("k249x") == [kettles[249]])
            for i in [0, 111, 219] { #expect(try await found("l\(i)z") == [lamps[i]]) }
            #expect(try await target.store.entity(.thing, id: kettles[5])?.body["name"]?["default"] == "Renamed toaster t5y")
        }
    }
}
