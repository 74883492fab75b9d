/// One stored piece of repair knowledge: a Thing, Story, Guide or Relationship.
///
/// `body` holds the validated, normalized client fields (and a story's server-kept
/// `version`); identity and timestamps live beside it. The v1 JSON is `rendered`.
public struct Entity: Sendable, Hashable {
    public let kind: EntityKind
    /// A lowercase UUID.
    public let id: String
    public var body: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp?

    public init(kind: EntityKind, id: String, body: JSONObject, createdAt: Timestamp, updatedAt: Timestamp?) {
        self.kind = kind
        self.id = id
        self.body = body
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Stable and URL-safe, fixed at creation: `thing:<uuid>`. Only Things carry one, as in the original.
    public var uri: String? { kind == .thing ? "thing:\(id)" : nil }

    /// The v1 JSON, field for field the original's response shape.
    public func rendered(relationships: [Entity]? = nil) -> JSONValue {
        var out = JSONObject()
        out["id"] = .string(id)
        if let uri { out["uri"] = .string(uri) }
        for (k, v) in body { out[k] = v }
        out["created_at"] = .string(createdAt.description)
        out["updated_at"] = updatedAt.map { .string($0.description) } ?? .null
        if let relationships { out["relationships"] = .array(relationships.map { $0.rendered() }) }
        return .object(out)
    }
}

/// The columns a store indexes for filters; derived from the body, never stored apart from it.
public struct EntityIndex: Sendable, Hashable {
    public var type: String?
    public var thingID: String?
    public var category: String?
    public var subcategory: String?
    public var sourceType: String?
    public var sourceID: String?
    public var targetType: String?
    public var targetID: String?
    public var relationshipType: String?
    /// Things only: folded `type|manufacturer|default name`, to find likely duplicates.
    public var duplicateKey: String?

    public init(_ entity: Entity) {
        let b = entity.body
        switch entity.kind {
        case .thing:
            type = b["type"]?.stringValue
            let manufacturer = b["manufacturer"]?["name"]?.stringValue ?? ""
            let name = b["name"]?["default"]?.stringValue ?? ""
            duplicateKey = EntityIndex.duplicateKey(type: type ?? "", manufacturer: manufacturer, name: name)
        case .story:
            type = b["type"]?.stringValue
        case .guide:
            type = b["type"]?["primary"]?.stringValue
        case .relationship:
            sourceType = b["source_type"]?.stringValue
            sourceID = b["source_id"]?.stringValue
            targetType = b["target_type"]?.stringValue
            targetID = b["target_id"]?.stringValue
            relationshipType = b["relationship_type"]?.stringValue
        }
        if entity.kind == .story || entity.kind == .guide {
            thingID = b["thing_id"]?.stringValue
            category = b["thing_category"]?["category"]?.stringValue
            subcategory = b["thing_category"]?["subcategory"]?.stringValue
        }
    }

    public static func duplicateKey(type: String, manufacturer: String, name: String) -> String {
        [type, manufacturer, name].map { SearchText.fold($0).split(separator: " ").joined(separator: " ") }.joined(separator: "|")
    }
}
