public import ThingDataCore

extension PeerClaim {
    /// A claim by this node about itself, signed with its current key.
    public static func signed(by key: NodeKey, addresses: [String], port: Int, scheme: String, path: String, issuedAt: Int64, seq: Int64) -> PeerClaim {
        var claim = PeerClaim(
            nodeID: key.nodeID.compact, publicKey: Base64URL.encode(key.publicKey), addresses: addresses, port: port, scheme: scheme, path: path,
            issuedAt: issuedAt, seq: seq)
        claim.signature = Base64URL.encode(key.sign(CanonicalJSON.encode(.object(claim.unsignedJSON))))
        return claim
    }

    public enum Rejection: String, Sendable {
        case malformed, badSignature = "bad-signature", unknownKey = "unknown-key", future
    }

    /// Checks that the node it names signed it with a key of that node: the genesis key its
    /// id derives from, or one a rotation chain in `keys` introduced.
    public func check(keys: KeyBook, now: Int64, maxSkew: Int64) -> Rejection? {
        guard let node = NodeID(nodeID), let key = Base64URL.decode(publicKey), let sig = Base64URL.decode(signature) else { return .malformed }
        guard keys.isKnown(key, for: node) else { return .unknownKey }
        guard NodeKey.isValid(signature: sig, of: CanonicalJSON.encode(.object(unsignedJSON)), by: key) else { return .badSignature }
        if issuedAt > now + maxSkew { return .future }
        return nil
    }
}
