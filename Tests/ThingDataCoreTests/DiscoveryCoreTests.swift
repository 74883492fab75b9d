import Foundation
import Testing
@testable import ThingDataCore
import ThingDataSigning

@Suite("The candidate table (discovery's state machine)")
struct CandidateTableTests {
    func dials(_ actions: [CandidateTable.Action]) -> [String] {
        actions.compactMap { if case .dial(let url, _) = $0 { url } else { nil } }
    }

    @Test func anAddressIsDialledThenProvenThenHeardAgainAsASource() {
        var t = CandidateTable()
        #expect(t.heard(url: "http://10.0.0.1:8000", expected: nil, supplier: "mdns", now: 0) == [])
        #expect(t.entries["http://10.0.0.1:8000"]?.state == .candidate)
        #expect(dials(t.tick(now: 0)) == ["http://10.0.0.1:8000"])
        #expect(t.entries["http://10.0.0.1:8000"]?.state == .probing)
        #expect(dials(t.tick(now: 10)) == [])  // not dialled twice while probing
        let proven = t.dialed(url: "http://10.0.0.1:8000", nodeID: "N1", now: 20)
        #expect(proven)
        #expect(t.entries["http://10.0.0.1:8000"]?.state == .active)
        #expect(t.heard(url: "http://10.0.0.1:8000", expected: nil, supplier: "dns:example.org", now: 30) == [.addSource(nodeID: "N1", mechanism: "dns")])
        #expect(t.entries["http://10.0.0.1:8000"]?.suppliers == ["mdns", "dns:example.org"])
    }

    @Test func failuresBackOffDoublingThenRetireAndRetiredComeBackOnlyLater() {
        var limits = CandidateTable.Limits()
        limits.retryBase = 1_000
        limits.maxFailures = 3
        limits.retiredFor = 100_000
        var t = CandidateTable(limits: limits)
        let url = "http://10.0.0.2:8000"
        _ = t.heard(url: url, expected: nil, supplier: "seed", now: 0)
        _ = t.tick(now: 0)
        t.dialFailed(url: url, error: "refused", now: 0)
        #expect(t.entries[url]?.state == .backoff)
        #expect(t.entries[url]?.due == 1_000)
        #expect(dials(t.tick(now: 999)) == [])
        #expect(dials(t.tick(now: 1_000)) == [url])
        t.dialFailed(url: url, error: "refused", now: 1_000)
        #expect(t.entries[url]?.due == 3_000)  // 2 s after the second failure
        _ = t.tick(now: 3_000)
        t.dialFailed(url: url, error: "refused", now: 3_000)
        #expect(t.entries[url]?.state == .retired)
        #expect(dials(t.tick(now: 50_000)) == [])
        // Heard again before the retirement ends: still retired; after it: a candidate again.
        _ = t.heard(url: url, expected: nil, supplier: "pex:X", now: 50_000)
        #expect(t.entries[url]?.state == .retired)
        _ = t.heard(url: url, expected: nil, supplier: "pex:X", now: 103_000)
        #expect(t.entries[url]?.state == .candidate)
        #expect(t.entries[url]?.failures == 0)
    }

    @Test func aNodeOtherThanThePinnedOneIsRetired() {
        var t = CandidateTable()
        _ = t.heard(url: "http://10.0.0.3:8000", expected: "PINNED", supplier: "dns:example.org", now: 0)
        _ = t.tick(now: 0)
        let proven = t.dialed(url: "http://10.0.0.3:8000", nodeID: "SOMEONE-ELSE", now: 1)
        #expect(!proven)
        #expect(t.entries["http://10.0.0.3:8000"]?.state == .retired)
    }

    @Test func theMinuteBudgetAndTheHearsayShareHold() {
        var t = CandidateTable()
        // One peer-exchange source offers 100 addresses: it gets a quarter of the budget.
        for i in 0..<100 { _ = t.heard(url: "http://10.1.0.\(i):8000", expected: nil, supplier: "pex:FLOOD", now: 0) }
        #expect(dials(t.tick(now: 0)).count == 5)
        #expect(dials(t.tick(now: 30_000)).count == 0)
        // Five sources with twenty each: the minute's budget (20), at most 5 each.
        var u = CandidateTable()
        for s in 0..<5 { for i in 0..<20 { _ = u.heard(url: "http://10.2.\(s).\(i):8000", expected: nil, supplier: "pex:S\(s)", now: 0) } }
        let first = dials(u.tick(now: 0))
        #expect(first.count == 20)
        #expect(u.dialsBySupplier(now: 0).values.allSatisfy { $0 <= 5 })
        #expect(dials(u.tick(now: 59_999)).isEmpty)
        #expect(dials(u.tick(now: 60_001)).count == 20)  // a new window
        // The local link and configured sources are not held to the share, only to the budget.
        var v = CandidateTable()
        for i in 0..<30 { _ = v.heard(url: "http://10.3.0.\(i):8000", expected: nil, supplier: "mdns", now: 0) }
        #expect(dials(v.tick(now: 0)).count == 20)
    }

