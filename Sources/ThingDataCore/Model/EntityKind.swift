/// The four kinds of repair knowledge a node stores.
public enum EntityKind: String, Sendable, CaseIterable, Hashable, Codable {
    case thing
    case story
    case guide
    case relationship

    /// The collection name in URLs: `/api/v1/things`.
    public var collection: String {
        switch self {
        case .thing: "things"
        case .story: "stories"
        case .guide: "guides"
        case .relationship: "relationships"
        }
    }

    public init?(collection: String) {
        guard let kind = EntityKind.allCases.first(where: { $0.collection == collection }) else { return nil }
        self = kind
    }

    /// "Thing", as error messages name it.
    public var title: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }

    /// Kinds a relationship may connect.
    public static let endpointKinds: [EntityKind] = [.thing, .story, .guide]
}

/// Allowed values, exactly the original's (`app/security.py`).
public enum Vocabulary {
    public static let thingTypes = ["device", "component", "material", "tool"]
    public static let storyTypes = ["repair", "maintenance", "modification", "diagnosis"]
    public static let guidePrimaryTypes = ["manual", "tutorial", "specification", "documentation"]
    public static let guideSecondaryTypes = ["repair", "maintenance"]
    public static let endpointTypes = ["thing", "story", "guide"]
    public static let directions = ["unidirectional", "bidirectional"]
    public static let severities = ["info", "note", "caution", "warning", "danger", "INFO", "NOTE", "CAUTION", "WARNING", "DANGER"]
}
