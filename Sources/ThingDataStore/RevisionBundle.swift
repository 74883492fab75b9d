public import ThingDataCore
public import ThingDataSigning
import Synchronization

/// A signed bundle of revisions, one JSON document per line (see `Protocol/bundles.md`):
///
/// 1. a header: `{"type":"thingdata.bundle","format":1,"node_id",…,"key_rotations":[…]}`;
/// 2. each revision's verbatim canonical bytes, oldest first (parents before children);
/// 3. a manifest signed by the exporting node: the number of revisions per kind, the SHA-256
///    of the header line and of all revision lines (each with its newline).
public enum RevisionBundle {
    public static let format: Int64 = 1

    /// Which revisions an export takes.
    public enum Since: Sendable {
        case everything
        /// Revisions stored after this one.
        case revision(RevisionID)
        /// Revisions whose HLC time is at or after this time.
        case time(Timestamp)
    }

    public struct Summary: Sendable {
        public var revisions = 0
        public var counts: [EntityKind: Int] = [:]
        public var bytes = 0
        public var json: JSONValue {
            ["revisions": .int(Int64(revisions)), "bytes": .int(Int64(bytes)), "counts": .object(JSONObject(EntityKind.allCases.map { ($0.rawValue, JSONValue.int(Int64(counts[$0] ?? 0))) }))]
        }
    }

    /// Writes a bundle of this node's store through `write`, a line at a time.
    public static func export(from catalog: Catalog, since: Since = .everything, kinds: Set<EntityKind>? = nil, now: Timestamp,
        write: (inout [UInt8]) throws -> Void, progress: (Int) -> Void = { _ in }) async throws -> Summary
    {
        let key = catalog.signer.key
        var after: Int64 = 0
        var fromTime: Timestamp?
        switch since {
        case .everything: break
        case .revision(let id):
            guard let r = try await catalog.store.revision(id.lowercased()) else { throw CatalogError(.notFound, "No revision \(id) in this node") }
            after = r.sequence
        case .time(let t): fromTime = t
        }
        var header: JSONObject = [
            "type": "thingdata.bundle", "format": .int(format), "node_id": .string(key.nodeID.compact), "public_key": .string(Base64URL.encode(key.publicKey)),
            "created_at": .string(now.description), "key_rotations": .array(try await catalog.knownRotations().map(\.json)),
        ]
        if let kinds { header["kinds"] = .array(kinds.map(\.rawValue).sorted().map(JSONValue.string)) }
        switch since {
        case .everything: break
        case .revision(let id): header["since_revision"] = .string(id.lowercased())
        case .time(let t): header["since_time"] = .string(t.description)
        }
        var line = CanonicalJSON.encode(.object(header)) + [0x0A]
        let headerHash = ContentHash.sha256Hex(line)
        var summary = Summary()
        summary.bytes += line.count
        try write(&line)
        var hash = ContentHash.Stream()
        while true {
            let page = try await catalog.store.revisions(afterSequence: after, limit: 1000)
            guard let last = page.last else { break }
            after = last.sequence
            for stored in page {
                let s = try stored.decoded()
                if let kinds, !kinds.contains(s.revision.kind) { continue }
                if let fromTime, s.revision.hlc.timestamp < fromTime { continue }
                var l = stored.bytes + [0x0A]
                hash.update(l)
                summary.revisions += 1
                summary.counts[s.revision.kind, default: 0] += 1
                summary.bytes += l.count
                try write(&l)
            }
            progress(summary.revisions)
        }
        var manifest: JSONObject = [
            "type": "thingdata.bundle-manifest", "node_id": .string(key.nodeID.compact), "public_key": .string(Base64URL.encode(key.publicKey)),
            "revisions": .int(Int64(summary.revisions)), "counts": summary.json["counts"]!,
            "header_sha256": .string(headerHash), "revisions_sha256": .string(hash.finalizeHex()),
        ]
        manifest["signature"] = .string(Base64URL.encode(key.sign(CanonicalJSON.encode(.object(manifest)))))
        line = CanonicalJSON.encode(.object(manifest)) + [0x0A]
        summary.bytes += line.count
        try write(&line)
        return summary
    }

    /// A bundle whose every checksum and signature checked out.
    public struct Verified: Sendable {
        public var nodeID: NodeID
        public var revisions: [SignedRevision]
        public var rotations: [KeyRotation]
        /// Each live revision's entity, made while checking.
        var prepared: [RevisionID: Entity]
    }

