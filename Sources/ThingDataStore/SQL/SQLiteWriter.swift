import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization
import VaporCSQLite

/// SQLite's writer connection on the C API, as a `SQLDatabase` for SQLKit's queries and with
/// `?` binds for the bulk statements (`SQLiteBulk`).
///
/// Every call runs SQLite at once on the calling thread, which for a transaction is the
/// writer's own (`SQLiteSessions.transaction` runs its body there). Through SQLiteNIO each
/// statement went to the connection's thread pool and its answer came back through an event
/// loop: two thread hand-overs a statement, and every statement prepared anew. Here a
/// statement is prepared once and kept (`SQLiteHandle`); a sync's page of 2,000 revisions
/// runs the same few 200-row inserts over and over.
///
/// The lock only keeps two calls from meeting on the connection; transactions are kept apart
/// by the sessions' write lock, as before.
final class SQLiteWriter: SQLDatabase {
    private let handle: Mutex<SQLiteHandle>
    let logger: Logger
    /// Only for SQLKit's future-based entry point; nothing runs on it.
    let eventLoop: any EventLoop
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }
    var version: (any SQLDatabaseReportedVersion)? { nil }

    /// The writer's settings.
    /// - `temp_store=MEMORY`: a multi-row insert's statement journal (the pages it would have
    ///   to undo) stays in memory instead of a temporary file written with pwrite; measured
    ///   +10 % on the initial sync, where it was 6 % of all CPU.
    /// - `cache_size` 16 MB: large transactions (a sync's page of 2,000 revisions) keep their
    ///   dirty pages in memory until COMMIT. Not more: at every COMMIT SQLite scans the whole
    ///   page cache's hash table (`pcache1TruncateUnsafe`: a B-tree balance renumbers pages
    ///   through the lock-byte page, far past the file's end), so the cache's size is a cost
    ///   paid by every small commit. 32 MB made that scan 3 % of all CPU under POST load.
    /// - `wal_autocheckpoint` 80,000 pages (about 320 MB of WAL), only a backstop: the checkpoint
    ///   that lets the WAL start over runs in the upkeep (`SQLiteUpkeep`) at 20,000 pages, with
    ///   its fsyncs outside the writer's lock. SQLite's own runs on this thread inside a commit
    ///   and waits on two fsyncs of everything since the last sync, every write queued meanwhile
    ///   waiting too: at 20,000 pages under POST load, about 60 ms once or twice a second.
    static let pragmas = ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=OFF", "PRAGMA wal_autocheckpoint=\(walAutocheckpoint)", "PRAGMA cache_size=-16384", "PRAGMA temp_store=MEMORY"]
    static let walAutocheckpoint = 4 * SQLiteUpkeep.restartFrames
    /// Statements kept prepared. The bulk inserts have one text per row count, and a group
    /// commit's row count varies from one to a few dozen for each of five statements, so the
    /// readers' 64 made the writer clear its cache and prepare anew every few groups (2.8 % of
    /// all CPU under POST load, 8 % of the writer's thread).
    static let statementCacheSize = 512

    init(path: String, logger: Logger) throws {
        // Its WAL frames go to the file system once a commit (`SQLiteWALBuffer`).
        handle = Mutex(try SQLiteHandle(path: path, pragmas: Self.pragmas, purpose: "writing", statementCacheSize: Self.statementCacheSize, vfs: SQLiteWALBuffer.registered))
        self.logger = logger
        eventLoop = MultiThreadedEventLoopGroup.singleton.any()
    }

    func close() {
        handle.withLock { $0.close() }
    }

    /// Statements the writer has prepared since it opened.
    var statementsPrepared: Int { handle.withLock { $0.statementsPrepared } }
    /// Bytes written to the WAL file so far (through `SQLiteWALBuffer`), for tests.
    var walBytesWritten: Int { handle.withLock { $0.walBuffer?.written ?? 0 } }

    /// Runs `sql` with `binds` and returns its rows, copied out.
    @discardableResult
    func query(_ sql: String, _ binds: [SQLiteData] = []) throws -> [SQLiteReadRow] {
        try handle.withLock { try $0.rows(sql, binds) }
    }

    /// Runs `sql` with `binds`, calling `row` for each result row (valid during the call only).
    func each(_ sql: String, _ binds: [SQLiteData], _ row: (SQLiteCursor) throws -> Void) throws {
        try handle.withLock { try $0.each(sql, binds, row) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try run(query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture { try run(query, onRow) }
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> ()) throws {
        let (sql, binds) = serialize(query)
        let encoder = SQLiteDataEncoder()
        let data = try binds.map { try encoder.encode($0) }
        try each(sql, data) { onRow(SQLiteDecodingRow(row: $0.copy())) }
    }
}

struct MissingColumn: Error {
    let column: String
}

/// A copied-out row as SQLKit reads rows, decoding each column as SQLiteKit does.
struct SQLiteDecodingRow: SQLRow {
    let row: SQLiteReadRow

    var allColumns: [String] {
        row.columns.positions.sorted { $0.value < $1.value }.map(\.key)
    }

    func contains(column: String) -> Bool { row.column(column) != nil }

    func decodeNil(column: String) throws -> Bool { (row.column(column) ?? .null) == .null }

    func decode<D: Decodable>(column: String, as: D.Type) throws -> D {
        guard let data = row.column(column) else { throw MissingColumn(column: column) }
        return try SQLiteDataDecoder().decode(D.self, from: data)
    }
}
