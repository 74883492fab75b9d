import Foundation
import NIOCore
import SQLKit
import SQLiteNIO
import Testing
import ThingDataCore
@testable import ThingDataStore

/// The fast readers and the writer: SQLite's C API with statements prepared once per connection.
@Suite struct SQLiteReaderTests {
    /// A store's SQLite sessions over a fresh file, closed at the end.
    func withSessions(_ body: @Sendable (SQLiteSessions) async throws -> Void) async throws {
        let dir = "/tmp/thingdata-readers-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        try await withContentStore(.sqlite(path: dir + "/t.sqlite"), logger: Backend.logger) { store in
            try await body(try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions))
        }
    }

    /// A failed open leaves no connection behind: a file that is not a database, and one with
    /// SQLite's header and garbage after it, are refused with a message that says so. Counted
    /// as this process's file descriptors open on those files, so other tests running
    /// meanwhile do not matter.
    @Test func aFailedOpenLeavesNoConnectionBehind() async throws {
        let dir = "/tmp/thingdata-readers-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let garbage = dir + "/garbage.sqlite", damaged = dir + "/damaged.sqlite"
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: garbage))
        try (Data("SQLite format 3\0".utf8) + Data(repeating: 0x5A, count: 8176)).write(to: URL(fileURLWithPath: damaged))
        func openOn(_ path: String) -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0))?.hasPrefix(path) == true }.count
        }
        for _ in 0..<3 {
            for path in [garbage, damaged] {
                await #expect { _ = try await SQLiteSessions.open(path: path, logger: Backend.logger) } throws: {
                    "\($0)".contains("cannot open \(path) as a database")
                }
            }
        }
        #expect(openOn(garbage) == 0)
        #expect(openOn(damaged) == 0)
    }

    /// Every bind type comes back as it went in, and a kept statement sees later writes
    /// (it is reset and its binds cleared after each run).
    @Test func keptStatementsSeeLaterWritesAndEveryBindType() async throws {
        try await withSessions { sessions in
            let echo = try await sessions.fastReaders.rows("SELECT ?1 AS i, ?2 AS f, ?3 AS t, ?4 AS b, ?5 AS n", [.integer(-7), .float(2.5), .text("ケトル"), .blob(ByteBuffer(bytes: [0, 1, 255])), .null])
            let row = try #require(echo.first)
            #expect(row.column("i")?.integer == -7)
            #expect(row.column("f")?.double == 2.5)
            #expect(row.column("t")?.string == "ケトル")
            #expect(row.column("b")?.blob == ByteBuffer(bytes: [0, 1, 255]))
            #expect(row.column("n")?.isNull == true)
            let count = "SELECT count(*) AS n FROM node_state WHERE key LIKE ?1"
            // Every reader prepares and keeps the statement while the table is empty.
            for _ in 0..<8 { #expect(try await sessions.fastReaders.rows(count, [.text("reader-test-%")]).first?.column("n")?.integer == 0) }
            for i in 0..<3 {
                try await sessions.transaction { db in
                    try await db.raw("INSERT INTO node_state (key, value) VALUES (\(bind: "reader-test-\(i)"), 'v')").run()
                }
                for _ in 0..<8 { #expect(try await sessions.fastReaders.rows(count, [.text("reader-test-%")]).first?.column("n")?.integer == i + 1) }
            }
            // A bind left out after a run with it is NULL, not the earlier value.
            #expect(try await sessions.fastReaders.rows("SELECT ?1 IS NULL AS gone", []).first?.column("gone")?.integer == 1)
        }
    }

    /// More distinct statements than a connection keeps: each still answers its own query.
    @Test func moreStatementsThanTheCacheHolds() async throws {
        try await withSessions { sessions in
            for round in 0..<2 {
                for i in 0..<(SQLiteHandle.readerStatementCacheSize * 2 + 3) {
                    let rows = try await sessions.fastReaders.rows("SELECT \(i) + ?1 AS v", [.integer(round)])
                    #expect(rows.first?.column("v")?.integer == i + round)
                }
            }
        }
    }

    /// A failing statement throws a store error and hands its connection back: more reads
    /// than there are connections still run afterwards.
    @Test func aFailingStatementLeavesTheReadersUsable() async throws {
        try await withSessions { sessions in
            for _ in 0..<6 {
                await #expect(throws: StoreError.self) { try await sessions.fastReaders.rows("SELECT * FROM no_such_table", []) }
                await #expect(throws: StoreError.self) { try await sessions.fastReaders.rows("SELECT ?1 AS v", [.text("x"), .text("one too many")]) }
            }
            // query_only: a reader never writes.
            await #expect(throws: StoreError.self) { try await sessions.fastReaders.rows("INSERT INTO node_state (key, value) VALUES ('w', 'v')", []) }
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<32 { group.addTask { try await sessions.fastReaders.rows("SELECT ?1 AS v", [.integer(i)]).first?.column("v")?.integer ?? -1 } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.sorted() == Array(0..<32))
            #expect(try await sessions.readRows("SELECT value FROM node_state WHERE key = ?1", ["w"]).isEmpty)
        }
    }

    /// After the store closes, a read fails at once instead of waiting for good.
    @Test func aReadAfterCloseFails() async throws {
        let dir = "/tmp/thingdata-readers-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        let readers = try SQLiteReaders.open(path: dir + "/t.sqlite", count: 2)
        #expect(try await readers.rows("SELECT 1 AS v", []).first?.column("v")?.integer == 1)
        await readers.close()
        await #expect(throws: StoreError.self) { try await readers.rows("SELECT 1 AS v", []) }
    }
    /// The writer answers SQLKit's queries as SQLiteKit's connection did: every bind type
    /// decodes back to what went in (a text holding NUL and a non-Latin one whole, a Bool, an
    /// absent value as nil), columns come in the query's order, and a missing column throws.
    @Test func theWriterAnswersSQLKitQueries() async throws {
        try await withSessions { sessions in
            struct Echo: Sendable, Equatable { var i: Int; var d: Double; var t: String; var nul: String; var b: Bool; var n: String?; var len: Int }
            let echo = try await sessions.transaction { db in
                let row = try #require(try await db.raw("SELECT \(bind: -7) AS i, \(bind: 2.5) AS d, \(bind: "ケトル") AS t, \(bind: "a\u{0}b") AS nul, \(bind: true) AS b, \(bind: String?.none) AS n, length(CAST(\(bind: "a\u{0}b") AS BLOB)) AS len").first())
                #expect(row.allColumns == ["i", "d", "t", "nul", "b", "n", "len"])
                #expect(try row.decodeNil(column: "n"))
                #expect(throws: (any Error).self) { try row.decode(column: "missing", as: Int.self) }
                return Echo(i: try row.decode(column: "i", as: Int.self), d: try row.decode(column: "d", as: Double.self), t: try row.decode(column: "t", as: String.self),
                    nul: try row.decode(column: "nul", as: String.self), b: try row.decode(column: "b", as: Bool.self), n: try row.decode(column: "n", as: String?.self), len: try row.decode(column: "len", as: Int.self))
            }
            #expect(echo == Echo(i: -7, d: 2.5, t: "ケトル", nul: "a\u{0}b", b: true, n: nil, len: 3))
            // The fast readers bind a text by its length too.
            #expect(try await sessions.fastReaders.rows("SELECT length(CAST(?1 AS BLOB)) AS n", [.text("a\u{0}b")]).first?.column("n")?.integer == 3)
        }
    }

    /// A statement that fails inside a transaction rolls back all of it, with SQLite's message
    /// (which the store reads to tell a duplicate id), and the writer takes the next
    /// transaction; a kept statement sees what later transactions wrote.
    @Test func aFailedWriteRollsBackAndTheWriterGoesOn() async throws {
        try await withSessions { sessions in
            let count: SQLQueryString = "SELECT count(*) AS n FROM node_state WHERE key LIKE 'writer-test-%'"
            try await sessions.transaction { db in try await db.raw("INSERT INTO node_state (key, value) VALUES ('writer-test-0', 'v')").run() }
            for round in 0..<3 {
                await #expect { 
                    try await sessions.transaction { db in
                        try await db.raw("INSERT INTO node_state (key, value) VALUES (\(bind: "writer-test-new-\(round)"), 'v')").run()
                        try sessions.writer.query("INSERT INTO node_state (key, value) VALUES (?, 'v')", [.text("writer-test-0")])
                    }
                } throws: { "\($0)".contains("UNIQUE constraint failed") }
                #expect(try await sessions.transaction { db in try await db.raw(count).first()?.decode(column: "n", as: Int.self) } == 1)
            }
            for i in 1...3 {
                try await sessions.transaction { db in try sessions.writer.query("INSERT INTO node_state (key, value) VALUES (?, 'v')", [.text("writer-test-\(i)")]) }
                #expect(try await sessions.transaction { db in try await db.raw(count).first()?.decode(column: "n", as: Int.self) } == i + 1)
            }
        }
    }
}
