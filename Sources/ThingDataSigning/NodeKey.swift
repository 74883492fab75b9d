public import Crypto
public import ThingDataCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A node's signing identity: its current Ed25519 key, the genesis public key its id derives
/// from, and the rotation statements that lead from one to the other.
public struct NodeKey: Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey
    public let genesisPublicKey: [UInt8]
    /// Oldest first; each is signed by the key before it.
    public let rotations: [KeyRotation]
    /// The current public key and the node id, derived once: every signed revision names both,
    /// and deriving them costs a scalar multiplication and a SHA-256.
    public let publicKey: [UInt8]
    public let nodeID: NodeID

    public init(privateKey: Curve25519.Signing.PrivateKey, genesisPublicKey: [UInt8]? = nil, rotations: [KeyRotation] = []) {
        self.privateKey = privateKey
        publicKey = Array(privateKey.publicKey.rawRepresentation)
        self.genesisPublicKey = genesisPublicKey ?? publicKey
        self.rotations = rotations
        nodeID = NodeID(genesisKey: self.genesisPublicKey)
    }

    /// A new random key (a new node identity).
    public static func generate() -> NodeKey { NodeKey(privateKey: Curve25519.Signing.PrivateKey()) }

    public var author: Revision.Author { .init(nodeID: nodeID, publicKey: publicKey) }

    public func sign(_ bytes: [UInt8]) -> [UInt8] {
        // Ed25519 signing is deterministic and cannot fail for a valid key and any message.
        Array(try! privateKey.signature(for: bytes))
    }

    /// A new key, introduced by a statement signed with the current one.
    public func rotated(now: Timestamp) -> NodeKey {
        let next = Curve25519.Signing.PrivateKey()
        let statement = KeyRotation.make(nodeID: nodeID, previous: self, newKey: Array(next.publicKey.rawRepresentation), sequence: rotations.count + 1, at: now)
        return NodeKey(privateKey: next, genesisPublicKey: genesisPublicKey, rotations: rotations + [statement])
    }
}

/// "Node N's key K(n−1) introduces key K(n)": canonical JSON signed by the previous key.
///
///     {"created_at":…,"new_key":…,"node_id":…,"previous_key":…,"sequence":n,
///      "signature":…,"type":"thingdata.key-rotation"}
public struct KeyRotation: Sendable, Hashable {
    public let nodeID: NodeID
    public let previousKey: [UInt8]
    public let newKey: [UInt8]
    public let sequence: Int
    public let createdAt: String
    public let signature: [UInt8]

    static let type = "thingdata.key-rotation"

    var unsignedJSON: JSONObject {
        [
            "created_at": .string(createdAt), "new_key": .string(Base64URL.encode(newKey)), "node_id": .string(nodeID.compact),
            "previous_key": .string(Base64URL.encode(previousKey)), "sequence": .int(Int64(sequence)), "type": .string(Self.type),
        ]
    }

    public var json: JSONValue {
        var o = unsignedJSON
        o["signature"] = .string(Base64URL.encode(signature))
        return .object(o)
    }

    static func make(nodeID: NodeID, previous: NodeKey, newKey: [UInt8], sequence: Int, at: Timestamp) -> KeyRotation {
        let unsigned = KeyRotation(nodeID: nodeID, previousKey: previous.publicKey, newKey: newKey, sequence: sequence, createdAt: at.description, signature: [])
        return KeyRotation(nodeID: nodeID, previousKey: previous.publicKey, newKey: newKey, sequence: sequence, createdAt: at.description,
            signature: previous.sign(CanonicalJSON.encode(.object(unsigned.unsignedJSON))))
    }

    init(nodeID: NodeID, previousKey: [UInt8], newKey: [UInt8], sequence: Int, createdAt: String, signature: [UInt8]) {
        self.nodeID = nodeID
        self.previousKey = previousKey
        self.newKey = newKey
        self.sequence = sequence
        self.createdAt = createdAt
        self.signature = signature
    }

