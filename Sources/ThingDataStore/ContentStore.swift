public import ThingDataCore

/// Where a node keeps its content. Three implementations share one conformance suite:
/// `SQLiteContentStore` (the embedded default), `PostgresContentStore` (hubs) and
/// `MemoryContentStore` (tests).
///
/// Every change goes through `commit`, which is all or nothing: either every write and every
/// requirement holds and all is stored, or nothing is.
public protocol ContentStore: Sendable {
    /// Applies pending migrations. Safe to call at every start.
    func migrate() async throws
    /// Answers when the database answers (readiness).
    func ping() async throws
    func entity(_ kind: EntityKind, id: String) async throws -> Entity?
    /// An entity and every relationship touching it, in one round trip where the backend can.
    func entityWithRelationships(_ kind: EntityKind, id: String) async throws -> (Entity, [Entity])?
    /// The v1 JSON of an entity with its relationships embedded (the answer of a single GET).
    func renderedEntity(_ kind: EntityKind, id: String) async throws -> RenderedEntity?
    func list(_ query: ListQuery) async throws -> [Listed]
    /// Relationships with an endpoint among `ids`.
    func relationships(touching ids: [String], direction: RelationshipDirection) async throws -> [Entity]
    /// Stories and guides whose `thing_id` is `thingID`.
    func referrers(ofThing thingID: String, limit: Int) async throws -> [Entity]
    /// Things whose duplicate key (type, manufacturer, default name) equals `key`.
    func things(withDuplicateKey key: String, limit: Int) async throws -> [Entity]
    /// Matches of a search, newest first: the newest `SearchQuery.rankWindow` of them, or
    /// (`older`) every match older than those. Ranking is shared (`search`).
    func searchCandidates(_ query: SearchQuery, older: Bool) async throws -> [SearchRanking.Candidate]
    /// Ranked hits of a search; the shared default ranks `searchCandidates` and fetches the
    /// page with `entities(atSequences:)`, a store may do the same in fewer round trips.
    func search(_ query: SearchQuery) async throws -> [SearchHit]
    /// Entities by store sequence, in any order.
    func entities(atSequences sequences: [Int64]) async throws -> [Listed]
    func count(_ kind: EntityKind) async throws -> Int
    func commit(_ changes: ChangeSet) async throws
    func close() async throws

    // MARK: Revisions

    /// An entity's open heads and conflict; nil when it has no revisions.
    func heads(_ kind: EntityKind, id: String) async throws -> EntityHeads?
    /// An entity's revisions, newest first, before a store sequence (paging).
    func revisions(ofEntity id: String, beforeSequence: Int64?, limit: Int) async throws -> [StoredRevision]
    func revision(_ id: RevisionID) async throws -> StoredRevision?
    /// Every revision after a store sequence, oldest first (export, change feeds).
    func revisions(afterSequence: Int64, limit: Int) async throws -> [StoredRevision]
    func revisionCount() async throws -> Int
    /// The sequence of the newest revision (0 when there is none): the head of the changes feed.
    func latestSequence() async throws -> Int64
    /// The latest HLC among the most recently stored revisions (the clock resumes after it).
    func latestHLC() async throws -> HLC
    /// Entities with an open conflict, in store order.
    func conflicts(kind: EntityKind?, limit: Int, offset: Int) async throws -> [EntityHeads]
    /// Stores revisions made elsewhere (import, federation) and brings the affected entities'
    /// views, heads and conflicts up to date through the merge engine. All or nothing;
    /// revisions already held are skipped.
    /// `prepared`: entities already made from revision bodies (by id), reused as views.
    func ingest(_ revisions: [SignedRevision], prepared: [RevisionID: Entity]) async throws -> IngestSummary
    /// `ingest` of the chunks `next` gives until it gives nil, all in one transaction: a
    /// throwing `next` or a refused chunk leaves nothing stored. Stores may apply each chunk
    /// as it comes, so making the next chunk overlaps storing this one.
    func ingest(streaming next: @escaping @Sendable () async throws -> IngestChunk?) async throws -> IngestSummary
    /// Entities without any revision (written before revisions existed), in store order.
    func unversioned(limit: Int) async throws -> [Entity]
    /// Small durable settings of the node's data (its actor id).
    func nodeState(_ key: String) async throws -> String?
    func setNodeState(_ key: String, _ value: String) async throws
    /// Appends audit entries on their own (admin actions; content writes carry theirs in
    /// their change set).
    func appendAudit(_ entries: [AuditEntry]) async throws
    func audit(_ query: AuditQuery) async throws -> [AuditEntry]
    /// Every node-state entry whose key starts with `prefix`, by key (peers, checkpoints).
    func nodeStates(prefix: String) async throws -> [(key: String, value: String)]
    func removeNodeState(_ key: String) async throws
}

