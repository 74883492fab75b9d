import Foundation
import SQLKit
import SQLiteNIO
import Testing
import ThingDataCore
import ThingDataSigning
@testable import ThingDataStore

/// SQLite's `search_terms`: the index's vocabulary, from which a search word becomes the
/// index terms it begins. It must never miss a term the index holds, or a search would miss
/// matches that FTS5's prefix query finds.
@Suite struct SearchTermsTests {
    func withSQLite(_ body: @Sendable (Catalog, SQLiteSessions, String) async throws -> Void) async throws {
        let dir = "/tmp/thingdata-terms-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/t.sqlite"
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            try await body(try await Catalog.open(store: store, key: .generate()), sessions, path)
        }
    }

    /// Terms of the index's text column that `search_terms` lacks (FTS5's own vocabulary,
    /// through `fts5vocab`).
    func missing(_ sessions: SQLiteSessions) async throws -> [String] {
        let (all, missing) = try await sessions.transaction { db in
            try await db.raw("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocabulary_check USING fts5vocab(main, entity_search, col)").run()
            let all = try await db.raw("SELECT count(DISTINCT term) AS n FROM temp.vocabulary_check WHERE col = 'search_doc'").first()?.decode(column: "n", as: Int.self) ?? 0
            let missing = try await db.raw("SELECT DISTINCT term FROM temp.vocabulary_check WHERE col = 'search_doc' AND term NOT IN (SELECT term FROM search_terms)").all().map { try $0.decode(column: "term", as: String.self) }
            return (all, missing)
        }
        #expect(all > 0, "the index has terms to compare")
        return missing
    }

    func count(_ catalog: Catalog, _ query: String) async throws -> JSONValue? {
        let found = try await catalog.search(query, lang: nil, kinds: EntityKind.allCases, type: nil, category: nil, limit: 100, offset: 0)
        return found["count"]
    }

    func expand(_ sessions: SQLiteSessions, _ word: String) async throws -> SQLiteSearchTerms.Expansion {
        try await sessions.fastReaders.read { try SQLiteSearchTerms.expand(word, $0) }
    }

    /// Creates, edits in many languages and scripts, and deletes: the table holds every term the
    /// index holds, and a word expands to exactly the index terms it begins.
    @Test func theTableHoldsEveryIndexTermThroughWritesEditsAndDeletes() async throws {
        try await withSQLite { catalog, sessions, _ in
            let kettle = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle KETTLES descaler", translations: ["ja": "電気ケトル", "el": "Βραστήρας νερού", "de": "Wasserkocher Kessel"])))!
            let lamp = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Lamp")))!
            _ = try await catalog.apply((0..<50).map { Operation(.create, .thing, body: Sample.thing("Toaster model Tx\($0)")) }, path: { [.index($0)] })
            _ = try await catalog.apply(Operation(.update, .thing, id: lamp.id, body: Sample.thing("Lampenschirm Überzug", manufacturer: "Leuchtwerk")))
            _ = try await catalog.apply(Operation(.delete, .thing, id: kettle.id))
            #expect(try await missing(sessions) == [])
            #expect(try await expand(sessions, "lampe") == .terms(["lampenschirm"]))
            #expect(try await expand(sessions, "uberz") == .terms(["uberzug"]), "folded as the index folds")
            #expect(try await expand(sessions, "kettl") == .terms(["kettle", "kettles"]), "a deleted document's terms stay, matching nothing")
            #expect(try await expand(sessions, "qwertyuiop") == .terms([]))
            #expect(try await expand(sessions, "toa") == .prefix, "three characters: FTS5's prefix index answers")
            #expect(try await expand(sessions, "tx1") == .prefix)
            #expect(try await count(catalog, "lampensch") == 1)
            #expect(try await count(catalog, "kettle") == 0)
            #expect(try await count(catalog, "qwertyuiop") == 0)
            #expect(try await count(catalog, "toaster tx1") == 11, "tx1 and tx10 to tx19")
        }
    }

    /// More index terms than an expansion takes: the word keeps FTS5's prefix query and still
    /// finds every match.
    @Test func aWordWithManyTermsKeepsThePrefixQuery() async throws {
        try await withSQLite { catalog, sessions, _ in
            let n = SQLiteSearchTerms.maxExpansion + 6
            _ = try await catalog.apply((0..<n).map { Operation(.create, .thing, body: Sample.thing("Zetaphone\($0) radio")) }, path: { [.index($0)] })
            #expect(try await expand(sessions, "zetaphone") == .prefix)
            if case .terms(let terms) = try await expand(sessions, "zetaphone1") { #expect(terms.count == 11) } else { Issue.record("zetaphone1 should expand") }
            #expect(try await count(catalog, "zetaphone") == .int(Int64(n)))
            #expect(try await count(catalog, "zetaphone1 radio") == 11)
        }
    }

    /// A term whose insert was undone (its transaction rolled back, or only its statement
    /// inside a transaction that then committed) is not taken as known: the next document
    /// that holds it adds it again, and search finds that document.
    @Test func aTermUndoneWithItsTransactionOrStatementIsLearnedAgain() async throws {
        try await withSQLite { catalog, sessions, _ in
            @Sendable func insert(_ db: any SQLDatabase, id: String, words: String) async throws {
                try await db.raw("INSERT INTO entities (id, kind, body, created_at, search_doc) VALUES (\(bind: id), 'thing', '{}', 0, \(bind: words))").run()
            }
            let existing = UUID().uuidString.lowercased()
            try await sessions.transaction { db in try await insert(db, id: existing, words: "plain") }
            // The whole transaction rolls back.
            await #expect(throws: (any Error).self) {
                try await sessions.transaction { db in
                    try await insert(db, id: UUID().uuidString.lowercased(), words: "vortexhammer")
                    throw StoreError.unavailable("rolled back on purpose")
                }
            }
            // One statement fails (a repeated id) after its first row went in; the transaction goes on and commits.
            try await sessions.transaction { db in
                do {
                    try await db.raw("INSERT INTO entities (id, kind, body, created_at, search_doc) VALUES (\(bind: UUID().uuidString.lowercased()), 'thing', '{}', 0, 'quasarwidget'), (\(bind: existing), 'thing', '{}', 0, 'x')").run()
                    Issue.record("the repeated id should fail")
                } catch {}
                try await insert(db, id: UUID().uuidString.lowercased(), words: "plain again")
            }
            #expect(try await missing(sessions) == [])
            #expect(try await expand(sessions, "vortex") == .terms([]))
            #expect(try await expand(sessions, "quasar") == .terms([]))
            // Now for real, in later transactions.
            _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Vortexhammer drill")))
            _ = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Quasarwidget lamp")))
            #expect(try await missing(sessions) == [])
            #expect(try await count(catalog, "vortex") == 1)
            #expect(try await count(catalog, "quasarw") == 1)
        }
    }

    /// A database from before the table (migration 5): the migration fills the table from the
    /// index, so searches find what was there.
    @Test func theMigrationFillsTheTableFromTheIndex() async throws {
        let dir = "/tmp/thingdata-terms-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/t.sqlite"
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            _ = try await catalog.apply((0..<20).map { Operation(.create, .thing, body: Sample.thing("Gramophone \($0)", translations: ["ja": "蓄音機"])) }, path: { [.index($0)] })
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            try await sessions.transaction { db in
                for statement in ["DROP TRIGGER entities_terms_ai", "DROP TRIGGER entities_terms_au", "DROP TABLE search_terms", "DELETE FROM schema_migrations WHERE version = 6"] {
                    try await db.raw(SQLQueryString(statement)).run()
                }
            }
        }
        try await withContentStore(.sqlite(path: path), logger: Backend.logger) { store in
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            #expect(try await missing(sessions) == [])
            #expect(try await expand(sessions, "gramo") == .terms(["gramophone"]))
            let catalog = try await Catalog.open(store: store, key: .generate())
            #expect(try await count(catalog, "gramoph") == 20)
        }
    }
}
