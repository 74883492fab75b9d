import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import Testing
import ThingDataCore
import ThingDataServer
import ThingDataSigning
import ThingDataStore

/// Tokens, roles, throttling, rate limits and the audit log, through a live server on loopback.
@Suite struct SecurityTests {
    struct Node {
        let client: any TestClientProtocol
        let catalog: Catalog
        let access: AccessControl
    }

    /// Quicker than the default (250 ms doubling to 4 s), same shape.
    static let fastThrottle: LoginThrottle = {
        var t = LoginThrottle()
        t.baseDelay = 5
        t.maxDelay = 40
        return t
    }()

    func withNode(_ configure: (inout NodeConfiguration) -> Void = { _ in }, _ body: @escaping @Sendable (Node) async throws -> Void) async throws {
        var settings = NodeConfiguration()
        settings.host = "127.0.0.1"
        settings.port = 0
        configure(&settings)
        let config = settings
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-sec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withContentStore(.sqlite(path: dir + "/t.sqlite"), logger: APITests.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            let access = try await AccessControl(store: store, throttle: Self.fastThrottle)
            let app = buildApplication(configuration: config, catalog: catalog, access: access, logger: APITests.logger)
            try await app.test(.live) { client in try await body(Node(client: client, catalog: catalog, access: access)) }
        }
    }

    static func token(_ node: Node, user: String, role: Role) async throws -> (id: String, secret: String) {
        let audit = AuditEntry(at: Timestamp.now(), actor: "test", address: nil, action: "user.add")
        if await node.access.allUsers().first(where: { $0.name == user }) == nil { _ = try await node.access.addUser(user, role: role, audit: audit) }
        let made = try await node.access.createToken(for: user, expiresAt: nil) { _ in audit }
        return (made.record.id, made.secret)
    }

    static func headers(_ secret: String?) -> HTTPFields {
        var h: HTTPFields = [.contentType: "application/json"]
        if let secret { h[.authorization] = "Bearer \(secret)" }
        return h
    }

    static func post(_ node: Node, _ secret: String?, name: String = "Kettle") async throws -> (HTTPResponse.Status, JSONValue, HTTPFields) {
        var body = APITests.kettle
        body["name"] = ["default": .string(name), "translations": [:]]
        return try await node.client.execute(uri: "/api/v1/things", method: .post, headers: headers(secret), body: APITests.body(body)) { r in
            (r.status, APITests.json(r), r.headers)
        }
    }

