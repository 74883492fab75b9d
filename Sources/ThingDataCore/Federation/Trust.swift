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

/// Where a peer stands, apart from trust.
public enum PeerState: String, Sendable, Codable {
    /// Known, not yet synced.
    case new
    /// Last exchange succeeded.
    case active
    /// Last exchange failed; retried with backoff.
    case backoff
    /// Its descriptor shows a key that no rotation statement from the pinned key introduces.
    /// Not synced until an admin decides (`peers trust` re-pins).
    case keyChanged = "key-changed"
}