    @Test func pinnedAndCorroboratedAddressesGoFirst() {
        var limits = CandidateTable.Limits()
        limits.dialsPerMinute = 2
        var t = CandidateTable(limits: limits)
        _ = t.heard(url: "http://a", expected: nil, supplier: "mdns", now: 0)
        _ = t.heard(url: "http://b", expected: nil, supplier: "mdns", now: 1)
        _ = t.heard(url: "http://b", expected: nil, supplier: "seed", now: 1)
        _ = t.heard(url: "http://c", expected: "ID", supplier: "dns:x.org", now: 2)
        #expect(dials(t.tick(now: 5)) == ["http://c", "http://b"])
    }

    @Test func lostAddressesGoUnlessProven() {
        var t = CandidateTable()
        _ = t.heard(url: "http://x", expected: nil, supplier: "mdns", now: 0)
        t.lost(url: "http://x", supplier: "mdns")
        #expect(t.entries["http://x"] == nil)
        _ = t.heard(url: "http://y", expected: nil, supplier: "mdns", now: 0)
        _ = t.tick(now: 0)
        t.dialed(url: "http://y", nodeID: "Y", now: 1)
        t.lost(url: "http://y", supplier: "mdns")
        #expect(t.entries["http://y"]?.state == .active)  // liveness is the node's own probes' business
    }

    @Test func aFullTableDropsHearsayAndCountsIt() {
        var limits = CandidateTable.Limits()
        limits.maxCandidates = 10
        var t = CandidateTable(limits: limits)
        for i in 0..<25 { _ = t.heard(url: "http://10.9.0.\(i)", expected: nil, supplier: "pex:P", now: Int64(i)) }
        #expect(t.entries.count == 10)
        #expect(t.dropped == 15)
        // A configured source still gets in, in place of the oldest hearsay.
        _ = t.heard(url: "http://seed", expected: nil, supplier: "seed", now: 100)
        #expect(t.entries["http://seed"] != nil)
        #expect(t.entries.count == 10)
    }

    @Test func restoredProbingEntriesAreDialledAgainAndStatesDecodeOldNames() throws {
        var t = CandidateTable()
        t.restore([.init(url: "http://r", suppliers: ["seed"], state: .probing, due: 0, firstHeard: 0, lastHeard: 0)])
        #expect(t.entries["http://r"]?.state == .candidate)
        #expect(try JSONDecoder().decode([PeerState].self, from: Data(#"["new","active","key-changed"]"#.utf8)) == [.probing, .active, .keyChanged])
    }

    @Test func legalTransitions() {
        #expect(PeerState.candidate.mayBecome(.probing))
        #expect(!PeerState.candidate.mayBecome(.active))
        #expect(PeerState.probing.mayBecome(.active))
        #expect(PeerState.active.mayBecome(.backoff))
        #expect(PeerState.backoff.mayBecome(.active))
        #expect(PeerState.retired.mayBecome(.candidate))
        #expect(!PeerState.retired.mayBecome(.active))
        #expect(PeerState.keyChanged.mayBecome(.probing))
        #expect(!PeerState.keyChanged.mayBecome(.active))
    }

    @Test func scoringPrefersTrustedReliableNearPeers() {
        let near = PeerScore.score(trust: .trusted, state: .active, rttMilliseconds: 5)
        let far = PeerScore.score(trust: .trusted, state: .active, rttMilliseconds: 900)
        let failing = PeerScore.score(trust: .trusted, state: .backoff, rttMilliseconds: 5)
        let lessTrusted = PeerScore.score(trust: .verified, state: .active, rttMilliseconds: 5)
        #expect(near > far && far > failing)
        #expect(near > lessTrusted)
    }
}

