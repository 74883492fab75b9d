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

extension Entity {
    /// `rendered(relationships:)` as bytes, spliced around the body's serialization like a
    /// stored entity's, without building the rendered object first (a create's answer).
    public func renderedBytes(relationships: [Entity]?) -> [UInt8] {
        Self.renderedJSON(kind: kind, id: id, body: JSONSerializer.serialize(.object(body)), createdAt: createdAt, updatedAt: updatedAt,
                          relationships: relationships?.map { JSONSerializer.serialize($0.rendered()) })
    }

    /// The v1 JSON bytes of a stored entity, spliced around its stored body text (a JSON
    /// object this node wrote) without parsing it: the fields and their order are those of
    /// `rendered`. `relationships` are already rendered relationship objects.
    public static func renderedJSON(kind: EntityKind, id: String, body: some BidirectionalCollection<UInt8>, createdAt: Timestamp, updatedAt: Timestamp?, relationships: [[UInt8]]?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 160 + (relationships?.reduce(0) { $0 + $1.count + 1 } ?? 0))
        out.append(contentsOf: #"{"id":"#.utf8)
        JSONSerializer.writeString(id, into: &out)
        if kind == .thing {
            out.append(contentsOf: #","uri":"#.utf8)
            JSONSerializer.writeString("thing:" + id, into: &out)
        }
        // The body's members: everything between its outer braces.
        var inner = body.drop { $0 != UInt8(ascii: "{") }.dropFirst()
        while let last = inner.last, last != UInt8(ascii: "}") { inner = inner.dropLast() }
        inner = inner.dropLast()
        if inner.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x09 && $0 != 0x0D }) {
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: inner)
        }
        out.append(contentsOf: #","created_at":"#.utf8)
        JSONSerializer.writeString(createdAt.description, into: &out)
        out.append(contentsOf: #","updated_at":"#.utf8)
        if let updatedAt { JSONSerializer.writeString(updatedAt.description, into: &out) } else { out.append(contentsOf: "null".utf8) }
        if let relationships {
            out.append(contentsOf: #","relationships":["#.utf8)
            for (i, r) in relationships.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: r)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// A filter column of the stores, named as in SQL.
public enum IndexColumn: String, Sendable, CaseIterable, Hashable {
    case type
    case thingID = "thing_id"
    case category
    case subcategory
    case sourceType = "source_type"
    case sourceID = "source_id"
    case targetType = "target_type"
    case targetID = "target_id"
    case relationshipType = "relationship_type"
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

    /// The `type` filter column alone (cheaper than the whole index).
    public static func type(of entity: Entity) -> String? {
        switch entity.kind {
        case .thing, .story: entity.body["type"]?.stringValue
        case .guide: entity.body["type"]?["primary"]?.stringValue
        case .relationship: nil
        }
    }

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

    public subscript(column: IndexColumn) -> String? {
        switch column {
        case .type: type
        case .thingID: thingID
        case .category: category
        case .subcategory: subcategory
        case .sourceType: sourceType
        case .sourceID: sourceID
        case .targetType: targetType
        case .targetID: targetID
        case .relationshipType: relationshipType
        }
    }

    public static func duplicateKey(type: String, manufacturer: String, name: String) -> String {
        // `fold` already puts one space between tokens, which never hold one.
        SearchText.fold(type) + "|" + SearchText.fold(manufacturer) + "|" + SearchText.fold(name)
    }
}
