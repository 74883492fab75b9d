/// A declarative description of what a JSON document may contain.
///
/// One schema per entity kind drives three things, so they cannot disagree: validation of
/// every write, normalization (defaults filled in, the original's `null`/`{}`/`[]`), and the
/// component schemas of the OpenAPI document in `Protocol/`.
public indirect enum Schema: Sendable {
    case string(StringRule)
    case integer(min: Int64? = nil, max: Int64? = nil)
    case number(min: Double? = nil, max: Double? = nil)
    case boolean
    case array(Schema, maxItems: Int)
    case object(ObjectRule)
    /// An object used as a map, such as `translations` (language tag to text).
    case map(key: StringRule, value: Schema, maxEntries: Int)
    /// The first alternative that validates wins.
    case anyOf([Schema])
    /// Any JSON value (still bound by the document's depth and size limits).
    case any
    case nullable(Schema)
}

public struct StringRule: Sendable {
    public var minLength: Int
    public var maxLength: Int
    public var format: StringFormat?
    public var allowed: [String]?

    public init(minLength: Int = 0, maxLength: Int, format: StringFormat? = nil, allowed: [String]? = nil) {
        self.minLength = minLength
        self.maxLength = maxLength
        self.format = format
        self.allowed = allowed
    }

    public static func oneOf(_ values: [String]) -> StringRule {
        StringRule(maxLength: values.map(\.count).max() ?? 0, allowed: values)
    }
}

public enum StringFormat: String, Sendable {
    case url = "uri"
    case email = "email"
    case date = "date-or-date-time"
    case languageTag = "bcp47"
    case uuid = "uuid"
}

public struct Field: Sendable {
    public enum Presence: Sendable {
        case required
        /// Left out, the field takes this value (`null`, `[]`, `{}` as the original fills them).
        case optional(default: JSONValue)
        /// Left out, the field stays out.
        case omittable
    }
    public var name: String
    public var schema: Schema
    public var presence: Presence
    public var description: String?

    public init(_ name: String, _ schema: Schema, _ presence: Presence, _ description: String? = nil) {
        self.name = name
        self.schema = schema
        self.presence = presence
        self.description = description
    }
}

public struct ObjectRule: Sendable {
    public var fields: [Field]
    /// Unknown keys are kept unchanged (true) or rejected (false).
    public var keepsUnknown: Bool
    public var maxProperties: Int
    /// Keys that are accepted and dropped: server-managed fields a client echoes back.
    public var ignored: [String]

    public init(_ fields: [Field], keepsUnknown: Bool = true, maxProperties: Int = 200, ignored: [String] = []) {
        self.fields = fields
        self.keepsUnknown = keepsUnknown
        self.maxProperties = maxProperties
        self.ignored = ignored
    }
}

extension Schema {
    public static func string(max: Int, min: Int = 0, format: StringFormat? = nil) -> Schema {
        .string(StringRule(minLength: min, maxLength: max, format: format))
    }
    public static func oneOf(_ values: [String]) -> Schema { .string(.oneOf(values)) }
    public static func object(_ fields: [Field], keepsUnknown: Bool = true, ignored: [String] = []) -> Schema {
        .object(ObjectRule(fields, keepsUnknown: keepsUnknown, ignored: ignored))
    }
}