    /// A bundle whose container checked out (header, manifest signature, counts, checksums);
    /// its revisions are still to be checked, a chunk at a time (`verify`).
    public struct Opened: Sendable {
        public var nodeID: NodeID
        public var rotations: [KeyRotation]
        let keys: KeyBook
        /// Each revision line, without its newline.
        let lines: [[UInt8]]
        public var count: Int { lines.count }
    }

    /// Reads and checks a whole bundle before anything is written: header, every line's
    /// structure, the manifest's signature, counts and checksums, and every revision's
    /// signature. Throws `RevisionError` (`badBundle` for the container) naming the line.
    public static func read(_ bytes: [UInt8], progress: (Int, Int) -> Void = { _, _ in }) async throws -> Verified {
        let opened = try open(bytes)
        progress(0, opened.count)
        let chunk = try await verify(opened, 0..<opened.count)
        progress(opened.count, opened.count)
        return Verified(nodeID: opened.nodeID, revisions: chunk.revisions, rotations: opened.rotations, prepared: chunk.prepared)
    }

    /// Checks the container: header, manifest signature, counts and checksums. The revisions
    /// themselves are checked by `verify`.
    public static func open(_ bytes: [UInt8]) throws(RevisionError) -> Opened {
        func bad(_ why: String) -> RevisionError { RevisionError(.badBundle, why) }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.last?.isEmpty == true else { throw bad("the bundle does not end with a newline: it was cut off") }
        lines.removeLast()
        guard lines.count >= 2 else { throw bad("a bundle has a header, revisions and a manifest; this has \(lines.count) lines") }
        let headerLine = Array(lines[0]) + [0x0A]
        guard case .object(let header)? = try? JSONParser.parse(lines[0], maxDepth: 16), header["type"] == "thingdata.bundle" else { throw bad("line 1 is not a bundle header") }
        guard header["format"] == .int(format) else { throw bad("bundle format \(header["format"].map { "\($0)" } ?? "?") is not supported; this node reads format \(format)") }
        guard let nodeID = header["node_id"]?.stringValue.flatMap(NodeID.init) else { throw bad("the header's node_id is not a node id") }
        var rotations: [KeyRotation] = []
        for r in header["key_rotations"]?.arrayValue ?? [] {
            do { rotations.append(try KeyRotation(json: r)) } catch { throw bad("the header holds a malformed key rotation") }
        }
        var book = KeyBook()
        for node in Set(rotations.map(\.nodeID)) {
            do { try book.add(rotations.filter { $0.nodeID == node }) } catch { throw bad("the header's key rotations do not verify: \(error.reason)") }
        }
        guard case .object(var manifest)? = try? JSONParser.parse(lines[lines.count - 1], maxDepth: 16), manifest["type"] == "thingdata.bundle-manifest" else {
            throw bad("the last line is not a bundle manifest: the bundle was cut off")
        }
        guard manifest["node_id"]?.stringValue == nodeID.compact, let keyText = manifest["public_key"]?.stringValue, let key = Base64URL.decode(keyText), key.count == 32,
            book.isKnown(key, for: nodeID), let sigText = manifest["signature"]?.stringValue, let sig = Base64URL.decode(sigText)
        else { throw bad("the manifest's signer is not the bundle's node") }
        manifest["signature"] = nil
        guard NodeKey.isValid(signature: sig, of: CanonicalJSON.encode(.object(manifest)), by: key) else { throw bad("the manifest's signature does not verify") }
        guard manifest["header_sha256"]?.stringValue == ContentHash.sha256Hex(headerLine) else { throw bad("the header's checksum does not match the manifest") }
        let body = lines.dropFirst().dropLast()
        guard manifest["revisions"]?.intValue == Int64(body.count) else {
            throw bad("the manifest counts \(manifest["revisions"].map { "\($0)" } ?? "?") revisions; the bundle holds \(body.count)")
        }
        var hash = ContentHash.Stream()
        var raw: [[UInt8]] = []
        raw.reserveCapacity(body.count)
        for line in body {
            let l = Array(line)
            hash.update(l + [0x0A])
            raw.append(l)
        }
        guard manifest["revisions_sha256"]?.stringValue == hash.finalizeHex() else { throw bad("the revisions' checksum does not match the manifest") }
        return Opened(nodeID: nodeID, rotations: rotations, keys: book, lines: raw)
    }

