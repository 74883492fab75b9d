import Foundation
import Logging
import SQLKit
import SQLiteKit
public import ThingDataCore

/// Runs queries for `SQLContentStore`: reads on any connection, transactions on one.
protocol SQLSessions: Sendable {
    var flavor: SQLFlavor { get }
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Set where writes are serialized anyway (SQLite): concurrent commits then share transactions.
    var groupCommit: GroupCommit<PendingCommit>? { get }
    func close() async throws
}

extension SQLSessions {
    /// Runs `body` between `begin` and COMMIT on one connection, rolling back if it throws.
    static func inTransaction<T: Sendable>(_ db: any SQLDatabase, begin: String, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await inTransaction(begin: begin, run: { try await db.raw(SQLQueryString($0)).run() }) { try await body(db) }
    }

    /// The same, with `run` executing the BEGIN, COMMIT and ROLLBACK statements (SQLite's writer
    /// runs them on its connection directly).
    static func inTransaction<T: Sendable>(begin: String, run: (String) async throws -> Void, _ body: () async throws -> T) async throws -> T {
        try await run(begin)
        do {
            let result = try await body()
            try await run("COMMIT")
            return result
        } catch {
            try? await run("ROLLBACK")
            throw error
        }
    }

    /// Runs `work` in a task of its own, so that cancelling the caller cannot cut a transaction
    /// in half. Database drivers may refuse to run a statement for a cancelled task (SQLiteNIO's
    /// async queries, which SQLite's writer used before it moved to the C API, throw
    /// `CancellationError` from `NIOThreadPool.runIfActive`): a cancelled caller's ROLLBACK would
    /// then never run, and the one writer connection would stay inside the transaction ("cannot
    /// start a transaction within a transaction" for every write after).
    /// A group commit also carries other callers' changes, which one caller's cancellation must
    /// not fail. The caller still gets the outcome once the transaction has ended.
    ///
    /// With `executor`, the task runs there (SQLite: the writer's own thread).
    static func shielded<T: Sendable>(on executor: (any TaskExecutor)? = nil, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task(executorPreference: executor) { try await work() }.value
    }
}

/// The SQL shared by SQLite and PostgreSQL: one table of current entities with indexed filter
/// columns, a full-text index, and a migrations ledger.
struct SQLContentStore: ContentStore {
    let sessions: any SQLSessions
    /// SQLite's writer connection (nil on PostgreSQL), for the bulk statements of `SQLiteBulk`.
    var sqliteWriter: SQLiteWriter? { (sessions as? SQLiteSessions)?.writer }
    var flavor: SQLFlavor { sessions.flavor }

