public import ThingDataCore
import Logging
import Synchronization
import ThingDataStore
import ThingDataSigning
import AsyncHTTPClient
import NIOHTTP1
import Foundation

/// What one batch of revisions from a peer came to.
public struct BatchReport: Sendable, Equatable {
    public var received = 0
    public var stored = 0
    public var duplicates = 0
    /// Refused: forged, tampered or malformed (the peer is penalized for these).
    public var forged = 0
    /// Refused by policy: a blocked author, or a parent that was refused.
    public var refused = 0
    public var conflicts = 0
    public var firstError: String?

    public var rejected: Int { forged + refused }
    public var json: JSONValue {
        ["received": .int(Int64(received)), "stored": .int(Int64(stored)), "duplicates": .int(Int64(duplicates)),
         "rejected": .int(Int64(rejected)), "forged": .int(Int64(forged)), "refused": .int(Int64(refused)),
         "conflicts": .int(Int64(conflicts)), "first_error": firstError.map { .string($0) } ?? .null]
    }
    mutating func add(_ o: BatchReport) {
        received += o.received; stored += o.stored; duplicates += o.duplicates
        forged += o.forged; refused += o.refused; conflicts += o.conflicts
        firstError = firstError ?? o.firstError
    }
}

/// The outcome of one pull from a peer.
public struct PullReport: Sendable {
    public var peer: String
    public var ok: Bool
    public var batches = 0
    public var revisions = BatchReport()
    public var bytesIn = 0
    public var bytesOut = 0
    public var error: String?
    public var fullResync = false

    public var json: JSONValue {
        ["peer": .string(peer), "ok": .bool(ok), "batches": .int(Int64(batches)), "revisions": revisions.json,
         "bytes_in": .int(Int64(bytesIn)), "bytes_out": .int(Int64(bytesOut)), "error": error.map { .string($0) } ?? .null,
         "full_resync": .bool(fullResync)]
    }
}

extension Federation {
    // MARK: Checking and storing what peers send

    /// Checks each revision on its own (structure, author key, signature, body), drops those by
    /// blocked authors and those whose parents were dropped, and stores the rest in one
    /// transaction. Nothing refused is stored.
    func receive(_ raw: [[UInt8]], from peerID: String) async throws -> BatchReport {
        try await commit(try await check(raw, from: peerID), received: raw.count, from: peerID)
    }

    /// Decodes and checks each revision on its own (in parallel). Authors whose key this node
    /// cannot place yet are looked up once at the peer that served them.
    func check(_ raw: [[UInt8]], from peerID: String) async throws -> [Screened] {
        guard !raw.isEmpty else { return [] }
        var screened = await Self.screen(raw, keys: try await catalog.keyBook())
        // Every line gets a verdict; anything else must not pass for a checked (empty) page.
        guard screened.count == raw.count else { throw PageFailure(message: "checking the page's revisions failed") }
        let unknownKeyAuthors = Set(screened.compactMap { s -> String? in
            if case .failure(let e) = s.result, e.code == .wrongKey, let r = s.revision { return r.revision.author.nodeID.compact }
            return nil
        })
        if !unknownKeyAuthors.isEmpty, var peer = await peers.get(peerID) {
            // The peer's own revisions under a key it was not pinned with: a rotation from the
            // pinned key is followed; anything else stops the exchange before any is taken.
            if unknownKeyAuthors.contains(peer.nodeID) {
                if let rechecked = try? await recheckKey(peer, origin: peer.baseURL) { peer = rechecked }
                if peer.state == .keyChanged { throw PageFailure(message: "the peer's key changed without a rotation statement; an admin must decide") }
            }
            if await learnKeys(of: Array(unknownKeyAuthors), from: peer) {
                screened = await Self.screen(raw, keys: try await catalog.keyBook())
            }
        }
        return screened
    }

