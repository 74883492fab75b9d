/// One thing wrong with a document, in the shape FastAPI reports it (`loc`, `msg`, `type`), so
/// clients of the original read our errors with the code they already have.
public struct ValidationIssue: Sendable, Hashable, Error, CustomStringConvertible {
    public enum PathElement: Sendable, Hashable, CustomStringConvertible {
        case key(String)
        case index(Int)
        public var description: String {
            switch self {
            case .key(let k): k
            case .index(let i): String(i)
            }
        }
        public var json: JSONValue {
            switch self {
            case .key(let k): .string(k)
            case .index(let i): .int(Int64(i))
            }
        }
    }

    public var loc: [PathElement]
    public var msg: String
    public var type: String

    public init(loc: [PathElement], msg: String, type: String) {
        self.loc = loc
        self.msg = msg
        self.type = type
    }

    /// `name.translations.xx: Input should be ...`
    public var description: String {
        loc.isEmpty ? msg : loc.map(\.description).joined(separator: ".") + ": " + msg
    }

    public var json: JSONValue {
        ["loc": .array(loc.map(\.json)), "msg": .string(msg), "type": .string(type)]
    }

    public func prefixed(_ prefix: [PathElement]) -> ValidationIssue {
        ValidationIssue(loc: prefix + loc, msg: msg, type: type)
    }
}

/// A document that failed validation: every issue found, not just the first.
public struct ValidationFailure: Error, Sendable, Equatable {
    public var issues: [ValidationIssue]
    public init(_ issues: [ValidationIssue]) { self.issues = issues }
    public var message: String {
        issues.count == 1 ? issues[0].description : "\(issues.count) validation errors: " + issues.prefix(5).map(\.description).joined(separator: "; ")
    }
}
