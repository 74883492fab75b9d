import Foundation
public import Hummingbird
import HTTPTypes
import ThingDataCore
import ThingDataStore

/// The v1 content API under `/api/v1`: CRUD for every kind, related content, search, batch
/// and pre-flight. JSON on the wire is the original's.
struct ContentRoutes {
    let catalog: Catalog

    func register(on router: Router<NodeRequestContext>) {
        let api = router.group("api/v1")
        for kind in EntityKind.allCases {
            let group = api.group(RouterPath(kind.collection))
            group.post { request, context in try await create(kind, request, context) }
            group.get { request, context in try await list(kind, request, context) }
            group.get(":id") { request, context in
                let rendered = try await catalog.getJSON(kind, id: try context.parameters.require("id"))
                return JSONResponse.make(bytes: rendered.bytes, headers: Self.etagHeaders(rendered.etag))
            }
            group.get(":id/history") { request, context in
                let query = Query(request)
                let limit = try query.int("limit", default: 50, range: 1...500)
                var before: Int64?
                if let cursor = try query.string("cursor") {
                    guard let seq = Cursor.decode(cursor) else {
                        throw APIError.badRequest("Query parameter cursor is not a cursor this node issued", loc: ["query", "cursor"], type: "cursor_invalid")
                    }
                    before = seq
                }
                let (items, next) = try await catalog.history(kind, id: try context.parameters.require("id"), limit: limit, before: before)
                var headers = HTTPFields()
                if let next { headers[HTTPField.Name("X-Next-Cursor")!] = Cursor.encode(next) }
                return JSONResponse.make(.array(items), headers: headers)
            }
            group.get(":id/revisions/:rev") { request, context in
                JSONResponse.make(try await catalog.revision(kind, id: try context.parameters.require("id"), rev: try context.parameters.require("rev")))
            }
            group.get(":id/diff") { request, context in
                let query = Query(request)
                return JSONResponse.make(try await catalog.diff(kind, id: try context.parameters.require("id"), from: try query.string("from", maxLength: 64), to: try query.string("to", maxLength: 64)))
            }
            group.put(":id") { request, context in try await write(.update, kind, request, context) }
            group.patch(":id") { request, context in try await write(.patch, kind, request, context) }
            group.delete(":id") { request, context in try await delete(kind, request, context) }
            if kind != .relationship {
                group.get(":id/relationships") { request, context in
                    let direction = try Query(request).oneOf("direction", RelationshipDirection.allCases.map(\.rawValue)).flatMap(RelationshipDirection.init(rawValue:)) ?? .both
                    return JSONResponse.make(.array(try await catalog.relationships(of: kind, id: try context.parameters.require("id"), direction: direction)))
                }
            }
        }
        api.get("things/:id/stories") { request, context in
            var q = ListQuery(kind: .story, limit: 1000)
            q.filters[.thingID] = try context.parameters.require("id").lowercased()
            return JSONResponse.make(.array(try await catalog.list(q).map { $0.entity.rendered() }))
        }
        api.get("things/:id/graph") { request, context in
            let depth = try Query(request).int("depth", default: 2, range: 1...5)
            return JSONResponse.make(try await catalog.graph(thingID: try context.parameters.require("id"), depth: depth))
        }
        api.get("search") { request, context in try await search(request) }
        api.get("conflicts") { request, context in
            let query = Query(request)
            let kind = try query.oneOf("kind", EntityKind.allCases.map(\.rawValue)).flatMap(EntityKind.init(rawValue:))
            let limit = try query.int("limit", default: 100, range: 1...1000)
            let skip = try query.int("skip", default: 0, range: 0...1_000_000)
            return JSONResponse.make(.array(try await catalog.conflicts(kind: kind, limit: limit, offset: skip)))
        }
        api.get("conflicts/:kind/:id") { request, context in
            let (kind, id) = try Self.conflictTarget(context)
            return JSONResponse.make(try await catalog.conflict(kind, id: id))
        }
        api.post("conflicts/:kind/:id/resolve") { request, context in
            let (kind, id) = try Self.conflictTarget(context)
            let body = try await request.jsonBody(context: context)
            let entity = try await Self.writer(catalog, context).resolve(kind, id: id, with: body)
            let tag = try await catalog.etag(kind, id: id)
            guard entity != nil else { return Response(status: .noContent, headers: Self.etagHeaders(tag)) }
            return JSONResponse.make(try await catalog.get(kind, id: id), headers: Self.etagHeaders(tag))
        }
        api.post("batch") { request, context in
            let ops = try Operation.batch(from: try await request.jsonBody(context: context))
            let plan = try await Self.writer(catalog, context).apply(ops, path: { [.key("body"), .key("operations"), .index($0)] })
            let results = plan.results
            return JSONResponse.make(["count": .int(Int64(results.count)), "results": .array(results)])
        }
        api.post("preflight") { request, context in
            let body = try await request.jsonBody(context: context)
            if body["operations"] != nil {
                let ops = try Operation.batch(from: body)
                return JSONResponse.make(try await catalog.preflight(ops, path: { [.key("body"), .key("operations"), .index($0)] }))
            }
            let op = try Self.singleOperation(body)
            return JSONResponse.make(try await catalog.preflight([op], path: { _ in [] }))
        }
    }

