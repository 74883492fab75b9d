public import ThingDataCore
import Logging
import Synchronization
import ThingDataStore
import ThingDataSigning
import Foundation

/// A refusal of an inbound federation request: 401 (who are you?) or 403 (not allowed).
public struct FederationRefusal: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var part: String
    public var reason: String
    public var description: String { "\(part): \(reason)" }
    init(_ status: Int, _ part: String, _ reason: String) {
        self.status = status
        self.part = part
        self.reason = reason
    }
    init(_ f: HTTPSignature.Failure) { self.init(401, f.part.rawValue, f.reason) }
}

extension Federation {
    /// Checks an inbound request's RFC 9421 signature and returns the peer that sent it.
    /// An unknown key id makes the node fetch the sender's descriptor (from the signed
    /// `ThingData-Origin`) and pin its key as `untrusted`.
    public func authenticate(method: String, targetURI: String, fields: [String: String], body: [UInt8]) async throws(FederationRefusal) -> PeerRecord {
        let message = HTTPSignature.Message(method: method, targetURI: targetURI, fields: fields)
        guard let input = message.fields["signature-input"], let sig = message.fields["signature"] else {
            throw FederationRefusal(401, "signature-missing", "federation requests must be signed (RFC 9421 Signature-Input and Signature)")
        }
        let parsed: (label: String, parameters: HTTPSignature.Parameters, signature: [UInt8])
        do { parsed = try HTTPSignature.parse(input: input, signature: sig) } catch { throw FederationRefusal(error) }
        let p = parsed.parameters
        for needed in ["@method", "@target-uri"] where !p.components.contains(needed) {
            throw FederationRefusal(401, "signature-component-missing", "the signature must cover \(needed)")
        }
        if !body.isEmpty {
            guard p.components.contains("content-digest") else { throw FederationRefusal(401, "signature-component-missing", "the signature must cover content-digest") }
            do { try HTTPSignature.checkDigest(message.fields["content-digest"], body: body) } catch { throw FederationRefusal(error) }
        }
        if let alg = p.algorithm, alg != "ed25519" { throw FederationRefusal(401, "signature-malformed", "alg must be ed25519, not \(alg)") }
        guard let created = p.created else { throw FederationRefusal(401, "signature-malformed", "the signature must carry created") }
        let now = Int64(Date().timeIntervalSince1970)
        if created < now - settings.window { throw FederationRefusal(401, "signature-expired", "created \(now - created) s ago; the window is \(settings.window) s") }
        if created > now + settings.window { throw FederationRefusal(401, "signature-from-future", "created \(created - now) s ahead; the window is \(settings.window) s") }
        if let expires = p.expires, expires < now { throw FederationRefusal(401, "signature-expired", "the signature expired") }
        guard let keyText = p.keyID, let nodeID = NodeID(keyText) else { throw FederationRefusal(401, "keyid-unknown", "keyid must be a ThingData node id") }
        if nodeID == key.nodeID { throw FederationRefusal(403, "keyid-self", "the request claims to come from this node") }
        let origin = p.components.contains("thingdata-origin") ? message.fields["thingdata-origin"] : nil

        var peer: PeerRecord
        if let known = await peers.get(nodeID.compact) {
            peer = known
        } else {
            guard let origin else { throw FederationRefusal(401, "keyid-unknown", "node \(nodeID.short) is unknown here and the request names no ThingData-Origin to learn its key from") }
            peer = try await pinOnFirstUse(nodeID, origin: origin)
        }
        if peer.trust == .blocked { throw FederationRefusal(403, "peer-blocked", "node \(nodeID.short) is blocked here") }
        if peer.state == .keyChanged { throw FederationRefusal(403, "key-changed", "node \(nodeID.short)'s key changed without a rotation statement; an admin must decide") }
        do {
            try RequestSignature.verify(message, parameters: p, signature: parsed.signature, publicKey: Base64URL.decode(peer.publicKey) ?? [])
        } catch {
            // Maybe it rotated its key: look again at the address we know it by (not the one
            // this unverified request names), follow a valid rotation or flag it.
            guard let refreshed = try? await recheckKey(peer, origin: peer.baseURL), refreshed.publicKey != peer.publicKey else { throw FederationRefusal(error) }
            peer = refreshed
            if peer.state == .keyChanged { throw FederationRefusal(403, "key-changed", "node \(nodeID.short)'s key changed without a rotation statement; an admin must decide") }
            do { try RequestSignature.verify(message, parameters: p, signature: parsed.signature, publicKey: Base64URL.decode(peer.publicKey) ?? []) } catch { throw FederationRefusal(error) }
        }
        if method.uppercased() != "GET" {
            let fresh = replay.withLock { $0.admit(parsed.signature, now: now, window: settings.window * 2) }
            if !fresh { throw FederationRefusal(401, "signature-replayed", "this signed request was already received") }
        }
        if let updated = await peers.touch(peer.nodeID, at: Timestamp.now().description) { peer = updated }
        return peer
    }

