/// Where in a body a value sits: object keys, and procedure steps by their `order`.
public enum PathElement: Sendable, Hashable, CustomStringConvertible {
    case key(String)
    case step(Int64)
    public var json: JSONValue {
        switch self {
        case .key(let k): .string(k)
        case .step(let n): .int(n)
        }
    }
    public var description: String {
        switch self {
        case .key(let k): k
        case .step(let n): "[order=\(n)]"
        }
    }
}

/// One field changed differently by concurrent heads.
public struct FieldConflict: Sendable, Hashable {
    public var path: [PathElement]
    /// The common ancestor's value; nil when it had none.
    public var base: JSONValue?
    /// Each head that changed the field, best ranked first; a nil value removed it.
    public var sides: [Side]
    /// The side whose value the view shows until someone resolves the conflict.
    public var winner: RevisionID

    public struct Side: Sendable, Hashable {
        public var revision: RevisionID
        public var value: JSONValue?
    }

    public var json: JSONValue {
        var o: JSONObject = ["path": .array(path.map(\.json))]
        o["base"] = base ?? .null
        o["sides"] = .array(sides.map { ["revision": .string($0.revision), "value": $0.value ?? .null, "removed": .bool($0.value == nil)] })
        o["winner"] = .string(winner)
        return .object(o)
    }
}

/// What the merge engine found for an entity with several heads.
public struct EntityConflict: Sendable, Hashable {
    /// The merged heads, best ranked first (the first is the overall winner).
    public var heads: [RevisionID]
    /// The lowest common ancestor merged against; nil when the heads share none.
    public var base: RevisionID?
    public var fields: [FieldConflict]
    /// Heads that deleted the entity while another head edited it: the edit wins provisionally.
    public var deletedBy: [RevisionID]
    /// Heads beyond the cap, left out of the view until a write or a resolve closes them.
    public var overflow: [RevisionID]

    public var json: JSONValue {
        [
            "heads": .array(heads.map { .string($0) }),
            "base": base.map { .string($0) } ?? .null,
            "fields": .array(fields.map(\.json)),
            "deleted_by": .array(deletedBy.map { .string($0) }),
            "overflow": .array(overflow.map { .string($0) }),
        ]
    }
}

/// The entity as the merge engine resolves it.
public struct MergeResult: Sendable, Hashable {
    /// The current body; nil when the entity is deleted.
    public var view: JSONObject?
    /// Every open head, sorted by id.
    public var heads: [RevisionID]
    /// Set when heads disagree on something (fields, delete against edit, overflow).
    public var conflict: EntityConflict?
}

/// Resolves one entity's revision DAG into its view and its conflicts. Pure and deterministic:
/// the result depends only on the set of revisions, never on arrival order or duplicates.
///
/// Rules (see `Protocol/merge.md`):
/// - the heads are the revisions no other revision names as a parent;
/// - heads are ranked by HLC, then author node id, then revision id, larger first; the best
///   ranked head that changed a field is that field's provisional winner;
/// - at most `maxOpenHeads` heads are merged: the best ranked; the others are listed as overflow;
/// - heads merge three ways against their lowest common ancestor (the best ranked one if there
///   are several): objects by key (translations are objects by language), procedure steps by
///   their `order`, lists of plain values (tools, materials, skills, warnings) as sets; any
///   other value that two heads changed differently is a conflict;
/// - delete against edit: the edit wins provisionally and the conflict names the deleting heads;
/// - `created_at` is the earliest and `updated_at` the latest of the heads'; a story's
///   server-kept `version` is the best ranked head's.
public enum MergeEngine {
    public static let maxOpenHeads = 8
    static let serverFields: Set<String> = ["created_at", "updated_at", "version"]

    public struct Node: Sendable {
        public var id: RevisionID
        public var revision: Revision
        public init(id: RevisionID, revision: Revision) {
            self.id = id
            self.revision = revision
        }
    }

