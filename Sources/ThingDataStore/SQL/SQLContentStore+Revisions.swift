import SQLKit
import SQLiteNIO
import ThingDataCore

extension SQLContentStore {
    func heads(_ kind: EntityKind, id: String) async throws -> EntityHeads? {
        // On SQLite through a fast reader: every single GET asks for its ETag.
        if let sqlite = sessions as? SQLiteSessions {
            let rows = try await sqlite.readRows("SELECT entity_id, kind, heads, deleted, conflict FROM entity_heads WHERE entity_id = ?1", [id.lowercased()])
            return rows.first.flatMap(EntityHeads.init).flatMap { $0.kind == kind ? $0 : nil }
        }
        return try await sessions.read { db in try await SQLLedger(db: db, flavor: flavor).heads(ofEntity: id.lowercased(), locking: false) }.flatMap { $0.kind == kind ? $0 : nil }
    }

    static func storedRevisions(_ rows: [any SQLRow]) throws -> [StoredRevision] {
        try rows.map { StoredRevision(sequence: try $0.decode(column: "seq", as: Int64.self), bytes: Array(try $0.decode(column: "bytes", as: String.self).utf8)) }
    }

    /// Stored revisions of a `SELECT seq, bytes` query; on SQLite through a fast reader, the
    /// bytes copied straight out of SQLite (the changes feed a peer pulls reads thousands a page).
    func storedRevisions(_ query: SQLQueryString) async throws -> [StoredRevision] {
        if let sqlite = sessions as? SQLiteSessions, let (sql, binds) = sqlite.direct(query) {
            return try await sqlite.fastReaders.read { reader in
                var out: [StoredRevision] = []
                try reader.each(sql, binds) { row in
                    out.append(StoredRevision(sequence: row.integer(0), bytes: row.withBytes(1) { Array($0) }))
                }
                return out
            }
        }
        return try await sessions.read { db in try Self.storedRevisions(try await db.raw(query).all()) }
    }

    func revisions(ofEntity id: String, beforeSequence: Int64?, limit: Int) async throws -> [StoredRevision] {
        let before: SQLQueryString = beforeSequence.map { " AND seq < \(bind: $0)" } ?? ""
        return try await storedRevisions("SELECT seq, bytes FROM revisions WHERE entity_id = \(bind: id.lowercased())" + before + " ORDER BY seq DESC LIMIT \(literal: limit)")
    }

    func revision(_ id: RevisionID) async throws -> StoredRevision? {
        try await storedRevisions("SELECT seq, bytes FROM revisions WHERE id = \(bind: id)").first
    }

    func revisions(afterSequence: Int64, limit: Int) async throws -> [StoredRevision] {
        try await storedRevisions("SELECT seq, bytes FROM revisions WHERE seq > \(bind: afterSequence) ORDER BY seq LIMIT \(literal: limit)")
    }

    func revisionCount() async throws -> Int {
        try await sessions.read { db in try await db.raw("SELECT COUNT(*) AS n FROM revisions").first()?.decode(column: "n", as: Int.self) ?? 0 }
    }

    func latestSequence() async throws -> Int64 {
        try await sessions.read { db in try await db.raw("SELECT MAX(seq) AS n FROM revisions").first()?.decode(column: "n", as: Int64?.self) ?? 0 }
    }

    func latestHLC() async throws -> HLC {
        try await sessions.read { db in
            // The newest thousand by store order, not a scan of every revision at each start:
            // the clock only has to resume at or after recent readings (it orders provisional
            // winners; causality comes from parents).
            let rows = try await db.raw("SELECT hlc_wall, hlc_logical FROM revisions ORDER BY seq DESC LIMIT 1000").all()
            return try rows.map { HLC(wall: try $0.decode(column: "hlc_wall", as: Int64.self), logical: try $0.decode(column: "hlc_logical", as: Int64.self)) }.max() ?? HLC(wall: 0)
        }
    }

    func conflicts(kind: EntityKind?, limit: Int, offset: Int) async throws -> [EntityHeads] {
        let filter: SQLQueryString = kind.map { " AND kind = \(bind: $0.rawValue)" } ?? ""
        let query: SQLQueryString = "SELECT entity_id, kind, heads, deleted, conflict FROM entity_heads WHERE conflict IS NOT NULL" + filter
            + " ORDER BY entity_id LIMIT \(literal: limit) OFFSET \(literal: offset)"
        return try await sessions.read { db in try await db.raw(query).all().compactMap(SQLLedger.decodeHeads) }
    }

