/// A version vector: per actor, how many revisions of one entity it has made (as far as the
/// holder knows). Actors are node incarnations (`ActorID`), so a node restored from a backup
/// never reuses a counter (the kv679 and Syncthing #3876 failures).
///
/// Vectors form a partial order, so `compare` returns one of four answers and the type is
/// deliberately not `Comparable`.
public struct VersionVector: Sendable, Hashable, CustomStringConvertible {
    public enum Order: String, Sendable {
        case equal, before, after, concurrent
    }

    /// At most this many actors are kept; the least active beyond it are pruned (see `pruned`).
    public static let maxActors = 16

    public private(set) var counters: [String: Int64]

    public init(_ counters: [String: Int64] = [:]) {
        self.counters = counters.filter { $0.value > 0 }
    }

    public subscript(actor: String) -> Int64 { counters[actor] ?? 0 }

    /// `before`: every counter ≤ other's and one <; `after` the reverse; `concurrent` when each
    /// has a counter the other lacks.
    public func compare(_ other: VersionVector) -> Order {
        var less = false
        var greater = false
        for actor in Set(counters.keys).union(other.counters.keys) {
            let a = self[actor]
            let b = other[actor]
            if a < b { less = true }
            if a > b { greater = true }
            if less && greater { return .concurrent }
        }
        switch (less, greater) {
        case (false, false): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (true, true): return .concurrent
        }
    }

    /// The pointwise maximum.
    public func merged(with other: VersionVector) -> VersionVector {
        var c = counters
        for (actor, n) in other.counters where n > (c[actor] ?? 0) { c[actor] = n }
        return VersionVector(c)
    }

    /// The vector of a new revision by `actor` on top of `parents`: their maximum, the
    /// actor's counter one higher, then pruned.
    public static func next(actor: String, parents: [VersionVector]) -> VersionVector {
        var v = parents.reduce(VersionVector()) { $0.merged(with: $1) }
        v.counters[actor] = v[actor] + 1
        return v.pruned(keeping: actor)
    }

    /// Keeps at most `maxActors` actors: the writer, then the highest counters (ties: the larger
    /// actor id). An actor dropped here is *retired on this entity*: more than `maxActors − 1`
    /// other actors have written it more often. Pruning is safe because causality between
    /// revisions is decided by their parent links, which every revision carries and which are
    /// never pruned; vectors summarise that DAG, and a comparison that a pruned entry leaves
    /// ambiguous (`concurrent` where parents say `before`) is settled by the DAG (`RevisionDAG`).
    public func pruned(keeping actor: String, max: Int = VersionVector.maxActors) -> VersionVector {
        guard counters.count > max else { return self }
        let others = counters.filter { $0.key != actor }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }
        var kept = Dictionary(uniqueKeysWithValues: others.prefix(max - 1).map { ($0.key, $0.value) })
        kept[actor] = self[actor]
        return VersionVector(kept)
    }

    public var json: JSONValue {
        .object(JSONObject(counters.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) }))
    }

    public init?(json: JSONValue) {
        guard case .object(let o) = json, o.count <= 4096 else { return nil }
        var c: [String: Int64] = [:]
        for (k, v) in o {
            guard ActorID.isValid(k), let n = v.intValue, case .int = v, n > 0, n < 1 << 53 else { return nil }
            c[k] = n
        }
        counters = c
    }

    public var description: String { counters.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") }
}

/// A node incarnation: 16 lowercase hex characters (64 random bits), new each time a node's
/// data is created or restored.
public enum ActorID {
    public static func isValid(_ s: String) -> Bool { Hex.isLowercaseHex(s, count: 16) }
    public static func make(random: inout some RandomNumberGenerator) -> String {
        let n = random.next() as UInt64
        let hex = String(n, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A hybrid logical clock reading: wall milliseconds plus a counter for events in the same
/// millisecond (or while the wall clock lags a peer's). Orders revisions for the provisional
/// winner; causality comes from parents and vectors, never from HLCs.
public struct HLC: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var wall: Int64
    public var logical: Int64
    public init(wall: Int64, logical: Int64 = 0) {
        self.wall = wall
        self.logical = logical
    }
    public static func < (a: HLC, b: HLC) -> Bool { (a.wall, a.logical) < (b.wall, b.logical) }

    /// The next reading after `last`, for a local event at wall time `now`.
    public static func tick(last: HLC, now: Int64) -> HLC {
        now > last.wall ? HLC(wall: now) : HLC(wall: last.wall, logical: last.logical + 1)
    }

    public var json: JSONValue { ["logical": .int(logical), "wall": .int(wall)] }
    public init?(json: JSONValue) {
        guard case .object(let o) = json, o.count == 2, case .int(let w)? = o["wall"], case .int(let l)? = o["logical"],
            w >= 0, w < 1 << 53, l >= 0, l < 1 << 53
        else { return nil }
        wall = w
        logical = l
    }
    public var description: String { "\(wall).\(logical)" }
    public var timestamp: Timestamp { Timestamp(microsecondsSinceEpoch: wall * 1000) }
}

extension VersionVector {
    /// Whether this vector can follow `parents`: exactly one actor one step past the parents'
    /// maximum, every other actor at that maximum, and an actor missing only where pruning
    /// (`maxActors`) dropped it.
    public func isValidSuccessor(of parents: [VersionVector]) -> Bool {
        let m = parents.reduce(VersionVector()) { $0.merged(with: $1) }
        var stepped = 0
        for (actor, n) in counters {
            if n == m[actor] + 1 { stepped += 1 } else if n != m[actor] { return false }
        }
        guard stepped == 1 else { return false }
        let missing = m.counters.keys.contains { counters[$0] == nil }
        return !missing || counters.count == VersionVector.maxActors
    }
}
