import Foundation
import Logging
import PostgresKit
import Testing
import ThingDataCore
import ThingDataSigning
@testable import ThingDataStore

/// The backends the conformance suite runs on. PostgreSQL needs THINGDATA_TEST_POSTGRES_URL
/// (scripts/test starts a server and sets it); each test gets a database of its own.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres

    var testDescription: String { rawValue }

    static var postgresURL: String? { ProcessInfo.processInfo.environment["THINGDATA_TEST_POSTGRES_URL"] }

    static var available: [Backend] {
        if postgresURL == nil {
            print("note: THINGDATA_TEST_POSTGRES_URL is not set; the PostgreSQL store is not tested in this run (scripts/test sets it)")
            return [.memory, .sqlite]
        }
        return allCases
    }

    static let logger: Logger = {
        var l = Logger(label: "test")
        l.logLevel = .warning
        return l
    }()

    /// A fresh, empty, migrated store for one test, opened as a node's catalog.
    func withCatalog<T: Sendable>(_ body: @Sendable (Catalog) async throws -> T) async throws -> T {
        try await withStore { try await body(try await Catalog.open(store: $0, key: .generate())) }
    }

    /// A fresh, empty, migrated store that no catalog has opened yet.
    func withStore<T: Sendable>(_ body: @Sendable (any ContentStore) async throws -> T) async throws -> T {
        switch self {
        case .memory:
            return try await body(MemoryContentStore())
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            return try await withContentStore(.sqlite(path: dir.appendingPathComponent("t.sqlite").path), logger: Self.logger, body)
        case .postgres:
            let url = try await Self.freshPostgresDatabase()
            return try await withContentStore(.postgres(url: url), logger: Self.logger, maxConnections: 4, body)
        }
    }

    static func freshPostgresDatabase() async throws -> String {
        guard let base = postgresURL else { throw StoreError.unavailable("no PostgreSQL") }
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let client = PostgresClient(configuration: try PostgresSessions.configuration(url: base, maxConnections: 1), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query("CREATE DATABASE \(unescaped: name)")
            group.cancelAll()
        }
        guard let q = base.firstIndex(of: "?"), let slash = base[..<q].lastIndex(of: "/") else { return base }
        return String(base[...slash]) + name + String(base[q...])
    }
}

/// Helpers to build content in tests.
enum Sample {
    static func thing(_ name: String, type: String = "device", manufacturer: String = "BaristaPlus", translations: JSONValue = [:]) -> JSONValue {
        ["type": .string(type), "name": ["default": .string(name), "translations": translations], "manufacturer": ["name": .string(manufacturer)]]
    }
    static func story(thing: String?, steps: [String] = ["Open the case"], category: String? = nil) -> JSONValue {
        var o: JSONObject = ["type": "repair", "procedure": .array(steps.enumerated().map { ["order": .int(Int64($0 + 1)), "description": ["default": .string($1)]] })]
        o["thing_id"] = thing.map(JSONValue.string) ?? .null
        if let category { o["thing_category"] = ["category": .string(category), "subcategory": "descaling"] }
        return .object(o)
    }
    static func relationship(_ a: String, _ b: String, type: String = "has_component") -> JSONValue {
        ["source_type": "thing", "source_id": .string(a), "target_type": "thing", "target_id": .string(b), "relationship_type": .string(type), "metadata": ["removable": true]]
    }
}
