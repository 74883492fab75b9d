import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import ThingDataCore
@testable import ThingDataDiscovery
import ThingDataFederation
import ThingDataSigning
import ThingDataStore
import NIOHTTP1

/// Peer exchange between real nodes on loopback, and a poisoning peer. (mDNS and DNS with real
/// daemons run in network namespaces: scripts/discovery-smoke.)
@Suite(.serialized) struct DiscoveryTests {
    static func settings(pex: Bool) -> DiscoverySettings {
        var s = DiscoverySettings()
        s.mdns = false
        s.pex = pex
        s.filter = AddressFilter(ranges: [IPNetwork("127.0.0.0/8")!])
        return s
    }

    /// Runs `discovery` while `body` runs.
    static func running<T>(_ discovery: Discovery, _ body: () async throws -> T) async rethrows -> T {
        let task = Task { await discovery.run() }
        defer { task.cancel() }
        return try await body()
    }

    /// C knows only B; B syncs with A. C asks B for its peers, gets A's signed claim, dials A,
    /// and A joins C's table with the source `pex`. B answers C once a minute, 429 after that.
    @Test func cLearnsOfAThroughB() async throws {
        let (a, b, c) = (TestNode("pa"), TestNode("pb"), TestNode("pc"))
        for n in [a, b, c] { try await n.start() }
        defer { Task { for n in [a, b, c] { await n.stop() } } }
        try await link(a, b)
        try await link(b, c)
        #expect(try await eventually {
            guard await b.peer(a)?.lastSync != nil else { return false }
            return await b.peer(c)?.lastSync != nil
        })
        // B takes A's own claim from A's answer, to pass on.
        let fromA = await b.federation.fetchExchange(from: try #require(await b.peer(a)))
        #expect(fromA.error == nil)
        #expect(await b.peer(a)?.claim != nil)
        #expect(await c.peer(a) == nil)

        let discovery = Discovery(federation: c.federation, settings: Self.settings(pex: true), logger: TestNode.logger)
        try await Self.running(discovery) {
            #expect(try await eventually(20) { await c.peer(a)?.sources.contains("pex") == true })
        }
        let learned = try #require(await c.peer(a))
        #expect(learned.trust == .verified)
        #expect(learned.baseURL == a.url)
        // Asked again within the minute: 429 with Retry-After.
        let again = await c.federation.fetchExchange(from: try #require(await c.peer(b)))
        #expect(again.error == "HTTP 429")
        #expect((again.retryAfter ?? 0) > 0)
        // Peer exchange is signed like every federation request.
        let unsigned = try await a.federation.client.send(.GET, b.url + "/federation/v1/peers", signed: false)
        #expect(unsigned.status == 401)
    }

    /// A peer answers with 10,000 records (half forged): at most 50 are read, the forged ones
    /// are refused and counted, and what is dialled stays within the budget: at most a quarter
    /// of the minute's 20 dials for one hearsay source. None of the bogus nodes gets in.
    @Test func aFloodOfPeerRecordsStaysWithinTheDialBudget() async throws {
        let n = TestNode("victim")
        try await n.start()
        defer { Task { await n.stop() } }
        let flood = try await FloodingPeer.start(records: 10_000)
        defer { flood.stop() }
        let m = try await n.federation.addPeer(url: flood.url)

        let discovery = Discovery(federation: n.federation, settings: Self.settings(pex: false), logger: TestNode.logger)
        try await Self.running(discovery) {
            await discovery.exchange(with: m)
            try await Task.sleep(for: .seconds(2))
            let status = discovery.statusJSON()
            let exchange = try #require(status["pex"]?["exchanges"]?.arrayValue?.first)
            #expect(exchange["received"]?.intValue == 10_000)
            #expect(exchange["ignored"]?.intValue == 9_950)
            #expect(exchange["rejected"]?.intValue == 25)
            #expect(exchange["accepted"]?.intValue == 25)
            let budget = try #require(status["budget"])
            #expect(budget["by_source"]?["pex:\(m.nodeID)"]?.intValue == 5)
            #expect((budget["dials_in_window"]?.intValue ?? 99) <= 20)
            #expect(status["candidates"]?["total"]?.intValue == 25)
        }
        #expect(await n.federation.peers.all().map(\.nodeID) == [m.nodeID])
    }
}

/// A node that answers peer exchange with a flood: `records` claims, every other one forged
/// (a valid claim with its address changed after signing), each naming a closed loopback port.
struct FloodingPeer {
    let url: String
    let task: Task<Void, any Error>

    static func start(records count: Int) async throws -> FloodingPeer {
        let key = NodeKey.generate()
        let port = Mutex(0)
        var records: [JSONValue] = []
        records.reserveCapacity(count)
        for i in 0..<count {
            var claim = PeerClaim.signed(by: .generate(), addresses: ["127.0.0.\(2 + i % 250)"], port: 20_000 + i % 9_000, scheme: "http", path: "", issuedAt: 1, seq: 1)
            if i % 2 == 1 { claim.addresses = ["127.0.0.99"] }
            records.append(claim.json)
        }
        let answer = CanonicalJSON.encode(["self": .null, "peers": .array(records)])
        let router = Router()
        router.get(".well-known/thingdata") { _, _ -> Response in
            let base = "http://127.0.0.1:\(port.withLock { $0 })"
            let d = NodeDescriptor(key: key, name: "flood", description: "", softwareVersion: "0", capabilities: [], languages: ["en"],
                                   baseURL: base, actorEpoch: "0", indexID: "x", now: Timestamp.now())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: CanonicalJSON.encode(d.json))))
        }
        router.get("federation/v1/peers") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: answer)))
        }
        let (ready, readyContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { readyContinuation.yield($0.localAddress?.port ?? 0) }, logger: TestNode.logger)
        let task = Task { try await ServiceGroup(configuration: .init(services: [app], logger: TestNode.logger)).run() }
        for await p in ready {
            port.withLock { $0 = p }
            break
        }
        return FloodingPeer(url: "http://127.0.0.1:\(port.withLock { $0 })", task: task)
    }

    func stop() { task.cancel() }
}
