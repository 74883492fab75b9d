import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import ThingDataCore
import ThingDataFederation
import ThingDataDiscovery
import ThingDataSigning
import ThingDataStore

/// The admin API, under `/admin/v1` on its own listener (loopback by default). Every request
/// needs `Authorization: Bearer <admin token>`; every action that changes something is logged.
struct AdminRoutes {
    let federation: Federation
    let discovery: Discovery?
    let access: AccessControl
    let configuration: NodeConfiguration
    let logger: Logger
    var catalog: Catalog { federation.catalog }

    func register(on router: Router<NodeRequestContext>) {
        let api = router.group("admin/v1")
        registerAccess(on: api)
        api.get("node") { _, _ in JSONResponse.make(try await nodeInfo()) }
        api.get("digest") { _, _ in JSONResponse.make(try await catalog.digest()) }
        api.get("discovery") { _, _ in
            guard let discovery else { throw APIError(.notFound, "discovery does not run in this process") }
            return JSONResponse.make(discovery.statusJSON())
        }
        api.get("peers") { _, _ in
            var list: [JSONValue] = []
            for p in await federation.peers.all() { list.append(peerJSON(p)) }
            return JSONResponse.make(.array(list))
        }
        api.get("peers/:id") { _, context in
            let p = try await peer(context)
            var o = peerJSON(p).objectValue ?? [:]
            o["events"] = .array(await federation.peers.events(p.nodeID).map { ["at": .string($0.at), "kind": .string($0.kind), "detail": .string($0.detail)] })
            return JSONResponse.make(.object(o))
        }
        api.post("peers") { request, context in
            let body = try await request.jsonBody(context: context)
            guard let url = body["url"]?.stringValue else { throw APIError.badRequest("Send {\"url\": \"http://host:port\"}", loc: ["body", "url"], type: "missing") }
            let p = try await catalogCall { try await federation.addPeer(url: url) }
            try await audit(context, "peer.add", target: "peer/\(p.nodeID)", detail: url)
            return JSONResponse.make(peerJSON(p), status: .created)
        }
        api.post("peers/:id/trust") { request, context in
            let body = try await request.jsonBody(context: context)
            guard let raw = body["level"]?.stringValue, let level = TrustLevel(rawValue: raw) else {
                throw APIError.badRequest("Send {\"level\": one of \(TrustLevel.allCases.map(\.rawValue).joined(separator: ", "))}", loc: ["body", "level"], type: "enum")
            }
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.setTrust(id, level) }
            try await audit(context, "peer.trust", target: "peer/\(p.nodeID)", detail: level.rawValue)
            return JSONResponse.make(peerJSON(p))
        }
        api.post("peers/:id/block") { _, context in
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.setTrust(id, .blocked) }
            try await audit(context, "peer.block", target: "peer/\(p.nodeID)")
            return JSONResponse.make(peerJSON(p))
        }
        api.delete("peers/:id") { _, context in
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.forget(id) }
            try await audit(context, "peer.forget", target: "peer/\(p.nodeID)")
            return JSONResponse.make(["forgotten": .string(p.nodeID)])
        }
        api.post("sync") { request, context in
            var peerID: String?
            if request.headers[.contentLength].flatMap(Int.init) ?? 0 > 0 {
                peerID = try await request.jsonBody(context: context)["peer"]?.stringValue
            }
            try await audit(context, "sync.now", target: peerID.map { "peer/\($0)" })
            let reports = try await catalogCall { try await federation.syncNow(peerID) }
            return JSONResponse.make(.array(reports.map(\.json)))
        }
        api.get("sync") { _, _ in
            var list: [JSONValue] = []
            for p in await federation.peers.all() {
                list.append([
                    "node_id": .string(p.nodeID), "name": .string(p.name), "trust": .string(p.trust.rawValue), "state": .string(p.state.rawValue),
                    "index_id": p.indexID.map { .string($0) } ?? .null, "cursor": .int(p.cursor), "remote_head": .int(p.remoteHead), "lag": .int(p.lag),
                    "last_sync": p.lastSync.map { .string($0) } ?? .null, "last_error": p.lastError.map { .string($0) } ?? .null,
                    "next_due": federation.nextDue(p.nodeID).map { .string(Timestamp(microsecondsSinceEpoch: $0 * 1000).description) } ?? .null,
                ])
            }
            return JSONResponse.make(["node_id": .string(federation.key.nodeID.compact), "index_id": .string(federation.indexID),
                                      "head": .int(try await catalog.store.latestSequence()), "peers": .array(list)])
        }
        api.get("conflicts") { request, _ in
            let q = Query(request)
            let limit = try q.int("limit", default: 100, range: 1...1000)
            let offset = try q.int("skip", default: 0, range: 0...Int.max)
            let kind = try q.oneOf("kind", EntityKind.allCases.map(\.rawValue)).flatMap(EntityKind.init(rawValue:))
            return JSONResponse.make(.array(try await catalogCall { try await catalog.conflicts(kind: kind, limit: limit, offset: offset) }))
        }
        api.get("conflicts/:kind/:id") { _, context in
            let (kind, id) = try Self.kindAndID(context)
            return JSONResponse.make(try await catalogCall { try await catalog.conflict(kind, id: id) })
        }
        api.post("conflicts/:kind/:id/resolve") { request, context in
            let (kind, id) = try Self.kindAndID(context)
            let body = try await request.jsonBody(context: context)
            let entity = try await catalogCall { try await writer(context).resolve(kind, id: id, with: body) }
            return JSONResponse.make(["resolved": .string("\(kind.rawValue)/\(id)"), "entity": entity.map { $0.rendered() } ?? .null])
        }
        api.get("authors/blocked") { _, _ in
            JSONResponse.make(.array(try await federation.blockedAuthors().map { .string($0) }))
        }
        for (method, blocked) in [(HTTPRequest.Method.post, true), (.delete, false)] {
            api.on("authors/:id/block", method: method) { _, context in
                let raw = try context.parameters.require("id")
                guard let id = NodeID(raw) else { throw APIError.badRequest("\(raw) is not a node id", loc: ["path", "id"], type: "value_error") }
                try await federation.setAuthor(id, blocked: blocked)
                try await audit(context, blocked ? "author.block" : "author.unblock", target: "node/\(id.compact)")
                return JSONResponse.make(["author": .string(id.compact), "blocked": .bool(blocked)])
            }
        }
    }

    func registerAccess(on api: RouterGroup<NodeRequestContext>) {
        api.get("users") { _, _ in JSONResponse.make(.array(await access.allUsers().map(\.json))) }
        api.post("users") { request, context in
            let body = try await request.jsonBody(context: context)
            guard let name = body["name"]?.stringValue else { throw APIError.badRequest("Send {\"name\": NAME, \"role\": admin|editor|viewer}", loc: ["body", "name"], type: "missing") }
            guard let role = body["role"]?.stringValue.flatMap(Role.init(rawValue:)) else {
                throw APIError.badRequest("role must be one of admin, editor, viewer", loc: ["body", "role"], type: "enum")
            }
            let user = try await accessCall { try await access.addUser(name, role: role, audit: entry(context, "user.add", target: "user/\(name)", detail: role.rawValue)) }
            logger.notice("admin: user.add", metadata: ["user": .string(name), "role": .string(role.rawValue)])
            return JSONResponse.make(user.json, status: .created)
        }
        api.get("tokens") { request, _ in
            let user = try Query(request).string("user", maxLength: 64)
            return JSONResponse.make(.array(await access.allTokens(user: user).map(\.json)))
        }
        api.post("tokens") { request, context in
            let body = try await request.jsonBody(context: context)
            guard let user = body["user"]?.stringValue else { throw APIError.badRequest("Send {\"user\": NAME, \"expires_in_days\": N?}", loc: ["body", "user"], type: "missing") }
            var expires: Timestamp?
            if let days = body["expires_in_days"] {
                guard let d = days.intValue, (1...3650).contains(d) else { throw APIError.badRequest("expires_in_days must be 1 to 3650", loc: ["body", "expires_in_days"], type: "out_of_range") }
                expires = Timestamp(microsecondsSinceEpoch: Timestamp.now().microsecondsSinceEpoch + d * 86_400_000_000)
            }
            let made = try await accessCall {
                try await access.createToken(for: user, expiresAt: expires) { id in entry(context, "token.create", target: "token/\(id)", detail: "user \(user)") }
            }
            logger.notice("admin: token.create", metadata: ["token": .string(made.record.id), "user": .string(user)])
            guard case .object(var o) = made.record.json else { return JSONResponse.make(made.record.json) }
            o["token"] = .string(made.secret)
            o["note"] = "Shown once: only its hash is kept."
            return JSONResponse.make(.object(o), status: .created)
        }
        api.delete("tokens/:id") { _, context in
            let id = try context.parameters.require("id")
            let t = try await accessCall { try await access.revoke(id, audit: entry(context, "token.revoke", target: "token/\(id)")) }
            logger.notice("admin: token.revoke", metadata: ["token": .string(id)])
            return JSONResponse.make(t.json)
        }
        api.get("audit") { request, _ in
            let q = Query(request)
            var query = AuditQuery(limit: try q.int("limit", default: 100, range: 1...10_000))
            query.afterSequence = Int64(try q.int("after", default: 0, range: 0...Int.max))
            if let since = try q.string("since", maxLength: 64) {
                guard let t = Timestamp(iso8601: since) else { throw APIError.badRequest("since must be an ISO 8601 time such as 2026-11-21T10:00:00Z", loc: ["query", "since"], type: "value_error") }
                query.since = t
            }
            if let user = try q.string("user", maxLength: 80) { query.actor = user.contains(":") || ["loopback", "anonymous", "admin-token", "node"].contains(user) ? user : "user:\(user)" }
            return JSONResponse.make(.array(try await catalog.store.audit(query).map(\.json)))
        }
    }

    func accessCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let r as AccessControl.Refusal { throw APIError(HTTPResponse.Status(code: r.status), r.message) }
    }

    static func kindAndID(_ context: NodeRequestContext) throws -> (EntityKind, String) {
        let raw = try context.parameters.require("kind")
        guard let kind = EntityKind(rawValue: raw) ?? EntityKind.allCases.first(where: { $0.collection == raw }) else {
            throw APIError.badRequest("kind must be one of \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))", loc: ["path", "kind"], type: "enum")
        }
        return (kind, try context.parameters.require("id"))
    }

    func catalogCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as CatalogError { throw APIError.from(e) }
    }

    func peer(_ context: NodeRequestContext) async throws -> PeerRecord {
        let id = try context.parameters.require("id")
        guard let p = await federation.peers.find(id) else { throw APIError(.notFound, "No peer \(id); `peers list` shows the known ones") }
        return p
    }

    /// Logs an admin action and appends it to the audit log.
    func audit(_ context: NodeRequestContext, _ action: String, target: String?, detail: String? = nil) async throws {
        let actor = context.identity?.actor ?? "admin-token"
        logger.notice("admin: \(action)", metadata: ["actor": .string(actor), "target": .string(target ?? "-"), "detail": .string(detail ?? "")])
        try await catalog.store.appendAudit([entry(context, action, target: target, detail: detail)])
    }

    func entry(_ context: NodeRequestContext, _ action: String, target: String?, detail: String? = nil) -> AuditEntry {
        AuditEntry(at: Timestamp.now(), actor: context.identity?.actor ?? "admin-token", address: context.client.address, action: action, target: target, detail: detail)
    }

    /// The catalog writing as the admin making the request.
    func writer(_ context: NodeRequestContext) -> Catalog {
        catalog.acting(as: Catalog.Actor(name: context.identity?.actor ?? "admin-token", address: context.client.address))
    }

    func peerJSON(_ p: PeerRecord) -> JSONValue {
        guard case .object(var o) = p.json else { return p.json }
        o["short_id"] = .string(String(p.nodeID.prefix(6)))
        o["lag"] = .int(p.lag)
        o["next_due"] = federation.nextDue(p.nodeID).map { .string(Timestamp(microsecondsSinceEpoch: $0 * 1000).description) } ?? .null
        return .object(o)
    }

    func nodeInfo() async throws -> JSONValue {
        var counts: JSONObject = [:]
        for kind in EntityKind.allCases { counts[kind.rawValue] = .int(Int64(try await catalog.store.count(kind))) }
        let d = federation.descriptor()
        let peers = await federation.peers.all()
        return [
            "node_id": .string(d.nodeID.longForm), "short_id": .string(d.nodeID.short), "compact_id": .string(d.nodeID.compact),
            "name": .string(d.name), "version": .string(ThingDataVersion.current), "base_url": .string(d.baseURL),
            "actor_epoch": .string(d.actorEpoch), "index_id": .string(d.indexID), "protocols": .array(d.protocols.map { .string($0) }),
            "database": .string(configuration.databaseURL == nil ? "sqlite" : "postgresql"),
            "entities": .object(counts), "revisions": .int(Int64(try await catalog.store.revisionCount())),
            "head": .int(try await catalog.store.latestSequence()),
            "conflicts": .int(Int64(try await catalog.store.conflicts(kind: nil, limit: 10_000, offset: 0).count)),
            "peers": .int(Int64(peers.count)),
            "policy": ["pull": .string(federation.settings.policy.pull.rawValue), "accept_push": .string(federation.settings.policy.acceptPush.rawValue),
                       "relay": .string(federation.settings.policy.relay.rawValue), "serve": .string(federation.settings.policy.serve.rawValue)],
        ]
    }
}

