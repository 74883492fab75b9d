/// Who may do what on a node's v1 API and admin API.
///
/// - `viewer` reads;
/// - `editor` reads and writes content;
/// - `admin` does everything, including users, tokens and federation.
public enum Role: String, Sendable, CaseIterable, Codable, Comparable {
    case viewer, editor, admin

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }

    public func allows(_ needed: Role) -> Bool { self >= needed }
}

/// When a token is needed (setting `auth_mode`).
public enum AuthMode: String, Sendable, CaseIterable, Codable {
    /// No token needed for anything on the v1 API.
    case open
    /// Every write needs a bearer token with a role that allows it.
    case token
    /// Writes from loopback need no token (clients of the original on the same host keep
    /// working); writes from anywhere else do. The default.
    case auto

    /// Whether a write from a client at `loopback` (true when the peer address is 127.0.0.0/8
    /// or ::1) needs a token.
    public func writeNeedsToken(fromLoopback loopback: Bool) -> Bool {
        switch self {
        case .open: false
        case .token: true
        case .auto: !loopback
        }
    }
}

/// Failed token attempts from one address: after `freeFailures`, each further attempt waits
/// (doubling from `baseDelay`, capped at `maxDelay`); after `blockAfter`, the address is refused
/// for `blockFor`. A success resets it. Times in milliseconds, passed in.
public struct LoginThrottle: Sendable, Equatable {
    public var freeFailures = 3
    public var baseDelay: Int64 = 250
    public var maxDelay: Int64 = 4_000
    public var blockAfter = 10
    public var blockFor: Int64 = 15 * 60_000
    /// Failures are forgotten after this long without one.
    public var window: Int64 = 15 * 60_000

    public init() {}

    public struct State: Sendable, Equatable {
        public var failures = 0
        public var lastFailure: Int64 = 0
        public var blockedUntil: Int64 = 0
        public init() {}
    }

    public enum Verdict: Sendable, Equatable {
        /// Go ahead, after waiting this many milliseconds (0: at once).
        case proceed(delay: Int64)
        /// Refused until this time.
        case blocked(until: Int64)
    }

    /// What to do with the next attempt from an address in `state`.
    public func verdict(_ state: State, now: Int64) -> Verdict {
        if state.blockedUntil > now { return .blocked(until: state.blockedUntil) }
        let failures = now - state.lastFailure > window ? 0 : state.failures
        guard failures >= freeFailures else { return .proceed(delay: 0) }
        let shift = Int64(min(failures - freeFailures, 20))
        return .proceed(delay: min(maxDelay, baseDelay << shift))
    }

    public func failed(_ state: State, now: Int64) -> State {
        var s = state
        if now - s.lastFailure > window { s.failures = 0 }
        s.failures += 1
        s.lastFailure = now
        if s.failures >= blockAfter { s.blockedUntil = now + blockFor }
        return s
    }
}

/// A token bucket per window (minute, hour, day): each request takes one token from every
/// bucket; a bucket refills continuously at `limit` per `window`. Pure: the clock is passed in.
public struct RateLimiter: Sendable, Equatable {
    public struct Window: Sendable, Equatable {
        public var name: String
        public var limit: Int
        /// Milliseconds.
        public var length: Int64
        public init(name: String, limit: Int, length: Int64) {
            self.name = name
            self.limit = limit
            self.length = length
        }
    }

    public var windows: [Window]
    /// Below this share of a window left, answers carry a warning.
    public var warnAt = 0.1

    public init(windows: [Window]) { self.windows = windows.filter { $0.limit > 0 } }

    public struct Buckets: Sendable, Equatable {
        var tokens: [Double]
        /// When the buckets were last refilled (milliseconds).
        public internal(set) var updated: Int64
    }

    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// The tightest window: its name, limit, what is left, and seconds until it is full.
        public var policy: Window?
        public var remaining: Int
        public var resetSeconds: Int
        /// When refused: seconds until one request fits.
        public var retryAfterSeconds: Int
        public var warning: Bool
    }

    public func fresh(now: Int64) -> Buckets { Buckets(tokens: windows.map { Double($0.limit) }, updated: now) }

    /// Takes one request from `buckets` at `now`.
    public func take(_ buckets: inout Buckets, now: Int64) -> Decision {
        guard !windows.isEmpty else { return Decision(allowed: true, policy: nil, remaining: 0, resetSeconds: 0, retryAfterSeconds: 0, warning: false) }
        let elapsed = Double(max(0, now - buckets.updated))
        for (i, w) in windows.enumerated() {
            buckets.tokens[i] = min(Double(w.limit), buckets.tokens[i] + elapsed * Double(w.limit) / Double(w.length))
        }
        buckets.updated = now
        let allowed = buckets.tokens.allSatisfy { $0 >= 1 }
        if allowed { for i in buckets.tokens.indices { buckets.tokens[i] -= 1 } }
        // The tightest window: least left relative to its limit.
        var tightest = 0
        for i in windows.indices where buckets.tokens[i] / Double(windows[i].limit) < buckets.tokens[tightest] / Double(windows[tightest].limit) { tightest = i }
        let w = windows[tightest]
        let rate = Double(w.limit) / Double(w.length)  // tokens per millisecond
        let left = buckets.tokens[tightest]
        var retry = 0
        if !allowed {
            for (i, win) in windows.enumerated() where buckets.tokens[i] < 1 {
                retry = max(retry, Int(((1 - buckets.tokens[i]) / (Double(win.limit) / Double(win.length)) / 1000).rounded(.up)))
            }
        }
        return Decision(
            allowed: allowed, policy: w, remaining: max(0, Int(left)), resetSeconds: Int(((Double(w.limit) - left) / rate / 1000).rounded(.up)),
            retryAfterSeconds: max(allowed ? 0 : 1, retry), warning: left < Double(w.limit) * warnAt)
    }
}