    func ingest(_ revisions: [SignedRevision], prepared: [RevisionID: Entity]) async throws -> IngestSummary {
        let (flavor, writer) = (self.flavor, sqliteWriter)
        return try await sessions.transaction { db in
            try await Ingest.apply(revisions, prepared: prepared, ledger: SQLLedger(db: db, flavor: flavor, sqlite: writer), now: Timestamp.now())
        }
    }

    func ingest(streaming next: @escaping @Sendable () async throws -> IngestChunk?) async throws -> IngestSummary {
        let (flavor, writer) = (self.flavor, sqliteWriter)
        return try await sessions.transaction { db in
            let ledger = SQLLedger(db: db, flavor: flavor, sqlite: writer)
            var tally = Ingest.Tally()
            let now = Timestamp.now()
            while let chunk = try await next() {
                try await Ingest.apply(chunk.revisions, prepared: chunk.prepared, ledger: ledger, now: now, into: &tally)
            }
            return tally.summary
        }
    }

    func unversioned(limit: Int) async throws -> [Entity] {
        try await fetch(select() + " WHERE NOT EXISTS (SELECT 1 FROM entity_heads h WHERE h.entity_id = e.id) ORDER BY seq LIMIT \(literal: limit)").map(\.entity)
    }

    func nodeState(_ key: String) async throws -> String? {
        try await sessions.read { db in try await db.raw("SELECT value FROM node_state WHERE key = \(bind: key)").first()?.decode(column: "value", as: String.self) }
    }

    func setNodeState(_ key: String, _ value: String) async throws {
        try await sessions.transaction { db in
            try await db.raw("INSERT INTO node_state (key, value) VALUES (\(bind: key), \(bind: value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run()
        }
    }

    func nodeStates(prefix: String) async throws -> [(key: String, value: String)] {
        try await sessions.read { db in
            try await db.raw("SELECT key, value FROM node_state WHERE substr(key, 1, \(literal: prefix.count)) = \(bind: prefix) ORDER BY key").all().map {
                (try $0.decode(column: "key", as: String.self), try $0.decode(column: "value", as: String.self))
            }
        }
    }

    func appendAudit(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await sessions.transaction { db in try await Self.insertAudit(entries, db) }
    }

    static let auditColumns = "audit_log (at, actor, address, action, target, revision, detail)"

    static func insertAudit(_ entries: [AuditEntry], _ db: any SQLDatabase) async throws {
        for start in stride(from: 0, to: entries.count, by: 200) {
            let rows = entries[start..<min(start + 200, entries.count)].map { e -> SQLQueryString in
                "(\(bind: e.at.microsecondsSinceEpoch), \(bind: e.actor), \(bind: e.address), \(bind: e.action), \(bind: e.target), \(bind: e.revision), \(bind: e.detail))"
            }
            try await db.raw("INSERT INTO " + SQLQueryString(auditColumns) + " VALUES " + rows.joined(separator: ", ")).run()
        }
    }

    func audit(_ q: AuditQuery) async throws -> [AuditEntry] {
        var sql: SQLQueryString = "SELECT seq, at, actor, address, action, target, revision, detail FROM audit_log WHERE seq > \(bind: q.afterSequence)"
        if let since = q.since { sql = sql + " AND at >= \(bind: since.microsecondsSinceEpoch)" }
        if let actor = q.actor { sql = sql + " AND actor = \(bind: actor)" }
        sql = sql + " ORDER BY seq LIMIT \(literal: max(1, min(q.limit, 10_000)))"
        let query = sql
        return try await sessions.read { db in
            try await db.raw(query).all().map { row in
                var e = AuditEntry(
                    at: Timestamp(microsecondsSinceEpoch: try row.decode(column: "at", as: Int64.self)), actor: try row.decode(column: "actor", as: String.self),
                    address: try row.decode(column: "address", as: String?.self), action: try row.decode(column: "action", as: String.self),
                    target: try row.decode(column: "target", as: String?.self), revision: try row.decode(column: "revision", as: String?.self),
                    detail: try row.decode(column: "detail", as: String?.self))
                e.sequence = try row.decode(column: "seq", as: Int64.self)
                return e
            }
        }
    }

    func removeNodeState(_ key: String) async throws {
        try await sessions.transaction { db in try await db.raw("DELETE FROM node_state WHERE key = \(bind: key)").run() }
    }

    /// Local revisions inside a commit: each applies only on the heads it was planned on.
    /// Batched: one query reads (and on PostgreSQL locks) every touched entity's heads, one
    /// statement per hundred revisions inserts them, one per two hundred entities moves heads.
    /// `rows`: the revisions' SQLite rows made beforehand (`PreparedRows`), in order.
    static func applyRevisions(_ writes: [RevisionWrite], flavor: SQLFlavor, _ db: any SQLDatabase, sqlite: SQLiteWriter?, rows: [[SQLiteData]]? = nil) async throws {
        guard !writes.isEmpty else { return }
        let ledger = SQLLedger(db: db, flavor: flavor, sqlite: sqlite)
        var order: [String] = []
        var seen = Set<String>()
        for w in writes where seen.insert(w.signed.revision.entityID).inserted { order.append(w.signed.revision.entityID) }
        var current = try await ledger.heads(ofEntities: order).mapValues { $0.heads.map(\.id) }
        var final: [String: EntityHeads] = [:]
        for w in writes {
            let r = w.signed.revision
            guard (current[r.entityID] ?? []) == w.expectedHeads else { throw StoreError.stale(r.kind, r.entityID) }
            current[r.entityID] = [w.signed.id]
            final[r.entityID] = EntityHeads(kind: r.kind, entityID: r.entityID, heads: [.init(id: w.signed.id, vector: r.versionVector)], deleted: r.isTombstone, conflict: nil)
        }
        if let sqlite, let rows, rows.count == writes.count {
            let at = SQLiteData.integer(Int(Timestamp.now().microsecondsSinceEpoch))
            try await SQLiteBulk.insert(rows, into: SQLiteBulk.revisionColumns, columns: 9, sqlite) { $0 + [at] }
        } else {
            try await ledger.insert(writes.map(\.signed), receivedAt: Timestamp.now())
        }
        try await ledger.setHeads(order.compactMap { final[$0] })
    }
}

/// `RevisionLedger` over one SQL connection inside a transaction.
struct SQLLedger: RevisionLedger {
    let db: any SQLDatabase
    let flavor: SQLFlavor
    /// On SQLite, the writer connection `db` runs on: the bulk statements go to it directly with
    /// `?` binds (`SQLiteBulk`), skipping SQLKit's query building and Encodable binds, which
    /// took about a third of the writer's time in a bundle import (perf).
    var sqlite: SQLiteWriter? = nil

