public import ThingDataCore

/// An entity's open heads (with their vectors), whether its view is deleted, and its open conflict.
public struct EntityHeads: Sendable {
    public struct Head: Sendable, Hashable {
        public var id: RevisionID
        public var vector: VersionVector
        public init(id: RevisionID, vector: VersionVector) {
            self.id = id
            self.vector = vector
        }
    }
    public var kind: EntityKind
    public var entityID: String
    /// Sorted by id.
    public var heads: [Head]
    public var deleted: Bool
    /// `EntityConflict.json`, when the heads disagree.
    public var conflict: JSONValue?

    public init(kind: EntityKind, entityID: String, heads: [Head], deleted: Bool, conflict: JSONValue?) {
        self.kind = kind
        self.entityID = entityID
        self.heads = heads.sorted { $0.id < $1.id }
        self.deleted = deleted
        self.conflict = conflict
    }

    /// The HTTP entity tag: the head's id, or with several heads a digest of all of them.
    public var etag: String {
        heads.count == 1 ? heads[0].id : "h-" + ContentHash.sha256Hex(Array(heads.map(\.id).joined(separator: ",").utf8))
    }

    var headsJSON: String {
        String(decoding: CanonicalJSON.encode(.array(heads.map { ["id": .string($0.id), "vv": $0.vector.json] })), as: UTF8.self)
    }

    static func heads(fromJSON text: String) -> [Head] {
        guard case .array(let a)? = try? JSONParser.parse(Array(text.utf8)) else { return [] }
        return a.compactMap { h in
            guard let id = h["id"]?.stringValue, let vv = h["vv"].flatMap(VersionVector.init(json:)) else { return nil }
            return Head(id: id, vector: vv)
        }
    }
}

/// A revision as stored: its verbatim bytes and its place in this store's order.
public struct StoredRevision: Sendable {
    public var sequence: Int64
    public var bytes: [UInt8]
    public init(sequence: Int64, bytes: [UInt8]) {
        self.sequence = sequence
        self.bytes = bytes
    }
    /// Stored bytes were checked on the way in; a failure here means a damaged store.
    public func decoded() throws -> SignedRevision {
        do { return try SignedRevision.decode(bytes) } catch { throw StoreError.unavailable("stored revision \(sequence) is damaged: \(error)") }
    }
}

public struct IngestSummary: Sendable, Equatable {
    /// New revisions stored.
    public var stored = 0
    /// Revisions already held (idempotent re-delivery).
    public var duplicates = 0
    /// Entities whose view changed.
    public var entities = 0
    /// Entities left with an open conflict.
    public var conflicts = 0
    public init() {}
}

/// Revisions from elsewhere, checked, with the entities their bodies describe (by revision
/// id): one step of a streamed ingest.
public struct IngestChunk: Sendable {
    public var revisions: [SignedRevision]
    public var prepared: [RevisionID: Entity]
    public init(revisions: [SignedRevision], prepared: [RevisionID: Entity] = [:]) {
        self.revisions = revisions
        self.prepared = prepared
    }
}

/// What the shared ingest needs from a store, inside one transaction. Batched, so a large
/// import costs a few statements per hundred revisions, not several per revision.
protocol RevisionLedger {
    func known(_ ids: [RevisionID]) async throws -> Set<RevisionID>
    func insert(_ revisions: [SignedRevision], receivedAt: Timestamp) async throws
    /// Every stored revision of an entity (the slow path: concurrent histories).
    func all(ofEntity id: String) async throws -> [SignedRevision]
    func heads(ofEntities ids: [String]) async throws -> [String: EntityHeads]
    func setHeads(_ heads: [EntityHeads]) async throws
    /// Writes entity rows (insert or replace) and removes the rows of deleted views.
    func materialize(_ entities: [Entity], deleting: [String]) async throws
}

enum Ingest {
    /// Checks a batch against the store and applies it (see `ContentStore.ingest`).
    static func apply(_ batch: [SignedRevision], prepared: [RevisionID: Entity] = [:], ledger: some RevisionLedger, now: Timestamp) async throws -> IngestSummary {
        var tally = Tally()
        try await apply(batch, prepared: prepared, ledger: ledger, now: now, into: &tally)
        return tally.summary
    }

