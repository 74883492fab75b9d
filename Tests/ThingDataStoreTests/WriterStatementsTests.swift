import Foundation
import SQLKit
import SQLiteNIO
import Testing
import ThingDataCore
@testable import ThingDataStore

/// The SQLite writer keeps its bulk statements prepared. A group commit's multi-row inserts
/// have one statement text per row count, and the row count changes from group to group; a
/// cache too small for that working set is cleared and everything prepared anew every few
/// groups (measured: 2.8 % of the node's CPU under POST load).
@Suite struct WriterStatementsTests {
    @Test func groupsOfEveryRowCountAreNotPreparedTwice() async throws {
        let dir = "/tmp/thingdata-writer-\(UInt64.random(in: 0...UInt64.max))"
        try FileManagerShim.mkdir(dir)
        defer { FileManagerShim.remove(dir) }
        try await withContentStore(.sqlite(path: dir + "/w.sqlite"), logger: Backend.logger) { store in
            let sessions = try #require((store as? SQLContentStore)?.sessions as? SQLiteSessions)
            let writer = sessions.writer
            // Audit rows as a group commit writes them: one statement per group, 1 to 100 rows.
            @Sendable func groups() async throws {
                try await sessions.transaction { _ in
                    for size in 1...100 {
                        let rows: [[SQLiteData]] = (0..<size).map { i in
                            [.integer(i), .text("test"), .null, .text("thing.create"), .text("thing/\(size)-\(i)"), .null, .null]
                        }
                        try await SQLiteBulk.insert(rows, into: SQLContentStore.auditColumns, columns: 7, writer) { $0 }
                    }
                }
            }
            try await groups()
            let afterFirst = writer.statementsPrepared
            try await groups()
            #expect(writer.statementsPrepared == afterFirst, "the second round of the same row counts prepared \(writer.statementsPrepared - afterFirst) statements again")
            let written = try await sessions.read { db in
                try await db.raw("SELECT count(*) AS n FROM audit_log WHERE actor = 'test'").first()?.decode(column: "n", as: Int.self)
            }
            #expect(written == 2 * (1...100).reduce(0, +))
        }
    }
}
