public import ThingDataCore
public import ThingDataSigning
public import Foundation
import Synchronization

/// The node's content catalog: turns requests into validated, referentially sound change sets,
/// commits them atomically, and answers reads, search and graphs.
///
/// Single writes are batches of one, so both share every check.
public struct Catalog: Sendable {
    public let store: any ContentStore
    /// Signs every write as a revision of this node.
    public let signer: RevisionSigner
    let makeID: @Sendable () -> String
    let now: @Sendable () -> Timestamp
    /// Told after every commit that stored revisions (local writes and ingest), so the
    /// federation can announce them.
    public let commits = CommitSignal()
    /// Recorded in the audit entry of every write.
    public private(set) var actor = Actor.node

    public init(
        store: any ContentStore,
        signer: RevisionSigner,
        makeID: @escaping @Sendable () -> String = {
            var rng = SystemRandomNumberGenerator()
            return EntityID.make(milliseconds: Int64(Date().timeIntervalSince1970 * 1000), random: &rng)
        },
        now: @escaping @Sendable () -> Timestamp = { Timestamp.now() }
    ) {
        self.store = store
        self.signer = signer
        self.makeID = makeID
        self.now = now
    }

    // MARK: Reads

    public func get(_ kind: EntityKind, id: String, withRelationships: Bool = true) async throws -> JSONValue {
        if withRelationships && kind != .relationship {
            guard let (entity, relationships) = try await store.entityWithRelationships(kind, id: id) else { throw Self.notFound(kind, id) }
            return entity.rendered(relationships: relationships)
        }
        guard let entity = try await store.entity(kind, id: id) else { throw Self.notFound(kind, id) }
        return entity.rendered()
    }

    /// The v1 JSON bytes of a single GET.
    public func getJSON(_ kind: EntityKind, id: String) async throws -> RenderedEntity {
        guard let rendered = try await store.renderedEntity(kind, id: id) else { throw Self.notFound(kind, id) }
        return rendered
    }

    public func list(_ query: ListQuery) async throws -> [Listed] { try await store.list(query) }

    public func relationships(of kind: EntityKind, id: String, direction: RelationshipDirection) async throws -> [JSONValue] {
        guard try await store.entity(kind, id: id) != nil else { throw Self.notFound(kind, id) }
        return try await store.relationships(touching: [id.lowercased()], direction: direction).map { $0.rendered() }
    }

    static func notFound(_ kind: EntityKind, _ id: String) -> CatalogError {
        CatalogError(.notFound, "\(kind.title) not found")
    }

    // MARK: Writes

    /// The outcome of planning: the change set, each operation's result, and what went wrong.
    public struct Plan: Sendable {
        public var changes = ChangeSet()
        /// Each operation's result without its entity (`results` adds it).
        var outcomes: [JSONObject] = []
        public var entities: [Entity?] = []
        public var issues: [ValidationIssue] = []
        public var status: CatalogError.Status?
        /// Requirement index → the operation that needs it, to report a failed commit.
        var origins: [(ChangeSet.Requirement, Int)] = []

        /// Each operation's result: index, op, kind, id and status, and for a planned write
        /// the entity as it would be written. Rendered only when asked for: a single create or
        /// update answers with its entity, and rendering it here for nothing was 0.6 % of a
        /// node's CPU under POST load.
        public var results: [JSONValue] {
            zip(outcomes, entities).map { outcome, entity in
                var o = outcome
                if let entity { o["entity"] = entity.rendered() }
                return .object(o)
            }
        }
    }

