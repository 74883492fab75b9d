import Crypto

/// A node's identity, derived from its first (genesis) Ed25519 public key so that it
/// certifies itself: whoever shows that key proves the id; later keys are introduced by
/// rotation statements signed by the key before them.
///
/// - bytes: the first 20 bytes of SHA-256(genesis public key, 32 raw bytes);
/// - long form: the 32 Base32 characters of those bytes plus 4 check characters (the first
///   20 bits of SHA-256("thingdata-node-id" ‖ bytes)), 36 characters in six groups of six
///   joined by `-`: `MFRGG2-DFMZTW-Q2LKNN-WG23TP-OBYXE4-3UOV3H`;
/// - compact form (in revisions and on the wire): the same 36 characters without dashes;
/// - short form (for people, never for identity): the first group.
///
/// Parsing takes either form, in any case, and refuses a wrong check.
public struct NodeID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]
    /// Base32 of the bytes and a 4-character check, made once: every stored revision and
    /// every key lookup names its author this way.
    public let compact: String

    public init(genesisKey publicKey: [UInt8]) {
        bytes = Self.bytes(genesisKey: publicKey)
        compact = Base32.encode(bytes) + Self.check(bytes)
    }

    public init?(_ text: String) {
        // The compact form as written in revisions (36 characters, upper case) is taken as is.
        let plain = text.utf8.count == 36 && !text.utf8.contains(UInt8(ascii: "-")) ? text : String(text.filter { $0 != "-" })
        guard plain.utf8.count == 36, plain.utf8.allSatisfy({ $0 < 0x80 }), let decoded = Base32.decode(String(plain.prefix(32))), decoded.count == 20 else { return nil }
        let check = Self.check(decoded)
        let upper = plain.uppercased()
        guard check == upper.dropFirst(32) else { return nil }
        bytes = decoded
        // 32 Base32 characters (ASCII) carry exactly 160 bits, so the upper-case text is the encoding.
        compact = upper
    }

    static func bytes(genesisKey publicKey: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: publicKey).prefix(20)) }

    /// Whether `publicKey` is the genesis key this id was derived from (no text made).
    public func isGenesis(_ publicKey: [UInt8]) -> Bool { Self.bytes(genesisKey: publicKey) == bytes }

    static func check(_ bytes: [UInt8]) -> String {
        let digest = Array(SHA256.hash(data: Array("thingdata-node-id".utf8) + bytes))
        return String(Base32.encode(Array(digest.prefix(3))).prefix(4))
    }

    public var longForm: String {
        let c = Array(compact)
        return stride(from: 0, to: 36, by: 6).map { String(c[$0..<$0 + 6]) }.joined(separator: "-")
    }
    public var short: String { String(compact.prefix(6)) }
    public var description: String { longForm }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
    public static func == (a: NodeID, b: NodeID) -> Bool { a.bytes == b.bytes }
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}

/// SHA-256 as lowercase hex.
public enum ContentHash {
    public static func sha256Hex(_ bytes: [UInt8]) -> String { Hex.encode(SHA256.hash(data: bytes)) }
}

extension ContentHash {
    /// Incremental SHA-256, for streams (bundles).
    public struct Stream: Sendable {
        var hasher = SHA256()
        public init() {}
        public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }
        public func finalizeHex() -> String { Hex.encode(hasher.finalize()) }
    }
}
