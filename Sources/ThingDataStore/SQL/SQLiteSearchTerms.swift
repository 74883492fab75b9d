import SQLiteNIO
import Synchronization
import ThingDataCore
import VaporCSQLite

/// The search index's vocabulary as a table, `search_terms`, so that a search can turn a
/// query word into the index's own terms that begin with it, instead of asking FTS5 for a
/// prefix.
///
/// Why: FTS5 answers a prefix query (`"kettle"*`) by merging the posting lists of every term
/// that begins with it into one list before it returns the first row; that merge was a
/// quarter of a search's CPU over 100,000 things. The same terms asked for by name
/// (`("kettle" OR "kettles")`) are read lazily, newest first, and the search stops after its
/// window. Words under four characters keep the prefix query: FTS5's prefix indexes
/// (`prefix='1 2 3'`) answer those without a merge.
///
/// The table can only ever hold more terms than the index, never fewer, so an expansion never
/// misses a match:
/// - a migration fills it from the index itself (`fts5vocab`, the text column's terms);
/// - triggers on `entities` add the terms of every new or changed `search_doc`, in the same
///   transaction, split by FTS5's own tokenizer (unicode61, configured as the index is);
/// - terms are never removed (a term no document holds any more matches nothing).
///
/// The triggers call `thingdata_new_terms(text)`, which gives (as a JSON array, or NULL) the
/// text's terms this connection does not already know to be in the table. A connection only
/// knows a term once it has read it back from the table at the start of a later transaction,
/// so a term whose insert was rolled back (with its transaction or its statement) is learned
/// again the next time it is written.
///
/// A search reads the terms in the same read transaction as its match (`SQLContentStore.search`).
enum SQLiteSearchTerms {
    static let function = "thingdata_new_terms"
    /// A word with more terms than this keeps FTS5's prefix query.
    static let maxExpansion = 64
    /// Words shorter than this (in characters, as FTS5 counts them) keep the prefix query.
    static let minimumLength = 4
    /// The tokenizer the index was created with (`SQLFlavor`), and its arguments.
    static let tokenizer = "unicode61"
    static let tokenizerArguments = ("remove_diacritics", "2")

    /// Migration 6 (SQLite): the table, filled from the index, and the triggers that keep it.
    static let migration: [String] = [
        "CREATE TABLE search_terms (term TEXT PRIMARY KEY) WITHOUT ROWID",
        "CREATE VIRTUAL TABLE temp.entity_search_vocabulary USING fts5vocab(main, entity_search, col)",
        "INSERT OR IGNORE INTO search_terms(term) SELECT term FROM temp.entity_search_vocabulary WHERE col = 'search_doc'",
        "DROP TABLE temp.entity_search_vocabulary",
        "CREATE TRIGGER entities_terms_ai AFTER INSERT ON entities BEGIN \(learnTerms) END",
        "CREATE TRIGGER entities_terms_au AFTER UPDATE OF search_doc ON entities WHEN new.search_doc IS NOT old.search_doc BEGIN \(learnTerms) END",
    ]

    /// The triggers' statement. Terms already in the table are left out by the query, not by
    /// `OR IGNORE`: inside a trigger, SQLite applies the outer statement's conflict handling
    /// instead, and an upsert's (`ON CONFLICT … DO UPDATE`, an ingest's) fails on a duplicate.
    /// The function never gives a term twice for one text.
    static let learnTerms = """
        INSERT INTO search_terms(term) SELECT value FROM json_each(\(function)(new.search_doc)) \
        WHERE NOT EXISTS (SELECT 1 FROM search_terms WHERE term = value);
        """

    /// What a query word stands for in FTS5's query.
    enum Expansion: Equatable {
        /// FTS5's own prefix query, `"word"*`.
        case prefix
        /// Exactly these index terms (none: the word matches nothing).
        case terms([String])
    }

