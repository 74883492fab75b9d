/// How far this node trusts a peer, lowest first (the names of the original server's
/// federation design).
///
/// Legal transitions:
/// - A peer first seen through a signed request (its key pinned on first use) starts
///   `untrusted`. A peer an admin adds with `peers add` starts `verified`: its descriptor
///   proved its node id and an operator chose it.
/// - An admin may move a peer to any level (`peers trust`, `peers block`).
/// - The node itself only ever lowers trust, never raises it: a peer that serves a forged or
///   tampered revision drops to `untrusted` (if it was above), so it is no longer pulled from.
/// - `blocked` is left only by an admin.
public enum TrustLevel: String, Sendable, CaseIterable, Comparable, Codable {
    case blocked, untrusted, verified, trusted, preferred

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: TrustLevel, b: TrustLevel) -> Bool { a.rank < b.rank }

    /// The level after a peer served forged or tampered content.
    public var penalized: TrustLevel { min(self, .untrusted) }
}

/// What a peer's trust must be for each kind of exchange (configurable; these are the defaults).
public struct TrustPolicy: Sendable, Equatable {
    /// Pull its changes (and react to its announces).
    public var pull: TrustLevel = .verified
    /// Accept revisions it pushes.
    public var acceptPush: TrustLevel = .verified
    /// Announce to it (so it pulls from us).
    public var relay: TrustLevel = .verified
    /// Answer its federation reads (changes, revisions).
    public var serve: TrustLevel = .untrusted

    public init() {}
}

/// Where a peer-table entry stands, apart from trust. Every source of addresses (manual,
/// seeds, DNS, mDNS, peer exchange) feeds the same table.
///
/// Legal transitions:
/// - `candidate` → `probing`: an address was heard and the dial budget let it be dialled
///   (its `/.well-known/thingdata` is fetched to prove the node id).
/// - `probing` → `active` (the descriptor proved the node id, or an exchange succeeded),
///   `backoff` (it failed; retried later, waiting longer each time) or `retired` (it proved
///   to be this node, or another node than its source pinned).
/// - `active` ↔ `backoff`: each exchange's outcome (a success from `backoff` goes straight
///   back to `active`).
/// - `backoff` → `probing`: a candidate's retry is due; `backoff` → `retired`: a candidate
///   failed too often.
/// - `retired` → `candidate`: a source announces the address again after the retirement
///   period. Retired entries are kept so that hearsay cannot make the node dial them again
///   at once.
/// - `active` → `candidate`: an admin forgot the node a proven address belongs to, and a
///   source names the address again; `probing` → `candidate`: a restart interrupted the dial.
/// - Any verified peer → `key-changed`: its descriptor shows a key no rotation statement
///   from the pinned key introduces; it stays there until an admin decides (→ `probing`).
public enum PeerState: String, Sendable, Codable, CaseIterable {
    /// An address heard from a source, not yet dialled.
    case candidate
    /// Being dialled, or verified and waiting for its first exchange.
    case probing
    /// Last exchange succeeded.
    case active
    /// Last exchange failed; retried with backoff.
    case backoff
    /// Given up on (for now); kept so hearsay cannot make the node dial it again at once.
    case retired
    /// Its descriptor shows a key that no rotation statement from the pinned key introduces.
    /// Not synced until an admin decides (`peers trust` re-pins).
    case keyChanged = "key-changed"

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        // "new" is what earlier versions stored for a verified peer not yet synced.
        self = text == "new" ? .probing : (PeerState(rawValue: text) ?? .backoff)
    }

    /// Whether `next` may follow this state (see the list above).
    public func mayBecome(_ next: PeerState) -> Bool {
        if next == self || next == .keyChanged { return true }
        switch (self, next) {
        case (.candidate, .probing), (.candidate, .retired): return true
        case (.probing, .active), (.probing, .backoff), (.probing, .retired), (.probing, .candidate): return true
        case (.active, .backoff), (.active, .retired), (.active, .candidate): return true
        case (.backoff, .active), (.backoff, .probing), (.backoff, .retired): return true
        case (.retired, .candidate), (.keyChanged, .probing): return true
        default: return false
        }
    }
}