    @Test func tokenModeRefusesUnauthorizedWritesAndWritesNothing() async throws {
        try await withNode({ $0.security.authMode = .token }) { node in
            let (status, body, _) = try await Self.post(node, nil)
            #expect(status == .unauthorized && body["part"] == "token-missing")
            let viewer = try await Self.token(node, user: "vera", role: .viewer)
            let (s2, b2, _) = try await Self.post(node, viewer.secret)
            #expect(s2 == .forbidden && b2["part"] == "role")
            let (s3, b3, _) = try await Self.post(node, "td_not-a-real-token-at-all-000000000000000")
            #expect(s3 == .unauthorized && b3["part"] == "token-invalid")
            #expect(try await node.catalog.store.count(.thing) == 0)
            #expect(try await node.catalog.store.revisionCount() == 0)
            // Reads stay open; an editor writes.
            try await node.client.execute(uri: "/api/v1/things", method: .get) { r in #expect(r.status == .ok) }
            let editor = try await Self.token(node, user: "eddie", role: .editor)
            let (s4, b4, _) = try await Self.post(node, editor.secret)
            #expect(s4 == .ok)
            // Every write has an audit entry: who, what, from where, which revision.
            let audit = try await node.catalog.store.audit(AuditQuery(actor: "user:eddie"))
            #expect(audit.count == 1)
            let entry = try #require(audit.first)
            #expect(entry.action == "thing.create" && entry.target == "thing/\(b4["id"]?.stringValue ?? "?")" && entry.address == "127.0.0.1")
            let revisions = try await node.catalog.store.revisions(ofEntity: b4["id"]?.stringValue ?? "", beforeSequence: nil, limit: 5)
            #expect(entry.revision == (try revisions.first?.decoded().id))
        }
    }

    @Test func autoModeLetsLoopbackWriteAndAuditsIt() async throws {
        try await withNode { node in
            let (status, body, _) = try await Self.post(node, nil)
            #expect(status == .ok)
            let audit = try await node.catalog.store.audit(AuditQuery())
            #expect(audit.map(\.actor) == ["loopback"] && audit.first?.target == "thing/\(body["id"]?.stringValue ?? "?")")
        }
    }

    @Test func readsCanNeedATokenToo() async throws {
        try await withNode({ $0.security.authMode = .token; $0.security.readsNeedToken = true }) { node in
            try await node.client.execute(uri: "/api/v1/things", method: .get) { r in #expect(r.status == .unauthorized) }
            let viewer = try await Self.token(node, user: "vera", role: .viewer)
            try await node.client.execute(uri: "/api/v1/things", method: .get, headers: Self.headers(viewer.secret)) { r in #expect(r.status == .ok) }
            // The node's own pages stay readable (health checks, the descriptor).
            try await node.client.execute(uri: "/health/live", method: .get) { r in #expect(r.status == .ok) }
        }
    }

    @Test func aRevokedTokenStopsWorkingAtOnce() async throws {
        try await withNode({ $0.security.authMode = .token }) { node in
            let editor = try await Self.token(node, user: "eddie", role: .editor)
            #expect(try await Self.post(node, editor.secret).0 == .ok)
            _ = try await node.access.revoke(editor.id, audit: AuditEntry(at: Timestamp.now(), actor: "test", address: nil, action: "token.revoke"))
            let (status, body, _) = try await Self.post(node, editor.secret, name: "After revocation")
            #expect(status == .unauthorized && body["part"] == "token-invalid")
            #expect(try await node.catalog.store.count(.thing) == 1)
            // Revocations survive a restart of the access table.
            let reloaded = try await AccessControl(store: node.catalog.store)
            #expect(await reloaded.authenticate(secret: editor.secret, address: "x", now: Timestamp.now()) == nil)
        }
    }

    @Test func bruteForceIsSlowedThenBlocked() async throws {
        try await withNode({ $0.security.authMode = .token }) { node in
            let editor = try await Self.token(node, user: "eddie", role: .editor)
            var statuses: [HTTPResponse.Status] = []
            for i in 0..<11 { statuses.append(try await Self.post(node, "td_guess-\(i)-00000000000000000000000000000000").0) }
            #expect(statuses.prefix(10).allSatisfy { $0 == .unauthorized })
            let (status, body, headers) = try await Self.post(node, editor.secret)
            #expect(status == .tooManyRequests && body["part"] == "token-blocked", "the address is blocked, even with a good token")
            #expect(headers[.retryAfter].flatMap(Int.init).map { $0 > 60 } == true)
            #expect(try await node.catalog.store.count(.thing) == 0)
        }
    }

    @Test func rateLimitsPerClientWithHeaders() async throws {
        try await withNode({ $0.security.clientLimits = (5, 0, 0); $0.security.limitLoopback = true; $0.security.authMode = .token }) { node in
            let a = try await Self.token(node, user: "ann", role: .viewer)
            let b = try await Self.token(node, user: "bob", role: .viewer)
            var last: (HTTPResponse.Status, HTTPFields) = (.ok, [:])
            for _ in 0..<6 {
                last = try await node.client.execute(uri: "/api/v1/things", method: .get, headers: Self.headers(a.secret)) { r in (r.status, r.headers) }
            }
            #expect(last.0 == .tooManyRequests)
            #expect(last.1[.retryAfter].flatMap(Int.init).map { $0 >= 1 } == true)
            #expect(last.1[HTTPField.Name("RateLimit-Policy")!] == "\"minute\";q=5;w=60")
            // Another client has its own bucket, and hears a warning as it nears the end.
            var warned = false
            for i in 0..<5 {
                let (status, headers) = try await node.client.execute(uri: "/api/v1/things", method: .get, headers: Self.headers(b.secret)) { r in (r.status, r.headers) }
                #expect(status == .ok, "request \(i) of bob")
                #expect(headers[HTTPField.Name("RateLimit")!] == "\"minute\";r=\(4 - i);t=\((5 - (4 - i)) * 12)")
                warned = warned || headers[HTTPField.Name("Warning")!] != nil
            }
            #expect(warned)
        }
    }
}
