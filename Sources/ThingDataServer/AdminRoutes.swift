import Foundation
public import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import ThingDataCore
public import ThingDataFederation
import ThingDataSigning
import ThingDataStore

/// The admin API, under `/admin/v1` on its own listener (loopback by default). Every request
/// needs `Authorization: Bearer <admin token>`; every action that changes something is logged.
struct AdminRoutes {
    let federation: Federation
    let configuration: NodeConfiguration
    let logger: Logger
    var catalog: Catalog { federation.catalog }

    func register(on router: Router<NodeRequestContext>) {
        let api = router.group("admin/v1")
        api.get("node") { _, _ in JSONResponse.make(try await nodeInfo()) }
        api.get("digest") { _, _ in JSONResponse.make(try await catalog.digest()) }
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
            audit("peers add", url)
            return JSONResponse.make(peerJSON(p), status: .created)
        }
        api.post("peers/:id/trust") { request, context in
            let body = try await request.jsonBody(context: context)
            guard let raw = body["level"]?.stringValue, let level = TrustLevel(rawValue: raw) else {
                throw APIError.badRequest("Send {\"level\": one of \(TrustLevel.allCases.map(\.rawValue).joined(separator: ", "))}", loc: ["body", "level"], type: "enum")
            }
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.setTrust(id, level) }
            audit("peers trust", "\(p.nodeID) \(level.rawValue)")
            return JSONResponse.make(peerJSON(p))
        }
        api.post("peers/:id/block") { _, context in
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.setTrust(id, .blocked) }
            audit("peers block", p.nodeID)
            return JSONResponse.make(peerJSON(p))
        }
        api.delete("peers/:id") { _, context in
            let id = try context.parameters.require("id")
            let p = try await catalogCall { try await federation.forget(id) }
            audit("peers forget", p.nodeID)
            return JSONResponse.make(["forgotten": .string(p.nodeID)])
        }
        api.post("sync") { request, context in
            var peerID: String?
            if request.headers[.contentLength].flatMap(Int.init) ?? 0 > 0 {
                peerID = try await request.jsonBody(context: context)["peer"]?.stringValue
            }
            audit("sync now", peerID ?? "all peers")
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
            let entity = try await catalogCall { try await catalog.resolve(kind, id: id, with: body) }
            audit("conflicts resolve", "\(kind.rawValue)/\(id)")
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
                audit(blocked ? "authors block" : "authors unblock", id.compact)
                return JSONResponse.make(["author": .string(id.compact), "blocked": .bool(blocked)])
            }
        }
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

    func audit(_ action: String, _ detail: String) {
        logger.notice("admin: \(action)", metadata: ["detail": .string(detail)])
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

/// Refuses admin requests without the admin token (constant-time comparison).
struct AdminTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "The admin API needs Authorization: Bearer <token>; the token is in admin.token in the node's data directory",
                           extra: ["part": "token-missing"])
        }
        let given = Array(header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces).utf8)
        var diff = UInt8(given.count == token.count ? 0 : 1)
        for (i, b) in token.enumerated() { diff |= b ^ (i < given.count ? given[i] : 0) }
        guard diff == 0 else { throw APIError(.unauthorized, "The admin token is wrong", extra: ["part": "token-invalid"]) }
        return try await next(request, context)
    }
}