extension ContentStore {
    /// Gathers every chunk, then ingests them as one batch (stores that cannot hold a
    /// transaction open across chunks; the in-memory store).
    public func ingest(streaming next: @escaping @Sendable () async throws -> IngestChunk?) async throws -> IngestSummary {
        var revisions: [SignedRevision] = []
        var prepared: [RevisionID: Entity] = [:]
        while let chunk = try await next() {
            revisions += chunk.revisions
            prepared.merge(chunk.prepared) { a, _ in a }
        }
        return try await ingest(revisions, prepared: prepared)
    }

    public func search(_ q: SearchQuery) async throws -> [SearchHit] { try await rankedSearch(q) }

    /// Ranked search: the newest `rankWindow` matches ranked first, then older matches ranked
    /// (see `SearchQuery`); the same ranking on every store.
    public func rankedSearch(_ q: SearchQuery) async throws -> [SearchHit] {
        guard !q.terms.isEmpty, !q.kinds.isEmpty else { return [] }
        var page: [(sequence: Int64, score: Double)] = []
        if q.fromNewest > 0 {
            page += q.pageOfNewest(SearchRanking.rank(try await searchCandidates(q, older: false), terms: q.terms))
        }
        if q.fromOlder > 0 {
            page += q.pageOfOlder(SearchRanking.rank(try await searchCandidates(q, older: true), terms: q.terms))
        }
        guard !page.isEmpty else { return [] }
        let bySequence = Dictionary(try await entities(atSequences: page.map(\.sequence)).map { ($0.sequence, $0.entity) }, uniquingKeysWith: { a, _ in a })
        return page.compactMap { hit in bySequence[hit.sequence].map { SearchHit(entity: $0, score: hit.score) } }
    }

    public func renderedEntity(_ kind: EntityKind, id: String) async throws -> RenderedEntity? {
        guard let bytes = try await defaultRenderedEntity(kind, id: id) else { return nil }
        return RenderedEntity(bytes: bytes, etag: try await heads(kind, id: id)?.etag)
    }

    public func entityWithRelationships(_ kind: EntityKind, id: String) async throws -> (Entity, [Entity])? {
        guard let e = try await entity(kind, id: id) else { return nil }
        return (e, try await relationships(touching: [e.id], direction: .both))
    }
}

/// The v1 JSON of a single GET and the entity's ETag, read together.
public struct RenderedEntity: Sendable {
    public var bytes: [UInt8]
    public var etag: String?
    public init(bytes: [UInt8], etag: String?) {
        self.bytes = bytes
        self.etag = etag
    }
}

/// Which relationships of an entity: pointing out of it, into it, or both.
public enum RelationshipDirection: String, Sendable, CaseIterable {
    case out, `in`, both
}

/// A listed entity with its position in the store's insertion order, for cursors.
public struct Listed: Sendable {
    public var entity: Entity
    public var sequence: Int64
    public init(entity: Entity, sequence: Int64) {
        self.entity = entity
        self.sequence = sequence
    }
}

/// A page of one kind, in insertion order; each filter must match exactly.
public struct ListQuery: Sendable {
    public var kind: EntityKind
    public var filters: [IndexColumn: String] = [:]
    /// Only entries after this sequence (cursor paging).
    public var afterSequence: Int64?
    public var offset: Int
    public var limit: Int

    public init(kind: EntityKind, offset: Int = 0, limit: Int = 100) {
        self.kind = kind
        self.offset = offset
        self.limit = limit
    }

    /// The filters in a stable order (for SQL text that prepares alike).
    var columnFilters: [(IndexColumn, String)] {
        IndexColumn.allCases.compactMap { c in filters[c].map { (c, $0) } }
    }
}

/// A full-text query. Results come in two tiers: first the newest `rankWindow` matches,
/// ranked by relevance; then every older match, ranked by relevance. While a query matches at
/// most `rankWindow` entries this is plain relevance order. Past that, the first pages cost the
/// same however large the catalogue grows (a common word in a hundred thousand things costs
/// what it costs in a thousand), and paging still visits every match once.
public struct SearchQuery: Sendable {
    public static let rankWindow = 200

    public var terms: [SearchText.Term]
    public var kinds: [EntityKind]
    public var type: String?
    public var category: String?
    public var limit: Int
    public var offset: Int

    public init(terms: [SearchText.Term], kinds: [EntityKind] = EntityKind.allCases, type: String? = nil, category: String? = nil, limit: Int = 20, offset: Int = 0) {
        self.terms = terms
        self.kinds = kinds
        self.type = type
        self.category = category
        self.limit = limit
        self.offset = offset
    }

    /// How many of the page come from the newest window's ranking, and how many from the
    /// older matches' ranking.
    public var fromNewest: Int { max(0, min(limit, Self.rankWindow - offset)) }
    public var fromOlder: Int { limit - fromNewest }

    /// The page's part of the newest window's ranking.
    public func pageOfNewest(_ ranked: [(sequence: Int64, score: Double)]) -> ArraySlice<(sequence: Int64, score: Double)> {
        ranked.dropFirst(offset).prefix(fromNewest)
    }

    /// The page's part of the older matches' ranking.
    public func pageOfOlder(_ ranked: [(sequence: Int64, score: Double)]) -> ArraySlice<(sequence: Int64, score: Double)> {
        ranked.dropFirst(max(0, offset - Self.rankWindow)).prefix(fromOlder)
    }
}

