import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import ThingDataCore
import ThingDataFederation
import ThingDataSigning
import ThingDataStore

/// `/.well-known/thingdata`, WebFinger, and the inter-instance API under `/federation/v1`.
/// Every `/federation/v1` request must be signed (RFC 9421); see `Protocol/federation.md`.
struct FederationRoutes {
    let federation: Federation
    /// How the node is reached, to rebuild the signed target URI.
    var scheme = "http"

    func register(on router: Router<NodeRequestContext>) {
        router.get(".well-known/thingdata") { _, _ in
            JSONResponse.make(bytes: CanonicalJSON.encode(federation.descriptor().json), headers: [.cacheControl: "max-age=60"])
        }
        router.get(".well-known/webfinger") { request, _ in try await webfinger(request) }

        let api = router.group("federation/v1")
        api.get("changes") { request, context in
            _ = try await authenticated(request, context, needs: federation.settings.policy.serve, for: "reading changes")
            let q = Query(request)
            let since = Int64(try q.int("since", default: 0, range: 0...Int.max))
            let limit = try q.int("limit", default: federation.settings.batchSize, range: 1...5_000)
            let accept = request.headers[.accept] ?? ""
            if accept.contains("application/x-ndjson") {
                let page = try await federation.changes(since: since, limit: limit)
                return Self.bytes(page.bytes, contentType: "application/x-ndjson")
            }
            return JSONResponse.make(bytes: try await federation.changesJSON(since: since, limit: limit))
        }
        api.get("revisions") { request, context in
            _ = try await authenticated(request, context, needs: federation.settings.policy.serve, for: "reading revisions")
            guard let ids = try Query(request).string("ids", maxLength: 65 * 50)?.split(separator: ",").map(String.init), !ids.isEmpty else {
                throw APIError.badRequest("Query parameter ids is required: comma-separated revision ids (at most 50)", loc: ["query", "ids"], type: "missing")
            }
            guard ids.count <= 50, ids.allSatisfy({ Hex.isLowercaseHex($0.lowercased(), count: 64) }) else {
                throw APIError.badRequest("ids must be at most 50 revision ids (64 hex digits each)", loc: ["query", "ids"], type: "value_error")
            }
            return JSONResponse.make(bytes: try await federation.revisions(ids: ids).bytes)
        }
        api.post("revisions") { request, context in
            let (peer, body) = try await authenticatedWithBody(request, context)
            do throws(FederationRefusal) {
                let report = try await federation.receivePush(body, from: peer)
                return JSONResponse.make(report.json, status: report.forged > 0 ? .unprocessableContent : .ok)
            } catch { throw Self.refusal(error) }
        }
        api.post("announce") { request, context in
            let (peer, _) = try await authenticatedWithBody(request, context)
            do throws(FederationRefusal) { try federation.announced(by: peer) } catch { throw Self.refusal(error) }
            return JSONResponse.make(["status": "accepted", "pull": "scheduled"], status: .accepted)
        }
        api.get("keys") { request, context in
            _ = try await authenticated(request, context, needs: federation.settings.policy.serve, for: "reading keys")
            let nodes = try Query(request).string("nodes", maxLength: 4_000)?.split(separator: ",").map(String.init) ?? []
            return JSONResponse.make(try await federation.keys(nodes: nodes))
        }
        api.get("peers") { request, context in
            let peer = try await authenticated(request, context, needs: federation.settings.policy.serve, for: "peer exchange")
            switch await federation.exchangeAnswer(for: peer) {
            case .records(let answer):
                return JSONResponse.make(answer)
            case .tooSoon(let wait):
                let seconds = max(1, (wait + 999) / 1000)
                throw APIError(.tooManyRequests, "peer exchange answers each peer once a minute; ask again in \(seconds) s",
                               extra: ["part": "pex-rate"], headers: [.retryAfter: String(seconds)])
            }
        }
    }