    func known(_ ids: [RevisionID]) async throws -> Set<RevisionID> {
        var found = Set<RevisionID>()
        if let sqlite {
            for row in try SQLiteBulk.whereIn(ids, "SELECT id FROM revisions WHERE id IN", sqlite) {
                if let id = row.column("id")?.string { found.insert(id) }
            }
            return found
        }
        for start in stride(from: 0, to: ids.count, by: 500) {
            let binds: [any Encodable & Sendable] = Array(ids[start..<min(start + 500, ids.count)])
            for row in try await db.raw("SELECT id FROM revisions WHERE id IN (\(binds: binds))").all() { found.insert(try row.decode(column: "id", as: String.self)) }
        }
        return found
    }

    func insert(_ revisions: [SignedRevision], receivedAt: Timestamp) async throws {
        if let sqlite {
            let at = SQLiteData.integer(Int(receivedAt.microsecondsSinceEpoch))
            try await SQLiteBulk.insert(revisions, into: SQLiteBulk.revisionColumns, columns: 9, sqlite) { SQLiteBulk.values($0) + [at] }
            return
        }
        for start in stride(from: 0, to: revisions.count, by: 100) {
            let rows = revisions[start..<min(start + 100, revisions.count)].map { s -> SQLQueryString in
                let r = s.revision
                return "(\(bind: s.id), \(bind: r.kind.rawValue), \(bind: r.entityID), \(bind: r.author.nodeID.compact), \(bind: r.hlc.wall), \(bind: r.hlc.logical), \(bind: r.isTombstone), \(bind: String(decoding: s.bytes, as: UTF8.self)), \(bind: receivedAt.microsecondsSinceEpoch))"
            }
            try await db.raw("INSERT INTO revisions (id, kind, entity_id, author, hlc_wall, hlc_logical, tombstone, bytes, received_at) VALUES " + rows.joined(separator: ", ")).run()
        }
    }

