// Figures for signed revisions (issue 3): raw Ed25519 verifications on one core, bundle import
// end to end, the merge of one entity with 1,000 revisions and 8 heads, and the causality
// metadata of an entity after 10,000 edits. Prints a table; run in release:
//
//   swift run -c release thingdata-bench [REVISIONS]     (default 100000)
//   THINGDATA_BENCH_POSTGRES_URL=postgres://… also imports into PostgreSQL.
import Crypto
import Foundation
import Logging
import ThingDataCore
import ThingDataSigning
import ThingDataStore

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func row(_ what: String, _ value: String) { print("| \(what.padding(toLength: 72, withPad: " ", startingAt: 0)) | \(value) |") }

let count = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 100_000
var logger = Logger(label: "bench")
logger.logLevel = .error
print("cores=\(ProcessInfo.processInfo.activeProcessorCount) revisions=\(count)")
print("| measure | figure |")
print("|---|---|")

// 1. Raw Ed25519 verifications per second, one core.
let key = NodeKey.generate()
let messages = (0..<2000).map { i in Array("revision \(i) ".utf8) + [UInt8](repeating: UInt8(i % 251), count: 600) }
let signatures = messages.map { key.sign($0) }
let publicKey = key.privateKey.publicKey
// The best of three rounds of 10,000: the machine's rate, not a moment of noise, so the
// import's ratio to it errs on the strict side.
func bestRawRate() async -> Double {
    var best = 0.0
    for _ in 0..<3 {
        var verified = 0
        let t = await seconds {
            for _ in 0..<5 {
                for (m, s) in zip(messages, signatures) where publicKey.isValidSignature(s, for: m) { verified += 1 }
            }
        }
        best = max(best, Double(verified) / t)
    }
    return best
}
let rawRate = await bestRawRate()
row("Ed25519 verifications/s, one core (raw, swift-crypto, best of 3)", String(format: "%.0f", rawRate))

// 1b. The same signatures checked in batches (`Ed25519Batch`), one core, best of 3.
let items = zip(messages, signatures).map { Ed25519Batch.Item(publicKey: key.publicKey, message: $0, signature: $1) }
// And with a different author for every signature, the batch's worst case.
let batchAuthors = (0..<500).map { _ in NodeKey.generate() }
let manyAuthors = messages.enumerated().map { i, m in
    let author = batchAuthors[i % batchAuthors.count]
    return Ed25519Batch.Item(publicKey: author.publicKey, message: m, signature: author.sign(m))
}
for (size, items, label) in [(1, items, ""), (64, items, ""), (500, items, ""), (2000, items, ""), (500, manyAuthors, ", 500 authors")] {
    var best = 0.0
    for _ in 0..<3 {
        var verified = 0
        let t = await seconds {
            for start in stride(from: 0, to: items.count, by: size) where Ed25519Batch.verify(Array(items[start..<min(start + size, items.count)])) {
                verified += min(size, items.count - start)
            }
        }
        best = max(best, Double(verified) / t)
    }
    row("Ed25519 verifications/s, one core, batches of \(size)\(label) (Ed25519Batch)", String(format: "%.0f (%.1f× swift-crypto one by one)", best, best / rawRate))
}
// A byzantine peer's page: one bad signature in every part of 500. The batch fails; its
// halving (`Ed25519Batch.suspects`) leaves a few to check alone, where checking every one
// alone was the fallback before.
var oneBadEach = items
for start in stride(from: 0, to: oneBadEach.count, by: 500) { oneBadEach[start + 317].signature[5] ^= 1 }
for halving in [false, true] {
    var best = 0.0
    var rejected = 0
    for _ in 0..<3 {
        var checked = 0
        rejected = 0
        let t = await seconds {
            for start in stride(from: 0, to: oneBadEach.count, by: 500) {
                let part = Array(oneBadEach[start..<min(start + 500, oneBadEach.count)])
                if Ed25519Batch.verify(part) { checked += part.count; continue }
                let alone = halving ? Ed25519Batch.suspects(part) : Array(part.indices)
                for i in alone where !NodeKey.isValid(signature: part[i].signature, of: part[i].message, by: part[i].publicKey) { rejected += 1 }
                checked += part.count
            }
        }
        best = max(best, Double(checked) / t)
    }
    let how = halving ? "halving, suspects alone" : "then each alone"
    row("Ed25519/s, parts of 500, one bad in each: batch, \(how)", String(format: "%.0f (%.1f× swift-crypto one by one; %d bad found)", best, best / rawRate, rejected))
}