    public static func merge(_ nodes: [Node]) -> MergeResult {
        var byID: [RevisionID: Revision] = [:]
        for n in nodes { byID[n.id] = n.revision }
        var referenced = Set<RevisionID>()
        for r in byID.values { referenced.formUnion(r.parents) }
        let heads = byID.keys.filter { !referenced.contains($0) }
        func rank(_ a: RevisionID, _ b: RevisionID) -> Bool {  // a ranks above b
            let ra = byID[a]!, rb = byID[b]!
            if ra.hlc != rb.hlc { return ra.hlc > rb.hlc }
            if ra.author.nodeID != rb.author.nodeID { return ra.author.nodeID > rb.author.nodeID }
            return a > b
        }
        let ranked = heads.sorted(by: rank)
        let sortedHeads = heads.sorted()
        guard ranked.count > 1 else {
            return MergeResult(view: ranked.first.flatMap { byID[$0]?.body }, heads: sortedHeads, conflict: nil)
        }
        let active = Array(ranked.prefix(maxOpenHeads))
        let overflow = Array(ranked.dropFirst(maxOpenHeads))
        let live = active.filter { byID[$0]?.body != nil }
        let deleting = active.filter { byID[$0]?.body == nil }
        guard !live.isEmpty else {
            return MergeResult(view: nil, heads: sortedHeads, conflict: overflow.isEmpty ? nil : EntityConflict(heads: active, base: nil, fields: [], deletedBy: [], overflow: overflow))
        }
        let base = lowestCommonAncestor(of: active, in: byID, rank: rank)
        var baseBody = base.flatMap { byID[$0]?.body } ?? [:]
        let bodies = live.map { byID[$0]!.body! }
        for f in serverFields { baseBody[f] = nil }
        var fields: [FieldConflict] = []
        let sides = zip(live, bodies).map { id, body in
            var b = body
            for f in serverFields { b[f] = nil }
            return (id: id, value: Optional(JSONValue.object(b)))
        }
        var view = mergeValue(.object(baseBody), sides, path: [], conflicts: &fields)?.objectValue ?? [:]
        // Server-kept fields: earliest creation, latest update, highest story version.
        if let created = bodies.compactMap({ $0["created_at"]?.stringValue }).min() { view["created_at"] = .string(created) }
        let updated = bodies.compactMap { $0["updated_at"]?.stringValue }
        view["updated_at"] = updated.max().map { .string($0) } ?? (bodies.contains { $0["updated_at"] != nil } ? .null : nil)
        if let version = bodies.lazy.compactMap({ $0["version"] }).first { view["version"] = version }
        let conflict: EntityConflict? = live.count > 1 || !deleting.isEmpty || !overflow.isEmpty
            ? EntityConflict(heads: live + deleting, base: base, fields: fields, deletedBy: deleting, overflow: overflow) : nil
        // Heads that agree on everything leave no conflict to resolve.
        let open = conflict.flatMap { $0.fields.isEmpty && $0.deletedBy.isEmpty && $0.overflow.isEmpty ? nil : $0 }
        return MergeResult(view: view, heads: sortedHeads, conflict: open)
    }

    /// Every ancestor of `id`, itself included.
    static func ancestors(of id: RevisionID, in byID: [RevisionID: Revision]) -> Set<RevisionID> {
        var seen: Set<RevisionID> = [id]
        var stack = [id]
        while let next = stack.popLast() {
            for p in byID[next]?.parents ?? [] where byID[p] != nil && !seen.contains(p) {
                seen.insert(p)
                stack.append(p)
            }
        }
        return seen
    }

    /// The best ranked maximal element of the heads' common ancestors.
    static func lowestCommonAncestor(of heads: [RevisionID], in byID: [RevisionID: Revision], rank: (RevisionID, RevisionID) -> Bool) -> RevisionID? {
        guard var common = heads.first.map({ ancestors(of: $0, in: byID) }) else { return nil }
        for h in heads.dropFirst() { common.formIntersection(ancestors(of: h, in: byID)) }
        // Common ancestors are closed under "parent of", so the maximal ones are those that no
        // other common ancestor names as a parent.
        var dominated = Set<RevisionID>()
        for c in common { for p in byID[c]!.parents where common.contains(p) { dominated.insert(p) } }
        return common.subtracting(dominated).sorted(by: rank).first
    }