    /// Drops what failed its checks, revisions by blocked authors and revisions whose parents
    /// were dropped, and stores the rest in one transaction. Nothing refused is stored.
    func commit(_ screened: [Screened], received: Int, from peerID: String) async throws -> BatchReport {
        var report = BatchReport()
        report.received = received
        guard !screened.isEmpty else { return report }
        let blocked = Set(try await blockedAuthors())
        var good: [SignedRevision] = []
        var prepared: [RevisionID: Entity] = [:]
        var dropped = Set<RevisionID>()
        for s in screened {
            switch s.result {
            case .failure(let e):
                report.forged += 1
                report.firstError = report.firstError ?? e.description
                if let id = s.revision?.id { dropped.insert(id) }
            case .success(let entity):
                let r = s.revision!
                if blocked.contains(r.revision.author.nodeID.compact) {
                    report.refused += 1
                    report.firstError = report.firstError ?? "author \(r.revision.author.nodeID.short) is blocked here"
                    dropped.insert(r.id)
                } else if r.revision.parents.contains(where: dropped.contains) {
                    report.refused += 1
                    dropped.insert(r.id)
                } else {
                    good.append(r)
                    if let entity { prepared[r.id] = entity }
                }
            }
        }
        do {
            let summary = try await catalog.ingest(good, checked: true, prepared: prepared)
            report.stored = summary.stored
            report.duplicates = summary.duplicates
            report.conflicts = summary.conflicts
        } catch is IngestError {
            // One of them does not fit this store (a parent never received, a vector that does
            // not follow): store them one at a time so the others still land.
            for r in good {
                do {
                    let summary = try await catalog.ingest([r], checked: true, prepared: prepared[r.id].map { [r.id: $0] } ?? [:])
                    report.stored += summary.stored
                    report.duplicates += summary.duplicates
                    report.conflicts += summary.conflicts
                } catch let e as IngestError {
                    report.refused += 1
                    report.firstError = report.firstError ?? e.description
                }
            }
        }
        if report.stored > 0 || report.rejected > 0 {
            try? await catalog.store.appendAudit([AuditEntry(
                at: Timestamp.now(), actor: "peer:\(peerID)", address: await peers.get(peerID)?.baseURL, action: "revisions.receive",
                detail: "\(report.stored) stored, \(report.duplicates) already held, \(report.rejected) rejected")])
        }
        return report
    }

    struct Screened: Sendable {
        var revision: SignedRevision?
        var result: Result<Entity?, RevisionError>
    }

    /// Each revision decoded and checked with its own result, in parallel parts (a part's
    /// signatures as one batch).
    static func screen(_ raw: [[UInt8]], keys: KeyBook) async -> [Screened] {
        (try? await Catalog.parallelParts(raw) { part in
            var authors = AuthorMemo()
            let decoded = part.map { bytes in Result { () throws(RevisionError) in try SignedRevision.decode(bytes, authors: &authors) } }
            var checked = Catalog.checkPart(decoded.compactMap { try? $0.get() }, keys: keys).makeIterator()
            return decoded.map { d in
                switch d {
                case .success(let s): Screened(revision: s, result: checked.next()!)
                case .failure(let e): Screened(revision: nil, result: .failure(e))
                }
            }
        }) ?? []
    }

    /// Fetches rotation statements for `authors` from a peer and learns the valid ones.
    func learnKeys(of authors: [String], from peer: PeerRecord) async -> Bool {
        let url = FederationClient.join(peer.baseURL, "/federation/v1/keys?nodes=" + authors.joined(separator: ","))
        guard let answer = try? await client.send(.GET, url), answer.status == 200, case .object(let o)? = try? JSONParser.parse(answer.body),
            let list = o["key_rotations"]?.arrayValue
        else { return false }
        let rotations = list.compactMap { try? KeyRotation(json: $0) }
        do { try await catalog.learn(rotations: rotations) } catch { return false }
        return !rotations.isEmpty
    }

    // MARK: Pulling