    /// The schema of a single pre-flight request: `{kind, body, op?, id?}`.
    static let singlePreflightSchema: Schema = .object(
        [
            Field("kind", .oneOf(EntityKind.allCases.map(\.rawValue) + EntityKind.allCases.map(\.collection)), .required),
            Field("op", .oneOf(["create", "update", "patch"]), .optional(default: "create")),
            Field("id", .string(max: 36, format: .uuid), .omittable),
            Field("body", .object([]), .required),
        ], keepsUnknown: false)

    static func singleOperation(_ body: JSONValue) throws -> ThingDataStore.Operation {
        let checked = try Validator().validate(body, against: singlePreflightSchema, at: [.key("body")])
        let kindName = checked["kind"]?.stringValue ?? ""
        guard let kind = EntityKind(rawValue: kindName) ?? EntityKind(collection: kindName),
            let verb = checked["op"]?.stringValue.flatMap(Operation.Verb.init(rawValue:))
        else { throw APIError.badRequest("kind and op are required", loc: ["body", "kind"]) }
        return Operation(verb, kind, id: checked["id"]?.stringValue, body: checked["body"])
    }

    static func conflictTarget(_ context: NodeRequestContext) throws -> (EntityKind, String) {
        let name = try context.parameters.require("kind")
        guard let kind = EntityKind(rawValue: name) ?? EntityKind(collection: name) else {
            throw APIError.badRequest("Unknown kind \(name): use thing, story, guide or relationship", loc: ["path", "kind"], type: "enum")
        }
        let id = try context.parameters.require("id")
        guard Formats.isUUID(id) else { throw CatalogError(.notFound, "\(kind.title) not found") }
        return (kind, id)
    }

    /// `ETag: "<head revision id>"`.
    static func etagHeaders(_ tag: String?) -> HTTPFields {
        var h = HTTPFields()
        if let tag { h[.eTag] = "\"\(tag)\"" }
        return h
    }