    static func bytes(_ bytes: [UInt8], contentType: String) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return Response(status: .ok, headers: [.contentType: contentType, .contentLength: String(bytes.count)], body: .init(byteBuffer: buffer))
    }

    static func refusal(_ r: FederationRefusal) -> APIError {
        APIError(HTTPResponse.Status(code: r.status), r.reason, extra: ["part": .string(r.part)])
    }

    /// The request as it was signed: method, full target URI and fields.
    static func message(_ request: Request, scheme: String) -> (method: String, uri: String, fields: [String: String]) {
        let authority = request.head.authority ?? "localhost"
        var fields: [String: String] = [:]
        for f in request.headers {
            let name = f.name.canonicalName
            fields[name] = fields[name].map { $0 + ", " + f.value } ?? f.value
        }
        return (request.method.rawValue, "\(scheme)://\(authority)\(request.uri.string)", fields)
    }

    func authenticated(_ request: Request, _ context: NodeRequestContext, needs: TrustLevel, for what: String) async throws -> PeerRecord {
        let m = Self.message(request, scheme: scheme)
        do throws(FederationRefusal) {
            let peer = try await federation.authenticate(method: m.method, targetURI: m.uri, fields: m.fields, body: [])
            try federation.authorize(peer, needs, for: what)
            return peer
        } catch { throw Self.refusal(error) }
    }

    func authenticatedWithBody(_ request: Request, _ context: NodeRequestContext) async throws -> (PeerRecord, [UInt8]) {
        let body = request.body
        let buffer: ByteBuffer
        do { buffer = try await body.collect(upTo: 64 << 20) } catch { throw HTTPError(.contentTooLarge) }
        let bytes = Array(buffer: buffer)
        let m = Self.message(request, scheme: scheme)
        do throws(FederationRefusal) { return (try await federation.authenticate(method: m.method, targetURI: m.uri, fields: m.fields, body: bytes), bytes) } catch { throw Self.refusal(error) }
    }

    /// RFC 7033: `thing:<uuid>` resolves to the Thing's v1 URL here; the node's own base URL
    /// resolves to its descriptor.
    func webfinger(_ request: Request) async throws -> Response {
        guard let resource = try Query(request).string("resource", maxLength: 2_000) else {
            throw APIError.badRequest("Query parameter resource is required, e.g. resource=thing:<uuid>", loc: ["query", "resource"], type: "missing")
        }
        let base = federation.baseURL
        let node: JSONObject = ["http://thingdata.org/ns/node-id": .string(federation.key.nodeID.compact)]
        var jrd: JSONObject
        if resource.lowercased().hasPrefix("thing:") {
            let id = String(resource.dropFirst("thing:".count)).lowercased()
            guard UUID(uuidString: id) != nil, try await federation.catalog.store.entity(.thing, id: id) != nil else {
                throw APIError(.notFound, "No thing \(resource) on this node")
            }
            jrd = [
                "subject": .string("thing:\(id)"), "aliases": [.string("\(base)/api/v1/things/\(id)")], "properties": .object(node),
                "links": [["rel": "self", "type": "application/json", "href": .string("\(base)/api/v1/things/\(id)")],
                          ["rel": "http://thingdata.org/ns/history", "type": "application/json", "href": .string("\(base)/api/v1/things/\(id)/history")]],
            ]
        } else if resource == base || resource == base + "/" {
            jrd = ["subject": .string(base), "properties": .object(node),
                   "links": [["rel": "http://thingdata.org/ns/descriptor", "type": "application/json", "href": .string("\(base)/.well-known/thingdata")]]]
        } else {
            throw APIError(.notFound, "Unknown resource \(resource): ask for thing:<uuid> or this node's base URL")
        }
        let bytes = JSONSerializer.serialize(.object(jrd))
        return Response(status: .ok, headers: [.contentType: "application/jrd+json", .contentLength: String(bytes.count), .accessControlAllowOrigin: "*"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