    func all(ofEntity id: String) async throws -> [SignedRevision] {
        try SQLContentStore.storedRevisions(try await db.raw("SELECT seq, bytes FROM revisions WHERE entity_id = \(bind: id) ORDER BY seq").all()).map { try $0.decoded() }
    }

    static func decodeHeads(_ row: any SQLRow) throws -> EntityHeads? {
        guard let kind = EntityKind(rawValue: try row.decode(column: "kind", as: String.self)) else { return nil }
        let conflict = try row.decode(column: "conflict", as: String?.self).flatMap { try? JSONParser.parse(Array($0.utf8)) }
        return EntityHeads(kind: kind, entityID: try row.decode(column: "entity_id", as: String.self),
            heads: EntityHeads.heads(fromJSON: try row.decode(column: "heads", as: String.self)), deleted: try row.decode(column: "deleted", as: Bool.self), conflict: conflict)
    }

    func heads(ofEntities ids: [String]) async throws -> [String: EntityHeads] {
        var out: [String: EntityHeads] = [:]
        if let sqlite {
            for row in try SQLiteBulk.whereIn(ids, "SELECT entity_id, kind, heads, deleted, conflict FROM entity_heads WHERE entity_id IN", sqlite) {
                if let h = EntityHeads(row) { out[h.entityID] = h }
            }
            return out
        }
        let lock: SQLQueryString = flavor == .postgres ? " FOR UPDATE" : ""
        for start in stride(from: 0, to: ids.count, by: 500) {
            let binds: [any Encodable & Sendable] = Array(ids[start..<min(start + 500, ids.count)])
            for row in try await db.raw("SELECT entity_id, kind, heads, deleted, conflict FROM entity_heads WHERE entity_id IN (\(binds: binds))" + lock).all() {
                if let h = try Self.decodeHeads(row) { out[h.entityID] = h }
            }
        }
        return out
    }

    /// With `locking`, PostgreSQL holds the row until commit, so two transactions cannot both
    /// build on the same heads (SQLite has a single writer anyway).
    func heads(ofEntity id: String, locking: Bool) async throws -> EntityHeads? {
        let lock: SQLQueryString = locking && flavor == .postgres ? " FOR UPDATE" : ""
        return try await db.raw("SELECT entity_id, kind, heads, deleted, conflict FROM entity_heads WHERE entity_id = \(bind: id)" + lock).first().flatMap(Self.decodeHeads)
    }

    func setHeads(_ all: [EntityHeads]) async throws {
        let upsert = " ON CONFLICT (entity_id) DO UPDATE SET kind = excluded.kind, heads = excluded.heads, deleted = excluded.deleted, conflict = excluded.conflict, etag = excluded.etag"
        if let sqlite {
            try await SQLiteBulk.insert(all, into: "entity_heads (entity_id, kind, heads, deleted, conflict, etag)", columns: 6, then: upsert, sqlite) { h in
                [.text(h.entityID), .text(h.kind.rawValue), .text(h.headsJSON), .integer(h.deleted ? 1 : 0), h.conflictText.map { .text($0) } ?? .null, .text(h.etag)]
            }
            return
        }
        for start in stride(from: 0, to: all.count, by: 200) {
            let rows = all[start..<min(start + 200, all.count)].map { h -> SQLQueryString in
                "(\(bind: h.entityID), \(bind: h.kind.rawValue), \(bind: h.headsJSON), \(bind: h.deleted), \(bind: h.conflictText), \(bind: h.etag))"
            }
            try await db.raw("INSERT INTO entity_heads (entity_id, kind, heads, deleted, conflict, etag) VALUES " + rows.joined(separator: ", ") + SQLQueryString(upsert)).run()
        }
    }

