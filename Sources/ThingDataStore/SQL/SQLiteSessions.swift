import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization
import VaporCSQLite

/// SQLite in WAL mode: one writer connection whose transactions run one at a time, and a few
/// reader connections that run beside it.
final class SQLiteSessions: SQLSessions {
    let flavor = SQLFlavor.sqlite
    let path: String
    let writer: SQLiteWriter
    /// The writer's own thread: its statements never queue behind readers' queries.
    let writerThread: NIOThreadPool
    /// Transactions run on that same thread: between one statement and the next, the
    /// transaction's code and SQLite take turns on one thread that never sleeps, instead of
    /// two threads waking each other for every statement.
    let writerExecutor: ThreadPoolExecutor
    let readers: [SQLiteConnection]
    /// The hot reads' connections (single GETs, lists, search), on SQLite's C API.
    let fastReaders: SQLiteReaders
    let next = Atomic<Int>(0)
    /// Write transactions take it: the writer's, and the upkeep's index merges.
    let writeLock: AsyncLock
    let groupCommit: GroupCommit<PendingCommit>?
    let upkeep: SQLiteUpkeep
    let logger: Logger

    private init(path: String, writer: SQLiteWriter, writerThread: NIOThreadPool, readers: [SQLiteConnection], fastReaders: SQLiteReaders, upkeep: SQLiteUpkeep, writeLock: AsyncLock, logger: Logger) {
        self.path = path
        self.writer = writer
        self.writerThread = writerThread
        self.writerExecutor = ThreadPoolExecutor(writerThread)
        self.groupCommit = GroupCommit(executor: writerExecutor)
        self.readers = readers
        self.fastReaders = fastReaders
        self.upkeep = upkeep
        self.writeLock = writeLock
        self.logger = logger
    }

    static func open(path: String, readers: Int = 4, logger: Logger) async throws -> SQLiteSessions {
        // Search ranking reads term statistics through this FTS5 function (every connection).
        guard SQLiteSearchStatistics.install() else { throw StoreError.unavailable("SQLite refused the search statistics function") }
        try refuseIfNotADatabase(path)
        let writer = try SQLiteWriter(path: path, logger: logger)
        let writerThread = NIOThreadPool(numberOfThreads: 1)
        writerThread.start()
        // Whatever opens below is closed again if a later step fails (a pragma SQLite refuses,
        // or the upkeep's connection, say), so a failed open leaves nothing behind.
        var readerConnections: [SQLiteConnection] = []
        var fastReaders: SQLiteReaders?
        do {
            for _ in 0..<max(1, readers) {
                let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
                // No mmap: each reader would map the whole file again, and every mapping counts
                // in the node's resident memory (measured: 398 MB at 100,000 things with four
                // readers).
                for pragma in ["PRAGMA busy_timeout=10000", "PRAGMA query_only=ON", "PRAGMA temp_store=MEMORY"] {
                    _ = try await reader.sql().raw(SQLQueryString(pragma)).all()
                }
                readerConnections.append(reader)
            }
            // One per core, and at least two, so a long read (a page of the changes feed) never
            // holds up every single GET on a one-core box: a job holds its connection and thread
            // from start to end.
            let opened = try SQLiteReaders.open(path: path, count: max(2, System.coreCount))
            fastReaders = opened
            let writeLock = AsyncLock()
            let upkeep = try await SQLiteUpkeep.start(path: path, writeLock: writeLock, logger: logger)
            return SQLiteSessions(path: path, writer: writer, writerThread: writerThread, readers: readerConnections, fastReaders: opened, upkeep: upkeep, writeLock: writeLock, logger: logger)
        } catch {
            await fastReaders?.close()
            for reader in readerConnections { try? await reader.close() }
            writer.close()
            try? await writerThread.shutdownGracefully()
            throw error
        }
    }

