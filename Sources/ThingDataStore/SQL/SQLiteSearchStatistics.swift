import SQLiteNIO
import ThingDataCore
import VaporCSQLite

/// `thingdata_stats(entity_search, terms, column[, phrases])`: an FTS5 auxiliary function that
/// gives, for the current match, what `SearchRanking` needs without reading the document's
/// text: the column's token count, then for each of the query's `terms` its number of
/// occurrences in that column and the token position of the first one. A term is the query's
/// phrase of the same number, or, with `phrases` (a blob, one byte per phrase), every phrase
/// whose byte is its number.
///
/// FTS5 already holds both: the positions of every phrase in the row being matched, and each
/// row's token counts (its `docsize` table). Reading them there, instead of each candidate's
/// search text from the `entities` table, is what a search spent most of its SQLite time on.
/// The value is a blob of host-order `Int32`s: length, then count and first for each term.
///
/// SQLite registers FTS5 auxiliary functions per connection; `sqlite3_auto_extension` makes
/// it do so for every connection this process opens after `install()`.
enum SQLiteSearchStatistics {
    static let name = "thingdata_stats"

    /// Installs the function for every later connection; true when SQLite accepted it.
    static func install() -> Bool { installed }

    private static let installed: Bool = {
        sqlite_nio_sqlite3_auto_extension(unsafeBitCast(register, to: (@convention(c) () -> Void).self)) == SQLITE_OK
    }()

