/// Addresses heard from discovery sources, before and after they prove who answers there: the
/// pure state machine of the peer table's unverified side. Each input is a `mutating func`
/// that returns what to do; the clock comes in as milliseconds. The shell dials, then reports
/// back with `dialed` or `dialFailed`.
///
/// An address is only a hint: dialling it means fetching its `/.well-known/thingdata`, and a
/// node joins the peer table only when that descriptor proves its node id (and matches the id
/// a DNS TXT record pinned, if any).
///
/// Suppliers name where an address came from: `seed`, `dns:<domain>`, `mdns`, `pex:<node id>`.
/// Peer exchange is hearsay, so it is held to budgets: at most `dialsPerMinute` unverified
/// dials in any minute, and no one hearsay supplier accounts for more than `supplierShare` of
/// them. Sources an admin configured (seeds, DNS domains) and the local link (mDNS) count
/// against the minute's budget but not against the share.
public struct CandidateTable: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        public var dialsPerMinute = 20
        public var supplierShare = 0.25
        public var window: Int64 = 60_000
        /// The most entries kept; past it, new hearsay is dropped (and counted).
        public var maxCandidates = 1_000
        public var retryBase: Int64 = 15_000
        public var retryCap: Int64 = 3_600_000
        /// Failed dials in a row before a candidate is retired.
        public var maxFailures = 6
        public var retiredFor: Int64 = 6 * 3_600_000

        public init() {}

        /// Dials in one window a single hearsay supplier may account for (at least one).
        public var perSupplier: Int { max(1, Int(Double(dialsPerMinute) * supplierShare)) }
    }

    public struct Candidate: Codable, Sendable, Equatable {
        public var url: String
        /// The node id a source pinned (a DNS TXT `id=`, a signed peer record).
        public var expectedNodeID: String?
        public var suppliers: [String]
        public var state: PeerState
        /// Set once a dial proved who answers here.
        public var nodeID: String?
        public var failures = 0
        public var due: Int64
        public var firstHeard: Int64
        public var lastHeard: Int64
        public var lastError: String?

        enum CodingKeys: String, CodingKey {
            case url, expectedNodeID = "expected_node_id", suppliers, state, nodeID = "node_id", failures, due
            case firstHeard = "first_heard", lastHeard = "last_heard", lastError = "last_error"
        }

        /// Changes the state; the move must be one `PeerState` documents as legal.
        mutating func move(to next: PeerState) {
            assert(state.mayBecome(next), "\(state.rawValue) → \(next.rawValue) is not a legal transition")
            state = next
        }

        /// Heard only through peer exchange.
        public var hearsayOnly: Bool { suppliers.allSatisfy(CandidateTable.isHearsay) }
        /// The supplier a dial is charged to.
        public var chargedSupplier: String { suppliers.first { !CandidateTable.isHearsay($0) } ?? suppliers.first ?? "?" }
    }

    public enum Action: Sendable, Equatable {
        /// Fetch the descriptor at `url`; report back with `dialed` or `dialFailed`.
        case dial(url: String, expected: String?)
        /// A verified node was heard of again through another mechanism (`dns`, `mdns`, `pex`, `seed`).
        case addSource(nodeID: String, mechanism: String)
    }

    public struct Dial: Sendable, Equatable, Codable {
        public var at: Int64
        public var supplier: String
    }

    public var limits: Limits
    public private(set) var entries: [String: Candidate] = [:]
    /// Dials in the current window.
    public private(set) var dials: [Dial] = []
    /// Addresses dropped because the table was full.
    public private(set) var dropped = 0

    public init(limits: Limits = Limits()) { self.limits = limits }

    public static func isHearsay(_ supplier: String) -> Bool { supplier.hasPrefix("pex:") }
    /// `dns:example.org` → `dns`.
    public static func mechanism(_ supplier: String) -> String { String(supplier.prefix { $0 != ":" }) }

    // MARK: Events

    /// An address was heard from `supplier`.
    public mutating func heard(url: String, expected: String?, supplier: String, now: Int64) -> [Action] {
        if var c = entries[url] {
            if !c.suppliers.contains(supplier) { c.suppliers.append(supplier) }
            if c.expectedNodeID == nil { c.expectedNodeID = expected }
            c.lastHeard = now
            if c.state == .retired && c.due <= now {
                c.move(to: .candidate)
                c.failures = 0
                c.due = now
            }
            entries[url] = c
            if c.state == .active, let id = c.nodeID { return [.addSource(nodeID: id, mechanism: Self.mechanism(supplier))] }
            return []
        }
        if entries.count >= limits.maxCandidates && !evictOne(for: supplier) {
            dropped += 1
            return []
        }
        entries[url] = Candidate(url: url, expectedNodeID: expected, suppliers: [supplier], state: .candidate, due: now, firstHeard: now, lastHeard: now)
        return []
    }

    /// A source withdrew an address (an mDNS service left, a DNS record went away). Entries no
    /// source vouches for any more are dropped unless a dial proved them.
    public mutating func lost(url: String, supplier: String) {
        guard var c = entries[url] else { return }
        c.suppliers.removeAll { $0 == supplier }
        if c.suppliers.isEmpty && c.state != .active && c.state != .probing {
            entries[url] = nil
        } else {
            entries[url] = c
        }
    }

    /// Chooses what to dial now, within the budgets.
    public mutating func tick(now: Int64) -> [Action] {
        dials.removeAll { $0.at <= now - limits.window }
        let due = entries.values
            .filter { ($0.state == .candidate || $0.state == .backoff) && $0.due <= now }
            .sorted { a, b in
                // Pinned ids first, then addresses several sources agree on, then the least failed, then the oldest.
                if (a.expectedNodeID != nil) != (b.expectedNodeID != nil) { return a.expectedNodeID != nil }
                if a.suppliers.count != b.suppliers.count { return a.suppliers.count > b.suppliers.count }
                if a.failures != b.failures { return a.failures < b.failures }
                return (a.firstHeard, a.url) < (b.firstHeard, b.url)
            }
        var actions: [Action] = []
        for c in due {
            guard dials.count < limits.dialsPerMinute else { break }
            let supplier = c.chargedSupplier
            if c.hearsayOnly && dials.filter({ $0.supplier == supplier }).count >= limits.perSupplier { continue }
            dials.append(Dial(at: now, supplier: supplier))
            entries[c.url]?.move(to: .probing)
            actions.append(.dial(url: c.url, expected: c.expectedNodeID))
        }
        return actions
    }

    /// The descriptor at `url` proved `nodeID`. Returns false (and retires the address) when
    /// it is not the node its source pinned.
    @discardableResult
    public mutating func dialed(url: String, nodeID: String, now: Int64) -> Bool {
        guard var c = entries[url] else { return false }
        if let expected = c.expectedNodeID, expected != nodeID {
            c.move(to: .retired)
            c.nodeID = nodeID
            c.due = now + limits.retiredFor
            c.lastError = "answered as node \(nodeID.prefix(6)), not the pinned \(expected.prefix(6))"
            entries[url] = c
            return false
        }
        c.move(to: .active)
        c.nodeID = nodeID
        c.failures = 0
        c.lastError = nil
        entries[url] = c
        return true
    }

    /// The dial failed; tried again later, waiting twice as long each time, until retired.
    public mutating func dialFailed(url: String, error: String, now: Int64) {
        guard var c = entries[url] else { return }
        c.failures += 1
        c.lastError = error
        if c.failures >= limits.maxFailures {
            c.move(to: .retired)
            c.due = now + limits.retiredFor
        } else {
            c.move(to: .backoff)
            c.due = now + min(limits.retryCap, limits.retryBase << Int64(min(c.failures - 1, 30)))
        }
        entries[url] = c
    }

    /// Retires an address at once (it is this node; the peer limit is reached; an admin
    /// forgot the node it belongs to).
    public mutating func retire(url: String, reason: String, now: Int64) {
        guard var c = entries[url] else { return }
        c.move(to: .retired)
        c.due = now + limits.retiredFor
        c.lastError = reason
        entries[url] = c
    }

    /// Puts a proven address back in line (its peer was forgotten, or fell out of the table).
    public mutating func reopen(nodeID: String, now: Int64) {
        for (url, c) in entries where c.nodeID == nodeID {
            entries[url]?.move(to: .candidate)
            entries[url]?.due = now
        }
    }

    /// Restores saved entries (a restart): what was being dialled is dialled again.
    public mutating func restore(_ saved: [Candidate]) {
        for var c in saved.prefix(limits.maxCandidates) {
            if c.state == .probing { c.move(to: .candidate) }
            entries[c.url] = c
        }
    }

    /// Dials in the window, per supplier.
    public func dialsBySupplier(now: Int64) -> [String: Int] {
        dials.filter { $0.at > now - limits.window }.reduce(into: [:]) { $0[$1.supplier, default: 0] += 1 }
    }

    /// Makes room for a new address: drops the oldest hearsay entry that never proved itself.
    mutating func evictOne(for supplier: String) -> Bool {
        let victim = entries.values
            .filter { $0.hearsayOnly && $0.state != .active && $0.state != .probing }
            .min { ($0.lastHeard, $0.url) < ($1.lastHeard, $1.url) }
        guard let victim, !Self.isHearsay(supplier) || victim.state == .retired else { return false }
        entries[victim.url] = nil
        return true
    }
}

/// How much a peer is worth keeping and pulling from first: trusted, reliable, near.
public enum PeerScore {
    public static func score(trust: TrustLevel, state: PeerState, rttMilliseconds: Double?) -> Double {
        let trustWeight: Double = switch trust {
        case .blocked: -1_000
        case .untrusted: 0
        case .verified: 10
        case .trusted: 20
        case .preferred: 30
        }
        let stateWeight: Double = switch state {
        case .active: 10
        case .probing, .candidate: 5
        case .backoff: 0
        case .retired, .keyChanged: -100
        }
        // Up to 5 points for latency: 0 ms → 5, 1 s or more → 0.
        let latency = rttMilliseconds.map { max(0, 5 - $0 / 200) } ?? 2.5
        return trustWeight + stateWeight + latency
    }
}
