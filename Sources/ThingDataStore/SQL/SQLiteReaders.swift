import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization
import VaporCSQLite

/// The hot read paths' SQLite connections (single GETs, lists, search), on SQLite's C API
/// (SQLiteNIO's copy of it) instead of through SQLiteNIO's connection type.
///
/// What that saves, per query: the statement is prepared once per connection and kept
/// (SQLiteNIO prepares every statement anew); the caller's task resumes straight from the
/// reader's thread (SQLiteNIO completes a future on an event loop first, one more thread
/// hand-over each way); and a job may run several statements and pure work between them on
/// the reader's thread in one visit (a search: match, rank, fetch the page of results).
///
/// One connection per thread: a job checks a connection out for its whole run, so a
/// connection is only ever used by one thread at a time, and there is always one free for
/// each running job. Reads go to SQLite's WAL snapshot, beside the writer.
final class SQLiteReaders: Sendable {
    private let threads: NIOThreadPool
    private let idle: Mutex<[SQLiteHandle]>
    private let all: [SQLiteHandle]

    private init(threads: NIOThreadPool, readers: [SQLiteHandle]) {
        self.threads = threads
        self.all = readers
        self.idle = Mutex(readers)
    }

    static func open(path: String, count: Int) throws -> SQLiteReaders {
        var readers: [SQLiteHandle] = []
        do {
            for _ in 0..<max(1, count) { readers.append(try SQLiteHandle(path: path)) }
        } catch {
            for reader in readers { reader.close() }
            throw error
        }
        let threads = NIOThreadPool(numberOfThreads: readers.count)
        threads.start()
        return SQLiteReaders(threads: threads, readers: readers)
    }

    /// Runs `body` on a reader's thread with a connection of its own for the whole call.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            threads.submit { [self] state in
                guard case .active = state else {
                    continuation.resume(throwing: StoreError.unavailable("the store is closed"))
                    return
                }
                guard let reader = idle.withLock({ $0.popLast() }) else {
                    continuation.resume(throwing: StoreError.unavailable("no SQLite reader is free"))
                    return
                }
                let result = Result { try body(reader) }
                idle.withLock { $0.append(reader) }
                continuation.resume(with: result)
            }
        }
    }

    /// Rows of one statement, read on a reader's thread.
    func rows(_ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteReadRow] {
        try await read { try $0.rows(sql, binds) }
    }

    func close() async {
        try? await threads.shutdownGracefully()
        for reader in all { reader.close() }
    }
}

/// One SQLite connection on the C API and the statements it keeps prepared. Not for sharing:
/// `SQLiteReaders` hands a reader to one job at a time, on one thread at a time, and
/// `SQLiteWriter` holds the writer's under a lock, which is what makes the unchecked
/// `Sendable` hold.
final class SQLiteHandle: @unchecked Sendable {
    /// How many distinct statements a reader keeps prepared (the node's hot reads use a
    /// handful of shapes; search adds one per term count and filter combination). The
    /// writer keeps more (`SQLiteWriter.statementCacheSize`): its bulk inserts have one text
    /// per row count.
    static let readerStatementCacheSize = 64
    /// This connection's limit; when it is reached, every statement is finalized.
    private let statementCacheSize: Int
    /// A reader's settings. No mmap: each reader would map the whole file again, and every
    /// mapping counts in the node's resident memory (measured: 398 MB at 100,000 things with
    /// four readers).
    static let readerPragmas = ["PRAGMA query_only=ON", "PRAGMA temp_store=MEMORY"]

    private var handle: OpaquePointer?
    private var statements: [String: Prepared] = [:]
    /// Statements this connection has prepared since it opened (cache misses).
    private(set) var statementsPrepared = 0
    /// This connection's FTS5 tokenizer, for search words (`SQLiteSearchTerms.expand`).
    private(set) var termLearner: SQLiteSearchTerms.Learner?

    private final class Prepared {
        let statement: OpaquePointer
        let columns: SQLiteReadRow.Columns
        init(statement: OpaquePointer, columns: SQLiteReadRow.Columns) {
            self.statement = statement
            self.columns = columns
        }
    }

