public import ThingDataCore
import ThingDataSigning
import ThingDataStore
import NIOCore
import NIOHTTP1
import Logging
import Synchronization
import Foundation

/// What one peer-exchange fetch brought.
public struct ExchangeFetch: Sendable {
    /// Verified claims of other nodes, deduplicated: candidates, nothing more.
    public var claims: [PeerClaim] = []
    /// Records in the answer (counting those past the limit).
    public var received = 0
    /// Records refused: malformed, badly signed, signed by a key not of their node.
    public var rejected = 0
    /// Records past the per-answer limit, ignored.
    public var ignored = 0
    public var error: String?
    public var retryAfter: Int64?
}

extension Federation {
    /// This node's signed claim of where it is reached: its advertised addresses (or its base
    /// URL's host), port, scheme and path. Re-signed when the base URL changes, and hourly.
    public func ownClaim(now: Int64 = Federation.nowMilliseconds()) -> PeerClaim? {
        guard let parts = URLComponents(string: baseURL), let scheme = parts.scheme, let host = parts.host else { return nil }
        let addresses = settings.advertise.isEmpty ? [host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))] : settings.advertise
        let port = parts.port ?? (scheme == "https" ? 443 : 80)
        var path = parts.path
        while path.hasSuffix("/") { path.removeLast() }
        return ownClaimCache.withLock { cached in
            if let c = cached, c.addresses == addresses, c.port == port, c.scheme == scheme, c.path == path, now / 1000 - c.issuedAt < 3_600 {
                return c
            }
            let issued = now / 1000
            let claim = PeerClaim.signed(by: key, addresses: addresses, port: port, scheme: scheme, path: path, issuedAt: issued, seq: max(issued, (cached?.seq ?? 0) + 1))
            cached = claim
            return claim
        }
    }

    public enum ExchangeAnswer: Sendable {
        case records(JSONValue)
        /// Asked again within the interval: milliseconds until it may ask.
        case tooSoon(Int64)
    }

    /// The answer to `GET /federation/v1/peers` for `asker`: this node's own claim, and the
    /// newest claims of at most 50 peers that synced successfully within the last hour (not
    /// the asker, nor blocked or key-changed peers). One answer per asker per minute.
    public func exchangeAnswer(for asker: PeerRecord, now: Int64 = Federation.nowMilliseconds()) async -> ExchangeAnswer {
        if let wait = exchangeLimiter.withLock({ $0.admit(asker.nodeID, now: now) }) { return .tooSoon(wait) }
        let rules = settings.exchange
        let fresh = await peers.all()
            .filter { p in
                guard p.nodeID != asker.nodeID, p.trust > .blocked, p.state != .keyChanged, p.claim != nil,
                    let last = p.lastSync.flatMap(Timestamp.init(iso8601:)) else { return false }
                return now - last.microsecondsSinceEpoch / 1000 <= rules.freshness
            }
            .sorted { ($0.lastSync ?? "") > ($1.lastSync ?? "") }
            .prefix(rules.maxRecords)
        let records = fresh.compactMap { $0.claim.flatMap { try? JSONParser.parse(Array($0.utf8)) } }
        return .records(["self": ownClaim(now: now)?.json ?? .null, "peers": .array(records)])
    }

    /// Asks a peer for its peers. Its own claim is kept on its record (to pass on); the others
    /// are checked one by one and returned as candidates. At most the answer limit is read.
    public func fetchExchange(from peer: PeerRecord, now: Int64 = Federation.nowMilliseconds()) async -> ExchangeFetch {
        var fetch = ExchangeFetch()
        let url = FederationClient.join(peer.baseURL, "/federation/v1/peers")
        guard let answer = try? await client.send(.GET, url, limit: 4 << 20, timeout: .seconds(10)) else {
            fetch.error = "cannot reach \(peer.baseURL)"
            return fetch
        }
        _ = try? await peers.update(peer.nodeID) { p in
            p.bytesIn += Int64(answer.bytesIn)
            p.bytesOut += Int64(answer.bytesOut)
        }
        guard answer.status == 200 else {
            fetch.error = "HTTP \(answer.status)"
            fetch.retryAfter = answer.retryAfter
            return fetch
        }
        guard case .object(let o)? = try? JSONParser.parse(answer.body) else {
            fetch.error = "the answer is not a JSON object"
            return fetch
        }
        let keys = (try? await catalog.keyBook()) ?? KeyBook()
        let rules = settings.exchange
        if let own = o["self"], let claim = try? PeerClaim(json: own), claim.nodeID == peer.nodeID, claim.check(keys: keys, now: now / 1000, maxSkew: rules.maxSkew) == nil {
            let text = String(decoding: CanonicalJSON.encode(claim.json), as: UTF8.self)
            _ = try? await peers.update(peer.nodeID) { p in
                let known = p.claim.flatMap { try? PeerClaim(json: JSONParser.parse(Array($0.utf8))) }
                if known.map({ claim.seq > $0.seq }) ?? true { p.claim = text }
            }
        }
        let list = o["peers"]?.arrayValue ?? []
        fetch.received = list.count
        fetch.ignored = max(0, list.count - rules.maxRecords)
        var good: [PeerClaim] = []
        for item in list.prefix(rules.maxRecords) {
            guard let claim = try? PeerClaim(json: item), claim.check(keys: keys, now: now / 1000, maxSkew: rules.maxSkew) == nil else {
                fetch.rejected += 1
                continue
            }
            good.append(claim)
        }
        fetch.claims = PeerExchangeIntake.dedupe(good, selfID: key.nodeID.compact, limit: rules.maxRecords)
        if fetch.rejected > 0 {
            await peers.log(peer.nodeID, "pex", "\(fetch.rejected) of \(fetch.received) peer records refused (bad signature or malformed)")
        }
        return fetch
    }

    /// A node found by discovery at `url`: its descriptor must prove its id (and the id a
    /// source pinned, if any). A new node joins the peer table with the discovery trust; a
    /// known one gains the source (and its address, if it had none that works). Throws with a
    /// reason when the address does not lead to an acceptable peer.
    public func admitDiscovered(url: String, expected: String?, mechanism: String) async throws -> PeerRecord {
        let d: NodeDescriptor
        do { d = try await client.descriptor(at: url, timeout: .seconds(5)) } catch { throw DiscoveryRefusal.unreachable("\(error)") }
        if d.nodeID == key.nodeID { throw DiscoveryRefusal.isSelf }
        if let expected, NodeID(expected)?.compact != d.nodeID.compact { throw DiscoveryRefusal.wrongNode(d.nodeID.compact) }
        try? await catalog.learn(rotations: d.rotations)
        let now = Timestamp.now().description
        let offered = Base64URL.encode(d.publicKey)
        let known = await peers.get(d.nodeID.compact)
        if let known, known.publicKey != offered {
            // A key other than the pinned one: the rotation rules decide, as for any peer.
            _ = try? await recheckKey(known, origin: url)
        }
        if known == nil {
            let counted = await peers.all().filter { $0.trust > .blocked && $0.state != .retired }.count
            guard counted < settings.maxPeers else { throw DiscoveryRefusal.peerLimit(settings.maxPeers) }
        }
        let candidate = PeerRecord(
            nodeID: d.nodeID.compact, name: d.name, baseURL: url, publicKey: offered, genesisKey: Base64URL.encode(d.genesisPublicKey),
            trust: settings.discoveryTrust, state: .probing, sources: [mechanism], firstSeen: now,
            keyHistory: [.init(at: now, key: offered, how: "pinned when found by \(mechanism)")])
        // A known peer gains the source; one only pinned on first use when it called us (and
        // never caught serving forgeries) is raised to the discovery trust.
        let trust = settings.discoveryTrust
        let (stored, new) = try await peers.insertOrMerge(candidate) { p in
            if !p.sources.contains(mechanism) { p.sources.append(mechanism) }
            if p.trust == .untrusted && p.rejected == 0 && p.sources.contains("inbound") { p.trust = max(p.trust, trust) }
            if p.state == .backoff || p.state == .retired { p.baseURL = url }
        }
        if new {
            await peers.log(stored.nodeID, "discovered", "found by \(mechanism) at \(url); descriptor verified; trust \(settings.discoveryTrust.rawValue)")
            logger.notice("discovery: node \(d.nodeID.short) (\(d.name)) found by \(mechanism)", metadata: ["url": .string(url)])
        }
        requestSync(stored.nodeID)
        return stored
    }
}

/// Why a discovered address did not become a peer.
public enum DiscoveryRefusal: Error, Sendable, CustomStringConvertible {
    case unreachable(String)
    case isSelf
    case wrongNode(String)
    case peerLimit(Int)

    public var description: String {
        switch self {
        case .unreachable(let why): why
        case .isSelf: "this node itself"
        case .wrongNode(let id): "answered as node \(id.prefix(6)), not the node its source pinned"
        case .peerLimit(let n): "the peer limit (\(n)) is reached"
        }
    }
}
