/// A node's claim about where it can be reached, signed by that node, as peer exchange
/// carries it: `{type, node_id, public_key, addresses, port, scheme, path, issued_at, seq}`.
/// Others pass it on unchanged, so a record heard third-hand still proves that its subject
/// said so (and when: `seq` grows with each new claim, so an old one cannot replace a newer).
/// Signing and checking the signature is ThingDataSigning's part; this type holds the rules.
public struct PeerClaim: Sendable, Equatable {
    public static let type = "thingdata.peer"
    public static let maxAddresses = 8

    public var nodeID: String
    public var publicKey: String
    public var addresses: [String]
    public var port: Int
    public var scheme: String
    public var path: String
    public var issuedAt: Int64
    public var seq: Int64
    public var signature: String

    public init(nodeID: String, publicKey: String, addresses: [String], port: Int, scheme: String, path: String, issuedAt: Int64, seq: Int64, signature: String = "") {
        self.nodeID = nodeID
        self.publicKey = publicKey
        self.addresses = addresses
        self.port = port
        self.scheme = scheme
        self.path = path
        self.issuedAt = issuedAt
        self.seq = seq
        self.signature = signature
    }

    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a record, checking its shape (not its signature).
    public init(json: JSONValue) throws(Malformed) {
        guard case .object(let o) = json, o["type"]?.stringValue == Self.type else { throw Malformed(description: "not a \(Self.type) record") }
        guard let node = o["node_id"]?.stringValue, NodeID(node) != nil, let key = o["public_key"]?.stringValue, key.count <= 64,
            case .array(let list)? = o["addresses"], let port = o["port"]?.intValue, let scheme = o["scheme"]?.stringValue,
            let issued = o["issued_at"]?.intValue, let seq = o["seq"]?.intValue, let signature = o["signature"]?.stringValue, signature.count <= 100
        else { throw Malformed(description: "a field is missing or of the wrong type") }
        let addresses = list.compactMap(\.stringValue)
        guard addresses.count == list.count, (1...Self.maxAddresses).contains(addresses.count), addresses.allSatisfy({ $0.count <= 64 }) else {
            throw Malformed(description: "addresses must be 1 to \(Self.maxAddresses) short strings")
        }
        guard (1...65535).contains(port), scheme == "http" || scheme == "https" else { throw Malformed(description: "bad port or scheme") }
        let path = o["path"]?.stringValue ?? ""
        guard path.count <= 200, path.isEmpty || path.hasPrefix("/") else { throw Malformed(description: "bad path") }
        self.init(nodeID: node, publicKey: key, addresses: addresses, port: Int(port), scheme: scheme, path: path, issuedAt: issued, seq: seq, signature: signature)
    }

    public var unsignedJSON: JSONObject {
        [
            "type": .string(Self.type), "node_id": .string(nodeID), "public_key": .string(publicKey),
            "addresses": .array(addresses.map { .string($0) }), "port": .int(Int64(port)), "scheme": .string(scheme), "path": .string(path),
            "issued_at": .int(issuedAt), "seq": .int(seq),
        ]
    }

    public var json: JSONValue {
        var o = unsignedJSON
        o["signature"] = .string(signature)
        return .object(o)
    }

    /// The URL for one of its addresses.
    public func url(_ address: String) -> String {
        let host = IPAddress(address)?.urlHost ?? address
        return "\(scheme)://\(host):\(port)\(path)"
    }
}

/// The rules of answering and taking peer exchange: pure, the clock passed in.
public struct PeerExchangeRules: Sendable, Equatable {
    /// Records in one answer, at most (BEP 11's 50).
    public var maxRecords = 50
    /// A listed peer must have synced successfully this recently (milliseconds).
    public var freshness: Int64 = 3_600_000
    /// One answer per asking peer per interval (milliseconds); 429 before that.
    public var answerInterval: Int64 = 60_000
    /// How far in the future a record's `issued_at` may be (seconds).
    public var maxSkew: Int64 = 300

    public init() {}
}

/// Remembers when each peer was last answered, to hold it to one answer per interval.
public struct ExchangeLimiter: Sendable, Equatable {
    public var rules: PeerExchangeRules
    var answered: [String: Int64] = [:]

    public init(rules: PeerExchangeRules = PeerExchangeRules()) { self.rules = rules }

    /// Nil if `peer` may be answered now (and records the answer); otherwise the milliseconds
    /// until it may ask again.
    public mutating func admit(_ peer: String, now: Int64) -> Int64? {
        if answered.count > 10_000 { answered = answered.filter { $0.value > now - rules.answerInterval } }
        if let last = answered[peer], now - last < rules.answerInterval { return rules.answerInterval - (now - last) }
        answered[peer] = now
        return nil
    }
}

/// Sorting received records: drops duplicates (per node, the highest `seq` wins), this node,
/// and anything past the per-answer limit. What is left is still hearsay: candidates only.
public enum PeerExchangeIntake {
    public static func dedupe(_ claims: [PeerClaim], selfID: String, limit: Int) -> [PeerClaim] {
        var best: [String: PeerClaim] = [:]
        var order: [String] = []
        for c in claims.prefix(limit) where c.nodeID != selfID {
            if let known = best[c.nodeID] {
                if c.seq > known.seq { best[c.nodeID] = c }
            } else {
                best[c.nodeID] = c
                order.append(c.nodeID)
            }
        }
        return order.compactMap { best[$0] }
    }
}