// 2. A bundle of `count` creates (things with names in three languages), then its import.
let source = try await Catalog.open(store: MemoryContentStore(), key: key)
let makeTime = await seconds {
    for start in stride(from: 0, to: count, by: 1000) {
        let ops = (start..<min(start + 1000, count)).map { i in
            Operation(.create, .thing, body: [
                "type": "device", "name": ["default": .string("Kettle \(i)"), "translations": ["de": .string("Wasserkocher \(i)"), "ja": "ケトル"]],
                "manufacturer": ["name": .string("Maker \(i % 97)")], "properties": ["dimensions": ["length": 20.5, "width": 15, "height": 24], "materials": ["steel", "plastic"]],
            ])
        }
        _ = try! await source.apply(ops, path: { _ in [] })
    }
}
row("signed creates through the catalog (memory store), revisions/s", String(format: "%.0f", Double(count) / makeTime))
var bundle: [UInt8] = []
_ = try await RevisionBundle.export(from: source, now: Timestamp.now(), write: { bundle += $0 })
row("bundle size", String(format: "%.1f MB for %d revisions", Double(bundle.count) / 1e6, count))

var parsed: RevisionBundle.Verified!
let readTime = try await seconds { parsed = try await RevisionBundle.read(bundle) }
row("bundle read + checksums + every signature, revisions/s", String(format: "%.0f (%.2f s)", Double(count) / readTime, readTime))

// The per-revision steps of receiving a revision, one core: decoding (parse, the
// canonical-form check, the fields) and the checks after it (author key, signature, body), in
// parts of 500 as a sync or an import checks them (the signatures as one batch).
let sample = Array(parsed.revisions.prefix(20_000))
let keyBook = KeyBook()
var decodeTime = Double.infinity, checkTime = Double.infinity
for _ in 0..<3 {
    decodeTime = await min(decodeTime, seconds {
        var authors = AuthorMemo()  // as a sync or an import decodes a part
        for s in sample { _ = try! SignedRevision.decode(s.bytes, authors: &authors) }
    })
    checkTime = await min(checkTime, seconds {
        for start in stride(from: 0, to: sample.count, by: 500) { _ = Catalog.checkPart(Array(sample[start..<min(start + 500, sample.count)]), keys: keyBook) }
    })
}
row("one revision, one core: decode (parse, canonical check, fields)", String(format: "%.1f µs", decodeTime / Double(sample.count) * 1e6))
row("one revision, one core: check, parts of 500 (key, signature, body)", String(format: "%.1f µs", checkTime / Double(sample.count) * 1e6))

func importInto(_ location: StoreLocation, label: String, bytes: [UInt8]) async throws {
    try await withContentStore(location, logger: logger) { store in
        let target = try await Catalog.open(store: store, key: .generate())
        var summary = IngestSummary()
        var openTime = 0.0
        let t = try await seconds {
            // The container is checked first; revisions are checked a chunk ahead of storing.
            var opened: RevisionBundle.Opened!
            openTime = try await seconds { opened = try RevisionBundle.open(bytes) }
            summary = try await target.importBundle(opened)
        }
        precondition(summary.stored == count)
        let rate = Double(count) / t
        row("import end to end into \(label) (read, verify, store, views), revisions/s", String(format: "%.0f (%.2f s, of which the container checks %.2f s; %.2f× the raw one-core rate)", rate, t, openTime, rate / rawRate))
        let again = try await seconds { _ = try await target.importBundle(try RevisionBundle.open(bytes)) }
        row("re-import of the same bundle into \(label) (all duplicates)", String(format: "%.2f s", again))
    }
}
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
try await importInto(.sqlite(path: dir.appendingPathComponent("import.sqlite").path), label: "SQLite", bytes: bundle)
if let url = ProcessInfo.processInfo.environment["THINGDATA_BENCH_POSTGRES_URL"] {
    try await importInto(.postgres(url: url), label: "PostgreSQL", bytes: bundle)
}
_ = parsed