    /// Plans `operations` against the current store without writing (nor signing: `apply`
    /// signs what it commits). `path(i)` is where operation i sits in the request, for error
    /// locations.
    public func plan(_ operations: [Operation], path: @Sendable (Int) -> [ValidationIssue.PathElement]) async throws -> Plan {
        var plan = Plan()
        var pending: [String: Entity?] = [:]  // id → state after earlier operations (nil: deleted)
        var refs: [String: String] = [:]
        let time = now()

        func fail(_ i: Int, _ status: CatalogError.Status, _ loc: [ValidationIssue.PathElement], _ msg: String, _ type: String) {
            plan.issues.append(ValidationIssue(loc: path(i) + loc, msg: msg, type: type))
            if plan.status == nil || status == .badRequest { plan.status = status }
        }
        func resolve(_ s: String) -> String? {
            guard s.hasPrefix(Operation.refPrefix) else { return s.lowercased() }
            return refs[String(s.dropFirst(Operation.refPrefix.count))]
        }
        func resolveBody(_ body: JSONValue?, _ i: Int) -> JSONValue? {
            guard case .object(var o)? = body else { return body }
            for field in ["thing_id", "source_id", "target_id", "target_uri"] {
                if let s = o[field]?.stringValue, s.hasPrefix(Operation.refPrefix) {
                    if let id = resolve(s) { o[field] = .string(id) } else {
                        fail(i, .badRequest, [.key("body"), .key(field)], "Unknown reference \(s): no earlier create in this batch has that ref", "ref_unknown")
                    }
                }
            }
            return .object(o)
        }
        /// Validates a body, makes the entity, and stages its write and the references it needs.
        func stage(_ i: Int, _ kind: EntityKind, _ body: JSONValue, inserting: Bool, make: (JSONObject) -> Entity) -> Entity? {
            do {
                let normalized = try ContentRules.normalize(kind, body, at: [.key("body")])
                let e = make(normalized)
                plan.changes.writes.append(inserting ? .insert(e) : .update(e))
                pending[e.id] = e
                for r in ContentRules.references(of: kind, body: normalized) {
                    plan.changes.requirements.append(.exists(r))
                    plan.origins.append((.exists(r), i))
                }
                return e
            } catch {
                for issue in error.issues { fail(i, .badRequest, issue.loc, issue.msg, issue.type) }
                return nil
            }
        }
        /// Records an operation that failed planning.
        func skip(_ i: Int, _ op: Operation, id: String? = nil) {
            plan.entities.append(nil)
            var result: JSONObject = ["index": .int(Int64(i)), "op": .string(op.verb.rawValue), "kind": .string(op.kind.rawValue), "status": "failed"]
            if let id { result["id"] = .string(id) }
            plan.outcomes.append(result)
        }
        /// A delete, after deletes of every relationship touching the entity: each of those
        /// is a revision (a tombstone) of its own.
        func stageDelete(_ kind: EntityKind, _ id: String) async throws {
            if kind != .relationship {
                for r in try await store.relationships(touching: [id], direction: .both) where pending[r.id] == nil {
                    plan.changes.writes.append(.delete(.relationship, r.id))
                    pending[r.id] = .some(nil)
                }
                for (pid, p) in pending where p?.kind == .relationship && (p?.body["source_id"]?.stringValue == id || p?.body["target_id"]?.stringValue == id) {
                    plan.changes.writes.append(.delete(.relationship, pid))
                    pending[pid] = .some(nil)
                }
            }
            plan.changes.writes.append(.delete(kind, id))
            pending[id] = .some(nil)
        }
        func current(_ kind: EntityKind, _ id: String) async throws -> Entity? {
            if let p = pending[id] { return p?.kind == kind ? p : nil }
            return try await store.entity(kind, id: id)
        }

        for (i, op) in operations.enumerated() {
            var entity: Entity?
            switch op.verb {
            case .create:
                let issuesBefore = plan.issues.count
                let body = resolveBody(op.body, i)
                guard let body, issuesBefore == plan.issues.count else {
                    if op.body == nil { fail(i, .badRequest, [.key("body")], "Field required", "missing") }
                    skip(i, op)
                    continue
                }
                entity = stage(i, op.kind, body, inserting: true) { ContentRules.create(op.kind, body: $0, id: makeID(), now: time) }
                if let entity, let ref = op.ref { refs[ref] = entity.id }
            case .update, .patch, .delete:
                guard let rawID = op.id else {
                    fail(i, .badRequest, [.key("id")], "Field required for \(op.verb.rawValue)", "missing")
                    skip(i, op)
                    continue
                }
                guard let id = resolve(rawID), let existing = try await current(op.kind, id) else {
                    fail(i, .notFound, [.key("id")], "\(op.kind.title) \(rawID) not found", "not_found")
                    skip(i, op, id: rawID)
                    continue
                }
                if let ifMatch = op.ifMatch {
                    let tag = try await store.heads(op.kind, id: id)?.etag
                    guard tag == ifMatch else {
                        fail(i, .preconditionFailed, [.key("id")], "\(op.kind.title) \(id) has changed since version \(ifMatch); it is now \(tag ?? "unversioned"). Fetch it again and reapply your change", "precondition_failed")
                        skip(i, op, id: rawID)
                        continue
                    }
                }
                if op.verb == .delete {
                    var cascaded: [Entity] = []
                    if op.kind == .thing {
                        if op.cascade {
                            cascaded = try await store.referrers(ofThing: id, limit: 10_000).filter { pending[$0.id] == nil }
                            cascaded += pending.values.compactMap { $0 }.filter { ($0.kind == .story || $0.kind == .guide) && $0.body["thing_id"]?.stringValue == id }
                        }
                        plan.changes.requirements.append(.unreferenced(thingID: id))
                        plan.origins.append((.unreferenced(thingID: id), i))
                    }
                    for c in cascaded { try await stageDelete(c.kind, c.id) }
                    try await stageDelete(op.kind, id)
                    plan.entities.append(nil)
                    plan.outcomes.append(["index": .int(Int64(i)), "op": "delete", "kind": .string(op.kind.rawValue), "id": .string(id), "status": "ok"])
                    continue
                }
                guard var body = resolveBody(op.body, i) else {
                    fail(i, .badRequest, [.key("body")], "Field required", "missing")
                    skip(i, op)
                    continue
                }
                if op.verb == .patch { body = MergePatch.apply(body, to: ContentRules.editableBody(existing)) }
                entity = stage(i, op.kind, body, inserting: false) { ContentRules.replace(existing, with: $0, now: time) }
            }
            plan.entities.append(entity)
            var result: JSONObject = ["index": .int(Int64(i)), "op": .string(op.verb.rawValue), "kind": .string(op.kind.rawValue)]
            if let entity {
                result["id"] = .string(entity.id)
                result["status"] = "ok"
            } else {
                result["status"] = "failed"
            }
            plan.outcomes.append(result)
        }
        // References to entities that neither exist nor are created here fail now, not at commit.
        for (requirement, i) in plan.origins {
            guard case .exists(let ref) = requirement else { continue }
            let known: Bool
            if let p = pending[ref.id] { known = p?.kind == ref.kind } else { known = try await store.entity(ref.kind, id: ref.id) != nil }
            if !known { fail(i, .notFound, [.key("body"), .key(ref.field)], "\(ref.kind.title) \(ref.id) not found", "not_found") }
        }
        return plan
    }

