/// DNS-SD (RFC 6763) as ThingData uses it, over mDNS and unicast DNS alike: the service type,
/// the TXT keys, and how long an answer stands.
public enum ThingDataService {
    public static let type = "_thingdata._tcp"
    public static let protocolVersion = "1"

    /// The TXT strings a node publishes: `id=<node id>`, `v=<protocol version>`, and `path=`
    /// when its base path is not `/`.
    public static func txt(nodeID: String, path: String) -> [String] {
        var out = ["id=\(nodeID)", "v=\(protocolVersion)"]
        if !path.isEmpty && path != "/" { out.append("path=\(path)") }
        return out
    }

    /// TXT strings as an unordered key=value set (RFC 6763 §6.4: the first of a key wins; a
    /// key without `=` is a boolean attribute with an empty value).
    public static func attributes(_ strings: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for s in strings where !s.isEmpty && !s.hasPrefix("=") {
            let key: String
            let value: String
            if let eq = s.firstIndex(of: "=") {
                key = String(s[..<eq]).lowercased()
                value = String(s[s.index(after: eq)...])
            } else {
                key = s.lowercased()
                value = ""
            }
            if out[key] == nil { out[key] = value }
        }
        return out
    }

    /// The URL of a service instance: `http://host:port/path` (IPv6 literals bracketed).
    public static func url(host: String, port: Int, attributes: [String: String]) -> String {
        let h = IPAddress(host)?.urlHost ?? host.trimmingSuffix(".")
        let scheme = attributes["scheme"] == "https" ? "https" : "http"
        var path = attributes["path"] ?? ""
        if path == "/" { path = "" }
        if !path.isEmpty && !path.hasPrefix("/") { path = "/" + path }
        return "\(scheme)://\(h):\(port)\(path)"
    }

    /// When to look a DNS answer up again: when its TTL ends, but not sooner than a minute.
    public static func refreshDelay(ttlSeconds: UInt32) -> Int64 { Int64(max(60, ttlSeconds)) * 1000 }
}

/// One SRV answer.
public struct ServiceTarget: Sendable, Equatable {
    public var priority: Int
    public var weight: Int
    public var port: Int
    public var host: String

    public init(priority: Int, weight: Int, port: Int, host: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.host = host
    }

    /// RFC 2782's order: lowest priority first; within a priority, heavier first (the
    /// weighted random choice is for load spreading; a node dials each target anyway).
    public static func ordered(_ targets: [ServiceTarget]) -> [ServiceTarget] {
        targets.sorted { ($0.priority, -$0.weight, $0.host, $0.port) < ($1.priority, -$1.weight, $1.host, $1.port) }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