    /// The terms of the index that begin with `word`, read on `reader` (inside the search's
    /// read transaction), or `.prefix` where the prefix query is as good or the word is not one
    /// index token.
    static func expand(_ word: String, _ reader: SQLiteHandle) throws -> Expansion {
        guard let learner = reader.termLearner else { return .prefix }
        // FTS5 tokenizes the quoted word of a prefix query; the prefix is its one token.
        let tokens = word.utf8CString.withUnsafeBufferPointer {
            learner.tokens($0.baseAddress!, count: Int32($0.count - 1), flags: FTS5_TOKENIZE_QUERY | FTS5_TOKENIZE_PREFIX)
        }
        guard tokens.count == 1, let token = tokens.first, token.unicodeScalars.count >= minimumLength else { return .prefix }
        var terms: [String] = []
        // Text compares as UTF-8 bytes: every term that begins with `token` sorts before this
        // bound (U+10FFFF is a noncharacter, never part of a token).
        try reader.each("SELECT term FROM search_terms WHERE term >= ?1 AND term < ?2 LIMIT \(maxExpansion + 1)", [.text(token), .text(token + "\u{10FFFF}")]) { row in
            terms.append(row.text(0))
        }
        return terms.count > maxExpansion ? .prefix : .terms(terms)
    }

    // MARK: The per-connection function

    /// Adds `thingdata_new_terms` and the commit and rollback hooks it relies on to `db`.
    /// Called for every connection, from `SQLiteSearchStatistics`'s registration.
    static func register(_ db: OpaquePointer?, _ api: UnsafeMutablePointer<fts5_api>) -> Int32 {
        guard let db, let find = api.pointee.xFindTokenizer else { return SQLITE_ERROR }
        var userData: UnsafeMutableRawPointer?
        var tokenizer = fts5_tokenizer()
        guard find(api, Self.tokenizer, &userData, &tokenizer) == SQLITE_OK, let create = tokenizer.xCreate else { return SQLITE_ERROR }
        var instance: OpaquePointer?
        let rc = withTokenizerArguments { arguments, count in create(userData, arguments, count, &instance) }
        guard rc == SQLITE_OK, let instance else { return SQLITE_ERROR }
        let learner = Learner(db: db, tokenizer: tokenizer, instance: instance)
        let context = Unmanaged.passRetained(learner).toOpaque()
        learners.withLock { $0[Int(bitPattern: UnsafeRawPointer(db))] = learner }
        _ = sqlite_nio_sqlite3_commit_hook(db, { context in
            Unmanaged<Learner>.fromOpaque(context!).takeUnretainedValue().transactionEnded()
            return 0
        }, context)
        _ = sqlite_nio_sqlite3_rollback_hook(db, { context in
            Unmanaged<Learner>.fromOpaque(context!).takeUnretainedValue().transactionEnded()
        }, context)
        // SQLite calls the destructor when the connection closes (or if registering fails).
        return sqlite_nio_sqlite3_create_function_v2(db, function, 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, context, newTerms, nil, nil) { context in
            let learner = Unmanaged<Learner>.fromOpaque(context!).takeRetainedValue()
            SQLiteSearchTerms.learners.withLock { $0[Int(bitPattern: UnsafeRawPointer(learner.db))] = nil }
            learner.close()
        }
    }

    /// Each open connection's learner, by its `sqlite3` pointer, so a reader finds its tokenizer.
    private static let learners = Mutex<[Int: Learner]>([:])

    static func learner(for db: OpaquePointer) -> Learner? {
        learners.withLock { $0[Int(bitPattern: UnsafeRawPointer(db))] }
    }

