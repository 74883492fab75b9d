/// How client input becomes an `Entity`: legacy shapes upgraded, validated, normalized, and
/// server-managed fields set. Pure: the id and the time come from the caller.
public enum ContentRules {
    /// Largest accepted JSON nesting, as the original's `MAX_JSON_DEPTH`.
    public static let maxDepth = 20
    /// Largest accepted request body, and so the largest entity: 10 MB, as the original.
    public static let maxBodyBytes = 10_000_000
    public static let maxEntityBytes = maxBodyBytes

    /// Validates a create or full-replace body and returns the normalized body.
    public static func normalize(_ kind: EntityKind, _ raw: JSONValue, at path: [ValidationIssue.PathElement] = ["body"].map { .key($0) }) throws(ValidationFailure) -> JSONObject {
        var value = raw
        if kind == .relationship { value = upgradeLegacyRelationship(value) }
        let normalized = try Validator().validate(value, against: ContentSchemas.schema(for: kind), at: path)
        guard case .object(var object) = normalized else { throw ValidationFailure([.init(loc: path, msg: "Input should be an object", type: "dict_type")]) }
        // Ids compare as lowercase everywhere (indexes, lookups, references).
        for field in ["thing_id", "source_id", "target_id"] {
            if let id = object[field]?.stringValue { object[field] = .string(id.lowercased()) }
        }
        let size = JSONSerializer.size(of: .object(object))
        if size > maxEntityBytes {
            throw ValidationFailure([.init(loc: path, msg: "Entity is \(size) bytes; at most \(maxEntityBytes) are allowed", type: "too_large")])
        }
        return object
    }

    /// The original's first relationship shape, `{thing_id, relationship_type, target_uri, relation_metadata}`
    /// (its API README still documents it), read as a thing-to-thing relationship.
    public static func upgradeLegacyRelationship(_ value: JSONValue) -> JSONValue {
        guard case .object(var o) = value, o["source_id"] == nil, let thingID = o["thing_id"] else { return value }
        o["source_type"] = o["source_type"] ?? "thing"
        o["source_id"] = thingID
        o["thing_id"] = nil
        if let target = o["target_uri"], o["target_id"] == nil {
            o["target_id"] = target
            o["target_type"] = o["target_type"] ?? "thing"
            o["target_uri"] = nil
        }
        if let meta = o["relation_metadata"], o["metadata"] == nil {
            o["metadata"] = meta
            o["relation_metadata"] = nil
        }
        return .object(o)
    }

    public static func create(_ kind: EntityKind, body: JSONObject, id: String, now: Timestamp) -> Entity {
        var body = body
        if kind == .story {
            body["version"] = ["number": "1.0.0", "date": .string(now.description), "history": []]
        }
        return Entity(kind: kind, id: id, body: body, createdAt: now, updatedAt: nil)
    }

    /// A story keeps this many earlier versions in `version.history`.
    public static let maxVersionHistory = 50

    /// Replaces an entity's body, keeping identity and creation time. A story's version moves
    /// to the next minor number and the previous one joins its history.
    public static func replace(_ existing: Entity, with body: JSONObject, now: Timestamp) -> Entity {
        var body = body
        if existing.kind == .story {
            let old = existing.body["version"] ?? .null
            let number = old["number"]?.stringValue ?? "1.0.0"
            let parts = number.split(separator: ".").compactMap { Int($0) }
            let next = parts.count == 3 ? "\(parts[0]).\(parts[1] + 1).0" : "1.1.0"
            var history = old["history"]?.arrayValue ?? []
            history.append(["number": .string(number), "date": old["date"] ?? .null])
            if history.count > maxVersionHistory { history.removeFirst(history.count - maxVersionHistory) }
            body["version"] = ["number": .string(next), "date": .string(now.description), "history": .array(history)]
        }
        var updated = existing
        updated.body = body
        updated.updatedAt = now
        return updated
    }

    /// The body a PATCH starts from: the client-owned fields, as a client would PUT them.
    public static func editableBody(_ entity: Entity) -> JSONValue {
        var body = entity.body
        body["version"] = nil
        return .object(body)
    }

    /// Entities this one points at, with the field that points.
    public static func references(of kind: EntityKind, body: JSONObject) -> [Reference] {
        switch kind {
        case .thing:
            return []
        case .story, .guide:
            guard let id = body["thing_id"]?.stringValue else { return [] }
            return [Reference(kind: .thing, id: id, field: "thing_id")]
        case .relationship:
            var refs: [Reference] = []
            for side in ["source", "target"] {
                if let t = body["\(side)_type"]?.stringValue, let k = EntityKind(rawValue: t), let id = body["\(side)_id"]?.stringValue {
                    refs.append(Reference(kind: k, id: id, field: "\(side)_id"))
                }
            }
            return refs
        }
    }
}

/// A pointer from one entity to another, such as a story's `thing_id`.
public struct Reference: Sendable, Hashable {
    public var kind: EntityKind
    public var id: String
    public var field: String
    public init(kind: EntityKind, id: String, field: String) {
        self.kind = kind
        self.id = id
        self.field = field
    }
}