    /// Counts over several batches applied in one transaction: an entity touched by two
    /// batches counts once, with its last state.
    struct Tally {
        var stored = 0
        var duplicates = 0
        var entities = Set<String>()
        var conflicted = Set<String>()
        var summary: IngestSummary {
            var s = IngestSummary()
            s.stored = stored
            s.duplicates = duplicates
            s.entities = entities.count
            s.conflicts = conflicted.count
            return s
        }
    }

    /// Applies one batch inside a transaction, adding to `tally`.
    static func apply(_ batch: [SignedRevision], prepared: [RevisionID: Entity], ledger: some RevisionLedger, now: Timestamp, into summary: inout Tally) async throws {
        var fresh: [SignedRevision] = []
        var seen = Set<RevisionID>()
        let known = try await ledger.known(batch.map(\.id))
        for r in batch where seen.insert(r.id).inserted {
            if known.contains(r.id) { summary.duplicates += 1 } else { fresh.append(r) }
        }
        summary.duplicates += batch.count - seen.count
        guard !fresh.isEmpty else { return }
        // Parents must be held or come in this batch.
        let parentIDs = Set(fresh.lazy.flatMap(\.revision.parents)).subtracting(fresh.lazy.map(\.id))
        let held = try await ledger.known(Array(parentIDs))
        if let missing = parentIDs.subtracting(held).sorted().first {
            throw StoreError.rejected(RevisionError(.missingParent, "parent \(missing) is neither stored nor in this batch"))
        }
        // Each entity's revisions as positions in `fresh`: a revision is a large value, and
        // copying it into groups retained every one of its parts (2 to 4 % of the writer's
        // time in a sync).
        var byEntity: [String: [Int]] = [:]
        var order: [String] = []
        for i in fresh.indices {
            let entityID = fresh[i].revision.entityID
            if byEntity[entityID] == nil { order.append(entityID) }
            byEntity[entityID, default: []].append(i)
        }
        let current = try await ledger.heads(ofEntities: order)
        try await ledger.insert(fresh, receivedAt: now)
        var newHeads: [EntityHeads] = []
        var upserts: [Entity] = []
        var deletes: [String] = []
        for entityID in order {
            let incoming = byEntity[entityID]!
            let kind = fresh[incoming[0]].revision.kind
            let now = current[entityID]
            if let now, now.kind != kind {
                throw StoreError.rejected(RevisionError(.malformed, "entity \(entityID) is a \(now.kind.rawValue), not a \(kind.rawValue)"))
            }
            guard incoming.allSatisfy({ fresh[$0].revision.kind == kind }) else {
                throw StoreError.rejected(RevisionError(.malformed, "revisions of \(entityID) disagree on its kind"))
            }
            let state: EntityHeads
            let view: JSONObject?
            var entity: Entity?
            if let last = try linearExtension(incoming, in: fresh, of: now) {
                // The common case (sync, import): each revision builds on all heads before it.
                let linear = fresh[last]
                state = EntityHeads(kind: kind, entityID: entityID, heads: [.init(id: linear.id, vector: linear.revision.versionVector)], deleted: linear.revision.isTombstone, conflict: nil)
                view = linear.revision.body
                entity = prepared[linear.id]
            } else {
                let all = try await ledger.all(ofEntity: entityID)
                let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for r in incoming.map({ fresh[$0] }) {
                    var parentVectors: [VersionVector] = []
                    for p in r.revision.parents {
                        guard let parent = byID[p], parent.revision.entityID == entityID else {
                            throw StoreError.rejected(RevisionError(.missingParent, "parent \(p) of \(r.id) is not a revision of entity \(entityID)"))
                        }
                        parentVectors.append(parent.revision.versionVector)
                    }
                    try checkVector(r, parents: parentVectors)
                }
                let result = MergeEngine.merge(all.map { .init(id: $0.id, revision: $0.revision) })
                let heads = result.heads.map { EntityHeads.Head(id: $0, vector: byID[$0]!.revision.versionVector) }
                state = EntityHeads(kind: kind, entityID: entityID, heads: heads, deleted: result.view == nil, conflict: result.conflict?.json)
                view = result.view
            }
            newHeads.append(state)
            if let view { upserts.append(entity ?? Materialize.entity(kind, id: entityID, view: view)) } else { deletes.append(entityID) }
            summary.entities.insert(entityID)
            if state.conflict != nil { summary.conflicted.insert(entityID) } else { summary.conflicted.remove(entityID) }
        }
        try await ledger.setHeads(newHeads)
        try await ledger.materialize(upserts, deleting: deletes)
        summary.stored += fresh.count
    }

