public import Logging
import PostgresKit

/// Where content is kept: the embedded SQLite file (default), a PostgreSQL server, or memory.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)
    case memory

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url): "postgres:\(StoreLocation.redact(url))"
        case .memory: "memory"
        }
    }

    public var backendName: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres: "postgresql"
        case .memory: "memory"
        }
    }

    /// A URL with its password replaced, for logs and errors.
    public static func redact(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let schemeEnd = url.range(of: "://"), let colon = url[schemeEnd.upperBound..<at].firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }
}

/// Opens the store at `location`, migrates it, runs `body` with it, and closes it. A
/// PostgreSQL pool runs beside `body` in the same task group and stops with it.
public func withContentStore<T: Sendable>(
    _ location: StoreLocation,
    logger: Logger,
    maxConnections: Int = 16,
    startupTimeout: Duration = .seconds(30),
    _ body: @Sendable (any ContentStore) async throws -> T
) async throws -> T {
    switch location {
    case .memory:
        return try await body(MemoryContentStore())
    case .sqlite(let path):
        let sessions = try await SQLiteSessions.open(path: path, logger: logger)
        let store = SQLContentStore(sessions: sessions)
        do {
            try await store.migrate()
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    case .postgres(let url):
        let config = try PostgresSessions.configuration(url: url, maxConnections: maxConnections)
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            let store = SQLContentStore(sessions: PostgresSessions(client: client, logger: logger))
            // The pool retries a server that does not answer forever; a node starting up should
            // say so and stop instead.
            try await withThrowingTaskGroup(of: Bool.self) { startup in
                startup.addTask {
                    try await store.migrate()
                    return true
                }
                startup.addTask {
                    try await Task.sleep(for: startupTimeout)
                    return false
                }
                let migrated = try await startup.next() ?? false
                startup.cancelAll()
                if !migrated {
                    throw StoreError.unavailable("PostgreSQL at \(StoreLocation.redact(url)) did not answer within \(startupTimeout): is the server running, and do the host, port, user and database in the URL exist?")
                }
            }
            return try await body(store)
        }
    }
}