public struct SearchHit: Sendable {
    public var entity: Entity
    /// Higher is better; comparable only within one answer.
    public var score: Double
    /// The entity's stored search document (`SearchText.document`), where the store read it
    /// along: snippets then weigh fields without folding them again.
    public var document: String?
    public init(entity: Entity, score: Double, document: String? = nil) {
        self.entity = entity
        self.score = score
        self.document = document
    }
}

/// The writes of one request (or one batch) and the conditions they need, applied atomically.
public struct ChangeSet: Sendable {
    public enum Write: Sendable {
        case insert(Entity)
        /// Replaces the stored body; fails with `notFound` if the entity is gone.
        case update(Entity)
        /// Removes the entity and every relationship touching it; fails with `notFound` if gone.
        case delete(EntityKind, String)
    }

    public enum Requirement: Sendable, Hashable {
        /// The referenced entity exists once the writes are applied.
        case exists(Reference)
        /// No story or guide refers to this thing once the writes are applied.
        case unreferenced(thingID: String)
    }

    public var writes: [Write]
    public var requirements: [Requirement]
    /// The signed revisions of these writes, in order; each applies only if its entity's heads
    /// are still `expectedHeads` (else `StoreError.stale`).
    public var revisions: [RevisionWrite]
    /// Audit entries stored in the same transaction as the writes.
    public var audit: [AuditEntry] = []

    public init(writes: [Write] = [], requirements: [Requirement] = [], revisions: [RevisionWrite] = []) {
        self.writes = writes
        self.requirements = requirements
        self.revisions = revisions
    }
}

/// One line of the append-only audit log: who did what, when, from where, to what.
public struct AuditEntry: Sendable, Equatable {
    public var sequence: Int64 = 0
    public var at: Timestamp
    /// `user:NAME`, `loopback`, `anonymous`, `admin-token`, `peer:NODE`, `node`.
    public var actor: String
    public var address: String?
    /// `thing.create`, `user.add`, `token.revoke`, `peer.trust`, …
    public var action: String
    public var target: String?
    public var revision: String?
    public var detail: String?

    public init(at: Timestamp, actor: String, address: String?, action: String, target: String? = nil, revision: String? = nil, detail: String? = nil) {
        self.at = at
        self.actor = actor
        self.address = address
        self.action = action
        self.target = target
        self.revision = revision
        self.detail = detail
    }

    public var json: JSONValue {
        ["seq": .int(sequence), "at": .string(at.description), "actor": .string(actor), "address": address.map { .string($0) } ?? .null,
         "action": .string(action), "target": target.map { .string($0) } ?? .null, "revision": revision.map { .string($0) } ?? .null,
         "detail": detail.map { .string($0) } ?? .null]
    }
}

/// Which audit entries to read, oldest first.
public struct AuditQuery: Sendable {
    public var since: Timestamp?
    public var actor: String?
    public var afterSequence: Int64 = 0
    public var limit = 100
    public init(since: Timestamp? = nil, actor: String? = nil, afterSequence: Int64 = 0, limit: Int = 100) {
        self.since = since
        self.actor = actor
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

/// A local revision and the heads it was based on (its parents, sorted).
public struct RevisionWrite: Sendable {
    public var signed: SignedRevision
    public var expectedHeads: [RevisionID]
    public init(signed: SignedRevision, expectedHeads: [RevisionID]) {
        self.signed = signed
        self.expectedHeads = expectedHeads.sorted()
    }
}

/// Why a commit was refused. Nothing was written.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(EntityKind, String)
    case duplicateID(String)
    case missingReference(Reference)
    case stillReferenced(thingID: String)
    case unavailable(String)
    /// The entity's heads moved since the write was planned (a concurrent write).
    case stale(EntityKind, String)
    /// A revision from elsewhere failed a check (parents, vector, kind).
    case rejected(RevisionError)

    public var description: String {
        switch self {
        case .notFound(let kind, let id): "\(kind.title) \(id) not found"
        case .duplicateID(let id): "an entity with id \(id) already exists"
        case .missingReference(let ref): "\(ref.kind.title) \(ref.id) (\(ref.field)) not found"
        case .stillReferenced(let thingID): "thing \(thingID) is still referenced"
        case .unavailable(let why): why
        case .stale(let kind, let id): "\(kind.title) \(id) changed while this write was prepared"
        case .rejected(let error): "revision rejected: \(error)"
        }
    }
}

extension ContentStore {
    /// `renderedEntity` through `entityWithRelationships`, for stores that override it.
    func defaultRenderedEntity(_ kind: EntityKind, id: String) async throws -> [UInt8]? {
        if kind == .relationship { return try await entity(kind, id: id).map { JSONSerializer.serialize($0.rendered()) } }
        guard let (e, relationships) = try await entityWithRelationships(kind, id: id) else { return nil }
        return JSONSerializer.serialize(e.rendered(relationships: relationships))
    }
}
