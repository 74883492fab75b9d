import Foundation
import SQLiteNIO
import Testing
@testable import ThingDataStore

/// The writer's WAL goes to the file system once a commit (`SQLiteWALBuffer`), not twice a
/// frame, and what a commit wrote is in the file when the commit returns: another connection
/// sees it at once, and a copy of the files taken right then recovers it.
@Suite struct WALBufferTests {
    @Test func eachCommitIsOneWriteAndInTheFileWhenItReturns() throws {
        let dir = "/tmp/thingdata-walbuffer-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let path = dir + "/w.sqlite"
        let vfs = try #require(SQLiteWALBuffer.registered)
        // A page cache of 100 pages: the large transactions below spill frames before COMMIT.
        let writer = try SQLiteHandle(path: path, pragmas: ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA cache_size=100", "PRAGMA wal_autocheckpoint=0"], purpose: "writing", vfs: vfs)
        defer { writer.close() }
        let reader = try SQLiteHandle(path: path, pragmas: [], purpose: "reading")
        defer { reader.close() }
        _ = try writer.rows("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)", [])
        _ = try writer.rows("CREATE INDEX t_v ON t(v)", [])
        let buffer = try #require(writer.walBuffer, "the writer's WAL goes through the buffer")

        func count(_ handle: SQLiteHandle) throws -> Int64? {
            try handle.rows("SELECT count(*) AS n FROM t", []).first?.column("n")?.integer.map(Int64.init)
        }
        /// The database and its WAL as the file system has them now, opened on their own:
        /// SQLite recovers the WAL from the file (no shared memory is copied).
        func recoveredCount(_ round: Int) throws -> Int64? {
            let copy = dir + "/copy-\(round).sqlite"
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
            let opened = try SQLiteHandle(path: copy, pragmas: [], purpose: "reading")
            defer { opened.close() }
            #expect(try opened.rows("PRAGMA integrity_check", []).first?.column("integrity_check")?.string == "ok")
            return try count(opened)
        }

        var expected: Int64 = 0
        // From one row to 3 MB: the largest go out in runs of the buffer's size, with frames
        // spilled before COMMIT and rewritten in place.
        func walSize() -> Int { FileManagerShim.size(path + "-wal") ?? 0 }
        for (round, rows) in [1, 3, 20, 400, 3000].enumerated() {
            let (before, sizeBefore) = (buffer.writes, walSize())
            _ = try writer.rows("BEGIN", [])
            for _ in 0..<rows { _ = try writer.rows("INSERT INTO t(v) VALUES (randomblob(1000))", []) }
            _ = try writer.rows("COMMIT", [])
            expected += Int64(rows)
            if rows <= 20 {
                // The commit's frames, appended in one run: one write per largest write.
                let appended = walSize() - sizeBefore
                let runs = (appended + SQLiteWALBuffer.largestWrite - 1) / SQLiteWALBuffer.largestWrite
                #expect(appended >= 2 * 4120, "the commit wrote frames")
                #expect(buffer.writes - before == runs, "a commit of \(rows) rows (\(appended / 4120) frames) took \(buffer.writes - before) writes")
            }
            #expect(try count(reader) == expected, "another connection sees the commit at once")
            #expect(try recoveredCount(round) == expected, "the commit's frames are in the file")
        }

        // A rolled-back transaction that spilled frames leaves nothing behind.
        _ = try writer.rows("BEGIN", [])
        for _ in 0..<2000 { _ = try writer.rows("INSERT INTO t(v) VALUES (randomblob(1000))", []) }
        _ = try writer.rows("ROLLBACK", [])
        _ = try writer.rows("INSERT INTO t(v) VALUES (randomblob(1000))", [])
        expected += 1
        #expect(try count(reader) == expected)
        #expect(try recoveredCount(99) == expected)
        #expect(try writer.rows("PRAGMA integrity_check", []).first?.column("integrity_check")?.string == "ok")
    }
}