@Suite("Address filter, peer claims and exchange limits")
struct PeerExchangeCoreTests {
    @Test func addressFilter() {
        let open = AddressFilter()
        #expect(open.refusal(host: "203.0.113.7", port: 8000) == nil)
        #expect(open.refusal(host: "2001:db8::7", port: 8000) == nil)
        #expect(open.refusal(host: "127.0.0.1", port: 8000) == "loopback address")
        #expect(open.refusal(host: "::1", port: 8000) == "loopback address")
        #expect(open.refusal(host: "169.254.3.4", port: 8000) == "link-local address")
        #expect(open.refusal(host: "fe80::1", port: 8000) == "link-local address")
        #expect(open.refusal(host: "224.0.0.251", port: 8000) == "multicast address")
        #expect(open.refusal(host: "repair.example.org", port: 8000) == "not an IP address")
        #expect(open.refusal(host: "203.0.113.7", port: 80) == "privileged port 80")
        #expect(open.refusal(host: "203.0.113.7", port: 443) == nil)
        let testnet = AddressFilter(ranges: [IPNetwork("10.213.0.0/24")!])
        #expect(testnet.refusal(host: "10.213.0.9", port: 8000) == nil)
        #expect(testnet.refusal(host: "10.214.0.9", port: 8000) == "outside the allowed ranges")
        let loopback = AddressFilter(ranges: [IPNetwork("127.0.0.0/8")!])
        #expect(loopback.refusal(host: "127.0.0.1", port: 8000) == nil)
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("fe80::/10")!.contains(IPAddress("fe80::abcd")!))
        #expect(IPAddress("[2001:db8::1]")?.urlHost == "[2001:db8::1]")
    }

    @Test func claimsVerifyOnlyUntouchedAndByTheirNode() throws {
        let key = NodeKey.generate()
        let claim = PeerClaim.signed(by: key, addresses: ["10.0.0.1"], port: 8000, scheme: "http", path: "", issuedAt: 1_000, seq: 1_000)
        let parsed = try PeerClaim(json: try JSONParser.parse(CanonicalJSON.encode(claim.json)))
        #expect(parsed == claim)
        #expect(parsed.check(keys: KeyBook(), now: 1_000, maxSkew: 300) == nil)
        var moved = parsed
        moved.addresses = ["10.6.6.6"]
        #expect(moved.check(keys: KeyBook(), now: 1_000, maxSkew: 300) == .badSignature)
        // Another node's key cannot speak for this node.
        let other = NodeKey.generate()
        var impostor = PeerClaim.signed(by: other, addresses: ["10.6.6.6"], port: 8000, scheme: "http", path: "", issuedAt: 1_000, seq: 2_000)
        impostor.nodeID = key.nodeID.compact
        #expect(impostor.check(keys: KeyBook(), now: 1_000, maxSkew: 300) == .unknownKey)
        #expect(claim.check(keys: KeyBook(), now: 600, maxSkew: 300) == .future)
        #expect(throws: PeerClaim.Malformed.self) { try PeerClaim(json: ["type": "thingdata.peer", "node_id": "x"]) }
        var tooMany = claim.json.objectValue!
        tooMany["addresses"] = .array((0..<9).map { .string("10.0.0.\($0)") })
        #expect(throws: PeerClaim.Malformed.self) { try PeerClaim(json: .object(tooMany)) }
        #expect(claim.url("10.0.0.1") == "http://10.0.0.1:8000")
        #expect(claim.url("2001:db8::1") == "http://[2001:db8::1]:8000")
    }

    @Test func oneAnswerPerPeerPerMinute() {
        var limiter = ExchangeLimiter()
        #expect(limiter.admit("A", now: 0) == nil)
        #expect(limiter.admit("A", now: 10_000) == 50_000)
        #expect(limiter.admit("B", now: 10_000) == nil)
        #expect(limiter.admit("A", now: 60_000) == nil)
    }

    @Test func intakeKeepsTheNewestClaimPerNodeDropsSelfAndCapsTheCount() {
        func c(_ node: String, _ seq: Int64) -> PeerClaim { PeerClaim(nodeID: node, publicKey: "", addresses: ["10.0.0.1"], port: 8000, scheme: "http", path: "", issuedAt: 0, seq: seq) }
        let out = PeerExchangeIntake.dedupe([c("A", 1), c("B", 5), c("A", 3), c("SELF", 9), c("C", 1)], selfID: "SELF", limit: 50)
        #expect(out.map(\.nodeID) == ["A", "B", "C"])
        #expect(out[0].seq == 3)
        #expect(PeerExchangeIntake.dedupe((0..<100).map { c("N\($0)", 1) }, selfID: "SELF", limit: 50).count == 50)
    }

    @Test func serviceRecords() {
        #expect(ThingDataService.txt(nodeID: "ID", path: "/") == ["id=ID", "v=1"])
        #expect(ThingDataService.txt(nodeID: "ID", path: "/td") == ["id=ID", "v=1", "path=/td"])
        let a = ThingDataService.attributes(["ID=abc", "v=1", "id=second", "flag", "=bad"])
        #expect(a == ["id": "abc", "v": "1", "flag": ""])
        #expect(ThingDataService.url(host: "10.0.0.1", port: 8000, attributes: ["path": "td"]) == "http://10.0.0.1:8000/td")
        #expect(ThingDataService.url(host: "node.example.org.", port: 443, attributes: ["scheme": "https"]) == "https://node.example.org:443")
        #expect(ThingDataService.refreshDelay(ttlSeconds: 0) == 60_000)
        #expect(ThingDataService.refreshDelay(ttlSeconds: 3_600) == 3_600_000)
        let ordered = ServiceTarget.ordered([
            .init(priority: 10, weight: 5, port: 1, host: "c"), .init(priority: 0, weight: 1, port: 1, host: "b"), .init(priority: 0, weight: 9, port: 1, host: "a"),
        ])
        #expect(ordered.map(\.host) == ["a", "b", "c"])
    }
}