    func migrate() async throws {
        let flavor = self.flavor
        try await sessions.transaction { db in
            try await db.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)").run()
        }
        let applied = try await sessions.read { db in
            try await db.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int.self) }
        }
        for migration in flavor.migrations where !applied.contains(migration.version) {
            try await sessions.transaction { db in
                for statement in migration.statements { try await db.raw(SQLQueryString(statement)).run() }
                try await db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: migration.version), \(bind: Timestamp.now().microsecondsSinceEpoch))").run()
            }
        }
    }

    func ping() async throws {
        _ = try await sessions.read { db in try await db.raw("SELECT 1 AS ok").first() != nil }
    }

    func close() async throws { try await sessions.close() }

    func select() -> SQLQueryString {
        SQLQueryString("SELECT seq, kind, id, created_at, updated_at, \(flavor.bodyColumn) FROM entities e")
    }

    static func decode(_ row: any SQLRow) throws -> Listed {
        let kindName = try row.decode(column: "kind", as: String.self)
        guard let kind = EntityKind(rawValue: kindName) else { throw StoreError.unavailable("unknown kind \(kindName) in store") }
        let bodyText = try row.decode(column: "body", as: String.self)
        guard case .object(let body) = try JSONParser.parse(Array(bodyText.utf8)) else {
            throw StoreError.unavailable("stored body is not an object")
        }
        let entity = Entity(
            kind: kind,
            id: try row.decode(column: "id", as: String.self),
            body: body,
            createdAt: Timestamp(microsecondsSinceEpoch: try row.decode(column: "created_at", as: Int64.self)),
            updatedAt: try row.decode(column: "updated_at", as: Int64?.self).map { Timestamp(microsecondsSinceEpoch: $0) })
        return Listed(entity: entity, sequence: try row.decode(column: "seq", as: Int64.self))
    }

    /// A SQLite row read where the statement stands (columns seq, kind, id, created_at,
    /// updated_at, body, in that order), its body parsed straight from SQLite's bytes.
    static func decodeSQLite(_ row: SQLiteCursor) throws -> Listed {
        guard let kind = EntityKind(rawValue: row.text(1)) else { throw StoreError.unavailable("a stored row has an unknown kind") }
        guard case .object(let body) = try row.withBytes(5, { try JSONParser.parse($0) }) else { throw StoreError.unavailable("stored body is not an object") }
        let entity = Entity(kind: kind, id: row.text(2), body: body, createdAt: Timestamp(microsecondsSinceEpoch: row.integer(3)),
                            updatedAt: row.isNull(4) ? nil : Timestamp(microsecondsSinceEpoch: row.integer(4)))
        return Listed(entity: entity, sequence: row.integer(0))
    }

    /// Entity rows (columns in `select()` order) read in place on a fast reader.
    static func listed(_ sqlite: SQLiteSessions, _ sql: String, _ binds: [SQLiteData]) async throws -> [Listed] {
        try await sqlite.fastReaders.read { reader in
            var out: [Listed] = []
            try reader.each(sql, binds) { out.append(try decodeSQLite($0)) }
            return out
        }
    }

    /// Entity rows of a query; on SQLite through a fast reader.
    func fetch(_ query: SQLQueryString) async throws -> [Listed] {
        if let sqlite = sessions as? SQLiteSessions, let (sql, binds) = sqlite.direct(query) {
            return try await Self.listed(sqlite, sql, binds)
        }
        return try await sessions.read { db in try await db.raw(query).all().map(Self.decode) }
    }

    func entity(_ kind: EntityKind, id: String) async throws -> Entity? {
        try await fetch(select() + " WHERE id = \(bind: id.lowercased()) AND kind = \(bind: kind.rawValue)").first?.entity
    }

    /// The entity (with its ETag) and the relationships touching it, in one query (one lookup in
    /// each of three indexes), in no particular order: callers check kinds and sort by `seq`.
    /// Short on purpose: SQLiteNIO prepared every statement anew, and preparing the earlier
    /// three-part UNION took more CPU than running it (perf: 15 % of a node serving GETs).
    static let entityWithRelationshipsSQL = """
        SELECT seq, kind, id, created_at, updated_at, body, CASE WHEN id = ?1 THEN (SELECT etag FROM entity_heads WHERE entity_id = ?1) END AS etag
        FROM entities WHERE id = ?1 OR source_id = ?1 OR target_id = ?1 LIMIT 20001
        """

    /// SQLite: the answer is spliced from the stored body texts, which are never parsed.
    func renderedEntity(_ kind: EntityKind, id: String) async throws -> RenderedEntity? {
        if let postgres = sessions as? PostgresSessions, kind != .relationship {
            let id = id.lowercased()
            let rows = try await postgres.entityRows(id: id, kind: kind.rawValue)
            guard let main = rows.first(where: { $0.2 == id && $0.1 == kind.rawValue }) else { return nil }
            var seen: Set<String> = []
            let relationships = try rows.filter { $0.1 == "relationship" && $0.2 != id && seen.insert($0.2).inserted }.map { try Self.entity(fromPostgres: $0) }
            let etag = try await main.6.asyncOr { try await heads(kind, id: id)?.etag }
            return RenderedEntity(bytes: JSONSerializer.serialize(try Self.entity(fromPostgres: main).rendered(relationships: relationships)), etag: etag)
        }
        guard let sqlite = sessions as? SQLiteSessions, kind != .relationship else {
            guard let bytes = try await defaultRenderedEntity(kind, id: id) else { return nil }
            return RenderedEntity(bytes: bytes, etag: try await heads(kind, id: id)?.etag)
        }
        let id = id.lowercased()
        let rows = try await sqlite.readRows(Self.entityWithRelationshipsSQL, [id]).sorted { ($0.column("seq")?.integer ?? 0) < ($1.column("seq")?.integer ?? 0) }
        func render(_ row: SQLiteReadRow, withRelationships relationships: [[UInt8]]?) throws -> [UInt8] {
            guard let kindName = row.column("kind")?.string, let kind = EntityKind(rawValue: kindName), let rowID = row.column("id")?.string,
                let body = row.column("body")?.string, let created = row.column("created_at")?.integer
            else { throw StoreError.unavailable("a stored row is incomplete") }
            let updated = row.column("updated_at")?.integer.map { Timestamp(microsecondsSinceEpoch: Int64($0)) }
            return Entity.renderedJSON(kind: kind, id: rowID, body: body.utf8, createdAt: Timestamp(microsecondsSinceEpoch: Int64(created)), updatedAt: updated, relationships: relationships)
        }
        guard let main = rows.first(where: { $0.column("id")?.string == id && $0.column("kind")?.string == kind.rawValue }) else { return nil }
        var seen: Set<String> = []
        let relationships = try rows.filter { row in
            guard row.column("kind")?.string == "relationship", let rid = row.column("id")?.string, rid != id else { return false }
            return seen.insert(rid).inserted
        }.map { try render($0, withRelationships: nil) }
        // Heads written before the etag column existed (migration 3) have none stored.
        let stored = main.column("etag")?.string
        let etag = try await stored.asyncOr { try await heads(kind, id: id)?.etag }
        return RenderedEntity(bytes: try render(main, withRelationships: relationships), etag: etag)
    }

    func entityWithRelationships(_ kind: EntityKind, id: String) async throws -> (Entity, [Entity])? {
        let id = id.lowercased()
        let rows: [Entity]
        if let sqlite = sessions as? SQLiteSessions {
            rows = try await Self.listed(sqlite, Self.entityWithRelationshipsSQL, [.text(id)]).sorted { $0.sequence < $1.sequence }.map(\.entity)
        } else if let postgres = sessions as? PostgresSessions {
            rows = try await postgres.entityRows(id: id, kind: kind.rawValue).map(Self.entity(fromPostgres:))
        } else {
            rows = try await sqlRows(kind, id)
        }
        guard let entity = rows.first(where: { $0.id == id && $0.kind == kind }) else { return nil }
        var seen: Set<String> = []  // a relationship from an entity to itself comes twice
        return (entity, rows.filter { $0.kind == .relationship && $0.id != id && seen.insert($0.id).inserted })
    }

    static func entity(fromPostgres row: EntityWithRelationshipsStatement.Row) throws -> Entity {
        let (_, kindName, rowID, created, updated, body, _) = row
        guard let k = EntityKind(rawValue: kindName), case .object(let object) = try JSONParser.parse(Array(body.utf8)) else {
            throw StoreError.unavailable("a stored row is unreadable")
        }
        return Entity(kind: k, id: rowID, body: object, createdAt: Timestamp(microsecondsSinceEpoch: created), updatedAt: updated.map { Timestamp(microsecondsSinceEpoch: $0) })
    }

    private func sqlRows(_ kind: EntityKind, _ id: String) async throws -> [Entity] {
        let query = select() + " WHERE id = \(bind: id) AND kind = \(bind: kind.rawValue) UNION ALL " + select()
            + " WHERE source_id = \(bind: id) AND kind = 'relationship' UNION ALL " + select() + " WHERE target_id = \(bind: id) AND kind = 'relationship' ORDER BY seq LIMIT 20001"
        return try await sessions.read { db in try await db.raw(query).all().map { try Self.decode($0).entity } }
    }

    func list(_ q: ListQuery) async throws -> [Listed] {
        var query = select() + " WHERE kind = \(bind: q.kind.rawValue)"
        for (column, value) in q.columnFilters { query += " AND \(ident: column.rawValue) = \(bind: value)" }
        if let after = q.afterSequence { query += " AND seq > \(bind: after)" }
        // Binds, not literals: one kept statement per filter shape on the fast readers, whatever the page.
        query += " ORDER BY seq LIMIT \(bind: q.limit) OFFSET \(bind: q.offset)"
        return try await fetch(query)
    }

    func relationships(touching ids: [String], direction: RelationshipDirection) async throws -> [Entity] {
        guard !ids.isEmpty else { return [] }
        let binds: [any Encodable & Sendable] = ids.map { $0.lowercased() }
        let condition: SQLQueryString
        switch direction {
        case .out: condition = "source_id IN (\(binds: binds))"
        case .in: condition = "target_id IN (\(binds: binds))"
        case .both: condition = "(source_id IN (\(binds: binds)) OR target_id IN (\(binds: binds)))"
        }
        return try await fetch(select() + " WHERE kind = 'relationship' AND " + condition + " ORDER BY seq LIMIT 10000").map(\.entity)
    }

    func referrers(ofThing thingID: String, limit: Int) async throws -> [Entity] {
        try await fetch(select() + " WHERE thing_id = \(bind: thingID.lowercased()) AND kind IN ('story', 'guide') ORDER BY seq LIMIT \(literal: limit)").map(\.entity)
    }

    func things(withDuplicateKey key: String, limit: Int) async throws -> [Entity] {
        try await fetch(select() + " WHERE dup_key = \(bind: key) AND kind = 'thing' ORDER BY seq LIMIT \(literal: limit)").map(\.entity)
    }

    func count(_ kind: EntityKind) async throws -> Int {
        try await sessions.read { db in
            try await db.raw("SELECT COUNT(*) AS n FROM entities WHERE kind = \(bind: kind.rawValue)").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    // MARK: Search

    /// SQLite: the whole search in one visit to a fast reader (the words' index terms, match
    /// and statistics, ranking, the page of results), in one read transaction, so every part
    /// sees the same snapshot.
    func search(_ q: SearchQuery) async throws -> [SearchHit] {
        guard let sqlite = sessions as? SQLiteSessions else { return try await rankedSearch(q) }
        guard !q.terms.isEmpty, !q.kinds.isEmpty else { return [] }
        let bySequence = "SELECT seq, kind, id, created_at, updated_at, body, search_doc FROM entities WHERE seq = ?1"
        return try await sqlite.fastReaders.read { reader in
            try Self.readTransaction(reader) {
                var page: [(sequence: Int64, score: Double)] = []
                // Each tier's query is only made when the page reaches into it.
                let expansions = try Self.expansions(q, reader)
                if q.fromNewest > 0 {
                    page += q.pageOfNewest(SearchRanking.rank(try Self.candidates(reader, sqlite, q, expansions, older: false), terms: q.terms))
                }
                if q.fromOlder > 0 {
                    page += q.pageOfOlder(SearchRanking.rank(try Self.candidates(reader, sqlite, q, expansions, older: true), terms: q.terms))
                }
                var hits: [SearchHit] = []
                hits.reserveCapacity(page.count)
                for hit in page {
                    try reader.each(bySequence, [.integer(Int(hit.sequence))]) { row in
                        hits.append(SearchHit(entity: try Self.decodeSQLite(row).entity, score: hit.score, document: row.text(6)))
                    }
                }
                return hits
            }
        }
    }

    /// Runs `body` inside a read transaction on `reader`.
    private static func readTransaction<T>(_ reader: SQLiteHandle, _ body: () throws -> T) throws -> T {
        try reader.each("BEGIN", []) { _ in }
        do {
            let result = try body()
            try reader.each("COMMIT", []) { _ in }
            return result
        } catch {
            try? reader.each("ROLLBACK", []) { _ in }
            throw error
        }
    }

    /// What each of the query's terms stands for in FTS5's query (`SQLiteSearchTerms`):
    /// phrases stay phrases; words become the index terms they begin, where that is cheaper.
    private static func expansions(_ q: SearchQuery, _ reader: SQLiteHandle) throws -> [SQLiteSearchTerms.Expansion] {
        try q.terms.map { term in
            guard case .word(let word) = term else { return .prefix }
            return try SQLiteSearchTerms.expand(word, reader)
        }
    }

    /// One tier's candidates with their term statistics, read from the cursor (no row copies).
    private static func candidates(_ reader: SQLiteHandle, _ sqlite: SQLiteSessions, _ q: SearchQuery, _ expansions: [SQLiteSearchTerms.Expansion], older: Bool) throws -> [SearchRanking.Candidate] {
        // A word no index term begins with: nothing matches every term.
        guard !expansions.contains(.terms([])) else { return [] }
        guard let query = sqlite.direct(sqliteCandidates(q, expansions, older: older)) else {
            throw StoreError.unavailable("the search query could not be run on SQLite")
        }
        var out: [SearchRanking.Candidate] = []
        out.reserveCapacity(SearchQuery.rankWindow)
        try reader.each(query.sql, query.binds) { row in
            let seq = row.integer(0)
            guard let statistics = row.withBytes(1, { SQLiteSearchStatistics.decode($0, terms: q.terms.count) }) else {
                throw StoreError.unavailable("the search index gave no statistics for entry \(seq)")
            }
            out.append(SearchRanking.Candidate(sequence: seq, statistics: statistics))
        }
        return out
    }

    /// The index answers the match with its filter columns and, through `thingdata_stats`,
    /// each candidate's term statistics, so ranking never reads the candidates' text. Exact
    /// type and category filters join the few candidates. Columns: seq, stats.
    static func sqliteCandidates(_ q: SearchQuery, _ expansions: [SQLiteSearchTerms.Expansion], older: Bool) -> SQLQueryString {
        let window = SearchQuery.rankWindow
        var query: SQLQueryString
        let (match, phrases) = FullText.fts5Query(q.terms, expansions: expansions, kinds: q.kinds.count == EntityKind.allCases.count ? [] : q.kinds.map(\.rawValue), type: q.type, category: q.category)
        let statistics: SQLQueryString = "\(unsafeRaw: SQLiteSearchStatistics.name)(entity_search, \(literal: q.terms.count), \(literal: FullText.documentColumn), \(bind: phrases)) AS stats"
        if older {
            let cutoff: SQLQueryString = "coalesce((SELECT rowid FROM entity_search WHERE entity_search MATCH \(bind: match) ORDER BY rowid DESC LIMIT 1 OFFSET \(literal: window - 1)), 0)"
            query = "SELECT rowid AS seq, " + statistics + " FROM entity_search WHERE entity_search MATCH \(bind: match) AND rowid < " + cutoff
        } else {
            query = "SELECT rowid AS seq, " + statistics + " FROM entity_search WHERE entity_search MATCH \(bind: match) ORDER BY rowid DESC LIMIT \(literal: window)"
        }
        if q.type != nil || q.category != nil {
            query = "SELECT c.seq, c.stats FROM (" + query + ") c JOIN entities e ON e.seq = c.seq WHERE 1"
            if let type = q.type { query += " AND e.type = \(bind: type)" }
            if let category = q.category { query += " AND e.category = \(bind: category)" }
        }
        return query
    }

    func searchCandidates(_ q: SearchQuery, older: Bool) async throws -> [SearchRanking.Candidate] {
        guard !q.terms.isEmpty, !q.kinds.isEmpty else { return [] }
        let window = SearchQuery.rankWindow
        var query: SQLQueryString
        switch flavor {
        case .sqlite:
            guard let sqlite = sessions as? SQLiteSessions else { throw StoreError.unavailable("the search query could not be run on SQLite") }
            return try await sqlite.fastReaders.read { reader in
                try Self.readTransaction(reader) { try Self.candidates(reader, sqlite, q, try Self.expansions(q, reader), older: older) }
            }
        case .postgres:
            let kinds: [any Encodable & Sendable] = q.kinds.map(\.rawValue)
            var filter: SQLQueryString = "search @@ \(bind: FullText.tsquery(q.terms))::tsquery"
            if q.kinds.count < EntityKind.allCases.count { filter += " AND kind IN (\(binds: kinds))" }
            if let type = q.type { filter += " AND type = \(bind: type)" }
            if let category = q.category { filter += " AND category = \(bind: category)" }
            if older {
                let cutoff: SQLQueryString = "coalesce((SELECT seq FROM entities WHERE " + filter + " ORDER BY seq DESC LIMIT 1 OFFSET \(literal: window - 1)), 0)"
                query = "SELECT seq, search_doc FROM entities WHERE " + filter + " AND seq < " + cutoff
            } else {
                query = "SELECT seq, search_doc FROM entities WHERE " + filter + " ORDER BY seq DESC LIMIT \(literal: window)"
            }
        }
        let final = query
        return try await sessions.read { db in
            try await db.raw(final).all().map { row in
                SearchRanking.Candidate(sequence: try row.decode(column: "seq", as: Int64.self), document: try row.decode(column: "search_doc", as: String.self))
            }
        }
    }

    func entities(atSequences sequences: [Int64]) async throws -> [Listed] {
        guard !sequences.isEmpty else { return [] }
        let binds: [any Encodable & Sendable] = sequences
        return try await fetch(select() + " WHERE seq IN (\(binds: binds))")
    }

    // MARK: Writes

    func commit(_ changes: ChangeSet) async throws {
        let sessions = self.sessions
        let apply: GroupCommit<PendingCommit>.Apply = { group in
            try await sessions.transaction { db in
                try await Self.apply(group, flavor: sessions.flavor, db, sqlite: (sessions as? SQLiteSessions)?.writer)
            }
        }
        if let group = sessions.groupCommit {
            // The rows are made here, by each committing request in parallel, so the group's
            // transaction (one writer, everyone else waiting) only runs statements.
            try await group.commit(PendingCommit(changes: changes, rows: PreparedRows(changes)), apply: apply)
        } else {
            try await apply([PendingCommit(changes: changes, rows: nil)])
        }
    }

    /// Applies change sets inside one transaction. Inserts go first, many rows per statement:
    /// that is the same as the written order, because an update or delete can only name an
    /// entity that existed, or was created earlier, when its change set was planned.
    static func apply(_ pending: [PendingCommit], flavor: SQLFlavor, _ db: any SQLDatabase, sqlite: SQLiteWriter? = nil) async throws {
        let group = pending.map(\.changes)
        var inserts: [Entity] = []
        for changes in group {
            for case .insert(let e) in changes.writes { inserts.append(e) }
        }
        // On SQLite, each change set's rows (made before queueing, or here if its caller made none).
        let prepared = sqlite.map { _ in pending.map { $0.rows ?? PreparedRows($0.changes) } }
        if let sqlite, let prepared {
            do { try await SQLiteBulk.insertEntities(rows: prepared.flatMap(\.entities), sqlite) } catch { throw Self.duplicateOr(error, inserts) }
        } else {
            for start in stride(from: 0, to: inserts.count, by: 200) {
                try await insert(Array(inserts[start..<min(start + 200, inserts.count)]), flavor: flavor, db)
            }
        }
        for changes in group {
            for write in changes.writes {
                switch write {
                case .insert:
                    continue
                case .update(let e):
                    guard try await update(e, flavor: flavor, db) else { throw StoreError.notFound(e.kind, e.id) }
                case .delete(let kind, let id):
                    // Search rows follow through triggers (SQLite) or the row itself (PostgreSQL).
                    guard try await db.raw("DELETE FROM entities WHERE id = \(bind: id) AND kind = \(bind: kind.rawValue) RETURNING seq").first() != nil else {
                        throw StoreError.notFound(kind, id)
                    }
                    try await db.raw("DELETE FROM entities WHERE kind = 'relationship' AND (source_id = \(bind: id) OR target_id = \(bind: id))").run()
                }
            }
        }
        try await applyRevisions(group.flatMap(\.revisions), flavor: flavor, db, sqlite: sqlite, rows: prepared?.flatMap(\.revisions))
        if let sqlite, let prepared {
            try await SQLiteBulk.insert(prepared.flatMap(\.audit), into: Self.auditColumns, columns: 7, sqlite) { $0 }
        } else {
            try await insertAudit(group.flatMap(\.audit), db)
        }
        for changes in group {
            for requirement in changes.requirements {
                switch requirement {
                case .exists(let ref):
                    let found = try await db.raw("SELECT 1 AS one FROM entities WHERE id = \(bind: ref.id.lowercased()) AND kind = \(bind: ref.kind.rawValue)").first() != nil
                    if !found { throw StoreError.missingReference(ref) }
                case .unreferenced(let thingID):
                    let found = try await db.raw("SELECT 1 AS one FROM entities WHERE thing_id = \(bind: thingID) AND kind IN ('story', 'guide') LIMIT 1").first() != nil
                    if found { throw StoreError.stillReferenced(thingID: thingID) }
                }
            }
        }
    }

    /// The values of an entity's row, in `columnNames` order.
    static func values(_ e: Entity, flavor: SQLFlavor) -> [SQLQueryString] {
        let ix = EntityIndex(e)
        let body = String(decoding: JSONSerializer.serialize(.object(e.body)), as: UTF8.self)
        let doc = SearchText.document(for: e)
        var v: [SQLQueryString] = [
            "\(bind: e.kind.rawValue)", "\(bind: ix.type)", "\(bind: ix.thingID)", "\(bind: ix.category)", "\(bind: ix.subcategory)",
            "\(bind: ix.sourceType)", "\(bind: ix.sourceID)", "\(bind: ix.targetType)", "\(bind: ix.targetID)", "\(bind: ix.relationshipType)",
            "\(bind: ix.duplicateKey)", flavor == .postgres ? "\(bind: body)::jsonb" : "\(bind: body)",
            "\(bind: e.createdAt.microsecondsSinceEpoch)", "\(bind: e.updatedAt?.microsecondsSinceEpoch)",
        ]
        v.append("\(bind: doc)")
        if flavor == .postgres { v.append("\(bind: FullText.tsvector(doc))::tsvector") }
        return v
    }

    static func columnNames(_ flavor: SQLFlavor) -> [String] {
        ["kind", "type", "thing_id", "category", "subcategory", "source_type", "source_id", "target_type", "target_id", "relationship_type", "dup_key", "body", "created_at", "updated_at", "search_doc"] + (flavor == .postgres ? ["search"] : [])
    }

    /// Inserts new entities in one statement; a repeated id is `duplicateID` (ids are random
    /// UUIDs, so only a replayed write can collide).
    static func insert(_ entities: [Entity], flavor: SQLFlavor, _ db: any SQLDatabase) async throws {
        guard !entities.isEmpty else { return }
        let rows = entities.map { e in "(\(bind: e.id), " + values(e, flavor: flavor).joined(separator: ", ") + ")" as SQLQueryString }
        let query: SQLQueryString = "INSERT INTO entities (id, " + SQLQueryString(columnNames(flavor).joined(separator: ", ")) + ") VALUES " + rows.joined(separator: ", ")
        do { try await db.raw(query).run() } catch { throw duplicateOr(error, entities) }
    }

    /// `duplicateID` for a unique-key violation on insert, else the error itself.
    static func duplicateOr(_ error: any Error, _ entities: [Entity]) -> any Error {
        let text = String(describing: error)
        if text.contains("UNIQUE constraint failed") || text.contains("23505") || text.contains("duplicate key") {
            return StoreError.duplicateID(entities.count == 1 ? entities[0].id : "(one of \(entities.count))")
        }
        return error
    }

    /// Replaces an entity's row in place (it keeps its sequence); false when it is gone.
    static func update(_ e: Entity, flavor: SQLFlavor, _ db: any SQLDatabase) async throws -> Bool {
        let assignments = zip(columnNames(flavor), values(e, flavor: flavor)).map { SQLQueryString("\($0.0) = ") + $0.1 }
        let query: SQLQueryString = "UPDATE entities SET " + assignments.joined(separator: ", ") + " WHERE id = \(bind: e.id) AND kind = \(bind: e.kind.rawValue) RETURNING seq"
        return try await db.raw(query).first() != nil
    }
}

/// Builds each backend's full-text syntax from the core's folded tokens.
enum FullText {
    /// The position of `search_doc` among the columns of SQLite's `entity_search` index.
    static let documentColumn = 3

    static func fts5String(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// FTS5: `"word"*` for words (prefix), or `("term" OR …)` for a word expanded into the index
    /// terms it begins (`SQLiteSearchTerms`), `"a b c"` for phrases, all in the text column and
    /// all required; filters as column filters on the index's kind, type and category. With
    /// the query, which term each of its phrases stands for, for `thingdata_stats`.
    static func fts5Query(_ terms: [SearchText.Term], expansions: [SQLiteSearchTerms.Expansion] = [], kinds: [String] = [], type: String? = nil, category: String? = nil) -> (match: String, phrases: [UInt8]) {
        var phrases: [UInt8] = []
        let text = terms.enumerated().map { i, term in
            switch (term, i < expansions.count ? expansions[i] : .prefix) {
            case (.word(let w), .prefix):
                phrases.append(UInt8(i))
                return fts5String(w) + "*"
            case (.word, .terms(let expanded)):
                phrases += Array(repeating: UInt8(i), count: expanded.count)
                return "(" + expanded.map(fts5String).joined(separator: " OR ") + ")"
            case (.phrase(let p), _):
                phrases.append(UInt8(i))
                return fts5String(p.joined(separator: " "))
            }
        }.joined(separator: " AND ")
        var parts = ["search_doc : (\(text))"]
        if !kinds.isEmpty { parts.append("kind : (" + kinds.map(fts5String).joined(separator: " OR ") + ")") }
        if let type { parts.append("type : " + fts5String(type)) }
        if let category { parts.append("category : " + fts5String(category)) }
        return (parts.joined(separator: " AND "), phrases)
    }

    static func quote(_ token: String) -> String {
        "'" + token.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// PostgreSQL tsquery text: `'word':*` and `('a' <-> 'b')`, joined with `&`.
    static func tsquery(_ terms: [SearchText.Term]) -> String {
        terms.map { term in
            switch term {
            case .word(let w): quote(w) + ":*"
            case .phrase(let p): "(" + p.map(quote).joined(separator: " <-> ") + ")"
            }
        }.joined(separator: " & ")
    }

    /// PostgreSQL tsvector text with positions, so phrases match; tokens are already folded.
    static func tsvector(_ document: String) -> String {
        var out = ""
        var position = 0
        for token in document.split(separator: " ") where token.utf8.count <= 200 {
            position += 1
            if !out.isEmpty { out += " " }
            out += quote(String(token)) + ":\(min(position, 16383))"
        }
        return out
    }
}

extension Timestamp {
    /// The wall clock, for the few places outside the core that need "now".
    public static func now() -> Timestamp {
        Timestamp(secondsSinceEpoch: Date().timeIntervalSince1970)
    }
}

extension Optional where Wrapped: Sendable {
    /// The value, or what `fallback` finds when there is none.
    func asyncOr(_ fallback: () async throws -> Wrapped?) async rethrows -> Wrapped? {
        if let self { return self }
        return try await fallback()
    }
}
