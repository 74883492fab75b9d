public import ThingDataCore
public import ThingDataSigning
import Foundation
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

extension Catalog {
    /// The catalog of a node: its key signs, its data's actor id (made on first use) counts.
    public static func open(store: any ContentStore, key: NodeKey) async throws -> Catalog {
        let actor: String
        if let saved = try await store.nodeState("actor") {
            actor = saved
        } else {
            var rng = SystemRandomNumberGenerator()
            actor = ActorID.make(random: &rng)
            try await store.setNodeState("actor", actor)
            try await store.setNodeState("actor_started_at", Timestamp.now().description)
        }
        // The clock resumes after the newest revision this store holds.
        let last = try await store.latestHLC()
        let signer = RevisionSigner(key: key, actor: actor, lastHLC: last, wallClock: { Int64(Date().timeIntervalSince1970 * 1000) })
        let catalog = Catalog(store: store, signer: signer)
        // Once per store: every write since revisions exist makes one, so later opens skip the scan.
        if try await store.nodeState("unversioned_adopted") == nil {
            try await catalog.adoptUnversioned()
            try await store.setNodeState("unversioned_adopted", Timestamp.now().description)
        }
        return catalog
    }

    /// Gives every entity written before revisions existed (a node upgraded from the first
    /// release) a first revision signed by this node, so history and export cover it.
    /// Returns how many. `open` runs it once per store.
    @discardableResult
    public func adoptUnversioned() async throws -> Int {
        var adopted = 0
        while true {
            let batch = try await store.unversioned(limit: 500)
            guard !batch.isEmpty else { return adopted }
            var changes = ChangeSet()
            for e in batch {
                let signed = signer.revision(kind: e.kind, entityID: e.id, parents: [], body: Materialize.body(of: e))
                changes.revisions.append(RevisionWrite(signed: signed, expectedHeads: []))
            }
            try await store.commit(changes)
            adopted += batch.count
        }
    }

    /// The keys this node accepts: derivation from node ids, its own rotations, and the
    /// rotations it has imported.
    public func keyBook() async throws -> KeyBook {
        var book = KeyBook()
        try book.add(try await knownRotations())
        return book
    }

    /// This node's own rotation statements and every one it has learned, oldest first per node.
    public func knownRotations() async throws -> [KeyRotation] {
        var all = signer.key.rotations
        if let text = try await store.nodeState("key_rotations"), case .array(let list)? = try? JSONParser.parse(Array(text.utf8)) {
            all += list.compactMap { try? KeyRotation(json: $0) }.filter { !all.contains($0) }
        }
        return all
    }

    /// Remembers rotation statements (from a bundle or a peer) after checking them.
    public func learn(rotations: [KeyRotation]) async throws {
        guard !rotations.isEmpty else { return }
        var book = try await keyBook()
        try book.add(rotations)
        var list: [JSONValue] = []
        if let text = try await store.nodeState("key_rotations"), case .array(let existing)? = try? JSONParser.parse(Array(text.utf8)) { list = existing }
        for r in rotations where !list.contains(r.json) { list.append(r.json) }
        try await store.setNodeState("key_rotations", String(decoding: CanonicalJSON.encode(.array(list)), as: UTF8.self))
    }

    // MARK: Versions

    /// The entity tag of an entity's current version; nil if it has no revisions.
    public func etag(_ kind: EntityKind, id: String) async throws -> String? {
        try await store.heads(kind, id: id)?.etag
    }

    func revisionSummary(_ s: SignedRevision, keys: KeyBook, parentBody: JSONObject??) -> JSONObject {
        let r = s.revision
        var o: JSONObject = ["id": .string(s.id), "parents": .array(r.parents.map { .string($0) })]
        o["operation"] = .string(r.isTombstone ? "delete" : r.parents.isEmpty ? "create" : "update")
        o["author"] = ["node_id": .string(r.author.nodeID.longForm), "short_id": .string(r.author.nodeID.short), "public_key": .string(Base64URL.encode(r.author.publicKey))]
        o["time"] = .string(r.hlc.timestamp.description)
        o["hlc"] = r.hlc.json
        o["version_vector"] = r.versionVector.json
        do {
            try s.verify(keys: keys)
            o["signature"] = "valid"
        } catch {
            o["signature"] = .string("invalid: \(error.reason)")
        }
        if let parentBody {
            o["changed_fields"] = .array(JSONDiff.changedFields(from: parentBody, to: r.body).map { .string($0) })
        }
        return o
    }