    typealias Side = (id: RevisionID, value: JSONValue?)

    /// Three-way merge of one value. `sides` are best ranked first; nil means absent.
    static func mergeValue(_ base: JSONValue?, _ sides: [Side], path: [PathElement], conflicts: inout [FieldConflict]) -> JSONValue? {
        let changed = sides.filter { $0.value != base }
        guard let first = changed.first else { return base }
        if changed.allSatisfy({ $0.value == first.value }) { return first.value }
        let baseIsObject = base == nil || base?.objectValue != nil
        if baseIsObject && changed.allSatisfy({ $0.value?.objectValue != nil }) {
            return .object(mergeObjects(base?.objectValue, sides, path: path, conflicts: &conflicts))
        }
        let baseArray: [JSONValue]? = base == nil ? [] : base?.arrayValue
        if let baseArray, changed.allSatisfy({ $0.value?.arrayValue != nil }) {
            let arrays = [baseArray] + changed.map { $0.value!.arrayValue! }
            if arrays.allSatisfy(isStepList) {
                return .array(mergeSteps(baseArray, sides, path: path, conflicts: &conflicts))
            }
            if arrays.allSatisfy({ $0.allSatisfy(isPlain) }) {
                return .array(mergeSets(baseArray, changed.map { $0.value!.arrayValue! }))
            }
        }
        conflicts.append(FieldConflict(path: path, base: base, sides: changed.map { .init(revision: $0.id, value: $0.value) }, winner: first.id))
        return first.value
    }

    static func mergeObjects(_ base: JSONObject?, _ sides: [Side], path: [PathElement], conflicts: inout [FieldConflict]) -> JSONObject {
        var keys: [String] = base?.keys ?? []
        var seen = Set(keys)
        for side in sides { for k in side.value?.objectValue?.keys ?? [] where !seen.contains(k) { keys.append(k); seen.insert(k) } }
        var out = JSONObject()
        for k in keys {
            let merged = mergeValue(base?[k], sides.map { ($0.id, $0.value?.objectValue?[k]) }, path: path + [.key(k)], conflicts: &conflicts)
            if let merged { out[k] = merged }
        }
        return out
    }

    /// A list of procedure steps: objects with distinct integer `order`s.
    static func isStepList(_ a: [JSONValue]) -> Bool {
        var orders = Set<Int64>()
        for v in a {
            guard case .object(let o) = v, case .int(let n)? = o["order"], orders.insert(n).inserted else { return false }
        }
        return true
    }

    static func isPlain(_ v: JSONValue) -> Bool {
        switch v {
        case .string, .int, .double, .bool: true
        default: false
        }
    }

    static func steps(_ a: [JSONValue]?) -> [Int64: JSONValue] {
        var out: [Int64: JSONValue] = [:]
        for v in a ?? [] { if let n = v.objectValue?["order"]?.intValue { out[n] = v } }
        return out
    }

    static func mergeSteps(_ base: [JSONValue], _ sides: [Side], path: [PathElement], conflicts: inout [FieldConflict]) -> [JSONValue] {
        let baseSteps = steps(base)
        let sideSteps = sides.map { ($0.id, $0.value?.arrayValue.map(steps)) }
        var orders = Set(baseSteps.keys)
        for (_, s) in sideSteps { orders.formUnion(s?.keys ?? [:].keys) }
        return orders.sorted().compactMap { n in
            // A side without the list at all keeps the base's step.
            mergeValue(baseSteps[n], sideSteps.map { ($0.0, $0.1 == nil ? baseSteps[n] : $0.1![n]) }, path: path + [.step(n)], conflicts: &conflicts)
        }
    }

