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
#if canImport(Glibc)
import Glibc
#endif

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
                // r: requests left; t: seconds until the bucket is full again, 12 per request
                // used, less the seconds gone by since (a loaded machine can take a few).
                let fields = headers[HTTPField.Name("RateLimit")!]?.split(separator: ";") ?? []
                let reset = fields.count == 3 && fields[2].hasPrefix("t=") ? Int(fields[2].dropFirst(2)) : nil
                #expect(fields.count == 3 && fields[0] == "\"minute\"" && fields[1] == "r=\(4 - i)", "\(fields)")
                #expect(reset.map { ((5 - (4 - i)) * 12 - 5)...((5 - (4 - i)) * 12) ~= $0 } == true, "\(fields)")
                warned = warned || headers[HTTPField.Name("Warning")!] != nil
            }
            #expect(warned)
        }
    }

    /// Slow clients (slowloris: a header byte at a time) hold every connection the node allows;
    /// the head deadline cuts them off, so a normal client is served soon after.
    @Test func slowClientsCannotHoldTheConnections() async throws {
        // A node as `thingdata serve` runs it (the test harness's own client would hold a
        // connection): two slow clients take both connections it allows.
        var config = NodeConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.maxConnections = 2
        config.headerTimeout = 1
        let settings = config
        try await withContentStore(.memory, logger: APITests.logger) { store in
            let catalog = try await Catalog.open(store: store, key: .generate())
            let (ready, readyContinuation) = AsyncStream<Int>.makeStream()
            let app = buildApplication(configuration: settings, catalog: catalog, server: try settings.httpServer(), logger: APITests.logger) { readyContinuation.yield($0) }
            let server = Task { try await app.run() }
            defer { server.cancel() }
            var port = 0
            for await p in ready { port = p; break }
            let slow = (0..<2).map { _ in SlowClient(port: port) }
            for s in slow { s.start() }
            // Both connected and trickling (under load the deadline may already have cut them).
            for _ in 0..<100 where !slow.allSatisfy({ $0.sent > 3 }) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(slow.allSatisfy { $0.sent > 3 }, "the slow clients should have connected and sent part of a head")
            // A new client is served once the slow ones are cut off; without the deadline it
            // would wait for as long as they trickle, which is for ever. It gives up after 30 s:
            // the node answers within about a second, but under a full parallel test run on two
            // cores its tasks may wait several seconds for a thread.
            let p = port
            let answer = await Task.detached { SlowClient.get(port: p, path: "/health/live", timeoutSeconds: 30) }.value
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "\(answer ?? "no answer")")
            // The slow clients notice the close on their next byte (every 50 ms).
            for _ in 0..<40 where !slow.allSatisfy({ $0.closed }) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(slow.allSatisfy { $0.closed }, "the node should have closed the slow connections")
            for s in slow { s.stop() }
        }
    }
}

/// A client that sends a request head one byte at a time, forever, until the server closes
/// the connection (or `stop`).
final class SlowClient: @unchecked Sendable {
    let port: Int
    private let lock = NSLock()
    private var _closed = false
    private var _sent = 0
    private var stopped = false
    var closed: Bool { lock.withLock { _closed } }
    /// Bytes of the head sent so far.
    var sent: Int { lock.withLock { _sent } }

    init(port: Int) { self.port = port }

    func stop() { lock.withLock { stopped = true } }

    static func connected(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if ok != 0 { close(fd); return nil }
        return fd
    }

    /// A plain GET on a new connection; the start of the answer, or nil after the timeout.
    static func get(port: Int, path: String, timeoutSeconds: Int) -> String? {
        guard let fd = connected(port) else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
    }

    func start() {
        Thread.detachNewThread { [self] in
            guard let fd = Self.connected(port) else { lock.withLock { _closed = true }; return }
            defer { close(fd) }
            let head = Array("GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)
            var i = 0
            while !lock.withLock({ stopped }) {
                var byte = i < head.count ? head[i] : UInt8(ascii: "a")
                i += 1
                if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { break }
                lock.withLock { _sent += 1 }
                // A closed connection shows as a readable end of stream.
                var probe: UInt8 = 0
                let r = recv(fd, &probe, 1, Int32(MSG_DONTWAIT))
                if r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { break }
                usleep(50_000)
            }
            lock.withLock { _closed = true }
        }
    }
}