/// Refuses admin requests without the admin token (constant-time comparison) or a user token
/// with the admin role.
struct AdminTokenMiddleware: RouterMiddleware {
    typealias Context = NodeRequestContext
    let token: [UInt8]
    let access: AccessControl

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "The admin API needs Authorization: Bearer <token>; the token is in admin.token in the node's data directory",
                           extra: ["part": "token-missing"])
        }
        let secret = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        let given = Array(secret.utf8)
        var diff = UInt8(given.count == token.count ? 0 : 1)
        for (i, b) in token.enumerated() { diff |= b ^ (i < given.count ? given[i] : 0) }
        let client = context.client
        if diff == 0 {
            context.identity = ClientIdentity(user: nil, role: .admin, tokenID: nil, address: client.address, loopback: client.loopback)
            return try await next(request, context)
        }
        guard let (user, t) = await access.authenticate(secret: secret, address: client.address ?? "?", now: Timestamp.now()) else {
            throw APIError(.unauthorized, "The admin token is wrong", extra: ["part": "token-invalid"])
        }
        guard user.role == .admin else { throw APIError(.forbidden, "User \(user.name) has the \(user.role.rawValue) role; the admin API needs admin", extra: ["part": "role"]) }
        context.identity = ClientIdentity(user: user.name, role: user.role, tokenID: t.id, address: client.address, loopback: client.loopback)
        return try await next(request, context)
    }
}