    /// Decodes and checks the revisions on lines `range` (0 is the first revision) on every
    /// core: structure, author key, signature and body. Errors name the bundle's line.
    public static func verify(_ bundle: Opened, _ range: Range<Int>) async throws -> IngestChunk {
        let keys = bundle.keys
        do {
            let checked = try await Catalog.parallelParts(Array(bundle.lines[range])) { part throws(IngestError) in
                // Decoded up to the first line that does not decode; the lines before it are
                // checked first, so the lowest bad line is the one reported.
                var decoded: [SignedRevision] = []
                var undecodable: IngestError?
                var authors = AuthorMemo()
                for (i, l) in zip(part.indices, part) {
                    do throws(RevisionError) { decoded.append(try SignedRevision.decode(l, authors: &authors)) } catch {
                        undecodable = IngestError(index: i, revision: nil, error: error)
                        break
                    }
                }
                let entities = try Catalog.checkPart(decoded, from: part.startIndex, keys: keys)
                if let undecodable { throw undecodable }
                return Array(zip(decoded, entities))
            }
            var prepared: [RevisionID: Entity] = [:]
            for (s, e) in checked { if let e { prepared[s.id] = e } }
            return IngestChunk(revisions: checked.map(\.0), prepared: prepared)
        } catch let error as IngestError {
            throw RevisionError(error.error.code, "line \(range.lowerBound + (error.index ?? 0) + 2): \(error.error.reason)")
        }
    }
}

extension Catalog {
    /// Imports a checked bundle: its key rotations, then its revisions, all or nothing.
    public func importBundle(_ bundle: RevisionBundle.Verified) async throws -> IngestSummary {
        try await learn(rotations: bundle.rotations)
        // One transaction, so a failure leaves nothing; re-imports only count duplicates.
        return try await ingest(bundle.revisions, checked: true, prepared: bundle.prepared)
    }

    /// Imports an opened bundle, checking its revisions a chunk at a time while the chunk
    /// before is stored, inside one transaction: all or nothing, as `importBundle` of a
    /// verified bundle, but checking and storing overlap. A bad revision anywhere rolls back
    /// everything (`RevisionError` naming its line). `progress(done, total)` follows storing.
    public func importBundle(_ bundle: RevisionBundle.Opened, chunkSize: Int = 4096, progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> IngestSummary {
        try await learn(rotations: bundle.rotations)
        let chunks = ChunkPipeline(count: bundle.count, size: chunkSize, progress: progress) { range in try await RevisionBundle.verify(bundle, range) }
        defer { chunks.cancel() }
        return try await ingest(streaming: chunks.next)
    }
}

/// Makes chunks one ahead of their consumer: while chunk k is stored, chunk k + 1 is made
/// (checked) on the check threads.
final class ChunkPipeline: Sendable {
    private struct State {
        var start = 0
        /// Revisions handed out before the current call: stored once the consumer asks again.
        var handed = 0
        var pending: (task: Task<IngestChunk, any Error>, end: Int)?
    }
    private let count: Int
    private let size: Int
    private let make: @Sendable (Range<Int>) async throws -> IngestChunk
    private let progress: @Sendable (Int, Int) -> Void
    private let state = Mutex(State())

    init(count: Int, size: Int, progress: @escaping @Sendable (Int, Int) -> Void, make: @escaping @Sendable (Range<Int>) async throws -> IngestChunk) {
        self.count = count
        self.size = max(1, size)
        self.make = make
        self.progress = progress
    }

    /// The next chunk, or nil after the last; starts making the one after it.
    @Sendable func next() async throws -> IngestChunk? {
        let (task, done): (Task<IngestChunk, any Error>?, Int) = state.withLock { s in
            let done = s.handed
            let current = s.pending ?? launch(&s)
            s.pending = launch(&s)
            if let current { s.handed = current.end }
            return (current?.task, done)
        }
        progress(done, count)
        return try await task?.value
    }

    func cancel() { state.withLock { $0.pending?.task.cancel() } }

    private func launch(_ s: inout State) -> (task: Task<IngestChunk, any Error>, end: Int)? {
        guard s.start < count else { return nil }
        let range = s.start..<min(s.start + size, count)
        s.start = range.upperBound
        let make = self.make
        return (Task { try await make(range) }, range.upperBound)
    }
}
