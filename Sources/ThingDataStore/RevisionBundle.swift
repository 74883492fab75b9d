public import ThingDataCore
public import ThingDataSigning

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

    /// Reads and checks a whole bundle before anything is written: header, every line's
    /// structure, the manifest's signature, counts and checksums, and every revision's
    /// signature. Throws `RevisionError` (`badBundle` for the container) naming the line.
    public static func read(_ bytes: [UInt8], progress: (Int, Int) -> Void = { _, _ in }) async throws -> Verified {
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
        progress(0, body.count)
        // Decoding, signatures and bodies on every core.
        let keys = book
        let revisions: [SignedRevision]
        var prepared: [RevisionID: Entity] = [:]
        do {
            let checked = try await Catalog.parallelMap(raw) { l throws(RevisionError) in
                let s = try SignedRevision.decode(l)
                return (s, try Catalog.check(s, keys: keys))
            }
            revisions = checked.map(\.0)
            for (s, e) in checked { if let e { prepared[s.id] = e } }
        } catch let error as IngestError {
            throw RevisionError(error.error.code, "line \((error.index ?? 0) + 2): \(error.error.reason)")
        }
        progress(body.count, body.count)
        return Verified(nodeID: nodeID, revisions: revisions, rotations: rotations, prepared: prepared)
    }
}

extension Catalog {
    /// Imports a checked bundle: its key rotations, then its revisions, all or nothing.
    public func importBundle(_ bundle: RevisionBundle.Verified) async throws -> IngestSummary {
        try await learn(rotations: bundle.rotations)
        // One transaction, so a failure leaves nothing; re-imports only count duplicates.
        return try await ingest(bundle.revisions, checked: true, prepared: bundle.prepared)
    }
}
