public import ThingDataCore

/// One write a client asks for, on its own or inside a batch.
public struct Operation: Sendable {
    public enum Verb: String, Sendable, CaseIterable {
        case create, update, patch, delete
    }
    public var verb: Verb
    public var kind: EntityKind
    /// The target of update, patch and delete; may be `$ref:NAME` inside a batch.
    public var id: String?
    /// A name later operations of the batch use as `$ref:NAME` for the id this create makes.
    public var ref: String?
    public var body: JSONValue?
    /// Delete also removes the stories and guides that point at a thing.
    public var cascade: Bool
    /// For update, patch and delete: the entity tag the client last saw (`If-Match`); the
    /// write fails with 412 if the entity's heads have moved since.
    public var ifMatch: String?

    public init(_ verb: Verb, _ kind: EntityKind, id: String? = nil, ref: String? = nil, body: JSONValue? = nil, cascade: Bool = false, ifMatch: String? = nil) {
        self.ifMatch = ifMatch
        self.verb = verb
        self.kind = kind
        self.id = id
        self.ref = ref
        self.body = body
        self.cascade = cascade
    }

    /// The largest batch accepted.
    public static let maxBatch = 1000

    static let refPrefix = "$ref:"

    /// The batch envelope as a schema (used for validation and for the OpenAPI document).
    public static let batchSchema: Schema = .object(
        [
            Field(
                "operations",
                .array(
                    .object(
                        [
                            Field("op", .oneOf(Verb.allCases.map(\.rawValue)), .required),
                            Field("kind", .oneOf(EntityKind.allCases.map(\.rawValue) + EntityKind.allCases.map(\.collection)), .required),
                            Field("id", .string(max: 200, min: 1), .omittable, "Target of update, patch and delete; `$ref:NAME` names an earlier create."),
                            Field("ref", .string(max: 100, min: 1), .omittable, "Name for the id this create makes."),
                            Field("body", .object([]), .omittable, "The entity (create, update) or a JSON Merge Patch (patch)."),
                            Field("cascade", .boolean, .omittable),
                        ], keepsUnknown: false),
                    maxItems: maxBatch),
                .required),
        ], keepsUnknown: false)

    /// Reads a validated batch envelope.
    public static func batch(from value: JSONValue) throws(ValidationFailure) -> [Operation] {
        let checked = try Validator().validate(value, against: batchSchema, at: [.key("body")])
        return (checked["operations"]?.arrayValue ?? []).compactMap { op in
            guard let verb = op["op"]?.stringValue.flatMap(Verb.init(rawValue:)),
                let kindName = op["kind"]?.stringValue,
                let kind = EntityKind(rawValue: kindName) ?? EntityKind(collection: kindName)
            else { return nil }
            return Operation(verb, kind, id: op["id"]?.stringValue, ref: op["ref"]?.stringValue, body: op["body"], cascade: op["cascade"]?.boolValue ?? false)
        }
    }
}

/// Why the catalog refused a request. Nothing was written.
public struct CatalogError: Error, Sendable {
    public enum Status: Int, Sendable {
        case badRequest = 400
        case notFound = 404
        case conflict = 409
        case preconditionFailed = 412
    }
    public var status: Status
    public var message: String
    public var issues: [ValidationIssue]
    /// Per-operation outcome, for batches.
    public var results: [JSONValue]?

    public init(_ status: Status, _ message: String, issues: [ValidationIssue] = [], results: [JSONValue]? = nil) {
        self.status = status
        self.message = message
        self.issues = issues
        self.results = results
    }
}
