public import ThingDataCore
import Crypto

/// The signed document a node serves at `/.well-known/thingdata`: who it is, how to reach it,
/// what it speaks. Canonical JSON (RFC 8785) signed by the node's current key; the node id
/// must derive from `genesis_public_key`, and `public_key` must be the genesis key or one a
/// valid chain of `key_rotations` introduces.
public struct NodeDescriptor: Sendable, Equatable {
    public static let type = "thingdata.node"
    public static let protocolVersion = "thingdata-federation/1"

    public var nodeID: NodeID
    public var publicKey: [UInt8]
    public var genesisPublicKey: [UInt8]
    public var name: String
    public var description: String
    public var softwareVersion: String
    public var protocols: [String]
    public var capabilities: [String]
    public var languages: [String]
    public var baseURL: String
    public var actorEpoch: String
    public var indexID: String
    public var rotations: [KeyRotation]
    public var createdAt: String
    public var signature: [UInt8] = []

    public init(key: NodeKey, name: String, description: String, softwareVersion: String, capabilities: [String], languages: [String],
                baseURL: String, actorEpoch: String, indexID: String, now: Timestamp) {
        nodeID = key.nodeID
        publicKey = key.publicKey
        genesisPublicKey = key.genesisPublicKey
        self.name = name
        self.description = description
        self.softwareVersion = softwareVersion
        protocols = [Self.protocolVersion]
        self.capabilities = capabilities
        self.languages = languages
        self.baseURL = baseURL
        self.actorEpoch = actorEpoch
        self.indexID = indexID
        rotations = key.rotations
        createdAt = now.description
        signature = key.sign(CanonicalJSON.encode(.object(unsignedJSON)))
    }

    var unsignedJSON: JSONObject {
        [
            "type": .string(Self.type), "node_id": .string(nodeID.compact), "public_key": .string(Base64URL.encode(publicKey)),
            "genesis_public_key": .string(Base64URL.encode(genesisPublicKey)), "name": .string(name), "description": .string(description),
            "software": ["name": "thingdata", "version": .string(softwareVersion)],
            "protocols": .array(protocols.map { .string($0) }), "capabilities": .array(capabilities.map { .string($0) }),
            "languages": .array(languages.map { .string($0) }), "base_url": .string(baseURL), "actor_epoch": .string(actorEpoch),
            "index_id": .string(indexID), "key_rotations": .array(rotations.map(\.json)), "created_at": .string(createdAt),
        ]
    }

    public var json: JSONValue {
        var o = unsignedJSON
        o["signature"] = .string(Base64URL.encode(signature))
        return .object(o)
    }

    /// Reads a descriptor and checks it all: the id derives from the genesis key, the current
    /// key is reached by valid rotations, the signature holds.
    public init(verifying value: JSONValue) throws(RevisionError) {
        guard case .object(let o) = value, o["type"]?.stringValue == Self.type,
            let id = o["node_id"]?.stringValue.flatMap(NodeID.init),
            let key = o["public_key"]?.stringValue.flatMap(Base64URL.decode), key.count == 32,
            let genesis = o["genesis_public_key"]?.stringValue.flatMap(Base64URL.decode), genesis.count == 32,
            let name = o["name"]?.stringValue, let base = o["base_url"]?.stringValue, let epoch = o["actor_epoch"]?.stringValue,
            let index = o["index_id"]?.stringValue, let created = o["created_at"]?.stringValue,
            let sig = o["signature"]?.stringValue.flatMap(Base64URL.decode), sig.count == 64
        else { throw RevisionError(.malformed, "not a ThingData node descriptor") }
        nodeID = id
        publicKey = key
        genesisPublicKey = genesis
        self.name = name
        description = o["description"]?.stringValue ?? ""
        softwareVersion = o["software"]?["version"]?.stringValue ?? "?"
        func strings(_ k: String) -> [String] { o[k]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        protocols = strings("protocols")
        capabilities = strings("capabilities")
        languages = strings("languages")
        baseURL = base
        actorEpoch = epoch
        indexID = index
        createdAt = created
        var rotations: [KeyRotation] = []
        for r in o["key_rotations"]?.arrayValue ?? [] { rotations.append(try KeyRotation(json: r)) }
        self.rotations = rotations
        signature = sig
        guard NodeID(genesisKey: genesis) == id else { throw RevisionError(.wrongKey, "the node id does not derive from the genesis key") }
        var book = KeyBook()
        try book.add(rotations)
        guard book.isKnown(key, for: id) else { throw RevisionError(.wrongKey, "the public key is neither the genesis key nor introduced by a rotation") }
        guard NodeKey.isValid(signature: sig, of: CanonicalJSON.encode(.object(unsignedJSON)), by: key) else {
            throw RevisionError(.badSignature, "the descriptor's signature does not hold")
        }
    }
}

/// Signs and checks inter-instance HTTP requests (RFC 9421 with Ed25519; `keyid` is the node id).
public enum RequestSignature {
    public static let label = "thingdata"

    /// The headers to add to a request: `Signature-Input`, `Signature`, and `Content-Digest`
    /// when there is a body. Covers `@method`, `@target-uri`, `content-digest` and the origin
    /// header naming the sender's base URL.
    public static func headers(method: String, url: String, body: [UInt8]?, origin: String?, key: NodeKey, created: Int64, nonce: String? = nil) -> [(String, String)] {
        var fields: [String: String] = [:]
        var out: [(String, String)] = []
        var components = ["@method", "@target-uri"]
        if let body {
            let digest = HTTPSignature.contentDigest(body)
            fields["content-digest"] = digest
            out.append(("Content-Digest", digest))
            components.append("content-digest")
        }
        if let origin {
            fields["thingdata-origin"] = origin
            out.append(("ThingData-Origin", origin))
            components.append("thingdata-origin")
        }
        let params = HTTPSignature.Parameters(components: components, created: created, keyID: key.nodeID.compact, algorithm: "ed25519", nonce: nonce)
        // The components are ours and all present: building the base cannot fail.
        let base = try! HTTPSignature.signatureBase(HTTPSignature.Message(method: method, targetURI: url, fields: fields), params)
        let f = HTTPSignature.fields(label: label, parameters: params, signature: key.sign(base))
        out.append(("Signature-Input", f.input))
        out.append(("Signature", f.signature))
        return out
    }

    /// Whether `signature` over the message's base for `parameters` is valid for `publicKey`.
    public static func verify(_ message: HTTPSignature.Message, parameters: HTTPSignature.Parameters, signature: [UInt8], publicKey: [UInt8]) throws(HTTPSignature.Failure) {
        let base = try HTTPSignature.signatureBase(message, parameters)
        guard NodeKey.isValid(signature: signature, of: base, by: publicKey) else {
            throw HTTPSignature.Failure(.badSignature, "the signature does not match the request for key \(parameters.keyID ?? "?")")
        }
    }
}
