import Foundation
import VaporCSQLite

/// A VFS for the SQLite writer that gathers a transaction's WAL frames in memory and hands
/// them to the file system in one `pwrite` when the commit frame is complete.
///
/// Why: SQLite writes each WAL frame as two `pwrite` calls, its 24-byte header and then its
/// page, so a frame straddles two pages of the OS's page cache and every call goes through the
/// file system's whole write path (`generic_perform_write`, the inode lock, delayed
/// allocation) for both. A group commit under POST load writes about 43 frames: 86 calls,
/// 7.6 % of the node's CPU in `pwrite64` and most of the writer's time in `walWriteOneFrame`.
///
/// What stays as it was (the WAL's file format, SQLite's recovery, durability):
/// - Only the writer's connection opens files through this VFS, and only its WAL file is
///   buffered; every other file and every other connection goes straight to SQLite's default
///   VFS (`unix`), which this wraps.
/// - The buffer always holds one contiguous range, the newest bytes for it. A write anywhere
///   but at its end, and a read, size, sync, truncate, file control or close of the WAL,
///   first writes the buffer out. So SQLite reads what it wrote, and a checkpoint syncs what
///   it copies.
/// - A frame header whose commit field is set (the WAL format's bytes 4 to 7: the database
///   size after the commit, zero for other frames) marks the commit frame; once its page is
///   buffered, everything goes out before the write returns to SQLite. SQLite makes a commit
///   visible to readers (the wal-index header) only after that, so readers on other
///   connections never look for frames that are not in the file yet. A failed write fails
///   the commit, as before. A commit frame's header written on its own (SQLite rewriting
///   checksums after the commit frame, when a transaction overwrote frames it had spilled)
///   goes out at once: a copy of the files taken when the commit returns recovers it.
/// - A process that dies with frames still in the buffer loses only frames of a transaction
///   that never committed, which recovery ignores anyway.
enum SQLiteWALBuffer {
    static let name = "thingdata-wal-buffer"
    /// The most bytes held before they are written out (a large transaction's frames go out
    /// in runs of this size).
    static let capacity = 1 << 20
    /// Where the wrapped VFS's own file object starts inside ours, after our method table
    /// pointer and the buffer's pointer.
    static let innerOffset = 2 * MemoryLayout<UnsafeRawPointer>.stride
    static let frameHeaderSize = 24
    /// The most bytes one write hands to the wrapped VFS: `unix` keeps only the low 17 bits of
    /// a write's length (`seekAndWriteFd`), since SQLite itself never writes more than a page.
    static let largestWrite = 0x1F000

    /// The VFS's name once registered (on the first use), or nil if SQLite had no default
    /// VFS to wrap, in which case the writer opens its files as before.
    static let registered: String? = register()

    private nonisolated(unsafe) static let methods: UnsafeMutablePointer<sqlite3_io_methods> = {
        let m = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        m.initialize(to: sqlite3_io_methods())
        m.pointee.iVersion = 3
        m.pointee.xClose = { file in
            let flushed = flush(file!)
            let closed = forward(file) { $1.xClose!($0) }
            Unmanaged<Buffer>.fromOpaque(bufferSlot(file!).pointee!).release()
            bufferSlot(file!).pointee = nil
            return flushed != SQLITE_OK ? flushed : closed
        }
        m.pointee.xWrite = { file, data, amount, offset in write(file!, data!, Int(amount), offset) }
        // Whatever reads, measures, syncs or changes the file sees the buffer written out.
        m.pointee.xRead = { file, data, amount, offset in afterFlush(file) { $1.xRead!($0, data, amount, offset) } }
        m.pointee.xTruncate = { file, size in afterFlush(file) { $1.xTruncate!($0, size) } }
        m.pointee.xSync = { file, flags in afterFlush(file) { $1.xSync!($0, flags) } }
        m.pointee.xFileSize = { file, size in afterFlush(file) { $1.xFileSize!($0, size) } }
        m.pointee.xFileControl = { file, op, argument in afterFlush(file) { $1.xFileControl!($0, op, argument) } }
        m.pointee.xFetch = { file, offset, amount, out in afterFlush(file) { $1.xFetch!($0, offset, amount, out) } }
        m.pointee.xLock = { file, level in forward(file) { $1.xLock!($0, level) } }
        m.pointee.xUnlock = { file, level in forward(file) { $1.xUnlock!($0, level) } }
        m.pointee.xCheckReservedLock = { file, out in forward(file) { $1.xCheckReservedLock!($0, out) } }
        m.pointee.xSectorSize = { file in forward(file) { $1.xSectorSize!($0) } }
        m.pointee.xDeviceCharacteristics = { file in forward(file) { $1.xDeviceCharacteristics!($0) } }
        m.pointee.xUnfetch = { file, offset, pointer in forward(file) { $1.xUnfetch!($0, offset, pointer) } }
        // A WAL file has no shared memory of its own (that belongs to the database file), but
        // SQLite may ask: the wrapped file answers.
        m.pointee.xShmMap = { file, page, size, extend, out in forward(file) { $1.xShmMap!($0, page, size, extend, out) } }
        m.pointee.xShmLock = { file, offset, n, flags in forward(file) { $1.xShmLock!($0, offset, n, flags) } }
        m.pointee.xShmBarrier = { file in forward(file) { $1.xShmBarrier!($0) } }
        m.pointee.xShmUnmap = { file, delete in forward(file) { $1.xShmUnmap!($0, delete) } }
        return m
    }()