    /// Opens the file once on SQLite's C API and reads its schema, closing the handle
    /// whatever happens, and refuses the file with SQLite's own message if that fails (a file
    /// that is not a database, or a damaged one). SQLiteNIO's open does not close the handle
    /// SQLite returns with an error, so without this each failed try would leave a file
    /// descriptor open.
    static func refuseIfNotADatabase(_ path: String) throws {
        var db: OpaquePointer?
        defer { sqlite_nio_sqlite3_close(db) }
        var rc = sqlite_nio_sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        if rc == SQLITE_OK { rc = sqlite_nio_sqlite3_exec(db, "PRAGMA schema_version", nil, nil, nil) }
        guard rc == SQLITE_OK else {
            let message = sqliteMessage(db, rc)
            // The message is often the search function's installer failing to read the schema
            // ("automatic extension loading failed"), so say what it means.
            throw StoreError.unavailable("SQLite cannot open \(path) as a database (\(message)): it is not one, or it is damaged; move it away or choose another data directory")
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let i = next.add(1, ordering: .relaxed).oldValue
        return try await body(readers[abs(i % readers.count)].sql())
    }

    /// Runs a query on one of the fast readers (a statement prepared once per connection),
    /// skipping SQLKit's query building and bind encoding: the path of single-entity reads.
    func readRows(_ sql: String, _ binds: [String]) async throws -> [SQLiteReadRow] {
        try await fastReaders.rows(sql, binds.map { SQLiteData.text($0) })
    }

    /// A SQLKit query's text and binds for the fast readers; nil when a bind is of a type
    /// they do not map.
    func direct(_ query: SQLQueryString) -> (sql: String, binds: [SQLiteData])? {
        let (sql, binds) = writer.serialize(query)
        var data: [SQLiteData] = []
        data.reserveCapacity(binds.count)
        for bind in binds {
            switch bind {
            case let v as String: data.append(.text(v))
            case let v as Int: data.append(.integer(v))
            case let v as Int64: data.append(.integer(Int(v)))
            case let v as Double: data.append(.float(v))
            case let v as [UInt8]: data.append(.blob(ByteBuffer(bytes: v)))
            default: return nil
            }
        }
        return (sql, data)
    }

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let result = try await Self.shielded(on: writerExecutor) { [writeLock, writer] in
            try await writeLock.withLock {
                try await Self.inTransaction(begin: "BEGIN IMMEDIATE", run: { try writer.query($0) }) { try await body(writer) }
            }
        }
        upkeep.committed()
        return result
    }

    func close() async throws {
        await upkeep.stop()
        await fastReaders.close()
        for reader in readers { try await reader.close() }
        writer.close()
        try await writerThread.shutdownGracefully()
    }
}

/// Background upkeep of the database file, on its own connection and thread beside the
/// writer: WAL checkpoints a short while after writes, and merges of the full-text index's
/// segments and a truncated WAL once writes pause.
///
/// **Checkpoints.** SQLite's own automatic checkpoint runs inside the COMMIT that crosses
/// `wal_autocheckpoint` pages: that commit, and every write queued behind it, waits while
/// thousands of pages are copied and the file is synced (measured under POST load: 4 % of all
/// CPU on the writer's thread and the p99 of POST; a larger threshold raised POST throughput
/// 10 to 15 % but doubled its p99). This runs a PASSIVE checkpoint, which never blocks the
/// writer or readers, a short while after writes.
///
/// **Starting the WAL over.** Only a checkpoint that copied everything lets the next write
/// start the WAL from its beginning, and a PASSIVE one never catches up with a writer that
/// keeps appending. When the WAL has reached `restartFrames`, this first catches up outside
/// the writer's lock (fsyncs of the database file around a PASSIVE checkpoint, which syncs
/// the WAL), then takes the lock for a RESTART checkpoint that copies and syncs only what
/// came in the last few milliseconds. The writer's own automatic checkpoint did all of it
/// inside a commit: two fsyncs of everything since the last sync (about 30 ms each,
/// measured), with every write waiting. It stays, four times further out, only in case this
/// falls behind.
///
/// **The WAL's size.** The WAL file keeps the size it once reached (SQLite overwrites it
/// rather than appending again): under sustained writes, `restartFrames` pages (about 80 MB)
/// and what comes in while this catches up (138 MB at most in 30 s of POST load). Once writes
/// pause, this truncates it to nothing, under the writer's lock, without waiting for readers
/// (a reader still in the WAL makes it try again at the next pause). SQLite's own `journal_size_limit` truncates at every restart
/// instead, and the file then grows by appending again: 10 % fewer creates a second.
///
/// **Index merges.** FTS5 writes a new segment with every transaction and merges them only in
/// batches of four per level, so an index that took writes holds several segments (seven after
/// seeding 100,000 things), and every search reads each of them. Once writes have paused for
/// `quietBeforeMerging`, this runs FTS5's incremental `merge` in short steps, each one write
/// transaction under the writer's lock (so the two never meet as SQLite writers), until a step
/// finds nothing to do; a write stops it until the next pause. On that 100,000-thing index it
/// took 38 steps to reach one segment, and 6 to 29 % more searches per second were answered.
/// On this connection the merge's reads fill SQLite's default 2 MB cache, not the writer's 16 MB.
final class SQLiteUpkeep: Sendable {
    /// How long after a commit the next checkpoint may start (writes in between share it).
    static let interval: Duration = .milliseconds(100)
    /// How long writes must pause before the search index is merged.
    static let quietBeforeMerging: Duration = .seconds(1)
    /// Leaf pages one merge step writes: one short write transaction.
    static let pagesPerMergeStep = 200
    /// WAL frames (pages) at which the WAL is started over under sustained writes: about
    /// 80 MB. Under POST load a create writes about 8 pages (a commit of six, about 45), some
    /// 35,000 a second, so this comes about twice a second there.
    static let restartFrames = 20_000
    /// How long the RESTART checkpoint waits for readers still in the WAL (milliseconds), with
    /// writes waiting. Searches beside POST load held it in about half the attempts without
    /// any wait, and each failed attempt is tried again, whole, at the next tick.
    static let restartWait = 10