    /// Trust on first use: the descriptor at `origin` must prove the key id.
    func pinOnFirstUse(_ nodeID: NodeID, origin: String) async throws(FederationRefusal) -> PeerRecord {
        let d: NodeDescriptor
        do { d = try await client.descriptor(at: origin) } catch { throw FederationRefusal(401, "keyid-unknown", "cannot learn the key of node \(nodeID.short): \(error)") }
        guard d.nodeID == nodeID else { throw FederationRefusal(401, "keyid-unknown", "the descriptor at \(origin) belongs to node \(d.nodeID.short), not \(nodeID.short)") }
        try? await catalog.learn(rotations: d.rotations)
        let now = Timestamp.now().description
        let record = PeerRecord(
            nodeID: nodeID.compact, name: d.name, baseURL: d.baseURL, publicKey: Base64URL.encode(d.publicKey), genesisKey: Base64URL.encode(d.genesisPublicKey),
            trust: .untrusted, state: .probing, sources: ["inbound"], firstSeen: now,
            keyHistory: [.init(at: now, key: Base64URL.encode(d.publicKey), how: "pinned on first use")])
        let stored: PeerRecord
        do { stored = try await peers.insertOrMerge(record).record } catch { throw FederationRefusal(401, "keyid-unknown", "cannot record node \(nodeID.short)") }
        guard stored == record else { return stored }
        await peers.log(record.nodeID, "pinned", "key pinned on first use from \(origin); trust untrusted")
        logger.notice("federation: pinned the key of node \(nodeID.short) on first use", metadata: ["origin": .string(origin)])
        return record
    }

    /// Fetches a known peer's descriptor again: a new key reached by valid rotation statements
    /// from the pinned one is pinned; any other new key flags the peer `key-changed`.
    @discardableResult
    func recheckKey(_ peer: PeerRecord, origin: String) async throws -> PeerRecord {
        let d = try await client.descriptor(at: origin)
        guard d.nodeID.compact == peer.nodeID else { return peer }
        let offered = Base64URL.encode(d.publicKey)
        guard offered != peer.publicKey else { return peer }
        // A chain of valid rotation statements must lead from the pinned key to the new one; a
        // chain that forks from an older key (a restored old key rotated again) does not count.
        let ordered = d.rotations.sorted { $0.sequence < $1.sequence }
        var chained = false
        if let start = ordered.firstIndex(where: { Base64URL.encode($0.previousKey) == peer.publicKey }) {
            var key = ordered[start].previousKey
            chained = true
            for r in ordered[start...] {
                guard r.previousKey == key, r.isSignatureValid else { chained = false; break }
                key = r.newKey
            }
            chained = chained && key == d.publicKey
        }
        let now = Timestamp.now().description
        if chained {
            try? await catalog.learn(rotations: d.rotations)
            await peers.log(peer.nodeID, "key-rotated", "new key \(offered.prefix(8))… introduced by a rotation statement")
            return try await peers.update(peer.nodeID) { p in
                p.publicKey = offered
                p.keyHistory.append(.init(at: now, key: offered, how: "rotation statement"))
            } ?? peer
        }
        await peers.log(peer.nodeID, "key-changed", "descriptor shows key \(offered.prefix(8))… with no rotation from the pinned key; sync stopped until an admin decides")
        logger.warning("federation: node \(d.nodeID.short) shows a new key without a rotation statement; marked key-changed")
        return try await peers.update(peer.nodeID) { p in
            p.state = .keyChanged
            p.offeredKey = offered
        } ?? peer
    }