    /// Set semantics: what any side removed is gone, what any side added is added (in the
    /// order the best ranked side added it), the base's order is kept.
    static func mergeSets(_ base: [JSONValue], _ changed: [[JSONValue]]) -> [JSONValue] {
        var removed = Set<JSONValue>()
        var added: [JSONValue] = []
        let baseSet = Set(base)
        for side in changed {
            let s = Set(side)
            removed.formUnion(baseSet.subtracting(s))
            for v in side where !baseSet.contains(v) && !added.contains(v) { added.append(v) }
        }
        var out: [JSONValue] = []
        for v in base where !removed.contains(v) && !out.contains(v) { out.append(v) }
        for v in added where !out.contains(v) { out.append(v) }
        return out
    }
}

/// Field-level differences between two bodies, for history and diffs.
public enum JSONDiff {
    public struct Change: Sendable, Hashable {
        public var path: [PathElement]
        public var from: JSONValue?
        public var to: JSONValue?
        public var json: JSONValue {
            ["path": .array(path.map(\.json)), "from": from ?? .null, "to": to ?? .null, "op": .string(from == nil ? "add" : to == nil ? "remove" : "replace")]
        }
    }

    /// Leaf changes: objects compared by key, step lists by `order`, anything else whole.
    public static func changes(from a: JSONValue?, to b: JSONValue?, path: [PathElement] = []) -> [Change] {
        if a == b { return [] }
        if case .object(let x)? = a, case .object(let y)? = b {
            var keys = x.keys
            for k in y.keys where x[k] == nil { keys.append(k) }
            return keys.flatMap { changes(from: x[$0], to: y[$0], path: path + [.key($0)]) }
        }
        if case .array(let x)? = a, case .array(let y)? = b, MergeEngine.isStepList(x), MergeEngine.isStepList(y), !x.isEmpty || !y.isEmpty {
            let sx = MergeEngine.steps(x), sy = MergeEngine.steps(y)
            return Set(sx.keys).union(sy.keys).sorted().flatMap { changes(from: sx[$0], to: sy[$0], path: path + [.step($0)]) }
        }
        return [Change(path: path, from: a, to: b)]
    }

    /// The top-level fields that differ (history's "changed fields").
    public static func changedFields(from a: JSONObject?, to b: JSONObject?) -> [String] {
        var keys = a?.keys ?? []
        for k in b?.keys ?? [] where a?[k] == nil { keys.append(k) }
        return keys.filter { a?[$0] != b?[$0] && !MergeEngine.serverFields.contains($0) }
    }
}

extension PathElement {
    /// A path element from its JSON form (a key as a string, a step's order as an integer).
    public init?(json: JSONValue) {
        switch json {
        case .string(let k): self = .key(k)
        case .int(let n): self = .step(n)
        default: return nil
        }
    }

    /// The value at `path` in `value`; nil when absent.
    public static func value(at path: some Collection<PathElement>, in value: JSONValue?) -> JSONValue? {
        guard let first = path.first else { return value }
        switch first {
        case .key(let k): return Self.value(at: path.dropFirst(), in: value?.objectValue?[k])
        case .step(let n): return Self.value(at: path.dropFirst(), in: value?.arrayValue?.first { $0.objectValue?["order"]?.intValue == n })
        }
    }

    /// `value` with the value at `path` replaced (nil removes it); missing objects on the way
    /// are created, a missing step is added in order.
    public static func setting(_ new: JSONValue?, at path: some Collection<PathElement>, in value: JSONValue?) -> JSONValue? {
        guard let first = path.first else { return new }
        switch first {
        case .key(let k):
            var o = value?.objectValue ?? [:]
            o[k] = setting(new, at: path.dropFirst(), in: o[k])
            return .object(o)
        case .step(let n):
            var steps = value?.arrayValue ?? []
            let i = steps.firstIndex { $0.objectValue?["order"]?.intValue == n }
            let updated = setting(new, at: path.dropFirst(), in: i.map { steps[$0] })
            if let i {
                if let updated { steps[i] = updated } else { steps.remove(at: i) }
            } else if let updated {
                steps.append(updated)
                steps.sort { ($0.objectValue?["order"]?.intValue ?? 0) < ($1.objectValue?["order"]?.intValue ?? 0) }
            }
            return .array(steps)
        }
    }
}