    /// The entry point SQLite calls for each new connection: finds the connection's FTS5 API
    /// (`SELECT fts5(?1)` with a bound pointer, as the FTS5 documentation says) and adds the function.
    private static let register: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, OpaquePointer?) -> Int32 = { db, _, _ in
        var statement: OpaquePointer?
        guard sqlite_nio_sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &statement, nil) == SQLITE_OK else { return SQLITE_ERROR }
        defer { sqlite_nio_sqlite3_finalize(statement) }
        var api: UnsafeMutablePointer<fts5_api>?
        // SQLite keeps the type string's address until the statement has run: a static string.
        let pointerType: StaticString = "fts5_api_ptr"
        withUnsafeMutablePointer(to: &api) { slot in
            _ = pointerType.utf8Start.withMemoryRebound(to: CChar.self, capacity: pointerType.utf8CodeUnitCount + 1) { type in
                sqlite_nio_sqlite3_bind_pointer(statement, 1, slot, type, nil)
            }
            _ = sqlite_nio_sqlite3_step(statement)
        }
        guard let api, let create = api.pointee.xCreateFunction else { return SQLITE_ERROR }
        // Each connection's length cache rides along as the function's user data; SQLite
        // releases it when the connection closes.
        let lengths = Unmanaged.passRetained(LengthCache(db: db)).toOpaque()
        let rc = create(api, SQLiteSearchStatistics.name, lengths, statistics, { Unmanaged<LengthCache>.fromOpaque($0!).release() })
        return rc == SQLITE_OK ? SQLiteSearchTerms.register(db, api) : rc
    }

    /// Documents' token counts, remembered per connection so a search that meets the same
    /// documents again skips FTS5's `docsize` lookup (one B-tree seek each, 9 % of a search's
    /// CPU over 100,000 things). An entry holds only for the database's data version it was
    /// read at: SQLite changes that version with every change to the file, by any connection,
    /// and a read sees the version of its own snapshot, so an entry is never used with a
    /// newer or older snapshot than the one it came from. Inside a write transaction, whose own
    /// uncommitted writes do not change the version, it is not used. Direct-mapped by row
    /// id, for the document column only, fixed size (1 MiB), allocated on a connection's first
    /// search, never cleared.
    final class LengthCache {
        private struct Entry {
            var row: Int64 = -1
            var version: UInt32 = 0
            var length: Int32 = 0
        }
        static let slots = 1 << 16
        private let db: OpaquePointer?
        /// Allocated on first use; only SQLite's calls on this connection touch it, one at a time.
        private var entries: UnsafeMutablePointer<Entry>?
        init(db: OpaquePointer?) { self.db = db }
        deinit { entries?.deallocate() }

        /// The current row's token count in `column`, as `xColumnSize` gives it.
        func length(_ api: UnsafePointer<Fts5ExtensionApi>, _ fts: OpaquePointer?, column: Int32) -> (rc: Int32, length: Int32) {
            var version: UInt32 = 0
            guard column == FullText.documentColumn, sqlite_nio_sqlite3_txn_state(db, "main") != SQLITE_TXN_WRITE,
                  sqlite_nio_sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &version) == SQLITE_OK else {
                var length: Int32 = 0
                return (api.pointee.xColumnSize(fts, column, &length), length)
            }
            let table: UnsafeMutablePointer<Entry>
            if let entries { table = entries } else {
                table = .allocate(capacity: Self.slots)
                table.initialize(repeating: Entry(), count: Self.slots)
                entries = table
            }
            let row = api.pointee.xRowid(fts)
            let entry = table + (Int(truncatingIfNeeded: row) & (Self.slots - 1))
            if entry.pointee.row == row && entry.pointee.version == version { return (SQLITE_OK, entry.pointee.length) }
            var length: Int32 = 0
            let rc = api.pointee.xColumnSize(fts, column, &length)
            if rc == SQLITE_OK { entry.pointee = Entry(row: row, version: version, length: length) }
            return (rc, length)
        }
    }

    private static let statistics: fts5_extension_function = { api, fts, context, count, values in
        guard let api, let values, count >= 2 else {
            sqlite_nio_sqlite3_result_error(context, "thingdata_stats(table, terms, column)", -1)
            return
        }
        // FTS5 passes the arguments after the table's.
        let terms = Int(max(0, min(64, sqlite_nio_sqlite3_value_int(values[0]))))
        let column = sqlite_nio_sqlite3_value_int(values[1])
        // Which term each phrase of the query stands for (byte i: phrase i's term), when a
        // word became several phrases (`SQLiteSearchTerms`); without it, phrase i is term i.
        let phrases: UnsafeRawBufferPointer? = count >= 3 ? sqlite_nio_sqlite3_value_blob(values[2]).map {
            UnsafeRawBufferPointer(start: $0, count: Int(sqlite_nio_sqlite3_value_bytes(values[2])))
        } : nil
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 1 + 2 * terms) { out in
            out.initialize(repeating: 0)
            var instances: Int32 = 0
            guard let lengths = api.pointee.xUserData(fts) else {
                sqlite_nio_sqlite3_result_error(context, "thingdata_stats has no length cache", -1)
                return
            }
            var (rc, length) = Unmanaged<LengthCache>.fromOpaque(lengths).takeUnretainedValue().length(api, fts, column: column)
            if rc == SQLITE_OK { rc = api.pointee.xInstCount(fts, &instances) }
            out[0] = length
            var i: Int32 = 0
            while rc == SQLITE_OK && i < instances {
                var phrase: Int32 = 0
                var instanceColumn: Int32 = 0
                var offset: Int32 = 0
                rc = api.pointee.xInst(fts, i, &phrase, &instanceColumn, &offset)
                i += 1
                guard rc == SQLITE_OK, instanceColumn == column, phrase >= 0 else { continue }
                let term: Int
                if let phrases {
                    guard Int(phrase) < phrases.count else { continue }
                    term = Int(phrases[Int(phrase)])
                } else {
                    term = Int(phrase)
                }
                guard term < terms else { continue }
                let slot = 1 + 2 * term
                out[slot + 1] = out[slot] == 0 ? offset : min(out[slot + 1], offset)
                out[slot] += 1
            }
            guard rc == SQLITE_OK else {
                sqlite_nio_sqlite3_result_error_code(context, rc)
                return
            }
            // SQLITE_TRANSIENT: SQLite copies the bytes before this returns.
            sqlite_nio_sqlite3_result_blob(context, out.baseAddress, Int32(out.count * 4), unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self))
        }
    }

    /// The statistics a row's blob holds, or nil if it is not one for `terms` terms.
    static func decode(_ raw: UnsafeRawBufferPointer, terms: Int) -> SearchRanking.Statistics? {
        guard raw.count == (1 + 2 * terms) * 4 else { return nil }
        func value(_ i: Int) -> Int { Int(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
        return SearchRanking.Statistics(length: value(0), terms: (0..<terms).map { SearchRanking.Occurrences(count: value(1 + 2 * $0), first: value(2 + 2 * $0)) })
    }
}