    /// One signed revision per write, each on top of the entity's current heads (or the
    /// revision an earlier write of this plan made).
    func sign(_ changes: inout ChangeSet) async throws {
        var chain: [String: [EntityHeads.Head]] = [:]
        for write in changes.writes {
            let (kind, id, body): (EntityKind, String, JSONObject?)
            switch write {
            case .insert(let e), .update(let e): (kind, id, body) = (e.kind, e.id, Materialize.body(of: e))
            case .delete(let k, let i): (kind, id, body) = (k, i, nil)
            }
            var heads = chain[id]
            if heads == nil, case .insert = write { heads = [] }  // a new id has no history
            if heads == nil { heads = try await store.heads(kind, id: id)?.heads ?? [] }
            let signed = signer.revision(kind: kind, entityID: id, parents: heads!.map { ($0.id, $0.vector) }, body: body)
            changes.revisions.append(RevisionWrite(signed: signed, expectedHeads: heads!.map(\.id)))
            chain[id] = [.init(id: signed.id, vector: signed.revision.versionVector)]
            let operation = body == nil ? "delete" : heads!.isEmpty ? "create" : "update"
            changes.audit.append(AuditEntry(at: now(), actor: actor.name, address: actor.address, action: "\(kind.rawValue).\(operation)",
                                            target: "\(kind.rawValue)/\(id)", revision: signed.id))
        }
    }

    /// Who writes through this catalog, for the audit log: the node itself (CLI commands,
    /// sample data, imports) unless a request's identity is attached with `acting(as:)`.
    public struct Actor: Sendable, Equatable {
        public var name: String
        public var address: String?
        public init(name: String, address: String?) {
            self.name = name
            self.address = address
        }
        public static let node = Actor(name: "node", address: nil)
    }