    private let connection: SQLiteConnection
    private let thread: NIOThreadPool
    private let writeLock: AsyncLock
    private let path: String
    private let commits = Atomic<Int>(0)
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let logger: Logger
    /// `restartFrames`, lowered by tests.
    let restartAt = Atomic<Int>(SQLiteUpkeep.restartFrames)
    /// RESTART checkpoints that completed: each lets the next write start the WAL over.
    let restarts = Atomic<Int>(0)

    private init(connection: SQLiteConnection, thread: NIOThreadPool, writeLock: AsyncLock, path: String, logger: Logger) {
        self.connection = connection
        self.thread = thread
        self.writeLock = writeLock
        self.path = path
        self.logger = logger
    }

    static func start(path: String, writeLock: AsyncLock, logger: Logger) async throws -> SQLiteUpkeep {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: thread, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any())
            _ = try await connection.query("PRAGMA busy_timeout=10000", [])
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
        let upkeep = SQLiteUpkeep(connection: connection, thread: thread, writeLock: writeLock, path: path, logger: logger)
        upkeep.task.withLock { $0 = Task { await upkeep.run() } }
        return upkeep
    }

    /// A write transaction committed.
    func committed() {
        commits.add(1, ordering: .relaxed)
    }

    private func run() async {
        var checkpointed = 0
        var lastCommit = ContinuousClock.now
        var seen = 0
        // A store opens with its index as it was left: merge once the first pause comes.
        var unmerged = true
        while !Task.isCancelled {
            do { try await Task.sleep(for: Self.interval) } catch { return }
            let now = commits.load(ordering: .relaxed)
            if now != seen {
                (seen, lastCommit, unmerged) = (now, .now, true)
            }
            if unmerged, ContinuousClock.now - lastCommit >= Self.quietBeforeMerging {
                unmerged = await mergeSearchIndex()
                // Interrupted by writes, or failed (another process writing, say): wait for
                // the next full pause rather than trying again at the next tick.
                if unmerged { lastCommit = .now } else { await truncateLog() }
                checkpointed = -1
            }
            guard seen != checkpointed else { continue }
            checkpointed = seen
            do {
                if try await checkpoint() >= restartAt.load(ordering: .relaxed) { await restartLog() }
            } catch {
                logger.debug("background checkpoint: \(error)")
            }
        }
    }

    /// A PASSIVE checkpoint; the frames in the WAL, as SQLite answers.
    @discardableResult
    private func checkpoint() async throws -> Int {
        try await connection.query("PRAGMA wal_checkpoint(PASSIVE)", []).first?.column("log")?.integer ?? 0
    }

    /// Lets the WAL start over under sustained writes (see the type's notes). Outside the
    /// writer's lock: an fsync of the database file (what the last checkpoint copied), a
    /// PASSIVE checkpoint (which syncs the WAL, then copies what came since), and another fsync.
    /// Each step has less to sync than the one before, so the RESTART checkpoint under the
    /// lock syncs and copies only the last few milliseconds' writes.
    private func restartLog() async {
        do {
            await syncDatabaseFile()
            try await checkpoint()
            await syncDatabaseFile()
            if try await checkpointUnderLock("RESTART", waitingForReaders: Self.restartWait) { restarts.add(1, ordering: .relaxed) }
        } catch {
            logger.debug("WAL restart: \(error)")
        }
    }

    /// fsync of the database file, on this upkeep's thread: the pages PASSIVE checkpoints
    /// copied, which SQLite syncs only when a checkpoint reaches the WAL's end. If it fails,
    /// the RESTART checkpoint still syncs them, only under the lock.
    private func syncDatabaseFile() async {
        let path = self.path
        do {
            try await thread.runIfActive {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw StoreError.unavailable("cannot open \(path) to sync it: errno \(errno)") }
                defer { close(fd) }
                guard fsync(fd) == 0 else { throw StoreError.unavailable("fsync of \(path) failed: errno \(errno)") }
            }
        } catch {
            logger.debug("WAL restart: \(error)")
        }
    }

    /// A TRUNCATE checkpoint: copies what is left and empties the WAL file, under the writer's
    /// lock so no write comes between.
    private func truncateLog() async {
        do {
            _ = try await checkpointUnderLock("TRUNCATE")
        } catch {
            logger.debug("WAL truncation: \(error)")
        }
    }

    /// A checkpoint in `mode` (RESTART or TRUNCATE) under the writer's lock; true when it
    /// copied everything and no reader was still in the WAL. It would wait for such readers for
    /// the connection's busy timeout, with every write waiting on the lock, so it waits
    /// `waitingForReaders` milliseconds at most (none by default): SQLite then answers busy and
    /// a later tick tries again.
    private func checkpointUnderLock(_ mode: String, waitingForReaders milliseconds: Int = 0) async throws -> Bool {
        try await writeLock.withLock {
            _ = try await connection.query("PRAGMA busy_timeout=\(milliseconds)", [])
            // The connection's busy timeout comes back whatever the checkpoint does.
            var failure: (any Error)?
            var busy: Int?
            do { busy = try await connection.query("PRAGMA wal_checkpoint(\(mode))", []).first?.column("busy")?.integer } catch { failure = error }
            _ = try await connection.query("PRAGMA busy_timeout=10000", [])
            if let failure { throw failure }
            if busy != 0 { logger.debug("WAL \(mode) checkpoint: a reader is still in the WAL") }
            return busy == 0
        }
    }

    /// Merge steps until one finds nothing left to merge (false: done) or a write comes
    /// between two steps or a step fails (true: still to do).
    private func mergeSearchIndex() async -> Bool {
        var steps = 0
        do {
            while !Task.isCancelled {
                let before = commits.load(ordering: .relaxed)
                guard try await mergeStep() else {
                    logger.debug("search index merged", metadata: ["steps": "\(steps)"])
                    return false
                }
                steps += 1
                if commits.load(ordering: .relaxed) != before { return true }
            }
        } catch {
            logger.debug("search index merge: \(error)")
        }
        return true
    }

    /// One merge step; false when it found nothing to merge. FTS5 documents the test: fewer
    /// than two rows changed means no work was done. `usermerge` 2 (set by a migration) lets a
    /// step merge any two segments of one level (FTS5 sorts segments into levels by size), so a small new segment
    /// waits for another of its size instead of the whole index being rewritten for it: each
    /// document is merged again about log2(segments) times, as in a binary counter.
    private func mergeStep() async throws -> Bool {
        // Shielded like the writer's transactions: stopping the upkeep must not cut a step
        // between BEGIN and COMMIT, which would leave this connection holding SQLite's write
        // lock after releasing the writer's.
        try await SQLiteSessions.shielded { [writeLock, connection] in
            try await writeLock.withLock {
                try await SQLiteSessions.inTransaction(begin: "BEGIN IMMEDIATE", run: { _ = try await connection.query($0, []) }) {
                    func changes() async throws -> Int {
                        try await connection.query("SELECT total_changes() AS n", []).first?.column("n")?.integer ?? 0
                    }
                    let before = try await changes()
                    _ = try await connection.query("INSERT INTO entity_search(entity_search, rank) VALUES ('merge', \(Self.pagesPerMergeStep))", [])
                    return try await changes() - before >= 2
                }
            }
        }
    }

    func stop() async {
        let running = task.withLock { t -> Task<Void, Never>? in
            defer { t = nil }
            return t
        }
        guard let running else { return }
        running.cancel()
        await running.value
        try? await connection.close()
        try? await thread.shutdownGracefully()
    }
}

/// A first-in, first-out lock for async code: one holder at a time, waiters resumed in order.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func lock() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s -> Bool in
                if s.locked {
                    s.waiters.append(c)
                    return false
                }
                s.locked = true
                return true
            }
            if acquired { c.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }
}

/// A task executor that runs jobs on an `NIOThreadPool` (here: a pool of one thread, the SQLite
/// writer's). A task preferring it and the SQLite statements it awaits share that thread.
final class ThreadPoolExecutor: TaskExecutor {
    let pool: NIOThreadPool
    init(_ pool: NIOThreadPool) { self.pool = pool }

    /// A job submitted after the pool stopped still runs (NIO then calls the work item at once,
    /// on the submitting thread): a job never run would leave its task suspended for good.
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pool.submit { [self] _ in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
