/// The id of a revision: lowercase hex SHA-256 of its canonical bytes without the signature.
public typealias RevisionID = String

/// One signed change to one entity: a create, an update or a delete (tombstone).
///
/// Its wire form is a JSON object in RFC 8785 canonical form (see `Protocol/revisions.md`):
///
///     {"author":{"node_id":…,"public_key":…},"body":{…},"entity_id":…,"format":1,
///      "hlc":{"logical":0,"wall":…},"kind":"thing","parents":[…],"signature":…,
///      "version_vector":{…}}
///
/// with `"tombstone":true` instead of `body` for a delete. The id is the SHA-256 of the
/// canonical bytes of that object without `signature`, and the signature is Ed25519 over those
/// same bytes. The signed bytes are kept verbatim, so a relayed revision still verifies.
public struct Revision: Sendable, Hashable {
    public struct Author: Sendable, Hashable {
        public var nodeID: NodeID
        /// Raw Ed25519 public key, 32 bytes.
        public var publicKey: [UInt8]
        public init(nodeID: NodeID, publicKey: [UInt8]) {
            self.nodeID = nodeID
            self.publicKey = publicKey
        }
    }

    public static let format: Int64 = 1
    /// The largest signed revision accepted, in bytes: the largest entity the v1 API takes
    /// (10 MB, as the original) plus room for the revision's own fields.
    public static let maxBytes = ContentRules.maxEntityBytes + 65_536
    /// The most parents one revision may name (the open-heads cap, see `MergeEngine`).
    public static let maxParents = 64

    public var kind: EntityKind
    public var entityID: String
    /// Sorted, distinct.
    public var parents: [RevisionID]
    public var versionVector: VersionVector
    public var author: Author
    public var hlc: HLC
    /// The entity's stored fields plus `created_at` and `updated_at`; nil for a tombstone.
    public var body: JSONObject?

    public init(kind: EntityKind, entityID: String, parents: [RevisionID], versionVector: VersionVector, author: Author, hlc: HLC, body: JSONObject?) {
        self.kind = kind
        self.entityID = entityID
        self.parents = Array(Set(parents)).sorted()
        self.versionVector = versionVector
        self.author = author
        self.hlc = hlc
        self.body = body
    }

    public var isTombstone: Bool { body == nil }

    /// The JSON object without the signature.
    public var unsignedJSON: JSONObject {
        var o: JSONObject = [
            "author": ["node_id": .string(author.nodeID.compact), "public_key": .string(Base64URL.encode(author.publicKey))],
            "entity_id": .string(entityID),
            "format": .int(Self.format),
            "hlc": hlc.json,
            "kind": .string(kind.rawValue),
            "parents": .array(parents.map { .string($0) }),
            "version_vector": versionVector.json,
        ]
        if let body { o["body"] = .object(body) } else { o["tombstone"] = true }
        return o
    }

    /// What the id hashes and the signature signs.
    public var signingBytes: [UInt8] { CanonicalJSON.encode(.object(unsignedJSON)) }
    public var id: RevisionID { ContentHash.sha256Hex(signingBytes) }

    /// The complete signed wire bytes.
    public func signed(signature: [UInt8]) -> SignedRevision {
        signed(signature: signature, signingBytes: signingBytes)
    }

    /// The signed wire bytes from the signing bytes already made: the signature member is
    /// spliced in at its sorted place (after `parents`, before `tombstone` or
    /// `version_vector`), which is exactly the canonical encoding of the signed object.
    public func signed(signature: [UInt8], signingBytes unsigned: [UInt8]) -> SignedRevision {
        let member = Array(",\"signature\":\"".utf8) + Array(Base64URL.encode(signature).utf8) + [UInt8(ascii: "\"")]
        // The members after `signature` are `tombstone` (deletes) and `version_vector` (always,
        // last); their names never occur later in the bytes (vector keys are hex actor ids).
        let at = SignedRevision.lastIndex(of: Array((isTombstone ? ",\"tombstone\":" : ",\"version_vector\":").utf8), in: unsigned) ?? unsigned.count - 1
        let bytes = Array(unsigned[..<at]) + member + Array(unsigned[at...])
        return SignedRevision(revision: self, id: ContentHash.sha256Hex(unsigned), signature: signature, bytes: bytes)
    }
}

/// A revision with its signature, its id and the verbatim bytes it travels and is stored as.
/// Decoding checks structure only; `ThingDataSigning` checks the signature and the author.
public struct SignedRevision: Sendable, Hashable {
    public let revision: Revision
    public let id: RevisionID
    public let signature: [UInt8]
    /// The canonical signed object, exactly as received or written.
    public let bytes: [UInt8]
    /// The canonical bytes without the signature (hashed for the id, signed): cut from
    /// `bytes` when asked for, so a large batch holds its bytes once.
    public var signingBytes: [UInt8] { Self.withoutSignature(bytes) ?? [] }