    /// Refuses a peer whose trust is below `needed` for `what`.
    public func authorize(_ peer: PeerRecord, _ needed: TrustLevel, for what: String) throws(FederationRefusal) {
        guard peer.trust >= needed else {
            throw FederationRefusal(403, "trust", "node \(peer.nodeID.prefix(6)) is \(peer.trust.rawValue) here; \(what) needs \(needed.rawValue) or above")
        }
    }

    // MARK: Serving

    /// One page of the changes feed after `since`, as NDJSON: a header line, one line per
    /// revision (its signed bytes verbatim), and a trailer with the new cursor.
    public func changes(since: Int64, limit: Int) async throws -> (bytes: [UInt8], count: Int) {
        let page = try await catalog.store.revisions(afterSequence: since, limit: limit)
        let head = try await catalog.store.latestSequence()
        let cursor = page.last?.sequence ?? max(since, 0)
        var out = CanonicalJSON.encode(["type": "thingdata.changes", "index_id": .string(indexID), "node_id": .string(key.nodeID.compact), "since": .int(since)])
        out.append(0x0A)
        for r in page {
            out += r.bytes
            out.append(0x0A)
        }
        out += CanonicalJSON.encode(["type": "thingdata.changes.end", "cursor": .int(cursor), "head": .int(head), "count": .int(Int64(page.count)), "more": .bool(cursor < head)])
        out.append(0x0A)
        return (out, page.count)
    }

    /// The same page as one JSON document (`{"index_id", "since", "cursor", "head", "more", "revisions": [...]}`).
    public func changesJSON(since: Int64, limit: Int) async throws -> [UInt8] {
        let page = try await catalog.store.revisions(afterSequence: since, limit: limit)
        let head = try await catalog.store.latestSequence()
        let cursor = page.last?.sequence ?? max(since, 0)
        var out = Array("{\"index_id\":\"\(indexID)\",\"node_id\":\"\(key.nodeID.compact)\",\"since\":\(since),\"cursor\":\(cursor),\"head\":\(head),\"more\":\(cursor < head),\"revisions\":[".utf8)
        for (i, r) in page.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += r.bytes
        }
        out += Array("]}".utf8)
        return out
    }

    /// Revisions by id, in the order asked; unknown ids are listed as missing.
    public func revisions(ids: [String]) async throws -> (bytes: [UInt8], missing: [String]) {
        var out = Array("{\"revisions\":[".utf8)
        var missing: [String] = []
        var first = true
        for id in ids {
            guard let r = try await catalog.store.revision(id.lowercased()) else { missing.append(id); continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out += r.bytes
        }
        out += Array("],\"missing\":".utf8) + CanonicalJSON.encode(.array(missing.map { .string($0) })) + Array("}".utf8)
        return (out, missing)
    }

    /// Key rotation statements this node knows, for the nodes asked (all when empty).
    public func keys(nodes: [String]) async throws -> JSONValue {
        let wanted = Set(nodes.compactMap { NodeID($0)?.compact })
        let all = try await catalog.knownRotations().filter { wanted.isEmpty || wanted.contains($0.nodeID.compact) }
        return ["key_rotations": .array(all.map(\.json))]
    }

    /// Revisions pushed by a peer (`POST revisions`): checked like pulled ones.
    public func receivePush(_ body: [UInt8], from peer: PeerRecord) async throws(FederationRefusal) -> BatchReport {
        try authorize(peer, settings.policy.acceptPush, for: "pushing revisions")
        guard case .object(let o)? = try? JSONParser.parse(body), case .array(let list)? = o["revisions"] else {
            throw FederationRefusal(400, "body", "send {\"revisions\": [signed revision, ...]}")
        }
        guard list.count <= 5_000 else { throw FederationRefusal(400, "body", "at most 5000 revisions per push") }
        let raw = list.map { CanonicalJSON.encode($0) }
        do { return try await receive(raw, from: peer.nodeID) } catch { throw FederationRefusal(400, "body", "\(error)") }
    }

    /// An announce: the peer has new revisions; pull from it now.
    public func announced(by peer: PeerRecord) throws(FederationRefusal) {
        try authorize(peer, settings.policy.pull, for: "announcing (we pull only from peers we trust enough)")
        let now = Self.nowMilliseconds()
        schedules.withLock { s in
            var schedule = s[peer.nodeID] ?? settings.schedule(now: now)
            var rng = SystemRandomNumberGenerator()
            schedule.record(.announced, now: now, random: &rng)
            s[peer.nodeID] = schedule
        }
        scheduler.ring()
    }
}
