import Foundation
import Synchronization
import Testing
import ThingDataCore
import ThingDataSigning
@testable import ThingDataStore

@Suite struct BundleTests {
    static func export(_ catalog: Catalog, since: RevisionBundle.Since = .everything, kinds: Set<EntityKind>? = nil) async throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try await RevisionBundle.export(from: catalog, since: since, kinds: kinds, now: Timestamp(microsecondsSinceEpoch: 1), write: { out += $0 })
        return out
    }

    static func seed(_ catalog: Catalog) async throws -> String {
        let thing = try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Kettle", translations: ["ja": "ケトル"])))!
        _ = try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: thing.id, steps: ["Unplug", "Descale"])))
        try await catalog.apply(Operation(.patch, .thing, id: thing.id, body: ["properties": ["dimensions": ["length": 20.5, "width": 15.0, "height": 24]]]))
        return thing.id
    }

    @Test(arguments: Backend.available)
    func exportImportRestoreRoundTrip(_ backend: Backend) async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        let thingID = try await Self.seed(source)
        // A rotated key signs later revisions; both keys' revisions must import.
        let rotated = source.signer.key.rotated(now: Timestamp(microsecondsSinceEpoch: 5))
        let after = Catalog(store: source.store, signer: RevisionSigner(key: rotated, actor: source.signer.actor, lastHLC: try await source.store.latestHLC(), wallClock: { 9_000_000_000_000 }))
        try await after.apply(Operation(.patch, .thing, id: thingID, body: ["tags": ["rotated"]]))
        let bundle = try await Self.export(after)
        try await backend.withCatalog { target in
            let verified = try await RevisionBundle.read(bundle)
            #expect(verified.revisions.count == 4)
            let summary = try await target.importBundle(verified)
            #expect(summary.stored == 4 && summary.entities == 2 && summary.conflicts == 0)
            let original = try #require(try await source.store.entity(.thing, id: thingID))
            let copy = try #require(try await target.store.entity(.thing, id: thingID))
            #expect(copy == original)
            #expect(copy.body["properties"]?["dimensions"]?["width"] == .double(15))  // still a float after JCS wrote "15"
            #expect(try await target.store.revisionCount() == 4)
            // Re-importing changes nothing.
            let again = try await target.importBundle(try await RevisionBundle.read(bundle))
            #expect(again.stored == 0 && again.duplicates == 4)
            #expect(try await target.store.revisionCount() == 4)
            // And the target's own export re-imports into the source as duplicates only.
            let back = try await source.importBundle(try await RevisionBundle.read(try await Self.export(target)))
            #expect(back.stored == 0)
        }
    }

    @Test func partialExportsBySinceAndKind() async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        _ = try await Self.seed(source)
        let onlyStories = try await RevisionBundle.read(try await Self.export(source, kinds: [.story]))
        #expect(onlyStories.revisions.map(\.revision.kind) == [.story])
        let first = try #require(try await source.store.revisions(afterSequence: 0, limit: 1).first)
        let later = try await RevisionBundle.read(try await Self.export(source, since: .revision(try first.decoded().id)))
        #expect(later.revisions.count == 2)
    }

    @Test(arguments: Backend.available)
    func damagedBundlesAreRefusedWithNothingWritten(_ backend: Backend) async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        _ = try await Self.seed(source)
        let bundle = try await Self.export(source)
        let lines = bundle.split(separator: 0x0A).map(Array.init)
        func join(_ l: [[UInt8]]) -> [UInt8] { l.flatMap { $0 + [0x0A] } }
        // A revision line re-signed by a stranger keeps a valid revision but breaks the checksum.
        let stranger = NodeKey.generate()
        var forged = try SignedRevision.decode(lines[1]).revision
        forged.author = stranger.author
        var withForged = lines
        withForged[1] = forged.signed(signature: stranger.sign(forged.signingBytes)).bytes
        var badManifest = lines
        badManifest[lines.count - 1] = Array(String(decoding: lines.last!, as: UTF8.self).replacingOccurrences(of: "\"revisions\":3", with: "\"revisions\":2").utf8)
        let cases: [(String, [UInt8])] = [
            ("cut in the middle", Array(bundle.prefix(bundle.count / 2))),
            ("cut after a line", join(Array(lines.prefix(2)))),
            ("a line missing", join(lines.enumerated().filter { $0.offset != 2 }.map(\.element))),
            ("a revision from someone else", join(withForged)),
            ("a changed count", join(badManifest)),
            ("empty", []),
        ]
        try await backend.withCatalog { target throws in
            for (name, bytes) in cases {
                await #expect(throws: RevisionError.self, "\(name)") { try await target.importBundle(try await RevisionBundle.read(bytes)) }
            }
            #expect(try await target.store.revisionCount() == 0)
        }
    }

    /// A bundle whose container is signed by `key` over `revisions` as given (a misbehaving
    /// exporter: the checksums match, the revisions need not).
    static func signedBundle(header: [UInt8], revisions: [[UInt8]], key: NodeKey) -> [UInt8] {
        var hash = ContentHash.Stream()
        for r in revisions { hash.update(r + [0x0A]) }
        var manifest: JSONObject = [
            "type": "thingdata.bundle-manifest", "node_id": .string(key.nodeID.compact), "public_key": .string(Base64URL.encode(key.publicKey)),
            "revisions": .int(Int64(revisions.count)), "header_sha256": .string(ContentHash.sha256Hex(header + [0x0A])), "revisions_sha256": .string(hash.finalizeHex()),
        ]
        manifest["signature"] = .string(Base64URL.encode(key.sign(CanonicalJSON.encode(.object(manifest)))))
        return ([header] + revisions + [CanonicalJSON.encode(.object(manifest))]).flatMap { $0 + [0x0A] }
    }

    /// The streamed import checks a chunk while the one before is stored, in one transaction:
    /// it counts as the whole-bundle import does, and a bad revision in a later chunk leaves
    /// nothing of the earlier chunks behind.
    @Test(arguments: Backend.available)
    func aStreamedImportIsAllOrNothingAcrossChunks(_ backend: Backend) async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        let thingID = try await Self.seed(source)
        for i in 0..<3 { try await source.apply(Operation(.patch, .thing, id: thingID, body: ["tags": .array([.string("t\(i)")])])) }
        let bundle = try await Self.export(source)
        let whole = try await Catalog.open(store: MemoryContentStore(), key: .generate()).importBundle(try await RevisionBundle.read(bundle))
        #expect(whole.stored == 6 && whole.entities == 2)
        try await backend.withCatalog { target in
            let seen = Mutex<[Int]>([])
            let summary = try await target.importBundle(try RevisionBundle.open(bundle), chunkSize: 2) { done, total in
                #expect(total == 6)
                seen.withLock { $0.append(done) }
            }
            #expect(summary == whole)  // the thing's five revisions span three chunks and count once
            #expect(seen.withLock { $0 } == [0, 2, 4, 6])
            #expect(try await target.store.entity(.thing, id: thingID) == (try await source.store.entity(.thing, id: thingID)))
        }
        // The last revision tampered with (its signature no longer matches), the container re-signed.
        let lines = bundle.split(separator: 0x0A).map(Array.init)
        var last = lines[lines.count - 2]
        let at = try #require(String(decoding: last, as: UTF8.self).range(of: "\"t2\"")).lowerBound.utf16Offset(in: String(decoding: last, as: UTF8.self))
        last[at + 1] = UInt8(ascii: "x")
        let forged = Self.signedBundle(header: lines[0], revisions: Array(lines[1..<(lines.count - 2)]) + [last], key: source.signer.key)
        try await backend.withCatalog { target in
            let opened = try RevisionBundle.open(forged)
            await #expect { try await target.importBundle(opened, chunkSize: 2) } throws: { ($0 as? RevisionError)?.reason.hasPrefix("line 7:") == true }
            #expect(try await target.store.revisionCount() == 0)
            #expect(try await target.store.entity(.thing, id: thingID) == nil)
        }
    }

    /// Mutated bundles never crash the reader and are never accepted unless unchanged.
    @Test func fuzzBundleReader() async throws {
        let source = try await Catalog.open(store: MemoryContentStore(), key: .generate())
        _ = try await Self.seed(source)
        let bundle = try await Self.export(source)
        var rng = SplitMix64(seed: 99)
        for _ in 0..<400 {
            var b = bundle
            for _ in 0..<Int.random(in: 1...3, using: &rng) where !b.isEmpty {
                let i = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: b.remove(at: i)
                default: b.insert([0x0A, 0x20, 0x22, 0x7B][Int.random(in: 0..<4, using: &rng)], at: i)
                }
            }
            if (try? await RevisionBundle.read(b)) != nil { #expect(b == bundle) }
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