// 3. Merge: one entity, 1,000 revisions, 8 heads (a 990-revision history, then 8 branches).
func body(_ i: Int, branch: Int) -> JSONObject {
    ["type": "device", "name": ["default": .string("Kettle \(branch)"), "translations": [["de", "fr", "es", "ja"][branch % 4]: .string("t\(i)")]],
     "manufacturer": ["name": .string("Maker \(i % 5)")], "properties": ["materials": .array([.string("m\(branch)"), "steel"])],
     "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": .string(Timestamp(microsecondsSinceEpoch: Int64(i) * 1000).description)]
}
let authors = (0..<8).map { _ in NodeKey.generate() }
var nodes: [MergeEngine.Node] = []
var last: (id: RevisionID, vv: VersionVector)?
for i in 0..<990 {
    let actor = String(format: "%016x", i % 8 + 1)
    let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: last.map { [$0.id] } ?? [],
        versionVector: VersionVector.next(actor: actor, parents: last.map { [$0.vv] } ?? []), author: authors[i % 8].author, hlc: HLC(wall: Int64(i)), body: body(i, branch: 0))
    nodes.append(.init(id: r.id, revision: r))
    last = (r.id, r.versionVector)
}
let fork = last!
for b in 0..<8 {
    var tip = fork
    for j in 0..<(b < 2 ? 2 : 1) {
        let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [tip.id],
            versionVector: VersionVector.next(actor: String(format: "%016x", b + 1), parents: [tip.vv]), author: authors[b].author, hlc: HLC(wall: Int64(2000 + b * 10 + j)), body: body(2000 + j, branch: b))
        nodes.append(.init(id: r.id, revision: r))
        tip = (r.id, r.versionVector)
    }
}
var result: MergeResult?
let runs = 50
let mergeTime = await seconds { for _ in 0..<runs { result = MergeEngine.merge(nodes.shuffled()) } }
row("merge of one entity: \(nodes.count) revisions, \(result!.heads.count) heads", String(format: "%.2f ms per merge (%d field conflicts)", mergeTime / Double(runs) * 1000, result!.conflict?.fields.count ?? 0))

// 4. Causality metadata after 10,000 edits by 40 actors (node incarnations), with forks.
let store = MemoryContentStore()
let editors = try await (0..<40).asyncMap { _ in try await Catalog.open(store: store, key: .generate()) }
let thing = try await editors[0].apply(Operation(.create, .thing, body: ["type": "device", "name": ["default": "Kettle"], "manufacturer": ["name": "Acme"]]))!
for i in 0..<10_000 {
    // Each editor is a separate actor on one store: the vector gains an entry per editor.
    let editor = Catalog(store: store, signer: RevisionSigner(key: editors[i % 40].signer.key, actor: String(format: "%016x", i % 40 + 1), wallClock: { Int64(i) }))
    _ = try await editor.apply(Operation(.patch, .thing, id: thing.id, body: ["properties": ["serial_number": .string("SN-\(i)")]]))
}
let heads = try await store.heads(.thing, id: thing.id)!
let headBytes = CanonicalJSON.encode(.array(heads.heads.map { ["id": .string($0.id), "vv": $0.vector.json] })).count
let latest = try await store.revision(heads.heads[0].id)!
let revision = try latest.decoded().revision
let metadata = CanonicalJSON.encode(.object(["parents": .array(revision.parents.map { .string($0) }), "version_vector": revision.versionVector.json, "hlc": revision.hlc.json])).count
row("causality metadata after 10,000 edits by 40 actors", "\(headBytes) bytes of heads+vectors; \(metadata) bytes per revision (\(revision.versionVector.counters.count) actors kept)")

extension Sequence {
    func asyncMap<T>(_ f: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await f(e)) }
        return out
    }
}