    /// Canonical signed bytes without their signature member: the last `,"signature":"` in
    /// them (only `tombstone` and `version_vector`, whose contents never hold that text,
    /// follow it).
    static func withoutSignature(_ bytes: [UInt8]) -> [UInt8]? {
        let marker = Array(",\"signature\":\"".utf8)
        guard let at = lastIndex(of: marker, in: bytes), let close = bytes[(at + marker.count)...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return Array(bytes[..<at]) + Array(bytes[(close + 1)...])
    }

    static func lastIndex(of marker: [UInt8], in bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { b in
            marker.withUnsafeBufferPointer { m in
                var at = b.count - m.count
                while at >= 0 {
                    if b[at] == m[0] {
                        var i = 1
                        while i < m.count && b[at + i] == m[i] { i += 1 }
                        if i == m.count { return at }
                    }
                    at -= 1
                }
                return nil
            }
        }
    }

    /// Parses and checks a revision's wire bytes: size, canonical form, every field's type and
    /// range. Throws `RevisionError` with the failing part named.
    public static func decode(_ bytes: [UInt8]) throws(RevisionError) -> SignedRevision {
        var authors = AuthorMemo()
        return try decode(bytes, authors: &authors)
    }

    /// The same, with `authors` remembering the last author read: a page or bundle by one
    /// author (the usual case) parses and checks its node id and key once, not once a line.
    public static func decode(_ bytes: [UInt8], authors: inout AuthorMemo) throws(RevisionError) -> SignedRevision {
        guard bytes.count <= Revision.maxBytes else { throw .init(.tooLarge, "revision is \(bytes.count) bytes; the limit is \(Revision.maxBytes)") }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes, maxDepth: 64) } catch { throw .init(.malformed, "not JSON: \(error)") }
        guard case .object(let o) = value else { throw .init(.malformed, "a revision is a JSON object") }
        guard CanonicalJSON.isCanonical(value, bytes) else { throw .init(.notCanonical, "revision bytes are not in RFC 8785 canonical form") }
        let allowed: Set<String> = ["author", "body", "entity_id", "format", "hlc", "kind", "parents", "signature", "tombstone", "version_vector"]
        if let extra = o.keys.first(where: { !allowed.contains($0) }) { throw .init(.malformed, "unknown field \(extra)") }
        guard case .int(Revision.format)? = o["format"] else { throw .init(.malformed, "format must be \(Revision.format)") }
        guard let sigText = o["signature"]?.stringValue, let signature = Base64URL.decode(sigText), signature.count == 64 else {
            throw .init(.malformed, "signature must be 64 bytes in base64url")
        }
        guard let kind = o["kind"]?.stringValue.flatMap(EntityKind.init(rawValue:)) else { throw .init(.malformed, "kind must be thing, story, guide or relationship") }
        guard let entityID = o["entity_id"]?.stringValue, Formats.isUUID(entityID), entityID == entityID.lowercased() else {
            throw .init(.malformed, "entity_id must be a lowercase UUID")
        }
        guard case .array(let parentValues)? = o["parents"], parentValues.count <= Revision.maxParents else {
            throw .init(.malformed, "parents must be an array of at most \(Revision.maxParents) revision ids")
        }
        let parents = parentValues.compactMap(\.stringValue)
        guard parents.count == parentValues.count, parents.allSatisfy({ Hex.isLowercaseHex($0, count: 64) }), parents == Array(Set(parents)).sorted() else {
            throw .init(.malformed, "parents must be distinct sorted revision ids (64 lowercase hex)")
        }
        guard let vv = o["version_vector"].flatMap(VersionVector.init(json:)), !vv.counters.isEmpty, vv.counters.count <= VersionVector.maxActors else {
            throw .init(.malformed, "version_vector must map 1 to \(VersionVector.maxActors) actor ids to positive counters")
        }
        guard let hlc = o["hlc"].flatMap(HLC.init(json:)) else { throw .init(.malformed, "hlc must be {wall, logical}") }
        guard case .object(let a)? = o["author"], a.count == 2, let nodeText = a["node_id"]?.stringValue, let keyText = a["public_key"]?.stringValue,
            let (nodeID, key) = authors.author(nodeText, keyText)
        else { throw .init(.malformed, "author must be {node_id (compact), public_key (32 bytes base64url)}") }
        let body: JSONObject?
        switch (o["body"], o["tombstone"]) {
        case (.object(let b)?, nil): body = b
        case (nil, .bool(true)?): body = nil
        default: throw .init(.malformed, "a revision has either an object body or \"tombstone\": true")
        }
        let revision = Revision(kind: kind, entityID: entityID, parents: parents, versionVector: vv, author: .init(nodeID: nodeID, publicKey: key), hlc: hlc, body: body)
        guard let unsigned = SignedRevision.withoutSignature(bytes) else { throw .init(.malformed, "no signature member") }
        return SignedRevision(revision: revision, id: ContentHash.sha256Hex(unsigned), signature: signature, bytes: bytes)
    }

    init(revision: Revision, id: RevisionID, signature: [UInt8], bytes: [UInt8]) {
        self.revision = revision
        self.id = id
        self.signature = signature
        self.bytes = bytes
    }

    public static func == (a: SignedRevision, b: SignedRevision) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { h.combine(id) }
}

/// The last author `SignedRevision.decode` read, as text and parsed.
public struct AuthorMemo: Sendable {
    var nodeText = ""
    var keyText = ""
    var parsed: (nodeID: NodeID, key: [UInt8])?

    public init() {}

    /// The node id (in its compact form exactly) and 32-byte key these texts give, or nil.
    mutating func author(_ nodeText: String, _ keyText: String) -> (NodeID, [UInt8])? {
        if let parsed, nodeText == self.nodeText, keyText == self.keyText { return parsed }
        guard let nodeID = NodeID(nodeText), nodeID.compact == nodeText, let key = Base64URL.decode(keyText), key.count == 32 else { return nil }
        (self.nodeText, self.keyText, parsed) = (nodeText, keyText, (nodeID, key))
        return (nodeID, key)
    }
}

/// Why a revision (or bundle) was refused; `code` is stable for clients and metrics.
public struct RevisionError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case malformed, notCanonical = "not_canonical", tooLarge = "too_large", badSignature = "bad_signature"
        case wrongKey = "wrong_key", missingParent = "missing_parent", vectorRegression = "vector_regression"
        case invalidBody = "invalid_body", badBundle = "bad_bundle"
    }
    public var code: Code
    public var reason: String
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { "\(code.rawValue): \(reason)" }
}
