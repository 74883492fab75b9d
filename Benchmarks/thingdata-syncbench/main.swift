// Figures for federation (issue 4), with real nodes on loopback ports (SQLite, HTTP, signed
// requests): the initial sync of REVISIONS revisions from A to B, a no-op sync round, an
// incremental sync after 100 edits, and propagation A → B → C with announce. Run in release:
//
//   swift run -c release thingdata-syncbench [REVISIONS [BATCH]]
//
// REVISIONS defaults to 100000; BATCH (revisions per pulled page, `sync_batch`) to the node's
// default.
import Foundation
import Logging
import ServiceLifecycle
import ThingDataCore
import ThingDataFederation
import ThingDataServer
import ThingDataSigning
import ThingDataStore

func row(_ what: String, _ value: String) { print("| \(what.padding(toLength: 80, withPad: " ", startingAt: 0)) | \(value) |") }
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

let count = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 100_000
let batch = CommandLine.arguments.dropFirst(2).first.flatMap(Int.init) ?? FederationSettings().batchSize
let logger: Logger = {
    var l = Logger(label: "syncbench")
    l.logLevel = .critical
    return l
}()
let root = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-syncbench-\(UUID().uuidString.prefix(8))")
try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: root) }

/// A node: store, catalog, federation and its HTTP listener. `loop` runs the sync loop too.
struct BenchNode {
    let catalog: Catalog
    let federation: Federation
    let url: String
}

func withNode<T: Sendable>(_ name: String, loop: Bool, _ body: @escaping @Sendable (BenchNode) async throws -> T) async throws -> T {
    let path = root.appendingPathComponent("\(name).sqlite").path
    return try await withContentStore(.sqlite(path: path), logger: logger) { store in
        let key = NodeKey.generate()
        let catalog = try await Catalog.open(store: store, key: key)
        var settings = FederationSettings()
        settings.name = name
        settings.pollInterval = 3_600_000  // only announces and explicit pulls
        settings.batchSize = batch
        let federation = try await Federation.open(catalog: catalog, key: key, settings: settings, logger: logger)
        var config = NodeConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        let (ready, readyContinuation) = AsyncStream<Int>.makeStream()
        let app = buildApplication(configuration: config, catalog: catalog, federation: federation, logger: logger) { readyContinuation.yield($0) }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
                if loop { services.append(.init(service: FederationService(federation: federation))) }
                try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
                return nil
            }
            var port = 0
            for await p in ready { port = p; break }
            federation.listening(host: "127.0.0.1", port: port)
            let result = try await body(BenchNode(catalog: catalog, federation: federation, url: "http://127.0.0.1:\(port)"))
            group.cancelAll()
            return result
        }
    }
}

func thingBody(_ i: Int) -> JSONValue {
    ["type": "device", "name": ["default": .string("Kettle \(i)"), "translations": ["de": .string("Wasserkocher \(i)"), "ja": "ケトル"]],
     "manufacturer": ["name": .string("Maker \(i % 97)")], "properties": ["dimensions": ["length": 20.5, "width": 15, "height": 24], "materials": ["steel", "plastic"]]]
}

print("cores=\(ProcessInfo.processInfo.activeProcessorCount) revisions=\(count)")
print("| measure | figure |")
print("|---|---|")

try await withNode("a", loop: false) { a in
    var ids: [String] = []
    let t0 = now()
    for start in stride(from: 0, to: count, by: 1000) {
        let ops = (start..<min(start + 1000, count)).map { Operation(.create, .thing, body: thingBody($0)) }
        let plan = try await a.catalog.apply(ops) { [.index($0)] }
        ids += plan.entities.compactMap { $0?.id }
    }
    FileHandle.standardError.write(Data(String(format: "made %d revisions on A in %.1f s\n", count, now() - t0).utf8))
    let made = ids
    try await withNode("b", loop: false) { b in
        // 1. Initial sync, end to end: fetch, verify every signature and body, store, checkpoint.
        let peer = try await b.federation.addPeer(url: a.url)
        let t1 = now()
        let reports = try await b.federation.syncNow(peer.nodeID)
        let elapsed = now() - t1
        let first = reports[0]
        guard first.ok, try await b.catalog.store.revisionCount() == count else { fatalError("initial sync incomplete: \(first.json)") }
        row("initial sync A→B, \(count) revisions, SQLite: revisions/s end to end", String(format: "%.0f (%.1f s, %d batches of up to %d, %.1f MB in)", Double(count) / elapsed, elapsed, first.batches, batch, Double(first.bytesIn) / 1e6))

        // 2. No-op sync rounds.
        var noopBytes = 0
        let rounds = 50
        let t2 = now()
        for _ in 0..<rounds {
            let r = try await b.federation.syncNow(peer.nodeID)[0]
            noopBytes = r.bytesIn + r.bytesOut
        }
        row("no-op sync round at \(count) revisions: bytes on the wire (request + answer)", "\(noopBytes) B")
        row("no-op sync round: time per round (mean of \(rounds))", String(format: "%.2f ms", (now() - t2) / Double(rounds) * 1000))

        // 3. Incremental sync after 100 edits.
        let before = try await a.catalog.store.latestSequence()
        for i in 0..<100 {
            _ = try await a.catalog.apply(Operation(.patch, .thing, id: made[i * (made.count / 100)], body: ["properties": ["serial_number": .string("SN-\(i)")]]))
        }
        let edits = try await a.catalog.store.revisions(afterSequence: before, limit: 1000)
        let editBytes = edits.reduce(0) { $0 + $1.bytes.count }
        let r = try await b.federation.syncNow(peer.nodeID)[0]
        let wire = r.bytesIn + r.bytesOut
        row("incremental sync after 100 edits: bytes on the wire / bytes of the revisions", String(format: "%d / %d = %.3f× (aim ≤ 1.5× + 1 KiB: %@)", wire, editBytes, Double(wire) / Double(editBytes), wire <= editBytes * 3 / 2 + 1024 ? "met" : "not met"))
    }
}

// 4. Propagation A → B → C with announce, over 100 writes.
try await withNode("pa", loop: true) { a in
    try await withNode("pb", loop: true) { b in
        try await withNode("pc", loop: true) { c in
            _ = try await b.federation.addPeer(url: a.url)
            _ = try await a.federation.addPeer(url: b.url)
            _ = try await c.federation.addPeer(url: b.url)
            _ = try await b.federation.addPeer(url: c.url)
            try await Task.sleep(for: .milliseconds(500))
            var latencies: [Double] = []
            for i in 0..<100 {
                let t = now()
                let id = try await a.catalog.apply(Operation(.create, .thing, body: thingBody(i)))!.id
                while try await c.catalog.store.entity(.thing, id: id) == nil {
                    if now() - t > 10 { fatalError("write \(i) did not reach C within 10 s") }
                    try await Task.sleep(for: .milliseconds(1))
                }
                latencies.append((now() - t) * 1000)
            }
            latencies.sort()
            row("propagation A→B→C with announce, 100 writes: p50", String(format: "%.1f ms", latencies[49]))
            row("propagation A→B→C with announce, 100 writes: p99 (aim ≤ 1 s)", String(format: "%.1f ms", latencies[98]))
        }
    }
}