    /// Rows upserted many per statement; an existing row keeps its place (`seq`).
    func materialize(_ entities: [Entity], deleting: [String]) async throws {
        let columns = SQLContentStore.columnNames(flavor)
        let assignments = columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        if let sqlite {
            try await SQLiteBulk.upsertEntities(entities, sqlite, upsert: " ON CONFLICT (id) DO UPDATE SET " + assignments)
            _ = try SQLiteBulk.whereIn(deleting, "DELETE FROM entities WHERE id IN", sqlite)
            return
        }
        for start in stride(from: 0, to: entities.count, by: 200) {
            let rows = entities[start..<min(start + 200, entities.count)].map { e in
                "(\(bind: e.id), " + SQLContentStore.values(e, flavor: flavor).joined(separator: ", ") + ")" as SQLQueryString
            }
            try await db.raw("INSERT INTO entities (id, " + SQLQueryString(columns.joined(separator: ", ")) + ") VALUES " + rows.joined(separator: ", ")
                + SQLQueryString(" ON CONFLICT (id) DO UPDATE SET " + assignments)).run()
        }
        for start in stride(from: 0, to: deleting.count, by: 500) {
            let binds: [any Encodable & Sendable] = Array(deleting[start..<min(start + 500, deleting.count)])
            try await db.raw("DELETE FROM entities WHERE id IN (\(binds: binds))").run()
        }
    }
}

/// Bulk statements on SQLite's writer (`SQLiteWriter`): `?` binds as `SQLiteData`, each
/// statement shape prepared once.
enum SQLiteBulk {
    /// `?, ?, …` for `count` binds.
    static func marks(_ count: Int) -> String {
        var s = String(repeating: "?, ", count: max(0, count - 1))
        if count > 0 { s += "?" }
        return s
    }

    /// Inserts `items`, 200 rows a statement: `INSERT INTO <into> VALUES (…), … <then>`, each row
    /// the `columns` binds `row` makes. The next statement's binds are made while SQLite runs
    /// the current one, on the global executor: a child task would otherwise inherit the
    /// writer's thread and make them there, between statements.
    static func insert<T: Sendable>(_ items: [T], into: String, columns: Int, then: String = "", _ sqlite: SQLiteWriter,
        row: @escaping @Sendable (T) -> [SQLiteData]
    ) async throws {
        let starts = Array(stride(from: 0, to: items.count, by: 200))
        let rowMarks = "(" + marks(columns) + ")"
        @Sendable func binds(_ start: Int) -> [SQLiteData] {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(min(200, items.count - start) * columns)
            for item in items[start..<min(start + 200, items.count)] { binds += row(item) }
            return binds
        }
        @Sendable func bindsElsewhere(_ start: Int?) async -> [SQLiteData]? {
            guard let start else { return nil }
            return await withTaskExecutorPreference(globalConcurrentExecutor) { binds(start) }
        }
        var next = starts.first.map(binds)
        for i in starts.indices {
            guard let current = next else { break }
            async let following = bindsElsewhere(i + 1 < starts.count ? starts[i + 1] : nil)
            let values = Array(repeating: rowMarks, count: current.count / columns).joined(separator: ", ")
            try sqlite.query("INSERT INTO " + into + " VALUES " + values + then, current)
            next = await following
        }
    }

    /// `sql` (ending in `IN`) over `ids`, 500 to a statement; the rows of all of them.
    static func whereIn(_ ids: [String], _ sql: String, _ sqlite: SQLiteWriter) throws -> [SQLiteReadRow] {
        var rows: [SQLiteReadRow] = []
        for start in stride(from: 0, to: ids.count, by: 500) {
            let part = ids[start..<min(start + 500, ids.count)]
            rows += try sqlite.query(sql + " (" + marks(part.count) + ")", part.map { .text($0) })
        }
        return rows
    }

    /// An entity row's binds in `SQLContentStore.columnNames(.sqlite)` order, after its id.
    static func values(_ e: Entity) -> [SQLiteData] {
        let ix = EntityIndex(e)
        func text(_ s: String?) -> SQLiteData { s.map { .text($0) } ?? .null }
        return [
            .text(e.id), .text(e.kind.rawValue), text(ix.type), text(ix.thingID), text(ix.category), text(ix.subcategory), text(ix.sourceType), text(ix.sourceID),
            text(ix.targetType), text(ix.targetID), text(ix.relationshipType), text(ix.duplicateKey), .text(String(decoding: JSONSerializer.serialize(.object(e.body)), as: UTF8.self)),
            .integer(Int(e.createdAt.microsecondsSinceEpoch)), e.updatedAt.map { .integer(Int($0.microsecondsSinceEpoch)) } ?? .null, .text(SearchText.document(for: e)),
        ]
    }

