import Foundation
import Logging
import PostgresKit
import SQLKit

/// PostgreSQL through PostgresNIO's connection pool (`PostgresClient`), queried with SQLKit.
final class PostgresSessions: SQLSessions {
    let flavor = SQLFlavor.postgres
    /// PostgreSQL runs transactions side by side on the pool's connections.
    let groupCommit: GroupCommit<PendingCommit>? = nil
    let client: PostgresClient
    let logger: Logger

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { conn in try await body(conn.sql()) }
    }

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await Self.shielded { [client] in
            try await client.withConnection { conn in try await Self.inTransaction(conn.sql(), begin: "BEGIN", body) }
        }
    }

    func close() async throws {}

    /// Reads `postgres://user:password@host:port/database?sslmode=disable`, or a unix socket
    /// given as `?host=/run/postgresql`.
    static func configuration(url: String, maxConnections: Int) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StoreError.unavailable("THINGDATA_DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, b in b })
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        let database = components.path.isEmpty ? nil : String(components.path.dropFirst())
        var config: PostgresClient.Configuration
        if let socketDir = query["host"], socketDir.hasPrefix("/") {
            let port = components.port ?? 5432
            config = .init(unixSocketPath: "\(socketDir)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
            default: tls = .prefer(.makeClientConfiguration())
            }
            config = .init(host: components.host ?? "localhost", port: components.port ?? 5432, username: user, password: password, database: database, tls: tls)
        }
        config.options.maximumConnections = maxConnections
        return config
    }
}

/// A single GET's rows (the entity and the relationships touching it) as a statement the
/// server plans once per connection.
struct EntityWithRelationshipsStatement: PostgresPreparedStatement {
    static let sql = """
        SELECT seq, kind, id, created_at, updated_at, body::text, (SELECT etag FROM entity_heads WHERE entity_id = $1) AS etag FROM entities WHERE id = $1 AND kind = $2
        UNION ALL SELECT seq, kind, id, created_at, updated_at, body::text, NULL FROM entities WHERE source_id = $1 AND kind = 'relationship'
        UNION ALL SELECT seq, kind, id, created_at, updated_at, body::text, NULL FROM entities WHERE target_id = $1 AND kind = 'relationship'
        ORDER BY seq LIMIT 20001
        """
    /// seq, kind, id, created_at, updated_at, body, etag (the entity's row only).
    typealias Row = (Int64, String, String, Int64, Int64?, String, String?)

    var id: String
    var kind: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(kind)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}

extension PostgresSessions {
    /// The rows of a single GET, through the prepared statement.
    func entityRows(id: String, kind: String) async throws -> [EntityWithRelationshipsStatement.Row] {
        var rows: [EntityWithRelationshipsStatement.Row] = []
        for try await row in try await client.execute(EntityWithRelationshipsStatement(id: id, kind: kind)) { rows.append(row) }
        return rows
    }
}