    /// Revisions of an entity, newest first, with who, when and what changed.
    public func history(_ kind: EntityKind, id: String, limit: Int, before: Int64?) async throws -> (items: [JSONValue], next: Int64?) {
        guard try await store.heads(kind, id: id) != nil else { throw Self.notFound(kind, id) }
        let page = try await store.revisions(ofEntity: id, beforeSequence: before, limit: limit)
        let keys = try await keyBook()
        let revisions = try page.map { try $0.decoded() }
        // A parent is usually the next revision on the same page; only the others are read.
        var bodies: [RevisionID: JSONObject?] = [:]
        for s in revisions { bodies[s.id] = s.revision.body }
        var items: [JSONValue] = []
        for s in revisions {
            var parentBody: JSONObject?? = .some(nil)
            if let p = s.revision.parents.first {
                if let known = bodies[p] { parentBody = known } else { parentBody = try await store.revision(p).map { try $0.decoded().revision.body } }
            }
            items.append(.object(revisionSummary(s, keys: keys, parentBody: parentBody)))
        }
        return (items, page.count == limit ? page.last?.sequence : nil)
    }

    func storedRevision(_ kind: EntityKind, id: String, rev: String) async throws -> SignedRevision {
        guard let stored = try await store.revision(rev.lowercased()), case let s = try stored.decoded(), s.revision.entityID == id.lowercased(), s.revision.kind == kind else {
            throw CatalogError(.notFound, "\(kind.title) \(id) has no revision \(rev)")
        }
        return s
    }

    /// One revision in full: its summary, its body (null for a delete) and its signed form.
    public func revision(_ kind: EntityKind, id: String, rev: String) async throws -> JSONValue {
        let s = try await storedRevision(kind, id: id, rev: rev)
        var o = revisionSummary(s, keys: try await keyBook(), parentBody: nil)
        o["kind"] = .string(kind.rawValue)
        o["entity_id"] = .string(s.revision.entityID)
        o["body"] = s.revision.body.map(JSONValue.object) ?? .null
        o["signed"] = try JSONParser.parse(s.bytes)
        return .object(o)
    }

    /// Field-level changes from one revision to another (`to` defaults to the current view's
    /// single head, `from` to `to`'s first parent).
    public func diff(_ kind: EntityKind, id: String, from: String?, to: String?) async throws -> JSONValue {
        guard let heads = try await store.heads(kind, id: id) else { throw Self.notFound(kind, id) }
        guard let toID = to ?? (heads.heads.count == 1 ? heads.heads[0].id : nil) else {
            throw CatalogError(.badRequest, "\(kind.title) \(id) has \(heads.heads.count) heads; name the revision to compare with `to`")
        }
        let target = try await storedRevision(kind, id: id, rev: toID)
        let fromID = from ?? target.revision.parents.first
        var source: SignedRevision?
        if let fromID { source = try await storedRevision(kind, id: id, rev: fromID) }
        let changes = JSONDiff.changes(from: source?.revision.body.map(JSONValue.object), to: target.revision.body.map(JSONValue.object))
        return ["from": fromID.map { .string($0) } ?? .null, "to": .string(target.id), "changes": .array(changes.map(\.json))]
    }

    // MARK: Conflicts

    public func conflicts(kind: EntityKind?, limit: Int, offset: Int) async throws -> [JSONValue] {
        try await store.conflicts(kind: kind, limit: limit, offset: offset).map { h in
            let c = h.conflict ?? .null
            return [
                "kind": .string(h.kind.rawValue), "id": .string(h.entityID), "etag": .string(h.etag),
                "heads": .array(h.heads.map { .string($0.id) }), "fields": .int(Int64(c["fields"]?.arrayValue?.count ?? 0)),
                "deleted_by": c["deleted_by"] ?? [], "overflow": c["overflow"] ?? [],
            ]
        }
    }

    /// The base, each side, the provisional winner (the current view) and the differences.
    public func conflict(_ kind: EntityKind, id: String) async throws -> JSONValue {
        guard let h = try await store.heads(kind, id: id) else { throw Self.notFound(kind, id) }
        guard let c = h.conflict else { throw CatalogError(.notFound, "\(kind.title) \(id) has no open conflict") }
        let keys = try await keyBook()
        var sides: [JSONValue] = []
        for head in c["heads"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            let s = try await storedRevision(kind, id: id, rev: head)
            var o = revisionSummary(s, keys: keys, parentBody: nil)
            o["body"] = s.revision.body.map(JSONValue.object) ?? .null
            sides.append(.object(o))
        }
        var base: JSONValue = .null
        if let b = c["base"]?.stringValue {
            let s = try await storedRevision(kind, id: id, rev: b)
            var o = revisionSummary(s, keys: keys, parentBody: nil)
            o["body"] = s.revision.body.map(JSONValue.object) ?? .null
            base = .object(o)
        }
        let view = try await store.entity(kind, id: id)
        return [
            "kind": .string(kind.rawValue), "id": .string(id.lowercased()), "etag": .string(h.etag),
            "base": base, "sides": .array(sides),
            "provisional": view.map { $0.rendered() } ?? .null,
            "winner": c["heads"]?.arrayValue?.first ?? .null,
            "fields": c["fields"] ?? [], "deleted_by": c["deleted_by"] ?? [], "overflow": c["overflow"] ?? [],
        ]
    }