    /// This catalog, writing on behalf of `actor`.
    public func acting(as actor: Actor) -> Catalog {
        var c = self
        c.actor = actor
        return c
    }

    /// Plans and commits `operations` as one transaction. Throws `CatalogError` and writes
    /// nothing if any operation fails.
    @discardableResult
    public func apply(_ operations: [Operation], path: @escaping @Sendable (Int) -> [ValidationIssue.PathElement]) async throws -> Plan {
        var plan = try await plan(operations, path: path)
        if let status = plan.status {
            let message = plan.issues.count == 1 ? plan.issues[0].msg : "\(plan.issues.count) problems; nothing was written"
            throw CatalogError(status, message, issues: plan.issues, results: operations.count > 1 ? plan.results : nil)
        }
        try await sign(&plan.changes)
        do {
            // A concurrent write to the same entity moves its heads between planning and
            // commit: plan again on the new heads, unless the client pinned a version.
            var attempt = 0
            while true {
                do {
                    try await store.commit(plan.changes)
                    if !plan.changes.revisions.isEmpty { commits.notify() }
                    break
                } catch StoreError.stale(let kind, let id) where attempt < 30 && !operations.contains(where: { $0.ifMatch != nil }) {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...min(50, attempt * 2))))
                    plan = try await self.plan(operations, path: path)
                    if let status = plan.status {
                        throw CatalogError(status, plan.issues.first?.msg ?? "\(kind.title) \(id) changed", issues: plan.issues, results: operations.count > 1 ? plan.results : nil)
                    }
                    try await sign(&plan.changes)
                }
            }
        } catch let error as StoreError {
            let (status, message, index): (CatalogError.Status, String, Int?)
            switch error {
            case .missingReference(let ref):
                status = .notFound
                message = "\(ref.kind.title) \(ref.id) not found"
                index = plan.origins.first { $0.0 == .exists(ref) }?.1
            case .stillReferenced(let thingID):
                status = .conflict
                message = "Thing \(thingID) is still referenced by stories or guides; delete them first or pass cascade=true"
                index = plan.origins.first { $0.0 == .unreferenced(thingID: thingID) }?.1
            case .notFound(let kind, let id):
                status = .notFound
                message = "\(kind.title) \(id) not found"
                index = nil
            case .duplicateID(let id):
                status = .conflict
                message = "An entity with id \(id) already exists"
                index = nil
            case .unavailable:
                throw error
            case .stale(let kind, let id):
                status = .preconditionFailed
                message = "\(kind.title) \(id) changed while this write was prepared; fetch it again and reapply your change"
                index = nil
            case .rejected(let why):
                status = .badRequest
                message = "Revision rejected: \(why.reason)"
                index = nil
            }
            plan.issues = [ValidationIssue(loc: index.map(path) ?? [], msg: message, type: status == .notFound ? "not_found" : status == .preconditionFailed ? "precondition_failed" : "conflict")]
            throw CatalogError(status, message, issues: plan.issues, results: operations.count > 1 ? plan.results : nil)
        }
        return plan
    }

    /// Applies one operation and returns the entity it wrote (nil for a delete).
    @discardableResult
    public func apply(_ operation: Operation) async throws -> Entity? {
        try await applyTagged(operation).entity
    }

    /// Applies one operation; the entity it wrote and its new ETag (the revision just written,
    /// the single head after a local write).
    public func applyTagged(_ operation: Operation) async throws -> (entity: Entity?, etag: String?) {
        let plan = try await apply([operation], path: { _ in [] })
        let entity = plan.entities.first ?? nil
        let id = entity?.id ?? operation.id?.lowercased()
        return (entity, plan.changes.revisions.last { $0.signed.revision.entityID == id }?.signed.id)
    }
}

/// Observers of a catalog's commits. Observers run synchronously on the committing task and
/// must only signal (resume a continuation, set a flag), never block.
public final class CommitSignal: Sendable {
    let observers = Mutex<[@Sendable () -> Void]>([])
    public init() {}
    public func observe(_ observer: @escaping @Sendable () -> Void) { observers.withLock { $0.append(observer) } }
    public func notify() { for o in observers.withLock({ $0 }) { o() } }
}