    public init(json: JSONValue) throws(RevisionError) {
        guard case .object(let o) = json, o["type"]?.stringValue == Self.type,
            let node = o["node_id"]?.stringValue.flatMap(NodeID.init), let prev = o["previous_key"]?.stringValue.flatMap(Base64URL.decode), prev.count == 32,
            let new = o["new_key"]?.stringValue.flatMap(Base64URL.decode), new.count == 32, let seq = o["sequence"]?.intValue, seq > 0,
            let created = o["created_at"]?.stringValue, let sig = o["signature"]?.stringValue.flatMap(Base64URL.decode), sig.count == 64
        else { throw RevisionError(.malformed, "not a key rotation statement") }
        self.init(nodeID: node, previousKey: prev, newKey: new, sequence: Int(seq), createdAt: created, signature: sig)
    }

    /// Whether the previous key signed this statement.
    public var isSignatureValid: Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: previousKey) else { return false }
        return key.isValidSignature(signature, for: CanonicalJSON.encode(.object(unsignedJSON)))
    }
}

/// The keys this node accepts for each author: the genesis key (checked by derivation) and
/// every key a valid chain of rotation statements introduced.
public struct KeyBook: Sendable {
    var keys: [NodeID: Set<[UInt8]>] = [:]
    public init() {}

    /// Adds the statements of one node, oldest first. A statement whose previous key is not
    /// already known for its node (genesis or earlier rotation) is refused.
    public mutating func add(_ rotations: [KeyRotation]) throws(RevisionError) {
        for r in rotations.sorted(by: { $0.sequence < $1.sequence }) {
            guard r.isSignatureValid else { throw RevisionError(.badSignature, "key rotation \(r.sequence) of \(r.nodeID.short) has a bad signature") }
            guard isKnown(r.previousKey, for: r.nodeID) else {
                throw RevisionError(.wrongKey, "key rotation \(r.sequence) of \(r.nodeID.short) is signed by a key not known for that node")
            }
            keys[r.nodeID, default: []].insert(r.newKey)
        }
    }

    public func isKnown(_ key: [UInt8], for node: NodeID) -> Bool {
        node.isGenesis(key) || keys[node]?.contains(key) == true
    }
}

extension SignedRevision {
    /// Checks that the author's key belongs to the author's node and signed these bytes.
    public func verify(keys: KeyBook) throws(RevisionError) {
        try checkAuthor(keys: keys)
        guard NodeKey.isValid(signature: signature, of: signingBytes, by: revision.author.publicKey) else {
            throw RevisionError(.badSignature, "the signature does not match the revision's bytes")
        }
    }

    func checkAuthor(keys: KeyBook) throws(RevisionError) {
        let author = revision.author
        guard keys.isKnown(author.publicKey, for: author.nodeID) else {
            throw RevisionError(.wrongKey, "key \(Base64URL.encode(author.publicKey).prefix(8))… is not a key of node \(author.nodeID.short)")
        }
    }

    /// `verify(keys:)` of each revision, the signatures checked together in one
    /// `Ed25519Batch` (several times faster than one by one). Only when the batch fails are
    /// the suspects its halving leaves (`Ed25519Batch.suspects`) checked one by one, to say
    /// which fail and why. Nil where a revision passes.
    public static func verifyAll(_ revisions: [SignedRevision], keys: KeyBook) -> [RevisionError?] {
        var failures = [RevisionError?](repeating: nil, count: revisions.count)
        var items: [Ed25519Batch.Item] = []
        var itemRevision: [Int] = []
        items.reserveCapacity(revisions.count)
        itemRevision.reserveCapacity(revisions.count)
        for (i, s) in revisions.enumerated() {
            do throws(RevisionError) {
                try s.checkAuthor(keys: keys)
                items.append(Ed25519Batch.Item(publicKey: s.revision.author.publicKey, message: s.signingBytes, signature: s.signature))
                itemRevision.append(i)
            } catch { failures[i] = error }
        }
        if Ed25519Batch.verify(items) { return failures }
        for item in Ed25519Batch.suspects(items) {
            let i = itemRevision[item]
            do throws(RevisionError) { try revisions[i].verify(keys: keys) } catch { failures[i] = error }
        }
        return failures
    }
}

