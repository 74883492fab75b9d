public import ThingDataCore

/// An in-memory store for tests and trials. Same semantics as the SQL stores; search is a scan.
public actor MemoryContentStore: ContentStore {
    struct Row {
        var entity: Entity
        var sequence: Int64
        var index: EntityIndex
    }
    var rows: [String: Row] = [:]
    var nextSequence: Int64 = 1
    var log = RevisionLog()
    var state: [String: String] = [:]
    var auditLog: [AuditEntry] = []

    /// Revisions and heads, copied on write so a failed commit leaves nothing behind.
    struct RevisionLog {
        var stored: [RevisionID: StoredRevision] = [:]
        var decoded: [RevisionID: SignedRevision] = [:]
        var byEntity: [String: [RevisionID]] = [:]
        var heads: [String: EntityHeads] = [:]
        var nextSequence: Int64 = 1

        mutating func insert(_ r: SignedRevision) {
            stored[r.id] = StoredRevision(sequence: nextSequence, bytes: r.bytes)
            decoded[r.id] = r
            byEntity[r.revision.entityID, default: []].append(r.id)
            nextSequence += 1
        }
    }

    public init() {}

    public func migrate() async throws {}
    public func ping() async throws {}
    public func close() async throws {}

    public func entity(_ kind: EntityKind, id: String) async throws -> Entity? {
        guard let row = rows[id.lowercased()], row.entity.kind == kind else { return nil }
        return row.entity
    }

    func ordered(_ kind: EntityKind) -> [Row] {
        rows.values.filter { $0.entity.kind == kind }.sorted { $0.sequence < $1.sequence }
    }

    public func list(_ query: ListQuery) async throws -> [Listed] {
        let matching = ordered(query.kind).filter { row in
            if let after = query.afterSequence, row.sequence <= after { return false }
            return query.columnFilters.allSatisfy { column, value in row.index[column] == value }
        }
        return matching.dropFirst(query.offset).prefix(query.limit).map { Listed(entity: $0.entity, sequence: $0.sequence) }
    }

    public func relationships(touching ids: [String], direction: RelationshipDirection) async throws -> [Entity] {
        let set = Set(ids)
        return ordered(.relationship).filter { row in
            let out = row.index.sourceID.map(set.contains) ?? false
            let inn = row.index.targetID.map(set.contains) ?? false
            switch direction {
            case .out: return out
            case .in: return inn
            case .both: return out || inn
            }
        }.map(\.entity)
    }

    public func referrers(ofThing thingID: String, limit: Int) async throws -> [Entity] {
        Array((ordered(.story) + ordered(.guide)).filter { $0.index.thingID == thingID }.prefix(limit).map(\.entity))
    }

    public func things(withDuplicateKey key: String, limit: Int) async throws -> [Entity] {
        Array(ordered(.thing).filter { $0.index.duplicateKey == key }.prefix(limit).map(\.entity))
    }

    public func searchCandidates(_ query: SearchQuery, older: Bool) async throws -> [SearchRanking.Candidate] {
        var matches: [SearchRanking.Candidate] = []
        for row in rows.values where query.kinds.contains(row.entity.kind) {
            if let t = query.type, row.index.type != t { continue }
            if let c = query.category, row.index.category != c { continue }
            let document = SearchText.document(for: row.entity)
            let tokens = SearchText.tokens(document)
            if query.terms.allSatisfy({ SearchText.matchPosition(tokens, $0) != nil }) {
                matches.append(SearchRanking.Candidate(sequence: row.sequence, document: document))
            }
        }
        matches.sort { $0.sequence > $1.sequence }
        return older ? Array(matches.dropFirst(SearchQuery.rankWindow)) : Array(matches.prefix(SearchQuery.rankWindow))
    }

    public func entities(atSequences sequences: [Int64]) async throws -> [Listed] {
        let wanted = Set(sequences)
        return rows.values.filter { wanted.contains($0.sequence) }.map { Listed(entity: $0.entity, sequence: $0.sequence) }
    }

    public func count(_ kind: EntityKind) async throws -> Int { rows.values.filter { $0.entity.kind == kind }.count }

    public func commit(_ changes: ChangeSet) async throws {
        var staged = rows
        var sequence = nextSequence
        // Heads are checked first and the log is changed only once everything passed (copying
        // the whole log per commit would make large loads quadratic).
        var planned: [String: [RevisionID]] = [:]
        for w in changes.revisions {
            let r = w.signed.revision
            guard (planned[r.entityID] ?? log.heads[r.entityID]?.heads.map(\.id) ?? []) == w.expectedHeads else { throw StoreError.stale(r.kind, r.entityID) }
            planned[r.entityID] = [w.signed.id]
        }
        for write in changes.writes {
            switch write {
            case .insert(let e):
                guard staged[e.id] == nil else { throw StoreError.duplicateID(e.id) }
                staged[e.id] = Row(entity: e, sequence: sequence, index: EntityIndex(e))
                sequence += 1
            case .update(let e):
                guard let row = staged[e.id], row.entity.kind == e.kind else { throw StoreError.notFound(e.kind, e.id) }
                staged[e.id] = Row(entity: e, sequence: row.sequence, index: EntityIndex(e))
            case .delete(let kind, let id):
                guard let row = staged[id], row.entity.kind == kind else { throw StoreError.notFound(kind, id) }
                staged[id] = nil
                for (rid, r) in staged where r.entity.kind == .relationship && (r.index.sourceID == id || r.index.targetID == id) {
                    staged[rid] = nil
                }
            }
        }
        for requirement in changes.requirements {
            switch requirement {
            case .exists(let ref):
                guard let row = staged[ref.id], row.entity.kind == ref.kind else { throw StoreError.missingReference(ref) }
            case .unreferenced(let thingID):
                if staged.values.contains(where: { ($0.entity.kind == .story || $0.entity.kind == .guide) && $0.index.thingID == thingID }) {
                    throw StoreError.stillReferenced(thingID: thingID)
                }
            }
        }
        rows = staged
        try await appendAudit(changes.audit)
        nextSequence = sequence
        for w in changes.revisions {
            let r = w.signed.revision
            log.insert(w.signed)
            log.heads[r.entityID] = EntityHeads(kind: r.kind, entityID: r.entityID, heads: [.init(id: w.signed.id, vector: r.versionVector)], deleted: r.isTombstone, conflict: nil)
        }
    }

    // MARK: Revisions

    public func heads(_ kind: EntityKind, id: String) async throws -> EntityHeads? {
        log.heads[id.lowercased()].flatMap { $0.kind == kind ? $0 : nil }
    }

    public func revisions(ofEntity id: String, beforeSequence: Int64?, limit: Int) async throws -> [StoredRevision] {
        let all = (log.byEntity[id.lowercased()] ?? []).compactMap { log.stored[$0] }.filter { beforeSequence == nil || $0.sequence < beforeSequence! }
        return Array(all.sorted { $0.sequence > $1.sequence }.prefix(limit))
    }

    public func revision(_ id: RevisionID) async throws -> StoredRevision? { log.stored[id] }


    public func revisions(afterSequence: Int64, limit: Int) async throws -> [StoredRevision] {
        Array(log.stored.values.filter { $0.sequence > afterSequence }.sorted { $0.sequence < $1.sequence }.prefix(limit))
    }

    public func revisionCount() async throws -> Int { log.stored.count }
    public func latestSequence() async throws -> Int64 { log.stored.values.map(\.sequence).max() ?? 0 }
    public func latestHLC() async throws -> HLC { log.decoded.values.map(\.revision.hlc).max() ?? HLC(wall: 0) }

    public func conflicts(kind: EntityKind?, limit: Int, offset: Int) async throws -> [EntityHeads] {
        Array(log.heads.values.filter { $0.conflict != nil && (kind == nil || $0.kind == kind) }.sorted { $0.entityID < $1.entityID }.dropFirst(offset).prefix(limit))
    }

    public func ingest(_ revisions: [SignedRevision], prepared: [RevisionID: Entity]) async throws -> IngestSummary {
        let ledger = MemoryLedger(log: log, rows: rows, nextSequence: nextSequence)
        let summary = try await Ingest.apply(revisions, prepared: prepared, ledger: ledger, now: Timestamp(microsecondsSinceEpoch: 0))
        log = ledger.log
        rows = ledger.rows
        nextSequence = ledger.nextSequence
        return summary
    }

    public func unversioned(limit: Int) async throws -> [Entity] {
        Array(rows.values.filter { log.heads[$0.entity.id] == nil }.sorted { $0.sequence < $1.sequence }.prefix(limit).map(\.entity))
    }

    public func nodeState(_ key: String) async throws -> String? { state[key] }
    public func setNodeState(_ key: String, _ value: String) async throws { state[key] = value }
    public func nodeStates(prefix: String) async throws -> [(key: String, value: String)] {
        state.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
    public func removeNodeState(_ key: String) async throws { state[key] = nil }
    public func appendAudit(_ entries: [AuditEntry]) async throws {
        for var e in entries {
            e.sequence = Int64(auditLog.count + 1)
            auditLog.append(e)
        }
    }
    public func audit(_ q: AuditQuery) async throws -> [AuditEntry] {
        Array(auditLog.filter { $0.sequence > q.afterSequence && (q.since == nil || $0.at >= q.since!) && (q.actor == nil || $0.actor == q.actor) }.prefix(max(1, q.limit)))
    }
}

/// The memory store's ledger: a private copy, kept only if the whole ingest succeeds. Used by
/// one call on the store's actor at a time, never shared.
final class MemoryLedger: RevisionLedger, @unchecked Sendable {
    var log: MemoryContentStore.RevisionLog
    var rows: [String: MemoryContentStore.Row]
    var nextSequence: Int64

    init(log: MemoryContentStore.RevisionLog, rows: [String: MemoryContentStore.Row], nextSequence: Int64) {
        self.log = log
        self.rows = rows
        self.nextSequence = nextSequence
    }

    func known(_ ids: [RevisionID]) async throws -> Set<RevisionID> { Set(ids.filter { log.stored[$0] != nil }) }
    func insert(_ revisions: [SignedRevision], receivedAt: Timestamp) async throws { for r in revisions { log.insert(r) } }
    func all(ofEntity id: String) async throws -> [SignedRevision] { (log.byEntity[id] ?? []).compactMap { log.decoded[$0] } }
    func heads(ofEntities ids: [String]) async throws -> [String: EntityHeads] {
        var out: [String: EntityHeads] = [:]
        for id in ids { out[id] = log.heads[id] }
        return out
    }
    func setHeads(_ heads: [EntityHeads]) async throws { for h in heads { log.heads[h.entityID] = h } }
    func materialize(_ entities: [Entity], deleting: [String]) async throws {
        for id in deleting { rows[id] = nil }
        for entity in entities {
            let sequence = rows[entity.id]?.sequence ?? nextSequence
            if rows[entity.id] == nil { nextSequence += 1 }
            rows[entity.id] = MemoryContentStore.Row(entity: entity, sequence: sequence, index: EntityIndex(entity))
        }
    }
}
