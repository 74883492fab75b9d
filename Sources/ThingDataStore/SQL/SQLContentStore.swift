import Foundation
import Logging
import SQLKit
public import ThingDataCore

/// Runs queries for `SQLContentStore`: reads on any connection, transactions on one.
protocol SQLSessions: Sendable {
    var flavor: SQLFlavor { get }
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func storageBytes() async throws -> Int64?
    func close() async throws
}

/// The SQL shared by SQLite and PostgreSQL: one table of current entities with indexed filter
/// columns, a full-text index, and a migrations ledger.
struct SQLContentStore: ContentStore {
    let sessions: any SQLSessions
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
    func storageBytes() async throws -> Int64? { try await sessions.storageBytes() }

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

    func entity(_ kind: EntityKind, id: String) async throws -> Entity? {
        let query = select() + " WHERE id = \(bind: id.lowercased()) AND kind = \(bind: kind.rawValue)"
        return try await sessions.read { db in try await db.raw(query).first().map { try Self.decode($0).entity } }
    }

    func list(_ q: ListQuery) async throws -> [Listed] {
        var query = select() + " WHERE kind = \(bind: q.kind.rawValue)"
        for (column, value) in q.columnFilters { query += " AND \(ident: column) = \(bind: value)" }
        if let after = q.afterSequence { query += " AND seq > \(bind: after)" }
        query += " ORDER BY seq LIMIT \(literal: q.limit) OFFSET \(literal: q.offset)"
        let final = query
        return try await sessions.read { db in try await db.raw(final).all().map(Self.decode) }
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
        let query = select() + " WHERE kind = 'relationship' AND " + condition + " ORDER BY seq LIMIT 10000"
        return try await sessions.read { db in try await db.raw(query).all().map { try Self.decode($0).entity } }
    }

    func referrers(ofThing thingID: String, limit: Int) async throws -> [Entity] {
        let query = select() + " WHERE thing_id = \(bind: thingID.lowercased()) AND kind IN ('story', 'guide') ORDER BY seq LIMIT \(literal: limit)"
        return try await sessions.read { db in try await db.raw(query).all().map { try Self.decode($0).entity } }
    }

    func things(withDuplicateKey key: String, limit: Int) async throws -> [Entity] {
        let query = select() + " WHERE dup_key = \(bind: key) AND kind = 'thing' ORDER BY seq LIMIT \(literal: limit)"
        return try await sessions.read { db in try await db.raw(query).all().map { try Self.decode($0).entity } }
    }

