/// When to pull from one peer next: the pure timing rules of the sync loop. The caller passes
/// the clock (milliseconds) and randomness; the schedule returns the next due time.
///
/// - After a successful pull that drained the feed: the poll interval, jittered ±20 %.
/// - After a pull that left more to fetch: at once.
/// - After a failure: exponential backoff from `backoffBase`, doubling per consecutive
///   failure, capped at `backoffCap`, jittered ±20 %; a `Retry-After` (429, 503) overrides it
///   when longer.
/// - An announce from the peer makes it due at once: the peer just proved it is up, even if
///   earlier pulls failed (the failure count stays, so a peer that announces and then fails
///   again backs off further). How often a peer may announce is the rate limiter's business.
public struct SyncSchedule: Sendable, Equatable {
    public var interval: Int64
    public var backoffBase: Int64
    public var backoffCap: Int64
    public private(set) var failures = 0
    public private(set) var due: Int64

    public init(interval: Int64 = 30_000, backoffBase: Int64 = 1_000, backoffCap: Int64 = 300_000, now: Int64) {
        self.interval = interval
        self.backoffBase = backoffBase
        self.backoffCap = backoffCap
        self.due = now
    }

    public enum Event: Sendable, Equatable {
        case pulled(more: Bool)
        case failed(retryAfter: Int64?)
        case announced
        case requested
    }

    static func jitter(_ value: Int64, _ random: inout some RandomNumberGenerator) -> Int64 {
        let spread = value / 5
        return spread > 0 ? value + Int64.random(in: -spread...spread, using: &random) : value
    }

    /// Applies one event at `now`; returns the new due time.
    @discardableResult
    public mutating func record(_ event: Event, now: Int64, random: inout some RandomNumberGenerator) -> Int64 {
        switch event {
        case .pulled(let more):
            failures = 0
            due = more ? now : now + Self.jitter(interval, &random)
        case .failed(let retryAfter):
            failures += 1
            let shift = min(failures - 1, 30)
            let backoff = min(backoffCap, backoffBase << Int64(shift))
            due = now + max(Self.jitter(backoff, &random), retryAfter ?? 0)
        case .announced, .requested:
            due = now
        }
        return due
    }
}