    /// Pulls everything new from one peer, batch by batch; each batch is one transaction and
    /// its checkpoint is saved right after, so a crash redoes at most one batch.
    public func pull(_ peerID: String) async -> PullReport {
        var report = PullReport(peer: peerID, ok: false)
        guard pulling.withLock({ $0.insert(peerID).inserted }) else {
            report.error = "a pull from this peer is already running"
            return report
        }
        defer { pulling.withLock { _ = $0.remove(peerID) } }
        var retryAfter: Int64?
        defer {
            let now = Self.nowMilliseconds()
            schedules.withLock { s in
                var schedule = s[peerID] ?? settings.schedule(now: now)
                var rng = SystemRandomNumberGenerator()
                schedule.record(report.ok ? .pulled(more: false) : .failed(retryAfter: retryAfter), now: now, random: &rng)
                s[peerID] = schedule
            }
        }
        // Pages ahead of the one being stored: each is fetched as soon as the one before it
        // has arrived and checked as soon as it has arrived itself, so the peer serving, the
        // check threads and the writer all work at once.
        var ahead = Lookahead(depth: settings.lookahead)
        defer { ahead.cancelAll() }
        while true {
            // Shutting down: stop between batches (the last one and its checkpoint are done).
            if Task.isCancelled { report.error = "stopped: the node is shutting down"; return report }
            guard let peer = await peers.get(peerID) else { report.error = "unknown peer"; return report }
            guard peer.state != .keyChanged else { report.error = "the peer's key changed; an admin must decide"; return report }
            guard peer.trust >= settings.policy.pull else { report.error = "trust \(peer.trust.rawValue) is below the pull policy (\(settings.policy.pull.rawValue))"; return report }
            let page: Page
            do {
                ahead.fill { previous in
                    Task {
                        guard let previous else { return try await self.fetchPage(peer, since: peer.cursor) }
                        guard let last = try await previous.value, last.more, last.cursor > last.since else { return nil }
                        return try await self.fetchPage(peer, since: last.cursor)
                    }
                } check: { fetched in
                    Task {
                        guard var page = try await fetched.value else { return nil }
                        page.screened = try await self.check(page.raw, from: peer.nodeID)
                        page.raw = []
                        return page
                    }
                }
                // Fetched for another cursor (a resync reset it): start again from the cursor.
                guard let next = try await ahead.next(), next.since == peer.cursor else {
                    ahead.cancelAll()
                    continue
                }
                page = next
            } catch let failure as PageFailure {
                report.bytesIn += failure.bytesIn
                report.bytesOut += failure.bytesOut
                retryAfter = failure.retryAfter
                report.error = failure.message
                await failed(peerID, failure.message, bytesIn: failure.bytesIn, bytesOut: failure.bytesOut)
                return report
            } catch {
                report.error = "\(error)"
                await failed(peerID, report.error!)
                return report
            }
            report.bytesIn += page.bytesIn
            report.bytesOut += page.bytesOut
            if let known = peer.indexID, known != page.indexID, peer.cursor != 0 {
                // The peer rebuilt its index: its sequence numbers mean something else now.
                ahead.cancelAll()
                report.fullResync = true
                await peers.log(peerID, "resync", "index id changed from \(known) to \(page.indexID); full resync")
                _ = try? await peers.update(peerID) { p in p.indexID = page.indexID; p.cursor = 0 }
                continue
            }
            let batch: BatchReport
            do {
                batch = try await commit(page.screened, received: page.count, from: peerID)
            } catch {
                report.error = "storing a batch failed: \(error)"
                await failed(peerID, report.error!)
                return report
            }
            report.batches += 1
            report.revisions.add(batch)
            let updated = try? await peers.update(peerID) { p in
                p.indexID = page.indexID
                p.cursor = page.cursor
                p.remoteHead = page.head
                p.bytesIn += Int64(page.bytesIn)
                p.bytesOut += Int64(page.bytesOut)
                p.received += Int64(batch.stored)
                p.rejected += Int64(batch.rejected)
                p.rttMilliseconds = page.milliseconds
                p.lastSync = Timestamp.now().description
                p.lastSeen = p.lastSync
                p.lastError = batch.firstError.map { "rejected: " + $0 }
                p.state = .active
                if batch.forged > 0 { p.trust = p.trust.penalized }
            }
            if batch.stored > 0 || batch.rejected > 0 || batch.duplicates > 0 {
                await peers.log(peerID, "pull", "cursor \(page.cursor)/\(page.head): \(batch.stored) stored, \(batch.duplicates) already held, \(batch.rejected) rejected")
            }
            if batch.forged > 0 {
                await peers.log(peerID, "penalized", "\(batch.forged) forged or tampered revision(s) (\(batch.firstError ?? "")); trust now \(updated?.trust.rawValue ?? "?")")
                logger.warning("federation: node \(peerID.prefix(6)) served \(batch.forged) forged or tampered revision(s); trust lowered", metadata: ["first": .string(batch.firstError ?? "")])
            }
            // A cursor that does not move would fetch the same page forever.
            if !page.more || batch.forged > 0 || page.cursor <= page.since { break }
        }
        report.ok = true
        return report
    }