    /// The tag of `If-Match`: quotes and a weak prefix removed; nil for none or `*`.
    static func ifMatch(_ request: Request) throws -> String? {
        guard let raw = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), raw != "*" else { return nil }
        var tag = Substring(raw)
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        guard tag.count >= 2, tag.first == "\"", tag.last == "\"", !tag.dropFirst().dropLast().contains("\"") else {
            throw APIError(.badRequest, "If-Match must be one entity tag in quotes, as the ETag header gave it",
                issues: [ValidationIssue(loc: [.key("header"), .key("If-Match")], msg: "Expected one quoted entity tag", type: "value_error")])
        }
        return String(tag.dropFirst().dropLast())
    }

    /// The catalog writing on behalf of the request's client, for the audit log.
    static func writer(_ catalog: Catalog, _ context: NodeRequestContext) -> Catalog {
        let client = context.client
        let identity = context.identity ?? ClientIdentity(user: nil, role: nil, tokenID: nil, address: client.address, loopback: client.loopback)
        return catalog.acting(as: Catalog.Actor(name: identity.actor, address: identity.address))
    }

    func create(_ kind: EntityKind, _ request: Request, _ context: NodeRequestContext) async throws -> Response {
        let body = try await request.jsonBody(context: context)
        let (entity, tag) = try await Self.writer(catalog, context).applyTagged(Operation(.create, kind, body: body))
        guard let entity else { return JSONResponse.make(.null, headers: Self.etagHeaders(tag)) }
        return JSONResponse.make(bytes: entity.renderedBytes(relationships: kind == .relationship ? nil : []), headers: Self.etagHeaders(tag))
    }

    func write(_ verb: ThingDataStore.Operation.Verb, _ kind: EntityKind, _ request: Request, _ context: NodeRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let body = try await request.jsonBody(context: context, allowMergePatch: verb == .patch)
        guard Formats.isUUID(id) else { throw CatalogError(.notFound, "\(kind.title) not found") }
        let (_, tag) = try await Self.writer(catalog, context).applyTagged(Operation(verb, kind, id: id, body: body, ifMatch: try Self.ifMatch(request)))
        return JSONResponse.make(try await catalog.get(kind, id: id), headers: Self.etagHeaders(tag))
    }

    func delete(_ kind: EntityKind, _ request: Request, _ context: NodeRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard request.headers[HTTPField.Name("X-Confirm-Delete")!]?.lowercased() == "true" else {
            throw APIError(.badRequest, "Deleting requires the header X-Confirm-Delete: true",
                issues: [ValidationIssue(loc: [.key("header"), .key("X-Confirm-Delete")], msg: "Header X-Confirm-Delete: true is required to delete", type: "missing")])
        }
        let cascade = try Query(request).bool("cascade")
        guard Formats.isUUID(id) else { throw CatalogError(.notFound, "\(kind.title) not found") }
        _ = try await Self.writer(catalog, context).apply(Operation(.delete, kind, id: id, cascade: cascade, ifMatch: try Self.ifMatch(request)))
        return Response(status: .noContent)
    }

    func list(_ kind: EntityKind, _ request: Request, _ context: NodeRequestContext) async throws -> Response {
        let query = Query(request)
        let skip = try query.int("skip", default: 0, range: 0...1_000_000)
        let limit = try query.int("limit", default: 100, range: 1...1000)
        var q = ListQuery(kind: kind, offset: skip, limit: limit)
        if let cursor = try query.string("cursor") {
            guard let seq = Cursor.decode(cursor) else {
                throw APIError.badRequest("Query parameter cursor is not a cursor this node issued", loc: ["query", "cursor"], type: "cursor_invalid")
            }
            q.afterSequence = seq
        }
        let allowed: [IndexColumn]
        switch kind {
        case .thing: allowed = [.type]
        case .story: allowed = [.thingID, .category, .subcategory]
        case .guide: allowed = [.thingID, .category, .subcategory, .type]
        case .relationship: allowed = [.sourceType, .sourceID, .targetType, .targetID, .relationshipType]
        }
        for column in allowed {
            let value: String?
            switch column {
            case .sourceType, .targetType: value = try query.oneOf(column.rawValue, Vocabulary.endpointTypes)
            case .thingID, .sourceID, .targetID: value = try query.string(column.rawValue)?.lowercased()
            default: value = try query.string(column.rawValue)
            }
            q.filters[column] = value
        }
        let page = try await catalog.list(q)
        var headers = HTTPFields()
        if page.count == limit, let last = page.last {
            let cursor = Cursor.encode(last.sequence)
            headers[HTTPField.Name("X-Next-Cursor")!] = cursor
            headers[HTTPField.Name("Link")!] = "<\(request.uri.path)?limit=\(limit)&cursor=\(cursor)>; rel=\"next\""
        }
        return JSONResponse.make(.array(page.map { $0.entity.rendered() }), headers: headers)
    }

    func search(_ request: Request) async throws -> Response {
        let query = Query(request)
        guard let q = try query.string("q", maxLength: 500) else {
            throw APIError.badRequest("Query parameter q is required", loc: ["query", "q"], type: "missing")
        }
        let lang = try query.string("lang", maxLength: 64)
        if let lang, !Formats.isLanguageTag(lang) {
            throw APIError.badRequest("Query parameter lang should be a BCP 47 language tag such as 'en' or 'zh-Hant'", loc: ["query", "lang"])
        }
        var kinds = EntityKind.allCases
        if let raw = try query.string("kind") {
            kinds = try raw.split(separator: ",").map { name in
                guard let k = EntityKind(rawValue: String(name)) ?? EntityKind(collection: String(name)) else {
                    throw APIError.badRequest("Query parameter kind should be thing, story, guide or relationship, not '\(name)'", loc: ["query", "kind"], type: "enum")
                }
                return k
            }
        }
        let limit = try query.int("limit", default: 20, range: 1...100)
        let offset = try query.int("offset", default: 0, range: 0...10_000)
        let result = try await catalog.search(q, lang: lang, kinds: kinds, type: try query.string("type"), category: try query.string("category"), limit: limit, offset: offset)
        return JSONResponse.make(result)
    }
}

/// Opaque list cursors: the store sequence after which the next page starts.
enum Cursor {
    static func encode(_ sequence: Int64) -> String {
        Data("c1:\(sequence)".utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) -> Int64? {
        var b64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let text = String(data: data, encoding: .utf8), text.hasPrefix("c1:"),
            let seq = Int64(text.dropFirst(3)), seq >= 0
        else { return nil }
        return seq
    }
}