    /// Closes a conflict with a revision whose parents are all the heads: either one side's
    /// values for the conflicting fields, kept on top of everything that merged cleanly
    /// (`{"choose": REV}`; choosing a head that deleted deletes), or a merged body (as a PUT).
    public func resolve(_ kind: EntityKind, id: String, with request: JSONValue) async throws -> Entity? {
        guard let h = try await store.heads(kind, id: id) else { throw Self.notFound(kind, id) }
        guard h.conflict != nil else { throw CatalogError(.conflict, "\(kind.title) \(id) has no open conflict to resolve") }
        guard case .object(let o) = request else { throw CatalogError(.badRequest, "Send {\"choose\": REVISION_ID} or the merged body") }
        var body: JSONValue = request
        if o.count == 1, let chosen = o["choose"] {
            guard let rev = chosen.stringValue else { throw CatalogError(.badRequest, "choose must be a revision id") }
            let s = try await storedRevision(kind, id: id, rev: rev)
            guard h.heads.contains(where: { $0.id == s.id }) else {
                throw CatalogError(.badRequest, "Revision \(rev) is not one of the conflicting heads: choose one of \(h.heads.map(\.id).joined(separator: ", "))")
            }
            guard let chosen = s.revision.body else {
                return try await apply(Operation(.delete, kind, id: id, cascade: kind == .thing, ifMatch: h.etag))
            }
            // The merged view, with the chosen side's value in every conflicting field: work
            // that merged cleanly from the other sides is kept.
            guard let current = try await store.entity(kind, id: id) else { throw Self.notFound(kind, id) }
            var merged: JSONValue? = ContentRules.editableBody(current)
            for field in h.conflict?["fields"]?.arrayValue ?? [] {
                let path = (field["path"]?.arrayValue ?? []).compactMap(PathElement.init(json:))
                merged = PathElement.setting(PathElement.value(at: path, in: .object(chosen)), at: path, in: merged)
            }
            body = merged ?? .object([:])
        }
        return try await apply(Operation(.update, kind, id: id, body: body, ifMatch: h.etag))
    }
}

/// Why a batch of revisions from elsewhere was refused, naming the first bad one. Nothing
/// from the batch was stored.
public struct IngestError: Error, Sendable, CustomStringConvertible {
    /// Position in the batch, when one revision is to blame.
    public var index: Int?
    public var revision: RevisionID?
    public var error: RevisionError
    public var description: String {
        (index.map { "revision #\($0)" } ?? "batch") + (revision.map { " (\($0.prefix(12))…)" } ?? "") + ": " + error.description
    }
}

extension Catalog {
    /// Checks revisions made elsewhere (a bundle, a peer) and stores them all or none:
    /// structure, author key, signature, body against the content schema, parents and vectors.
    /// Signatures are checked on every core at once.
    ///
    /// `checked` revisions (a verified bundle) skip the checks; `prepared` are their views,
    /// made while checking, by revision id.
    public func ingest(_ revisions: [SignedRevision], checked: Bool = false, prepared: [RevisionID: Entity] = [:]
    ) async throws -> IngestSummary {
        var prepared = prepared
        if !checked { prepared = try await Self.checkAll(revisions, keys: try await keyBook()) }
        let chunk = Mutex<IngestChunk?>(IngestChunk(revisions: revisions, prepared: prepared))
        return try await ingest(streaming: { chunk.withLock { c in defer { c = nil }; return c } })
    }

    /// Stores chunks of checked revisions (`checked` as above) as `next` gives them, in one
    /// transaction: all or nothing.
    public func ingest(streaming next: @escaping @Sendable () async throws -> IngestChunk?) async throws -> IngestSummary {
        let latest = Mutex<HLC?>(nil)
        do {
            let summary = try await store.ingest(streaming: {
                let chunk = try await next()
                if let newest = chunk?.revisions.map(\.revision.hlc).max() { latest.withLock { $0 = max($0 ?? newest, newest) } }
                return chunk
            })
            if let newest = latest.withLock({ $0 }) { signer.observe(newest) }
            if summary.stored > 0 { commits.notify() }
            return summary
        } catch StoreError.rejected(let why) {
            throw IngestError(index: nil, revision: nil, error: why)
        }
    }