    /// One page of a peer's changes feed.
    struct Page: Sendable {
        var since: Int64
        var indexID: String
        var cursor: Int64
        var head: Int64
        var more: Bool
        var count: Int
        /// The revisions' lines as served, until they are checked.
        var raw: [[UInt8]]
        /// Each line's verdict, once checked.
        var screened: [Screened] = []
        var bytesIn: Int
        var bytesOut: Int
        var milliseconds: Double
    }

    struct PageFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
        var retryAfter: Int64?
        var bytesIn = 0
        var bytesOut = 0
    }

    /// One page of a peer's changes feed, fetched but not yet checked.
    func fetchPage(_ peer: PeerRecord, since: Int64) async throws -> Page {
        let url = FederationClient.join(peer.baseURL, "/federation/v1/changes?since=\(since)&limit=\(settings.batchSize)")
        let answer: FederationClient.Answer
        do { answer = try await client.send(.GET, url, accept: "application/x-ndjson") } catch { throw PageFailure(message: "\(error)") }
        guard answer.status == 200 else {
            throw PageFailure(
                message: "HTTP \(answer.status): " + String(decoding: answer.body.prefix(300), as: UTF8.self),
                retryAfter: answer.status == 429 || answer.status == 503 ? answer.retryAfter : nil, bytesIn: answer.bytesIn, bytesOut: answer.bytesOut)
        }
        let lines = answer.body.split(separator: 0x0A, omittingEmptySubsequences: true).map(Array.init)
        guard lines.count >= 2, case .object(let header)? = try? JSONParser.parse(lines[0]), header["type"]?.stringValue == "thingdata.changes",
            case .object(let trailer)? = try? JSONParser.parse(lines[lines.count - 1]), trailer["type"]?.stringValue == "thingdata.changes.end",
            let index = header["index_id"]?.stringValue, let cursor = trailer["cursor"]?.intValue, let head = trailer["head"]?.intValue
        else { throw PageFailure(message: "the changes feed is malformed", bytesIn: answer.bytesIn, bytesOut: answer.bytesOut) }
        let raw = Array(lines[1..<(lines.count - 1)])
        return Page(
            since: since, indexID: index, cursor: cursor, head: head, more: trailer["more"]?.boolValue ?? false, count: raw.count,
            raw: raw, bytesIn: answer.bytesIn, bytesOut: answer.bytesOut, milliseconds: answer.milliseconds)
    }

    /// The pages of one pull that are under way, in order. Each has two tasks: its fetch,
    /// which waits for the fetch before it (the cursor to go on from), and its check, which
    /// waits for its own fetch. A nil page: the one before it was the last.
    struct Lookahead {
        typealias Step = Task<Page?, any Error>
        let depth: Int
        var pages: [(fetch: Step, check: Step)] = []

        /// Starts pages until `depth` are under way; `fetch` gets the previous page's fetch.
        mutating func fill(fetch: (Step?) -> Step, check: (Step) -> Step) {
            while pages.count < max(1, depth) {
                let fetched = fetch(pages.last?.fetch)
                pages.append((fetched, check(fetched)))
            }
        }

        /// The oldest page under way, checked; the ones after it go on meanwhile. The pages'
        /// tasks are not children of the pull: cancelling the pull (a node shutting down)
        /// cancels them here, so a fetch in flight stops at once rather than at its timeout.
        mutating func next() async throws -> Page? {
            guard !pages.isEmpty else { return nil }
            let first = pages.removeFirst()
            let all = [first] + pages
            return try await withTaskCancellationHandler {
                try await first.check.value
            } onCancel: {
                for page in all { page.fetch.cancel(); page.check.cancel() }
            }
        }

        mutating func cancelAll() {
            for page in pages { page.fetch.cancel(); page.check.cancel() }
            pages = []
        }
    }

    func failed(_ peerID: String, _ error: String, bytesIn: Int = 0, bytesOut: Int = 0) async {
        _ = try? await peers.update(peerID) { p in
            if p.state != .keyChanged { p.state = .backoff }
            p.lastError = error
            p.bytesIn += Int64(bytesIn)
            p.bytesOut += Int64(bytesOut)
        }
        await peers.log(peerID, "error", error)
        logger.debug("federation: pull from \(peerID.prefix(6)) failed: \(error)")
    }

    // MARK: Announcing

    /// Tells every peer we relay to that we have new revisions, so they pull at once.
    public func announceAll() async {
        let head = (try? await catalog.store.latestSequence()) ?? 0
        let body = CanonicalJSON.encode(["node_id": .string(key.nodeID.compact), "head": .int(head), "index_id": .string(indexID)])
        let targets = await peers.all().filter { $0.trust >= settings.policy.relay && $0.state != .keyChanged }
        await withTaskGroup(of: Void.self) { group in
            for peer in targets {
                group.addTask {
                    let url = FederationClient.join(peer.baseURL, "/federation/v1/announce")
                    if let answer = try? await self.client.send(.POST, url, body: body) {
                        _ = try? await self.peers.update(peer.nodeID) { p in
                            p.bytesOut += Int64(answer.bytesOut)
                            p.bytesIn += Int64(answer.bytesIn)
                        }
                    }
                }
            }
        }
    }

    // MARK: The loop

    /// Runs until cancelled: pulls from peers when due (poll interval, announces, backoff) and
    /// announces local commits.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.announceLoop() }
            group.addTask { await self.pullLoop() }
        }
    }

    func announceLoop() async {
        while !Task.isCancelled {
            await announcer.wait(milliseconds: 60_000)
            if Task.isCancelled { return }
            // Coalesce a burst of writes into one announce.
            try? await Task.sleep(for: .milliseconds(20))
            await announceAll()
        }
    }

    func pullLoop() async {
        var tasks: [String: Task<Void, Never>] = [:]
        while !Task.isCancelled {
            let now = Self.nowMilliseconds()
            // Best first (trusted, reliable, near), so that with few pull slots they go first.
            let candidates = await peers.all()
                .filter { $0.trust >= settings.policy.pull && $0.state != .keyChanged }
                .map { (peer: $0, score: PeerScore.score(trust: $0.trust, state: $0.state, rttMilliseconds: $0.rttMilliseconds)) }
                .sorted { $0.score > $1.score }
                .map(\.peer)
            var next = now + settings.pollInterval
            var due: [String] = []
            schedules.withLock { s in
                for p in candidates {
                    let schedule = s[p.nodeID] ?? settings.schedule(now: now)
                    s[p.nodeID] = schedule
                    if schedule.due <= now { due.append(p.nodeID) } else { next = min(next, schedule.due) }
                }
            }
            let busy = pulling.withLock { $0 }
            var slots = settings.concurrentPulls - busy.count
            for id in due where !busy.contains(id) && slots > 0 {
                slots -= 1
                tasks[id] = Task {
                    _ = await self.pull(id)
                    self.scheduler.ring()
                }
            }
            await scheduler.wait(milliseconds: max(10, min(next - now, 1_000)))
        }
        // Pulls in flight finish their current batch and checkpoint, then stop.
        for t in tasks.values { t.cancel() }
        for t in tasks.values { await t.value }
    }

    // MARK: Admin operations

    /// Adds (or refreshes) a peer from its URL: its descriptor must verify. An admin's choice
    /// makes it `verified` unless it already stands higher (or is blocked).
    public func addPeer(url raw: String, source: String = "manual") async throws -> PeerRecord {
        guard var parts = URLComponents(string: raw.trimmingCharacters(in: .whitespaces)), let scheme = parts.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = parts.host, !host.isEmpty
        else { throw CatalogError(.badRequest, "\(raw) is not an http(s) URL") }
        parts.scheme = scheme
        parts.host = host.lowercased()
        if (scheme == "http" && parts.port == 80) || (scheme == "https" && parts.port == 443) { parts.port = nil }
        parts.query = nil
        parts.fragment = nil
        var url = parts.string ?? raw
        while url.hasSuffix("/") { url.removeLast() }
        let d: NodeDescriptor
        do { d = try await client.descriptor(at: url) } catch { throw CatalogError(.badRequest, "\(error)") }
        guard d.nodeID != key.nodeID else { throw CatalogError(.badRequest, "\(url) is this node itself") }
        try? await catalog.learn(rotations: d.rotations)
        let now = Timestamp.now().description
        let offered = Base64URL.encode(d.publicKey)
        let candidate = PeerRecord(
            nodeID: d.nodeID.compact, name: d.name, baseURL: url, publicKey: offered, genesisKey: Base64URL.encode(d.genesisPublicKey),
            trust: .verified, state: .probing, sources: [source], firstSeen: now, keyHistory: [.init(at: now, key: offered, how: "pinned when added by an admin")])
        // A known peer takes the new address, the source, and `untrusted` raised to `verified`.
        var (record, new) = try await peers.insertOrMerge(candidate) { p in
            p.baseURL = candidate.baseURL
            p.name = candidate.name
            if !p.sources.contains(source) { p.sources.append(source) }
            if p.trust == .untrusted { p.trust = .verified }
        }
        if !new && offered != record.publicKey { record = try await recheckKey(record, origin: url) }
        await peers.log(record.nodeID, "admin", "peers add \(url)" + (new ? ": descriptor verified, trust verified" : ""))
        logger.notice("federation: peer \(d.nodeID.short) (\(d.name)) added", metadata: ["url": .string(url)])
        requestSync(record.nodeID)
        return record
    }

    /// Sets a peer's trust. For a `key-changed` peer any level but blocked also accepts the key
    /// it now shows (the admin decided).
    public func setTrust(_ id: String, _ level: TrustLevel) async throws -> PeerRecord {
        guard let p = await peers.find(id) else { throw CatalogError(.notFound, "no peer \(id)") }
        let now = Timestamp.now().description
        let updated = try await peers.update(p.nodeID) { p in
            p.trust = level
            if p.state == .keyChanged, level != .blocked, let offered = p.offeredKey {
                p.publicKey = offered
                p.offeredKey = nil
                p.state = .probing
                p.keyHistory.append(.init(at: now, key: offered, how: "accepted by an admin"))
            }
        }
        await peers.log(p.nodeID, "admin", "trust set to \(level.rawValue)")
        logger.notice("federation: trust of \(p.nodeID.prefix(6)) set to \(level.rawValue) by an admin")
        requestSync(p.nodeID)
        return updated ?? p
    }

    public func forget(_ id: String) async throws -> PeerRecord {
        guard let p = await peers.find(id) else { throw CatalogError(.notFound, "no peer \(id)") }
        try await peers.remove(p.nodeID)
        _ = schedules.withLock { $0.removeValue(forKey: p.nodeID) }
        logger.notice("federation: peer \(p.nodeID.prefix(6)) forgotten by an admin")
        return p
    }

    /// Makes a peer due at once.
    public func requestSync(_ id: String) {
        let now = Self.nowMilliseconds()
        schedules.withLock { s in
            var schedule = s[id] ?? settings.schedule(now: now)
            var rng = SystemRandomNumberGenerator()
            schedule.record(.requested, now: now, random: &rng)
            s[id] = schedule
        }
        scheduler.ring()
    }

    /// Pulls now from one peer (or every pullable one) and reports.
    public func syncNow(_ id: String?) async throws -> [PullReport] {
        var targets: [PeerRecord]
        if let id {
            guard let p = await peers.find(id) else { throw CatalogError(.notFound, "no peer \(id)") }
            targets = [p]
        } else {
            targets = await peers.all().filter { $0.trust >= settings.policy.pull && $0.state != .keyChanged }
        }
        var reports: [PullReport] = []
        for p in targets { reports.append(await pull(p.nodeID)) }
        return reports
    }

    /// When each peer is next due, in milliseconds since the epoch.
    public func nextDue(_ id: String) -> Int64? { schedules.withLock { $0[id]?.due } }
}