    /// Opens `path` through `vfs` (SQLite's default if nil) and applies `pragmas` in order;
    /// `purpose` ("reading", "writing") goes into the error if that fails.
    init(path: String, pragmas: [String] = SQLiteHandle.readerPragmas, purpose: String = "reading", statementCacheSize: Int = SQLiteHandle.readerStatementCacheSize, vfs: String? = nil) throws {
        self.statementCacheSize = statementCacheSize
        var db: OpaquePointer?
        let rc = sqlite_nio_sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs)
        guard rc == SQLITE_OK, let db else {
            let message = sqliteMessage(db, rc)
            sqlite_nio_sqlite3_close(db)
            throw StoreError.unavailable("SQLite could not open \(path) for \(purpose): \(message)")
        }
        handle = db
        termLearner = SQLiteSearchTerms.learner(for: db)
        sqlite_nio_sqlite3_busy_timeout(db, 10_000)
        for pragma in pragmas {
            guard sqlite_nio_sqlite3_exec(db, pragma, nil, nil, nil) == SQLITE_OK else {
                let message = String(cString: sqlite_nio_sqlite3_errmsg(db))
                close()
                throw StoreError.unavailable("SQLite refused \(pragma): \(message)")
            }
        }
    }

    /// The WAL's buffer when this connection writes through `SQLiteWALBuffer` (nil before
    /// its WAL is open, or through another VFS).
    var walBuffer: SQLiteWALBuffer.Buffer? {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard let handle, sqlite_nio_sqlite3_file_control(handle, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK, let file else { return nil }
        return SQLiteWALBuffer.buffer(file)
    }

    func close() {
        for prepared in statements.values { sqlite_nio_sqlite3_finalize(prepared.statement) }
        statements = [:]
        if let handle { sqlite_nio_sqlite3_close(handle) }
        handle = nil
        termLearner = nil
    }

    private func error(_ what: String) -> StoreError {
        let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "the connection is closed"
        return StoreError.unavailable("SQLite \(what): \(message)")
    }

    private func prepared(_ sql: String) throws -> Prepared {
        if let cached = statements[sql] { return cached }
        guard let handle else { throw StoreError.unavailable("the SQLite connection is closed") }
        var statement: OpaquePointer?
        guard sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw error("could not prepare a query")
        }
        var names: [String: Int] = [:]
        for i in 0..<Int(sqlite_nio_sqlite3_column_count(statement)) {
            if let name = sqlite_nio_sqlite3_column_name(statement, Int32(i)) { names[String(cString: name), default: i] = i }
        }
        if statements.count >= statementCacheSize {
            for old in statements.values { sqlite_nio_sqlite3_finalize(old.statement) }
            statements = [:]
        }
        let entry = Prepared(statement: statement, columns: SQLiteReadRow.Columns(names, count: Int(sqlite_nio_sqlite3_column_count(statement))))
        statements[sql] = entry
        statementsPrepared += 1
        return entry
    }

    /// Runs `sql` with `binds` (`?1`, `?2`, … or `?` in order) and calls `row` for each result
    /// row; the cursor is valid only during that call.
    func each(_ sql: String, _ binds: [SQLiteData], _ row: (SQLiteCursor) throws -> Void) throws {
        let prepared = try prepared(sql)
        let statement = prepared.statement
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .integer(let v): rc = sqlite_nio_sqlite3_bind_int64(statement, index, Int64(v))
            case .float(let v): rc = sqlite_nio_sqlite3_bind_double(statement, index, v)
            // With its length: a text may hold NUL, where SQLite would stop reading.
            case .text(let v): rc = sqlite_nio_sqlite3_bind_text64(statement, index, v, UInt64(v.utf8.count), SQLiteHandle.transient, UInt8(SQLITE_UTF8))
            case .blob(let v):
                rc = v.withUnsafeReadableBytes { sqlite_nio_sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), SQLiteHandle.transient) }
            case .null: rc = sqlite_nio_sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw error("could not bind parameter \(index)") }
        }
        let cursor = SQLiteCursor(statement: statement, columns: prepared.columns)
        while true {
            switch sqlite_nio_sqlite3_step(statement) {
            case SQLITE_ROW: try row(cursor)
            case SQLITE_DONE: return
            default: throw error("could not run a query")
            }
        }
    }

    /// Every result row of `sql`, copied out.
    func rows(_ sql: String, _ binds: [SQLiteData]) throws -> [SQLiteReadRow] {
        var out: [SQLiteReadRow] = []
        try each(sql, binds) { out.append($0.copy()) }
        return out
    }

    /// SQLite copies a bound value before the bind call returns.
    static let transient = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
}

/// The current row of a running statement: read its columns during the row callback only.
struct SQLiteCursor {
    fileprivate let statement: OpaquePointer
    let columns: SQLiteReadRow.Columns

    func isNull(_ i: Int) -> Bool { sqlite_nio_sqlite3_column_type(statement, Int32(i)) == SQLITE_NULL }
    func integer(_ i: Int) -> Int64 { sqlite_nio_sqlite3_column_int64(statement, Int32(i)) }
    func text(_ i: Int) -> String {
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, Int32(i)))
        guard let bytes = sqlite_nio_sqlite3_column_text(statement, Int32(i)) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
    /// The column's bytes (text or blob), valid during the row callback only.
    func withBytes<T>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let start = sqlite_nio_sqlite3_column_blob(statement, Int32(i))
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, Int32(i)))
        return try body(UnsafeRawBufferPointer(start: start, count: start == nil ? 0 : count))
    }

    func value(_ i: Int) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, Int32(i)) {
        case SQLITE_INTEGER: .integer(Int(integer(i)))
        case SQLITE_FLOAT: .float(sqlite_nio_sqlite3_column_double(statement, Int32(i)))
        case SQLITE_TEXT: .text(text(i))
        case SQLITE_BLOB: .blob(withBytes(i) { ByteBuffer(bytes: $0) })
        default: .null
        }
    }

    func copy() -> SQLiteReadRow {
        SQLiteReadRow(columns: columns, values: (0..<columns.count).map(value))
    }
}

/// A SQLite result row read by column name: SQLiteNIO's, and the C API connections'.
protocol SQLiteNamedColumns {
    func column(_ name: String) -> SQLiteData?
}

extension SQLiteRow: SQLiteNamedColumns {}

/// A result row copied out of SQLite (the fast readers', the writer's), read by column name as
/// SQLiteNIO's rows are.
struct SQLiteReadRow: SQLiteNamedColumns, Sendable {
    /// Column names to positions, shared by every row of a statement.
    final class Columns: Sendable {
        let positions: [String: Int]
        let count: Int
        init(_ positions: [String: Int], count: Int) {
            self.positions = positions
            self.count = count
        }
    }
    let columns: Columns
    let values: [SQLiteData]

    func column(_ name: String) -> SQLiteData? {
        columns.positions[name].map { values[$0] }
    }
}

/// SQLite's message for the last failure on `db`, or the result code when there is no handle
/// (an open that failed before making one).
func sqliteMessage(_ db: OpaquePointer?, _ rc: Int32) -> String {
    db.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(rc)"
}