    private static let newTerms: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, count, values in
        guard let context, let values, count == 1, let user = sqlite_nio_sqlite3_user_data(context) else { return }
        let learner = Unmanaged<Learner>.fromOpaque(user).takeUnretainedValue()
        guard let text = sqlite_nio_sqlite3_value_text(values[0]) else {
            sqlite_nio_sqlite3_result_null(context)
            return
        }
        let length = sqlite_nio_sqlite3_value_bytes(values[0])
        let json = text.withMemoryRebound(to: CChar.self, capacity: Int(length)) { learner.unseen($0, count: length) }
        guard let json else {
            sqlite_nio_sqlite3_result_null(context)
            return
        }
        sqlite_nio_sqlite3_result_text64(context, json, UInt64(json.utf8.count), SQLiteHandle.transient, UInt8(SQLITE_UTF8))
    }

    /// One connection's tokenizer and what it knows of `search_terms`. Only SQLite's calls on
    /// that connection (the function, its hooks) and the one job holding the connection use
    /// it, one at a time, which is what makes the unchecked `Sendable` hold.
    final class Learner: @unchecked Sendable {
        let db: OpaquePointer
        private let tokenizer: fts5_tokenizer
        private var instance: OpaquePointer?
        /// Terms read back from the table outside any write of this connection's: committed.
        private var known: Set<String> = []
        /// Terms given out since the last read-back: in ended transactions, then in this one.
        private var unverified: [String] = []
        /// No call yet in the current transaction (set by the commit and rollback hooks).
        private var transactionStarted = true
        /// A bound on `known` (about 50 MB of short terms); past it, it starts again empty.
        static let knownLimit = 1_000_000

        init(db: OpaquePointer, tokenizer: fts5_tokenizer, instance: OpaquePointer) {
            self.db = db
            self.tokenizer = tokenizer
            self.instance = instance
        }

        func close() {
            if let instance { tokenizer.xDelete?(instance) }
            instance = nil
        }

        /// The tokens FTS5 makes of `text`, in order.
        func tokens(_ text: UnsafePointer<CChar>, count: Int32, flags: Int32 = FTS5_TOKENIZE_DOCUMENT) -> [String] {
            guard let instance, let tokenize = tokenizer.xTokenize else { return [] }
            var out: [String] = []
            withUnsafeMutablePointer(to: &out) { sink in
                _ = tokenize(instance, sink, flags, text, count) { sink, _, token, length, _, _ in
                    guard let sink, let token else { return SQLITE_OK }
                    let bytes = UnsafeRawBufferPointer(start: token, count: Int(length))
                    sink.assumingMemoryBound(to: [String].self).pointee.append(String(decoding: bytes, as: UTF8.self))
                    return SQLITE_OK
                }
            }
            return out
        }

        /// The terms of `text` not known to be in the table, as a JSON array, or nil if none.
        func unseen(_ text: UnsafePointer<CChar>, count: Int32) -> String? {
            if transactionStarted {
                // Nothing this transaction wrote to the table yet: what is there is committed.
                transactionStarted = false
                verify()
            }
            var fresh: [String] = []
            var seen: Set<String> = []
            for term in tokens(text, count: count) where !known.contains(term) && seen.insert(term).inserted {
                fresh.append(term)
            }
            guard !fresh.isEmpty else { return nil }
            unverified += fresh
            return "[" + fresh.map(Self.jsonString).joined(separator: ",") + "]"
        }

        /// A commit or rollback: what was given out is read back at the next transaction's start.
        func transactionEnded() {
            transactionStarted = true
        }

        /// Learns which of the terms given out in ended transactions the table holds.
        private func verify() {
            guard !unverified.isEmpty else { return }
            defer { unverified = [] }
            var statement: OpaquePointer?
            guard sqlite_nio_sqlite3_prepare_v2(db, "SELECT 1 FROM search_terms WHERE term = ?1", -1, &statement, nil) == SQLITE_OK, let statement else {
                sqlite_nio_sqlite3_finalize(statement)
                return
            }
            defer { sqlite_nio_sqlite3_finalize(statement) }
            if known.count + unverified.count > Self.knownLimit { known = [] }
            for term in Set(unverified) {
                sqlite_nio_sqlite3_reset(statement)
                guard sqlite_nio_sqlite3_bind_text64(statement, 1, term, UInt64(term.utf8.count), SQLiteHandle.transient, UInt8(SQLITE_UTF8)) == SQLITE_OK else { continue }
                if sqlite_nio_sqlite3_step(statement) == SQLITE_ROW { known.insert(term) }
            }
        }

        static func jsonString(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
    }
}

/// Calls `body` with the tokenizer's arguments as a C array of C strings, valid during the call.
private func withTokenizerArguments<R>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, Int32) -> R) -> R {
    let arguments = SQLiteSearchTerms.tokenizerArguments
    return arguments.0.withCString { first in
        arguments.1.withCString { second in
            var pointers: [UnsafePointer<CChar>?] = [first, second]
            return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!, Int32($0.count)) }
        }
    }
}