    static func checkVector(_ r: SignedRevision, parents: [VersionVector]) throws {
        guard r.revision.versionVector.isValidSuccessor(of: parents) else {
            throw StoreError.rejected(RevisionError(.vectorRegression, "the version vector of \(r.id) does not follow from its parents' (one actor one step ahead, the rest their maximum)"))
        }
    }

    /// The position of the last revision when `incoming` (positions in `revisions`, in order)
    /// is a chain in which each revision's parents are exactly the heads before it; nil when
    /// histories fork or join (the merge engine's case).
    static func linearExtension(_ incoming: [Int], in revisions: [SignedRevision], of current: EntityHeads?) throws -> Int? {
        var heads = current?.heads ?? []
        var last: Int?
        for i in incoming {
            guard revisions[i].revision.parents == heads.map(\.id) else { return nil }
            try checkVector(revisions[i], parents: heads.map(\.vector))
            heads = [.init(id: revisions[i].id, vector: revisions[i].revision.versionVector)]
            last = i
        }
        return last
    }
}

/// Between entities and revision bodies.
public enum Materialize {
    /// A revision body: the stored fields plus the timestamps.
    public static func body(of e: Entity) -> JSONObject {
        var b = e.body
        b["created_at"] = .string(e.createdAt.description)
        b["updated_at"] = e.updatedAt.map { .string($0.description) } ?? .null
        return b
    }

    /// The entity a merged view describes. The view is normalized as a write would be (so a
    /// float stays a float after its canonical form wrote `20`), keeping it as is if it does
    /// not validate.
    public static func entity(_ kind: EntityKind, id: String, view: JSONObject) -> Entity {
        if let checked = try? checked(kind, id: id, body: view) { return checked }
        var body = view
        body["created_at"] = nil
        body["updated_at"] = nil
        return Entity(kind: kind, id: id, body: body, createdAt: timestamp(view["created_at"]) ?? Timestamp(microsecondsSinceEpoch: 0), updatedAt: timestamp(view["updated_at"]))
    }

    static func timestamp(_ v: JSONValue?) -> Timestamp? { v?.stringValue.flatMap(Timestamp.init(iso8601:)) }

    /// The entity a revision body describes, which must be a valid entity of its kind with
    /// well-formed timestamps (`invalidBody` says what is wrong otherwise).
    static func checked(_ kind: EntityKind, id: String, body: JSONObject) throws(RevisionError) -> Entity {
        var b = body
        guard let created = timestamp(b["created_at"]) else { throw RevisionError(.invalidBody, "created_at must be an ISO 8601 UTC time") }
        let updated = timestamp(b["updated_at"])
        if let u = b["updated_at"], u != .null, updated == nil { throw RevisionError(.invalidBody, "updated_at must be null or an ISO 8601 UTC time") }
        b["created_at"] = nil
        b["updated_at"] = nil
        // A story's version is kept by the server, not validated as client input.
        let version = kind == .story ? b["version"] : nil
        if kind == .story { b["version"] = nil }
        do {
            var normalized = try ContentRules.normalize(kind, .object(b))
            if let version { normalized["version"] = version }
            return Entity(kind: kind, id: id, body: normalized, createdAt: created, updatedAt: updated)
        } catch {
            throw RevisionError(.invalidBody, error.issues.prefix(3).map { "\($0.loc.map { "\($0)" }.joined(separator: ".")): \($0.msg)" }.joined(separator: "; "))
        }
    }
}