    /// Runs `call` with the wrapped file and its methods.
    private static func forward<T>(_ file: UnsafeMutablePointer<sqlite3_file>?, _ call: (UnsafeMutablePointer<sqlite3_file>, sqlite3_io_methods) -> T) -> T {
        let inner = innerFile(file!)
        return call(inner, inner.pointee.pMethods.pointee)
    }

    /// Writes the buffer out, then runs `call` with the wrapped file (unless the write failed).
    private static func afterFlush(_ file: UnsafeMutablePointer<sqlite3_file>?, _ call: (UnsafeMutablePointer<sqlite3_file>, sqlite3_io_methods) -> Int32) -> Int32 {
        let rc = flush(file!)
        guard rc == SQLITE_OK else { return rc }
        return forward(file, call)
    }

    /// One WAL file's buffer: a contiguous range of the file, starting at `start`.
    final class Buffer {
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: SQLiteWALBuffer.capacity, alignment: 16)
        var start: Int64 = 0
        var count = 0
        /// Where the page of the commit frame whose header was just written goes: the
        /// transaction's last write, after which everything goes out.
        var commitPage: Int64?
        /// Writes handed to the file system (each buffer written out is one), and their bytes.
        var writes = 0
        var written = 0
        deinit { bytes.deallocate() }
    }

    private static func register() -> String? {
        guard let base = sqlite_nio_sqlite3_vfs_find(nil) else { return nil }
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: base.pointee)
        vfs.pointee.szOsFile = Int32(innerOffset) + base.pointee.szOsFile
        vfs.pointee.pNext = nil
        vfs.pointee.zName = UnsafePointer(strdup(name))
        vfs.pointee.pAppData = UnsafeMutableRawPointer(base)
        vfs.pointee.xOpen = { vfs, path, file, flags, outFlags in SQLiteWALBuffer.open(SQLiteWALBuffer.baseVFS(vfs!), path, file!, flags, outFlags) }
        // The rest is the wrapped VFS's, called with the wrapped VFS itself.
        vfs.pointee.xDelete = { vfs, path, syncDirectory in SQLiteWALBuffer.base(vfs) { $0.pointee.xDelete!($0, path, syncDirectory) } }
        vfs.pointee.xAccess = { vfs, path, flags, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xAccess!($0, path, flags, out) } }
        vfs.pointee.xFullPathname = { vfs, path, size, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xFullPathname!($0, path, size, out) } }
        vfs.pointee.xRandomness = { vfs, size, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xRandomness!($0, size, out) } }
        vfs.pointee.xSleep = { vfs, microseconds in SQLiteWALBuffer.base(vfs) { $0.pointee.xSleep!($0, microseconds) } }
        vfs.pointee.xCurrentTime = { vfs, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xCurrentTime!($0, out) } }
        vfs.pointee.xGetLastError = { vfs, size, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xGetLastError!($0, size, out) } }
        vfs.pointee.xCurrentTimeInt64 = { vfs, out in SQLiteWALBuffer.base(vfs) { $0.pointee.xCurrentTimeInt64!($0, out) } }
        return sqlite_nio_sqlite3_vfs_register(vfs, 0) == SQLITE_OK ? name : nil
    }

    private static func baseVFS(_ vfs: UnsafeMutablePointer<sqlite3_vfs>) -> UnsafeMutablePointer<sqlite3_vfs> {
        vfs.pointee.pAppData.assumingMemoryBound(to: sqlite3_vfs.self)
    }

    /// Runs `call` with the wrapped VFS.
    private static func base<T>(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?, _ call: (UnsafeMutablePointer<sqlite3_vfs>) -> T) -> T {
        call(baseVFS(vfs!))
    }

    private static func bufferSlot(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (UnsafeMutableRawPointer(file) + MemoryLayout<UnsafeRawPointer>.stride).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    private static func innerFile(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        (UnsafeMutableRawPointer(file) + innerOffset).assumingMemoryBound(to: sqlite3_file.self)
    }

    static func buffer(_ file: UnsafeMutablePointer<sqlite3_file>) -> Buffer? {
        guard file.pointee.pMethods == UnsafePointer(methods), let slot = bufferSlot(file).pointee else { return nil }
        return Unmanaged<Buffer>.fromOpaque(slot).takeUnretainedValue()
    }

    /// Every file but a WAL is the wrapped VFS's own file object, at the start of ours. A WAL
    /// gets our methods, with the wrapped file after them.
    private static func open(_ base: UnsafeMutablePointer<sqlite3_vfs>, _ path: sqlite3_filename?, _ file: UnsafeMutablePointer<sqlite3_file>, _ flags: Int32, _ outFlags: UnsafeMutablePointer<Int32>?) -> Int32 {
        guard flags & SQLITE_OPEN_WAL != 0 else { return base.pointee.xOpen!(base, path, file, flags, outFlags) }
        file.pointee.pMethods = nil
        let inner = innerFile(file)
        inner.pointee.pMethods = nil
        let rc = base.pointee.xOpen!(base, path, inner, flags, outFlags)
        guard rc == SQLITE_OK else {
            // SQLite closes a file whose open failed only if its methods are set; ours are
            // not, so the wrapped file is closed here if it needs it.
            if let m = inner.pointee.pMethods { _ = m.pointee.xClose?(inner) }
            return rc
        }
        bufferSlot(file).pointee = Unmanaged.passRetained(Buffer()).toOpaque()
        file.pointee.pMethods = UnsafePointer(methods)
        return SQLITE_OK
    }

    private static func write(_ file: UnsafeMutablePointer<sqlite3_file>, _ data: UnsafeRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        let b = Unmanaged<Buffer>.fromOpaque(bufferSlot(file).pointee!).takeUnretainedValue()
        if b.count > 0, offset != b.start + Int64(b.count) || b.count + amount > capacity {
            let rc = flush(file)
            guard rc == SQLITE_OK else { return rc }
        }
        // Never for SQLite's own writes (a page is at most 64 KB); it keeps the buffer from
        // ever overflowing.
        guard amount <= largestWrite else {
            let inner = innerFile(file)
            b.writes += 1
            return inner.pointee.pMethods.pointee.xWrite!(inner, data, Int32(amount), offset)
        }
        if b.count == 0 { b.start = offset }
        (b.bytes + b.count).copyMemory(from: data, byteCount: amount)
        b.count += amount
        if let page = b.commitPage {
            b.commitPage = nil
            if offset == page { return flush(file) }
        }
        if amount == frameHeaderSize, data.loadUnaligned(fromByteOffset: 4, as: UInt32.self) != 0 {
            b.commitPage = offset + Int64(frameHeaderSize)
            // A commit frame's header on its own: SQLite rewriting the checksums of frames it
            // overwrote in place, after the commit frame itself (`walRewriteChecksums`); no
            // page follows it, so it goes out now. (Or a commit's only frame: its page follows
            // in a second write.)
            if b.count == amount { return flush(file) }
        }
        return SQLITE_OK
    }

    /// Writes the buffer out. On failure the bytes are dropped: the error goes to SQLite,
    /// which fails the transaction they belong to.
    private static func flush(_ file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
        guard let slot = bufferSlot(file).pointee else { return SQLITE_OK }
        let b = Unmanaged<Buffer>.fromOpaque(slot).takeUnretainedValue()
        guard b.count > 0 else { return SQLITE_OK }
        let inner = innerFile(file)
        var done = 0
        var rc = SQLITE_OK
        while done < b.count, rc == SQLITE_OK {
            let n = min(largestWrite, b.count - done)
            rc = inner.pointee.pMethods.pointee.xWrite!(inner, b.bytes + done, Int32(n), b.start + Int64(done))
            done += n
            b.writes += 1
            b.written += n
        }
        b.count = 0
        return rc
    }
}