    /// Every signature and body, in parallel parts on every core; the first failure (lowest
    /// index) is reported.
    /// Returns the entity each live revision describes (its view when it ends a linear history).
    static func checkAll(_ revisions: [SignedRevision], keys: KeyBook) async throws -> [RevisionID: Entity] {
        let entities = try await parallelParts(revisions) { part throws(IngestError) in
            try checkPart(Array(part), from: part.startIndex, keys: keys)
        }
        var out: [RevisionID: Entity] = [:]
        for (s, e) in zip(revisions, entities) { if let e { out[s.id] = e } }
        return out
    }

    /// Author, signature and body of each revision from elsewhere, and the entity its body
    /// describes: the signatures as one batch (`SignedRevision.verifyAll`), the bodies one by one.
    public static func checkPart(_ revisions: [SignedRevision], keys: KeyBook) -> [Result<Entity?, RevisionError>] {
        zip(revisions, SignedRevision.verifyAll(revisions, keys: keys)).map { s, failure in
            if let failure { return .failure(failure) }
            do throws(RevisionError) { return .success(try checkedEntity(s.revision)) } catch { return .failure(error) }
        }
    }

    /// `checkPart`, the first failure thrown as an `IngestError` at its index (the first
    /// revision's index is `from`).
    public static func checkPart(_ revisions: [SignedRevision], from: Int, keys: KeyBook) throws(IngestError) -> [Entity?] {
        var out: [Entity?] = []
        out.reserveCapacity(revisions.count)
        for (i, result) in checkPart(revisions, keys: keys).enumerated() {
            switch result {
            case .success(let e): out.append(e)
            case .failure(let e): throw IngestError(index: from + i, revision: nil, error: e)
            }
        }
        return out
    }

    /// `transform` over parts of `items`, in order, spread over the cores on the check threads
    /// (below the priority of everything else). `transform` gets a slice (indices as in
    /// `items`) and returns one result per item; the failure of the lowest part is thrown.
    public static func parallelParts<T: Sendable, R: Sendable>(
        _ items: [T], _ transform: @escaping @Sendable (ArraySlice<T>) throws(IngestError) -> [R]
    ) async throws -> [R] {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let chunk = max(256, items.count / (cores * 2) + 1)
        let parts = await withTaskGroup(of: (Int, Result<[R], IngestError>).self) { group in
            var starts = stride(from: 0, to: items.count, by: chunk).makeIterator()
            func add(_ start: Int) {
                let slice = items[start..<min(start + chunk, items.count)]
                @Sendable func work() -> (Int, Result<[R], IngestError>) {
                    do throws(IngestError) { return (start, .success(try transform(slice))) } catch { return (start, .failure(error)) }
                }
                group.addTask { await CheckThreads.run(work) }
            }
            // At most `cores` parts at a time.
            for _ in 0..<cores { if let start = starts.next() { add(start) } }
            var all: [(Int, Result<[R], IngestError>)] = []
            for await part in group {
                all.append(part)
                if let start = starts.next() { add(start) }
            }
            return all.sorted { $0.0 < $1.0 }
        }
        var out: [R] = []
        out.reserveCapacity(items.count)
        for (_, part) in parts {
            switch part {
            case .success(let r): out += r
            case .failure(let e): throw e
            }
        }
        return out
    }

    /// The entity a revision body describes; it must be a valid entity of its kind with
    /// well-formed timestamps (`invalidBody` says what is wrong). Nil for a tombstone.
    static func checkedEntity(_ r: Revision) throws(RevisionError) -> Entity? {
        guard let body = r.body else { return nil }
        return try Materialize.checked(r.kind, id: r.entityID, body: body)
    }
}

/// Threads for the CPU-heavy checks of content from elsewhere (signatures, bodies), one per
/// core, at a lower OS priority (nice 10). A bundle import or a sync can check on every core
/// while the store's writer and local users' requests still go first: checking on Swift's
/// cooperative threads instead held them for a whole part at a time, so the writer's
/// continuations waited behind it.
enum CheckThreads {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: ProcessInfo.processInfo.activeProcessorCount)
        pool.start()
        return pool
    }()

    /// Runs `body` on a check thread. Not cancellable, as checking on the caller's task was
    /// not: a cancelled caller (a node shutting down mid-pull) gets its answer and stops at
    /// its next step, rather than an empty result it could take for a checked page.
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            pool.submit { _ in
                // Per thread on Linux; idempotent, and these threads run nothing else.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
                continuation.resume(returning: body())
            }
        }
    }
}