    func count(_ kind: EntityKind) async throws -> Int {
        try await sessions.read { db in
            try await db.raw("SELECT COUNT(*) AS n FROM entities WHERE kind = \(bind: kind.rawValue)").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    // MARK: Search

    func search(_ q: SearchQuery) async throws -> [SearchHit] {
        guard !q.terms.isEmpty, !q.kinds.isEmpty else { return [] }
        let kinds: [any Encodable & Sendable] = q.kinds.map(\.rawValue)
        var query: SQLQueryString
        switch flavor {
        case .sqlite:
            query = "SELECT e.seq, e.kind, e.id, e.created_at, e.updated_at, e.body, -bm25(entity_search) AS score FROM entity_search JOIN entities e ON e.seq = entity_search.rowid WHERE entity_search MATCH \(bind: FullText.fts5Query(q.terms)) AND e.kind IN (\(binds: kinds))"
        case .postgres:
            let tsquery = FullText.tsquery(q.terms)
            query = "SELECT seq, kind, id, created_at, updated_at, body::text AS body, ts_rank(search, \(bind: tsquery)::tsquery)::float8 AS score FROM entities e WHERE search @@ \(bind: tsquery)::tsquery AND kind IN (\(binds: kinds))"
        }
        if let type = q.type { query += " AND e.type = \(bind: type)" }
        if let category = q.category { query += " AND e.category = \(bind: category)" }
        query += " ORDER BY score DESC, e.seq LIMIT \(literal: q.limit) OFFSET \(literal: q.offset)"
        let final = query
        return try await sessions.read { db in
            try await db.raw(final).all().map { row in
                SearchHit(entity: try Self.decode(row).entity, score: try row.decode(column: "score", as: Double.self))
            }
        }
    }

    // MARK: Writes

    func commit(_ changes: ChangeSet) async throws {
        let flavor = self.flavor
        try await sessions.transaction { db in
            for write in changes.writes {
                switch write {
                case .insert(let e):
                    let exists = try await db.raw("SELECT 1 AS one FROM entities WHERE id = \(bind: e.id)").first() != nil
                    if exists { throw StoreError.duplicateID(e.id) }
                    try await Self.insert(e, flavor: flavor, db)
                case .update(let e):
                    guard let seq = try await Self.delete(kind: e.kind, id: e.id, flavor: flavor, db) else { throw StoreError.notFound(e.kind, e.id) }
                    try await Self.insert(e, flavor: flavor, db, sequence: seq)
                case .delete(let kind, let id):
                    guard try await Self.delete(kind: kind, id: id, flavor: flavor, db) != nil else { throw StoreError.notFound(kind, id) }
                    let edges = try await db.raw("SELECT seq FROM entities WHERE kind = 'relationship' AND (source_id = \(bind: id) OR target_id = \(bind: id))").all()
                        .map { try $0.decode(column: "seq", as: Int64.self) }
                    for seq in edges {
                        try await db.raw("DELETE FROM entities WHERE seq = \(bind: seq)").run()
                        if flavor == .sqlite { try await db.raw("DELETE FROM entity_search WHERE rowid = \(bind: seq)").run() }
                    }
                }
            }
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

    /// Deletes one entity row (and its search row) and returns its sequence, or nil if absent.
    static func delete(kind: EntityKind, id: String, flavor: SQLFlavor, _ db: any SQLDatabase) async throws -> Int64? {
        guard let row = try await db.raw("DELETE FROM entities WHERE id = \(bind: id) AND kind = \(bind: kind.rawValue) RETURNING seq").first() else { return nil }
        let seq = try row.decode(column: "seq", as: Int64.self)
        if flavor == .sqlite { try await db.raw("DELETE FROM entity_search WHERE rowid = \(bind: seq)").run() }
        return seq
    }

    /// Inserts an entity row, keeping `sequence` when it replaces an earlier version.
    static func insert(_ e: Entity, flavor: SQLFlavor, _ db: any SQLDatabase, sequence: Int64? = nil) async throws {
        let ix = EntityIndex(e)
        let body = String(decoding: JSONSerializer.serialize(.object(e.body)), as: UTF8.self)
        let doc = SearchText.document(for: e)
        var query: SQLQueryString = "INSERT INTO entities (" + (sequence == nil ? "" : "seq, ")
        query += "id, kind, type, thing_id, category, subcategory, source_type, source_id, target_type, target_id, relationship_type, dup_key, body, created_at, updated_at"
        query += flavor == .postgres ? ", search) VALUES (" : ") VALUES ("
        if let sequence { query += "\(bind: sequence), " }
        query += "\(bind: e.id), \(bind: e.kind.rawValue), \(bind: ix.type), \(bind: ix.thingID), \(bind: ix.category), \(bind: ix.subcategory), "
        query += "\(bind: ix.sourceType), \(bind: ix.sourceID), \(bind: ix.targetType), \(bind: ix.targetID), \(bind: ix.relationshipType), \(bind: ix.duplicateKey), "
        query += flavor == .postgres ? "\(bind: body)::jsonb" : "\(bind: body)"
        query += ", \(bind: e.createdAt.microsecondsSinceEpoch), \(bind: e.updatedAt?.microsecondsSinceEpoch)"
        query += flavor == .postgres ? ", \(bind: FullText.tsvector(doc))::tsvector) RETURNING seq" : ") RETURNING seq"
        guard let row = try await db.raw(query).first() else { throw StoreError.unavailable("insert returned no row") }
        let seq = try row.decode(column: "seq", as: Int64.self)
        if flavor == .sqlite {
            try await db.raw("INSERT INTO entity_search (rowid, doc) VALUES (\(bind: seq), \(bind: doc))").run()
        }
    }
}

/// Builds each backend's full-text syntax from the core's folded tokens.
enum FullText {
    /// FTS5: `"word"*` for words (prefix), `"a b c"` for phrases; all terms must match.
    static func fts5Query(_ terms: [SearchText.Term]) -> String {
        terms.map { term in
            switch term {
            case .word(let w): "\"\(w.replacingOccurrences(of: "\"", with: "\"\""))\"*"
            case .phrase(let p): "\"\(p.joined(separator: " ").replacingOccurrences(of: "\"", with: "\"\""))\""
            }
        }.joined(separator: " ")
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