/// Reads and writes `node.key` in the data directory: mode 0600, refused if others can read it.
public enum KeyFile {
    public static let name = "node.key"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads the key, or makes one if there is none.
    public static func loadOrCreate(directory: String, now: Timestamp) throws -> (key: NodeKey, created: Bool) {
        let path = directory + "/" + name
        if FileManager.default.fileExists(atPath: path) { return (try load(path: path), false) }
        let key = NodeKey(privateKey: Curve25519.Signing.PrivateKey())
        try write(key, path: path)
        return (key, true)
    }

    public static func load(path: String) throws -> NodeKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        if st.st_mode & 0o077 != 0 {
            throw Failure(description: "\(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); a node key must be private: run chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path), case .object(let o) = try? JSONParser.parse(Array(data)),
            let keyText = o["private_key"]?.stringValue, let raw = Base64URL.decode(keyText), raw.count == 32,
            let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw),
            let genesis = o["genesis_public_key"]?.stringValue.flatMap(Base64URL.decode), genesis.count == 32
        else { throw Failure(description: "\(path) is not a ThingData node key") }
        var rotations: [KeyRotation] = []
        for r in o["rotations"]?.arrayValue ?? [] {
            guard let rotation = try? KeyRotation(json: r) else { throw Failure(description: "\(path) holds a damaged key rotation statement") }
            rotations.append(rotation)
        }
        return NodeKey(privateKey: privateKey, genesisPublicKey: genesis, rotations: rotations)
    }

    /// Writes atomically: a new file made with mode 0600, then renamed over the old one.
    public static func write(_ key: NodeKey, path: String) throws {
        let doc: JSONValue = [
            "format": 1,
            "node_id": .string(key.nodeID.longForm),
            "public_key": .string(Base64URL.encode(key.publicKey)),
            "private_key": .string(Base64URL.encode(key.privateKey.rawRepresentation)),
            "genesis_public_key": .string(Base64URL.encode(key.genesisPublicKey)),
            "rotations": .array(key.rotations.map(\.json)),
        ]
        let bytes = Array((JSONSerializer.pretty(doc) + "\n").utf8)
        let temp = path + ".new"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count, rename(temp, path) == 0 else { throw Failure(description: "cannot write \(path)") }
    }
}

extension NodeKey {
    /// Whether `signature` is the Ed25519 signature of `bytes` by raw public key `key`.
    public static func isValid(signature: [UInt8], of bytes: [UInt8], by key: [UInt8]) -> Bool {
        guard let k = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return k.isValidSignature(signature, for: bytes)
    }
}

/// The admin API's bearer token, in `admin.token` in the data directory: made by
/// `thingdata init` (or the first `serve`) with mode 0600, refused if others can read it.
public enum AdminTokenFile {
    public static let name = "admin.token"

    public static func loadOrCreate(directory: String) throws -> String {
        let path = directory + "/" + name
        if FileManager.default.fileExists(atPath: path) { return try load(path: path) }
        var rng = SystemRandomNumberGenerator()
        let token = "tdadm_" + Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let bytes = Array((token + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw KeyFile.Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count else { throw KeyFile.Failure(description: "cannot write \(path)") }
        return token
    }

    public static func load(path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw KeyFile.Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        if st.st_mode & 0o077 != 0 {
            throw KeyFile.Failure(description: "\(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); the admin token must be private: run chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path), case let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
            token.count >= 20
        else { throw KeyFile.Failure(description: "\(path) does not hold an admin token") }
        return token
    }
}