    /// Upserts entity rows (`upsert` is the ON CONFLICT clause) in one statement however many
    /// there are, so the full-text index takes them as one segment.
    ///
    /// FTS5 writes what it holds as a new index segment at every savepoint, and SQLite opens
    /// one on the index (kept up by the entity triggers) at the start of each statement that
    /// may need undoing. Written 200 to a statement, a sync's 2,000 entities became ten small
    /// segments, which the index then merged again and again. Over 200 rows they go to a
    /// temporary table first (no triggers, no index) and from there to `entities` in one
    /// `INSERT … SELECT`, in their order.
    static func upsertEntities(_ entities: [Entity], _ sqlite: SQLiteWriter, upsert: String) async throws {
        guard entities.count > 200 else {
            try await insert(entities, into: entityColumns, columns: 16, then: upsert, sqlite, row: values)
            return
        }
        try sqlite.query("CREATE TEMP TABLE IF NOT EXISTS staged_entities AS SELECT id, " + entityColumnList + " FROM main.entities WHERE 0", [])
        try await insert(entities, into: "temp.staged_entities (id, " + entityColumnList + ")", columns: 16, sqlite, row: values)
        // `WHERE true`: SQLite's grammar needs it before ON CONFLICT in an INSERT … SELECT.
        try sqlite.query("INSERT INTO " + entityColumns + " SELECT id, " + entityColumnList + " FROM temp.staged_entities WHERE true ORDER BY rowid" + upsert, [])
        try sqlite.query("DELETE FROM temp.staged_entities")
    }

    /// Inserts entity rows made beforehand with `values(_:)`.
    static func insertEntities(rows: [[SQLiteData]], _ sqlite: SQLiteWriter) async throws {
        try await insert(rows, into: entityColumns, columns: 16, sqlite) { $0 }
    }

    static let entityColumnList = SQLContentStore.columnNames(.sqlite).joined(separator: ", ")
    static let entityColumns = "entities (id, " + entityColumnList + ")"
    static let revisionColumns = "revisions (id, kind, entity_id, author, hlc_wall, hlc_logical, tombstone, bytes, received_at)"

    /// A revision row's binds, all but `received_at` (the last column).
    static func values(_ s: SignedRevision) -> [SQLiteData] {
        let r = s.revision
        return [.text(s.id), .text(r.kind.rawValue), .text(r.entityID), .text(r.author.nodeID.compact), .integer(Int(r.hlc.wall)), .integer(Int(r.hlc.logical)),
                .integer(r.isTombstone ? 1 : 0), .text(String(decoding: s.bytes, as: UTF8.self))]
    }

    /// An audit row's binds.
    static func values(_ e: AuditEntry) -> [SQLiteData] {
        func text(_ s: String?) -> SQLiteData { s.map { .text($0) } ?? .null }
        return [.integer(Int(e.at.microsecondsSinceEpoch)), .text(e.actor), text(e.address), .text(e.action), text(e.target), text(e.revision), text(e.detail)]
    }
}

/// A change set waiting for SQLite's writer, with its rows if made beforehand.
struct PendingCommit: Sendable {
    var changes: ChangeSet
    var rows: PreparedRows?
}

/// A change set's SQLite rows (binds), made before it joins a group commit: entity inserts,
/// revisions (without `received_at`, set at commit) and audit entries, each in order.
struct PreparedRows: Sendable {
    var entities: [[SQLiteData]] = []
    var revisions: [[SQLiteData]] = []
    var audit: [[SQLiteData]] = []

    init(_ changes: ChangeSet) {
        for case .insert(let e) in changes.writes { entities.append(SQLiteBulk.values(e)) }
        revisions = changes.revisions.map { SQLiteBulk.values($0.signed) }
        audit = changes.audit.map(SQLiteBulk.values)
    }
}

extension EntityHeads {
    /// The open conflict as stored (canonical JSON), or nil.
    var conflictText: String? { conflict.map { String(decoding: CanonicalJSON.encode($0), as: UTF8.self) } }

    /// From an `entity_heads` row read by the writer or a fast reader.
    init?(_ row: some SQLiteNamedColumns) {
        guard let kind = row.column("kind")?.string.flatMap(EntityKind.init(rawValue:)), let id = row.column("entity_id")?.string, let heads = row.column("heads")?.string else { return nil }
        let conflict = row.column("conflict")?.string.flatMap { try? JSONParser.parse(Array($0.utf8)) }
        self.init(kind: kind, entityID: id, heads: EntityHeads.heads(fromJSON: heads), deleted: (row.column("deleted")?.integer ?? 0) != 0, conflict: conflict)
    }
}
