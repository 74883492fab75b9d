public import ThingDataCore
import ThingDataStore

/// The OpenAPI 3.1 document of the v1 API, generated from the same schemas that validate
/// requests, so the document and the server cannot drift apart. `thingdata openapi` writes it
/// to `Protocol/openapi.json`, and a test checks the committed copy is current.
public enum OpenAPIDocument {
    public static let document: JSONValue = build()

    /// JSON Schema (2020-12) for a request body.
    static func jsonSchema(_ schema: Schema, response: Bool = false) -> JSONValue {
        switch schema {
        case .string(let rule):
            var o: JSONObject = ["type": "string"]
            if let allowed = rule.allowed {
                o["enum"] = .array(allowed.map(JSONValue.string))
                return .object(o)
            }
            if rule.minLength > 0 { o["minLength"] = .int(Int64(rule.minLength)) }
            o["maxLength"] = .int(Int64(rule.maxLength))
            switch rule.format {
            case .url?: o["format"] = "uri"; o["pattern"] = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s:@.][^\\s]*$"
            case .email?: o["format"] = "email"
            case .uuid?: o["format"] = "uuid"
            case .date?: o["pattern"] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$"
            case .languageTag?: o["pattern"] = "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
            case nil: break
            }
            if response { o["maxLength"] = nil; o["minLength"] = nil; o["pattern"] = nil; o["format"] = nil }
            return .object(o)
        case .integer(let min, let max):
            var o: JSONObject = ["type": "integer"]
            if let min { o["minimum"] = .int(min) }
            if let max { o["maximum"] = .int(max) }
            return .object(o)
        case .number(let min, let max):
            var o: JSONObject = ["type": "number"]
            if let min { o["minimum"] = .double(min) }
            if let max { o["maximum"] = .double(max) }
            return .object(o)
        case .boolean:
            return ["type": "boolean"]
        case .array(let items, let maxItems):
            var o: JSONObject = ["type": "array", "items": jsonSchema(items, response: response)]
            if !response { o["maxItems"] = .int(Int64(maxItems)) }
            return .object(o)
        case .map(let key, let value, let maxEntries):
            var o: JSONObject = ["type": "object", "additionalProperties": jsonSchema(value, response: response)]
            if !response {
                o["maxProperties"] = .int(Int64(maxEntries))
                o["propertyNames"] = jsonSchema(.string(key))
            }
            return .object(o)
        case .anyOf(let options):
            return ["anyOf": .array(options.map { jsonSchema($0, response: response) })]
        case .any:
            return [:]
        case .nullable(let inner):
            return ["anyOf": [jsonSchema(inner, response: response), ["type": "null"]]]
        case .object(let rule):
            var properties = JSONObject()
            var required: [JSONValue] = []
            for field in rule.fields {
                var s = jsonSchema(field.schema, response: response)
                if let d = field.description, case .object(var o) = s {
                    o["description"] = .string(d)
                    s = .object(o)
                }
                properties[field.name] = s
                switch field.presence {
                case .required: required.append(.string(field.name))
                case .optional: if response { required.append(.string(field.name)) }
                case .omittable: break
                }
            }
            var o: JSONObject = ["type": "object", "properties": .object(properties)]
            if !required.isEmpty { o["required"] = .array(required) }
            o["additionalProperties"] = .bool(rule.keepsUnknown || response)
            return .object(o)
        }
    }

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    static func name(_ kind: EntityKind) -> String { kind.title }

    /// An entity as answered: the normalized body plus server-managed fields.
    static func responseSchema(_ kind: EntityKind) -> JSONValue {
        guard case .object(var o) = jsonSchema(ContentSchemas.schema(for: kind), response: true), case .object(var props)? = o["properties"] else { return [:] }
        props["id"] = ["type": "string", "format": "uuid"]
        if kind == .thing { props["uri"] = ["type": "string"] }
        if kind == .story {
            props["version"] = ["type": "object", "properties": ["number": ["type": "string"], "date": ["type": "string"], "history": ["type": "array"]], "required": ["number", "date", "history"]]
        }
        props["created_at"] = ["type": "string"]
        props["updated_at"] = ["anyOf": [["type": "string"], ["type": "null"]]]
        if kind != .relationship { props["relationships"] = ["type": "array", "items": ref("Relationship")] }
        o["properties"] = .object(props)
        var required = o["required"]?.arrayValue ?? []
        required += ["id", "created_at", "updated_at"]
        if kind == .thing { required.append("uri") }
        if kind == .story { required.append("version") }
        o["required"] = .array(required)
        return .object(o)
    }

    static func jsonContent(_ schema: JSONValue) -> JSONValue { ["application/json": ["schema": schema]] }

    static func response(_ description: String, _ schema: JSONValue? = nil, headers: JSONValue? = nil) -> JSONValue {
        var o: JSONObject = ["description": .string(description)]
        if let schema { o["content"] = jsonContent(schema) }
        if let headers { o["headers"] = headers }
        return .object(o)
    }

    static let errorResponses: JSONObject = [
        "400": response("Invalid input: malformed JSON, wrong types, values not allowed, or a wrong content type", ref("Error")),
        "404": response("Unknown id, or a reference to a missing entity", ref("Error")),
        "401": response("A token is needed (auth_mode token, or a write from off the host in auth_mode auto), or the token is unknown, expired or revoked; `part` says which", ref("Error")),
        "403": response("The token's role does not allow this (writes need editor or admin)", ref("Error")),
        "413": response("Body larger than 10 MB", ref("Error")),
        "429": response("Rate limit exceeded, or too many bad tokens from this address; see Retry-After", ref("Error")),
        "503": response("The database is unavailable", ref("Error")),
    ]

    static func operation(_ summary: String, tags: [String], parameters: [JSONValue] = [], body: JSONValue? = nil, bodyType: String = "application/json", responses: JSONObject) -> JSONValue {
        var o: JSONObject = ["summary": .string(summary), "tags": .array(tags.map(JSONValue.string))]
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        if let body {
            var content = JSONObject()
            content[bodyType] = ["schema": body]
            o["requestBody"] = ["required": true, "content": .object(content)]
        }
        var all = responses
        for (k, v) in errorResponses where all[k] == nil { all[k] = v }
        o["responses"] = .object(all)
        return .object(o)
    }

    static func query(_ name: String, _ schema: JSONValue, _ description: String, required: Bool = false) -> JSONValue {
        ["name": .string(name), "in": "query", "required": .bool(required), "description": .string(description), "schema": schema]
    }

    static let ifMatchParameter: JSONValue = [
        "name": "If-Match", "in": "header", "required": false, "description": "The ETag last read; the write fails with 412 if the entity changed since.",
        "schema": ["type": "string", "maxLength": 200],
    ]
    static let etagHeader: JSONValue = ["ETag": ["description": "The current version: the head revision id (a digest of all heads while in conflict).", "schema": ["type": "string"]]]
    static let idParameter: JSONValue = ["name": "id", "in": "path", "required": true, "schema": ["type": "string", "format": "uuid"]]
    static let filterString: JSONValue = ["type": "string", "maxLength": 500]

    static func listParameters(_ kind: EntityKind) -> [JSONValue] {
        var p: [JSONValue] = [
            query("skip", ["type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0], "Entries to skip."),
            query("limit", ["type": "integer", "minimum": 1, "maximum": 1000, "default": 100], "Entries per page."),
            query("cursor", filterString, "Opaque cursor from a previous page's X-Next-Cursor header, for stable deep paging."),
        ]
        switch kind {
        case .thing:
            p.append(query("type", filterString, "Thing type: device, component, material or tool."))
        case .story, .guide:
            p.append(query("thing_id", filterString, "Only entries about this thing."))
            p.append(query("category", filterString, "thing_category.category"))
            p.append(query("subcategory", filterString, "thing_category.subcategory"))
            if kind == .guide { p.append(query("type", filterString, "type.primary")) }
        case .relationship:
            p.append(query("source_type", ["type": "string", "enum": ["thing", "story", "guide"]], "Source kind."))
            p.append(query("source_id", filterString, "Source id."))
            p.append(query("target_type", ["type": "string", "enum": ["thing", "story", "guide"]], "Target kind."))
            p.append(query("target_id", filterString, "Target id."))
            p.append(query("relationship_type", filterString, "Relationship type."))
        }
        return p
    }

    static func build() -> JSONValue {
        var paths = JSONObject()
        var schemas = JSONObject()
        let nextHeaders: JSONValue = [
            "X-Next-Cursor": ["description": "Cursor for the next page, when the page is full.", "schema": ["type": "string"]],
            "Link": ["description": "rel=\"next\" link, when the page is full.", "schema": ["type": "string"]],
        ]
        for kind in EntityKind.allCases {
            let n = name(kind)
            schemas["\(n)Input"] = jsonSchema(ContentSchemas.schema(for: kind))
            schemas[n] = responseSchema(kind)
            let tag = [kind.collection]
            var inputRef = ref("\(n)Input")
            if kind == .relationship {
                inputRef = ["anyOf": [ref("RelationshipInput"), ref("LegacyRelationshipInput")]]
            }
            paths["/api/v1/\(kind.collection)"] = [
                "post": operation("Create a \(kind.rawValue)", tags: tag, body: inputRef, responses: ["200": response("The created \(kind.rawValue)", ref(n))]),
                "get": operation("List \(kind.collection)", tags: tag, parameters: listParameters(kind), responses: ["200": response("A page of \(kind.collection), oldest first", ["type": "array", "items": ref(n)], headers: nextHeaders)]),
            ]
            let confirm: JSONValue = ["name": "X-Confirm-Delete", "in": "header", "required": true, "schema": ["type": "string", "enum": ["true"]]]
            var deleteParams = [idParameter, confirm]
            if kind == .thing { deleteParams.append(query("cascade", ["type": "boolean"], "Also delete the stories and guides about this thing.")) }
            deleteParams.append(ifMatchParameter)
            let stale = response("If-Match named a version that is no longer current", ref("Error"))
            paths["/api/v1/\(kind.collection)/{id}"] = [
                "get": operation("Get a \(kind.rawValue)\(kind == .relationship ? "" : " with its relationships")", tags: tag, parameters: [idParameter], responses: ["200": response("The \(kind.rawValue)", ref(n), headers: etagHeader)]),
                "put": operation("Replace a \(kind.rawValue)", tags: tag, parameters: [idParameter, ifMatchParameter], body: ref("\(n)Input"), responses: ["200": response("The \(kind.rawValue) as stored", ref(n), headers: etagHeader), "412": stale]),
                "patch": operation("Change a \(kind.rawValue) with a JSON Merge Patch (RFC 7396)", tags: tag, parameters: [idParameter, ifMatchParameter], body: ["type": "object"], bodyType: "application/merge-patch+json", responses: ["200": response("The \(kind.rawValue) as stored", ref(n), headers: etagHeader), "412": stale]),
                "delete": operation("Delete a \(kind.rawValue) (and the relationships touching it)", tags: tag, parameters: deleteParams, responses: ["204": response("Deleted"), "409": response("Still referenced by stories or guides", ref("Error")), "412": stale]),
            ]
            paths["/api/v1/\(kind.collection)/{id}/history"] = [
                "get": operation("Revisions of a \(kind.rawValue), newest first: who, when, what changed, signature status", tags: tag,
                    parameters: [idParameter, query("limit", ["type": "integer", "minimum": 1, "maximum": 500, "default": 50], "Revisions per page."), query("cursor", filterString, "X-Next-Cursor of the previous page.")],
                    responses: ["200": response("Revisions", ["type": "array", "items": ref("RevisionSummary")], headers: ["X-Next-Cursor": ["description": "Cursor for older revisions, when the page is full.", "schema": ["type": "string"]]])])
            ]
            paths["/api/v1/\(kind.collection)/{id}/revisions/{rev}"] = [
                "get": operation("One revision in full, with its signed form", tags: tag,
                    parameters: [idParameter, ["name": "rev", "in": "path", "required": true, "schema": ["type": "string", "maxLength": 64]]],
                    responses: ["200": response("The revision", ref("RevisionDetail"))])
            ]
            paths["/api/v1/\(kind.collection)/{id}/diff"] = [
                "get": operation("Field-level differences between two revisions", tags: tag,
                    parameters: [idParameter, query("from", ["type": "string", "maxLength": 64], "Older revision (default: to's first parent)."), query("to", ["type": "string", "maxLength": 64], "Newer revision (default: the current head).")],
                    responses: ["200": response("The changes", ref("Diff"))])
            ]
            if kind != .relationship {
                paths["/api/v1/\(kind.collection)/{id}/relationships"] = [
                    "get": operation("Relationships of a \(kind.rawValue)", tags: tag, parameters: [idParameter, query("direction", ["type": "string", "enum": ["in", "out", "both"], "default": "both"], "in, out or both")], responses: ["200": response("Relationships", ["type": "array", "items": ref("Relationship")])]),
                ]
            }
        }
        schemas["LegacyRelationshipInput"] = [
            "type": "object", "description": "The original's first relationship shape, read as thing to thing.",
            "required": ["thing_id", "target_uri", "relationship_type"],
            "properties": ["thing_id": ["type": "string", "format": "uuid"], "target_uri": ["type": "string", "format": "uuid"], "relationship_type": ["type": "string", "minLength": 1, "maxLength": 100], "relation_metadata": ["type": "object"]],
        ]
        paths["/api/v1/things/{id}/stories"] = ["get": operation("Stories about a thing ([] for an unknown thing)", tags: ["things"], parameters: [idParameter], responses: ["200": response("Stories", ["type": "array", "items": ref("Story")])])]
        paths["/api/v1/things/{id}/graph"] = [
            "get": operation("A thing's neighbourhood: components, related things, stories and guides", tags: ["things"], parameters: [idParameter, query("depth", ["type": "integer", "minimum": 1, "maximum": 5, "default": 2], "Relationship hops")], responses: ["200": response("Nodes and edges", ref("Graph"))])
        ]
        paths["/api/v1/search"] = [
            "get": operation(
                "Full-text search over all multilingual text", tags: ["search"],
                parameters: [
                    query("q", ["type": "string", "minLength": 1, "maxLength": 500], "Words to find (prefix match; case and accents ignored).", required: true),
                    query("lang", ["type": "string", "pattern": "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", "maxLength": 64], "Prefer matches and titles in this language."),
                    query("kind", ["type": "string", "maxLength": 100], "thing, story, guide or relationship; comma-separated for several."),
                    query("type", filterString, "Entity type (a guide's primary type)."),
                    query("category", filterString, "thing_category.category of stories and guides."),
                    query("limit", ["type": "integer", "minimum": 1, "maximum": 100, "default": 20], "Results."),
                    query("offset", ["type": "integer", "minimum": 0, "maximum": 10000, "default": 0], "Results to skip."),
                ], responses: ["200": response("Ranked results with snippets", ref("SearchResults"))])
        ]
        let pathSchema: JSONValue = ["type": "array", "items": ["anyOf": [["type": "string"], ["type": "integer"]]]]
        schemas["RevisionSummary"] = [
            "type": "object", "required": ["id", "parents", "operation", "author", "time", "hlc", "version_vector", "signature"],
            "properties": [
                "id": ["type": "string"], "parents": ["type": "array", "items": ["type": "string"]], "operation": ["type": "string", "enum": ["create", "update", "delete"]],
                "author": ["type": "object", "required": ["node_id", "short_id", "public_key"]], "time": ["type": "string"], "hlc": ["type": "object"],
                "version_vector": ["type": "object", "additionalProperties": ["type": "integer"]], "signature": ["type": "string"],
                "changed_fields": ["type": "array", "items": ["type": "string"]],
            ],
        ]
        schemas["RevisionDetail"] = ["allOf": [ref("RevisionSummary"), ["type": "object", "required": ["kind", "entity_id", "body", "signed"], "properties": ["body": ["type": ["object", "null"]], "signed": ["type": "object"]]]]]
        schemas["Diff"] = [
            "type": "object", "required": ["from", "to", "changes"],
            "properties": ["from": ["type": ["string", "null"]], "to": ["type": "string"], "changes": ["type": "array", "items": ["type": "object", "required": ["path", "op"], "properties": ["path": pathSchema, "op": ["type": "string", "enum": ["add", "remove", "replace"]]]]]],
        ]
        schemas["ConflictSummary"] = [
            "type": "object", "required": ["kind", "id", "etag", "heads", "fields", "deleted_by", "overflow"],
            "properties": ["kind": ["type": "string"], "id": ["type": "string"], "etag": ["type": "string"], "heads": ["type": "array", "items": ["type": "string"]], "fields": ["type": "integer"]],
        ]
        schemas["Conflict"] = [
            "type": "object", "required": ["kind", "id", "etag", "base", "sides", "provisional", "winner", "fields", "deleted_by", "overflow"],
            "properties": [
                "sides": ["type": "array", "items": ref("RevisionDetail")],
                "fields": ["type": "array", "items": ["type": "object", "required": ["path", "base", "sides", "winner"], "properties": ["path": pathSchema]]],
            ],
        ]
        let kindParameter: JSONValue = ["name": "kind", "in": "path", "required": true, "schema": ["type": "string", "enum": .array(EntityKind.allCases.map { .string($0.rawValue) })]]
        paths["/api/v1/conflicts"] = [
            "get": operation("Entities with an open conflict", tags: ["conflicts"],
                parameters: [query("kind", ["type": "string", "enum": .array(EntityKind.allCases.map { .string($0.rawValue) })], "Only this kind."),
                    query("limit", ["type": "integer", "minimum": 1, "maximum": 1000, "default": 100], "Entries per page."), query("skip", ["type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0], "Entries to skip.")],
                responses: ["200": response("Open conflicts", ["type": "array", "items": ref("ConflictSummary")])])
        ]
        paths["/api/v1/conflicts/{kind}/{id}"] = [
            "get": operation("A conflict: the base, each side, the provisional winner, the differing fields", tags: ["conflicts"], parameters: [kindParameter, idParameter],
                responses: ["200": response("The conflict", ref("Conflict"))])
        ]
        paths["/api/v1/conflicts/{kind}/{id}/resolve"] = [
            "post": operation("Resolve: {\"choose\": REVISION} or the merged body; writes a revision on all heads", tags: ["conflicts"], parameters: [kindParameter, idParameter],
                body: ["type": "object"],
                responses: ["200": response("The resolved entity", ["type": "object"], headers: etagHeader), "204": response("Resolved by deleting"), "409": response("No open conflict", ref("Error")), "412": response("The entity changed while resolving", ref("Error"))])
        ]
        // Federation: the inter-instance API (Protocol/federation.md). Every request under
        // /federation/v1 carries an RFC 9421 signature by the calling node.
        let refusals: JSONObject = [
            "401": response("Unsigned, badly signed, stale, replayed or from an unknown key; `part` names what failed", ref("FederationRefusal")),
            "403": response("The calling node's trust is too low, it is blocked, or its key changed; `part` says which", ref("FederationRefusal")),
        ]
        schemas["FederationRefusal"] = ["allOf": [ref("Error"), ["type": "object", "required": ["part"], "properties": ["part": ["type": "string"]]]]]
        schemas["NodeDescriptor"] = [
            "type": "object",
            "required": ["type", "node_id", "public_key", "genesis_public_key", "name", "description", "software", "protocols", "capabilities", "languages", "base_url", "actor_epoch", "index_id", "key_rotations", "created_at", "signature"],
            "properties": [
                "type": ["type": "string", "const": "thingdata.node"], "node_id": ["type": "string"], "public_key": ["type": "string"], "genesis_public_key": ["type": "string"],
                "name": ["type": "string"], "description": ["type": "string"], "software": ["type": "object"], "protocols": ["type": "array", "items": ["type": "string"]],
                "capabilities": ["type": "array", "items": ["type": "string"]], "languages": ["type": "array", "items": ["type": "string"]], "base_url": ["type": "string"],
                "actor_epoch": ["type": "string"], "index_id": ["type": "string"], "key_rotations": ["type": "array", "items": ["type": "object"]], "created_at": ["type": "string"],
                "signature": ["type": "string"],
            ],
        ]
        schemas["ChangesPage"] = [
            "type": "object", "required": ["index_id", "node_id", "since", "cursor", "head", "more", "revisions"],
            "properties": ["index_id": ["type": "string"], "node_id": ["type": "string"], "since": ["type": "integer"], "cursor": ["type": "integer"], "head": ["type": "integer"], "more": ["type": "boolean"], "revisions": ["type": "array", "items": ["type": "object"]]],
        ]
        schemas["BatchReport"] = [
            "type": "object", "required": ["received", "stored", "duplicates", "rejected", "forged", "refused", "conflicts"],
            "properties": ["received": ["type": "integer"], "stored": ["type": "integer"], "duplicates": ["type": "integer"], "rejected": ["type": "integer"], "forged": ["type": "integer"], "refused": ["type": "integer"], "conflicts": ["type": "integer"]],
        ]
        func federation(_ summary: String, parameters: [JSONValue] = [], body: JSONValue? = nil, responses: JSONObject) -> JSONValue {
            var all = refusals
            for (k, v) in responses { all[k] = v }
            return operation(summary, tags: ["federation"], parameters: parameters, body: body, responses: all)
        }
        paths["/.well-known/thingdata"] = ["get": operation("This node's descriptor, signed by its key", tags: ["federation"], responses: ["200": response("The descriptor", ref("NodeDescriptor"))])]
        paths["/.well-known/webfinger"] = [
            "get": operation("WebFinger (RFC 7033): resolves thing:<uuid> and this node's base URL", tags: ["federation"],
                parameters: [query("resource", ["type": "string", "minLength": 1, "maxLength": 2000], "thing:<uuid> or the node's base URL", required: true)],
                responses: ["200": ["description": "A JRD", "content": ["application/jrd+json": ["schema": ["type": "object", "required": ["subject", "links"]]]]], "404": response("Unknown resource", ref("Error"))])
        ]
        paths["/federation/v1/changes"] = [
            "get": federation("Revisions after a cursor (this node's local sequence), batched as JSON or streamed as NDJSON (Accept: application/x-ndjson)",
                parameters: [query("since", ["type": "integer", "minimum": 0, "default": 0], "The cursor: the last sequence already held."),
                             query("limit", ["type": "integer", "minimum": 1, "maximum": 5000, "default": 2000], "Revisions per page (the serving node's sync_batch when left out).")],
                responses: ["200": ["description": "A page of the feed", "content": ["application/json": ["schema": ref("ChangesPage")], "application/x-ndjson": ["schema": ["type": "string"]]]]])
        ]
        paths["/federation/v1/revisions"] = [
            "get": federation("Revisions by id (at most 50)", parameters: [query("ids", ["type": "string", "minLength": 64, "maxLength": 3250, "pattern": "^[0-9a-fA-F]{64}(,[0-9a-fA-F]{64})*$"], "Comma-separated revision ids.", required: true)],
                responses: ["200": response("The revisions held here, and the ids that are not", ["type": "object", "required": ["revisions", "missing"]])]),
            "post": federation("Push revisions: each is checked; forged ones are refused and counted", body: ["type": "object", "required": ["revisions"], "properties": ["revisions": ["type": "array", "maxItems": 5000, "items": ["type": "object"]]]],
                responses: ["200": response("What was stored", ref("BatchReport")), "422": response("Some revisions were forged or tampered; nothing of them was stored", ref("BatchReport"))]),
        ]
        paths["/federation/v1/announce"] = [
            "post": federation("\"I have new revisions\": the receiver pulls from the caller at once", body: ["type": "object"],
                responses: ["202": response("A pull is scheduled", ["type": "object"])])
        ]
        paths["/federation/v1/keys"] = [
            "get": federation("Key rotation statements this node knows, for the nodes asked", parameters: [query("nodes", ["type": "string", "maxLength": 4000, "pattern": "^[A-Za-z0-9,-]*$"], "Comma-separated node ids; all when left out.")],
                responses: ["200": response("Rotation statements", ["type": "object", "required": ["key_rotations"]])])
        ]
        paths["/federation/v1/peers"] = [
            "get": federation("Peer exchange: this node's signed claim and those of up to 50 peers it synced with in the last hour; once a minute per asking peer",
                responses: ["200": response("Signed peer claims", ["type": "object", "required": ["self", "peers"],
                                                                  "properties": ["self": ["type": ["object", "null"]], "peers": ["type": "array", "maxItems": 50, "items": ["type": "object"]]]]),
                            "429": response("Asked again within the minute (Retry-After says when to ask)", ref("Error"))])
        ]
        schemas["Operation"] = jsonSchema(.object(Operation.batchSchema.objectFields.first!.schema.arrayElement!.objectFields, keepsUnknown: false))
        schemas["Batch"] = jsonSchema(Operation.batchSchema)
        paths["/api/v1/batch"] = [
            "post": operation("Up to 1000 creates, updates, patches and deletes, all or nothing", tags: ["batch"], body: ref("Batch"), responses: ["200": response("Every operation's result", ["type": "object", "required": ["count", "results"], "properties": ["count": ["type": "integer"], "results": ["type": "array", "items": ["type": "object"]]]]), "409": response("A delete would leave stories or guides pointing at nothing", ref("Error"))])
        ]
        schemas["PreflightSingle"] = jsonSchema(ContentRoutes.singlePreflightSchema)
        paths["/api/v1/preflight"] = [
            "post": operation("Run every check on an entity or a batch, writing nothing", tags: ["batch"], body: ["anyOf": [ref("Batch"), ref("PreflightSingle")]], responses: ["200": response("The report", ref("PreflightReport"))])
        ]
        schemas["Error"] = [
            "type": "object", "required": ["error", "detail"],
            "properties": [
                "error": ["type": "string", "description": "What went wrong."],
                "detail": ["anyOf": [["type": "string"], ["type": "array", "items": ["type": "object", "required": ["loc", "msg", "type"], "properties": ["loc": ["type": "array", "items": ["anyOf": [["type": "string"], ["type": "integer"]]]], "msg": ["type": "string"], "type": ["type": "string"]]]]]],
            ],
        ]
        schemas["SearchResults"] = [
            "type": "object", "required": ["query", "count", "results"],
            "properties": [
                "query": ["type": "string"], "count": ["type": "integer"],
                "results": ["type": "array", "items": ["type": "object", "required": ["kind", "id", "title", "snippet", "score", "url"], "properties": ["kind": ["type": "string"], "id": ["type": "string"], "type": ["anyOf": [["type": "string"], ["type": "null"]]], "title": ["type": "string"], "snippet": ["anyOf": [["type": "string"], ["type": "null"]], "description": "HTML-safe excerpt; matches wrapped in <mark>."], "field": ["anyOf": [["type": "string"], ["type": "null"]]], "language": ["anyOf": [["type": "string"], ["type": "null"]]], "score": ["type": "number"], "url": ["type": "string"]]]],
            ],
        ]
        schemas["Graph"] = [
            "type": "object", "required": ["root", "depth", "nodes", "edges", "truncated"],
            "properties": ["root": ["type": "string"], "depth": ["type": "integer"], "truncated": ["type": "boolean"], "nodes": ["type": "array", "items": ["type": "object"]], "edges": ["type": "array", "items": ["type": "object"]]],
        ]
        schemas["PreflightReport"] = [
            "type": "object", "required": ["ok", "operations", "errors", "warnings", "checks", "issues", "results"],
            "properties": ["ok": ["type": "boolean"], "operations": ["type": "integer"], "errors": ["type": "integer"], "warnings": ["type": "integer"], "checks": ["type": "array", "items": ["type": "string"]], "issues": ["type": "array", "items": ["type": "object"]], "results": ["type": "array", "items": ["type": "object"]]],
        ]
        schemas["Health"] = [
            "type": "object", "required": ["status", "timestamp", "version", "components", "metrics"],
            "properties": [
                "status": ["type": "string", "enum": ["healthy", "degraded", "unhealthy"]], "timestamp": ["type": "string"], "version": ["type": "string"],
                "components": ["type": "object", "properties": ["database": ["type": "string"], "api": ["type": "string"]]],
                "metrics": ["type": "object", "properties": ["memory_usage": ["type": "number"], "cpu_usage": ["type": "number"], "active_connections": ["type": "integer"], "storage_usage": ["anyOf": [["type": "number"], ["type": "null"]]], "federation_peers": ["anyOf": [["type": "integer"], ["type": "null"]]]]],
            ],
        ]
        let text: (String) -> JSONValue = { type in
            var content = JSONObject()
            content[type] = ["schema": ["type": "string"]]
            return ["200": ["description": "OK", "content": .object(content)]]
        }
        paths["/"] = ["get": ["summary": "Welcome page", "tags": ["node"], "responses": text("text/html")]]
        paths["/docs"] = ["get": ["summary": "Interactive API documentation", "tags": ["node"], "responses": text("text/html")]]
        paths["/favicon.ico"] = ["get": ["summary": "Icon", "tags": ["node"], "responses": ["200": ["description": "OK", "content": ["image/x-icon": ["schema": ["type": "string", "contentMediaType": "image/x-icon"]]]]]]]
        paths["/metrics"] = ["get": ["summary": "Prometheus metrics", "tags": ["node"], "responses": text("text/plain")]]
        paths["/openapi.json"] = ["get": ["summary": "This document", "tags": ["node"], "responses": ["200": response("OpenAPI 3.1", ["type": "object"])]]]
        paths["/health"] = ["get": ["summary": "Health, in the original's shape", "tags": ["node"], "responses": ["200": response("Health", ref("Health"))]]]
        paths["/health/live"] = ["get": ["summary": "Liveness", "tags": ["node"], "responses": ["200": response("Alive", ["type": "object"])]]]
        paths["/health/ready"] = ["get": ["summary": "Readiness: ready only when the database answers", "tags": ["node"], "responses": ["200": response("Ready", ["type": "object"]), "503": response("Not ready", ["type": "object"])]]]
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "ThingData", "version": .string(ThingDataVersion.current),
                "description": "The v1 API of a ThingData node: repair knowledge (things, stories, guides, relationships), compatible with the original Python ThingData server.",
                "license": ["name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"],
            ],
            "paths": .object(paths),
            "components": [
                "schemas": .object(schemas),
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "A token from `thingdata-admin tokens create USER` (roles: viewer reads, editor writes, admin everything)."]],
            ],
            "security": [[:], ["bearer": []]],
        ]
    }
}

extension Schema {
    var objectFields: [Field] {
        if case .object(let rule) = self { return rule.fields }
        return []
    }
    var arrayElement: Schema? {
        if case .array(let element, _) = self { return element }
        return nil
    }
}
