public import ThingDataCore
public import ThingDataFederation
public import Logging
import ThingDataStore
import ThingDataSigning
import Foundation
import Synchronization

/// Which discovery mechanisms run, and their limits (from the node's configuration).
public struct DiscoverySettings: Sendable, Equatable {
    /// mDNS through avahi-daemon: publish this node and browse for others on the LAN.
    public var mdns = true
    /// Bootstrap domains: `_thingdata._tcp.<domain>` by SRV/TXT and DNS-SD PTR.
    public var domains: [String] = []
    /// A nameserver to ask instead of the system's (tests, private zones): address and port.
    public var nameserver: String?
    public var nameserverPort = 53
    /// Seeds: hosts, host:port pairs or URLs.
    public var seeds: [String] = []
    /// Peer exchange: ask active peers for theirs.
    public var pex = true
    /// How often each peer is asked, in milliseconds (at least a minute: peers answer once a minute).
    public var pexInterval: Int64 = 300_000
    /// Which addresses heard through peer exchange may be dialled.
    public var filter = AddressFilter()
    public var limits = CandidateTable.Limits()
    /// The default port of a seed given without one.
    public var defaultPort = 8000

    public init() {}

    /// A seed as a URL: `host` → `http://host:8000`, `host:port` → `http://host:port`.
    public func seedURL(_ seed: String) -> String? {
        let s = seed.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        if s.contains("://") {
            guard let u = URLComponents(string: s), ["http", "https"].contains(u.scheme ?? ""), u.host?.isEmpty == false else { return nil }
            return s.hasSuffix("/") ? String(s.dropLast()) : s
        }
        if IPAddress(s) != nil, s.contains(":") { return "http://[\(s)]:\(defaultPort)" }
        guard let u = URLComponents(string: "http://" + s), let host = u.host, !host.isEmpty else { return nil }
        return "http://\(s.contains(":") ? s : "\(host):\(defaultPort)")"
    }
}

/// Discovery for one node: seeds, DNS, mDNS and peer exchange all feed one candidate table
/// (the core's state machine); this shell dials what it says to dial, and a candidate whose
/// descriptor proves its node id joins the federation's peer table with every source it came
/// from. The candidates survive restarts (in the store's node state).
public final class Discovery: Sendable {
    public let federation: Federation
    public let settings: DiscoverySettings
    let logger: Logger
    let table: Mutex<CandidateTable>
    let status = Mutex(Status())
    let bell = Doorbell()
    let port = Mutex<Int?>(nil)
    let portKnown = Doorbell()
    static let stateKey = "discovery/candidates"

    struct Status {
        var mdnsState = "off"
        var mdnsDetail = ""
        var mdnsWarned = false
        var published: String?
        var services: [String: Service] = [:]
        var domains: [String: DomainAnswer] = [:]
        var exchanges: [String: Exchange] = [:]
        var filtered = 0
        var rejectedRecords = 0
        var dirty = false
    }

    struct Service {
        var instance: String
        var host: String
        var address: String
        var port: Int
        var nodeID: String?
        var url: String
        var own: Bool
        var seen: Int64
    }

    struct DomainAnswer {
        var records: [(url: String, nodeID: String?, ttl: UInt32, via: String)] = []
        var error: String?
        var checked: Int64 = 0
        var next: Int64 = 0
    }

    struct Exchange {
        var at: Int64 = 0
        var received = 0
        var accepted = 0
        var rejected = 0
        var ignored = 0
        var error: String?
        var retryAt: Int64 = 0
    }

    public init(federation: Federation, settings: DiscoverySettings, logger: Logger) {
        self.federation = federation
        self.settings = settings
        self.logger = logger
        self.table = Mutex(CandidateTable(limits: settings.limits))
    }

    /// The listening port is known (mDNS publishes it).
    public func listening(port: Int) {
        self.port.withLock { $0 = port }
        portKnown.ring()
    }

    static func now() -> Int64 { Federation.nowMilliseconds() }

    // MARK: Feeding the table

    /// An address heard from `supplier`; dials happen on the next tick.
    public func hear(url: String, expected: String?, supplier: String) async {
        let actions = table.withLock { $0.heard(url: url, expected: expected, supplier: supplier, now: Self.now()) }
        status.withLock { $0.dirty = true }
        await perform(actions)
        bell.ring()
    }

    func lose(url: String, supplier: String) {
        table.withLock { $0.lost(url: url, supplier: supplier) }
        status.withLock { $0.dirty = true }
    }

    func perform(_ actions: [CandidateTable.Action]) async {
        for action in actions {
            guard case .addSource(let nodeID, let mechanism) = action else { continue }
            if await federation.peers.get(nodeID) == nil {
                // The peer was forgotten since: dial the address again.
                table.withLock { $0.reopen(nodeID: nodeID, now: Self.now()) }
            } else {
                _ = try? await federation.peers.update(nodeID) { p in if !p.sources.contains(mechanism) { p.sources.append(mechanism) } }
            }
        }
    }

    /// Dials one candidate: fetch its descriptor, and admit it if it proves the right node.
    func dial(url: String, expected: String?, mechanism: String) async {
        do {
            let peer = try await federation.admitDiscovered(url: url, expected: expected, mechanism: mechanism)
            _ = table.withLock { $0.dialed(url: url, nodeID: peer.nodeID, now: Self.now()) }
        } catch let refusal as DiscoveryRefusal {
            let now = Self.now()
            table.withLock { t in
                switch refusal {
                case .unreachable(let why): t.dialFailed(url: url, error: why, now: now)
                case .wrongNode(let id): _ = t.dialed(url: url, nodeID: id, now: now)
                default: t.retire(url: url, reason: refusal.description, now: now)
                }
            }
            logger.debug("discovery: \(url) not admitted: \(refusal)")
        } catch {
            table.withLock { $0.dialFailed(url: url, error: "\(error)", now: Self.now()) }
        }
        status.withLock { $0.dirty = true }
    }

    // MARK: Running

    /// Runs every enabled mechanism until cancelled.
    public func run() async {
        if let text = try? await federation.catalog.store.nodeState(Self.stateKey),
            let saved = try? JSONDecoder().decode([CandidateTable.Candidate].self, from: Data(text.utf8)) {
            table.withLock { $0.restore(saved) }
        }
        for seed in settings.seeds {
            guard let url = settings.seedURL(seed) else {
                logger.warning("discovery: seed '\(seed)' is not a host, host:port or http(s) URL; ignored")
                continue
            }
            await hear(url: url, expected: nil, supplier: "seed")
        }
        await withDiscardingTaskGroup { group in
            if settings.mdns { group.addTask { await self.mdnsLoop() } }
            for domain in settings.domains { group.addTask { await self.dnsLoop(domain) } }
            if settings.pex { group.addTask { await self.exchangeLoop() } }
            var lastSave = Int64(0)
            while !Task.isCancelled {
                let now = Self.now()
                let actions = table.withLock { $0.tick(now: now) }
                for case .dial(let url, let expected) in actions {
                    let mechanism = table.withLock { t in t.entries[url].map { CandidateTable.mechanism($0.chargedSupplier) } } ?? "seed"
                    group.addTask { await self.dial(url: url, expected: expected, mechanism: mechanism) }
                }
                if now - lastSave >= 2_000, status.withLock({ s in defer { s.dirty = false }; return s.dirty }) {
                    lastSave = now
                    await save()
                }
                await bell.wait(milliseconds: 1_000)
            }
            await save()
        }
    }

    func save() async {
        let entries = table.withLock { Array($0.entries.values) }.sorted { $0.url < $1.url }
        guard let data = try? JSONEncoder().encode(entries) else { return }
        try? await federation.catalog.store.setNodeState(Self.stateKey, String(decoding: data, as: UTF8.self))
    }

    // MARK: mDNS

    func mdnsLoop() async {
        while port.withLock({ $0 }) == nil && !Task.isCancelled { await portKnown.wait(milliseconds: 1_000) }
        guard let port = port.withLock({ $0 }) else { return }
        let own = federation.key.nodeID.compact
        let path = URLComponents(string: federation.baseURL)?.path ?? ""
        let name = "\(federation.settings.name) (\(federation.key.nodeID.short))"
        let runner = MDNSRunner(name: name, port: port, txt: ThingDataService.txt(nodeID: own, path: path), logger: logger)
        let (events, continuation) = AsyncStream.makeStream(of: MDNSEvent.self)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await runner.run(continuation)
                continuation.finish()
            }
            for await event in events {
                await handle(event, own: own)
            }
        }
    }

    func handle(_ event: MDNSEvent, own: String) async {
        switch event {
        case .found(let instance, let host, let address, let port, let txt):
            let attributes = ThingDataService.attributes(txt)
            let id = attributes["id"].flatMap { NodeID($0)?.compact }
            let url = ThingDataService.url(host: address, port: port, attributes: attributes)
            let isOwn = id == own
            let previous = status.withLock { s -> String? in
                let old = s.services[instance]?.url
                s.services[instance] = Service(instance: instance, host: host, address: address, port: port, nodeID: id, url: url, own: isOwn, seen: Self.now())
                return old
            }
            // Our own service is known by its id, not by Avahi's flags (those go by name).
            guard !isOwn else { return }
            if let previous, previous != url { lose(url: previous, supplier: "mdns") }
            await hear(url: url, expected: id, supplier: "mdns")
        case .removed(let instance):
            if let gone = status.withLock({ $0.services.removeValue(forKey: instance) }), !gone.own { lose(url: gone.url, supplier: "mdns") }
        case .daemon(let state, let detail):
            // One warning per outage (no daemon at start, or the daemon gone), one notice when back.
            let (warn, recovered) = status.withLock { s -> (Bool, Bool) in
                s.mdnsState = state
                s.mdnsDetail = detail
                if state != "running" {
                    s.published = nil
                    s.services.removeAll()
                    defer { s.mdnsWarned = true }
                    return (!s.mdnsWarned, false)
                }
                defer { s.mdnsWarned = false }
                return (false, s.mdnsWarned)
            }
            if warn { logger.warning("mDNS off: avahi-daemon is not running; retrying (the rest of the node is unaffected)", metadata: ["reason": .string(detail)]) }
            if recovered { logger.notice("mDNS on: connected to avahi-daemon") }
        case .published(let name):
            status.withLock { $0.published = name }
            logger.info("mDNS: published", metadata: ["name": .string(name)])
        }
    }

    // MARK: DNS

    func dnsLoop(_ domain: String) async {
        let supplier = "dns:\(domain)"
        while !Task.isCancelled {
            let answer = await Self.offThread { [settings] in Self.lookUp(domain, settings: settings) }
            let now = Self.now()
            var known: [String] = []
            let delay = answer.error == nil ? ThingDataService.refreshDelay(ttlSeconds: answer.records.map(\.ttl).min() ?? 0) : 60_000
            status.withLock { s in
                known = s.domains[domain]?.records.map(\.url) ?? []
                var a = answer
                a.checked = now
                a.next = now + delay
                s.domains[domain] = a
            }
            if let error = answer.error { logger.debug("discovery: DNS for \(domain): \(error)") }
            let urls = Set(answer.records.map(\.url))
            if answer.error == nil { for url in known where !urls.contains(url) { lose(url: url, supplier: supplier) } }
            for r in answer.records { await hear(url: r.url, expected: r.nodeID, supplier: supplier) }
            try? await Task.sleep(for: .milliseconds(delay))
        }
    }

    /// Looks up `_thingdata._tcp.<domain>`: its own SRV and TXT, and the instances its PTR
    /// records list (DNS-SD), each by SRV and TXT. Targets resolve through the same nameserver
    /// when one is configured (so a private zone works end to end).
    static func lookUp(_ domain: String, settings: DiscoverySettings) -> DomainAnswer {
        var answer = DomainAnswer()
        guard let dns = UnicastDNS(nameserver: settings.nameserver, port: settings.nameserverPort) else {
            answer.error = "cannot set up the resolver" + (settings.nameserver.map { " for nameserver \($0)" } ?? "")
            return answer
        }
        let service = "\(ThingDataService.type).\(domain)"
        var owners = [service]
        var errors: [String] = []
        do { owners += try dns.ptr(service).records } catch { if error.code != 1 && error.code != 4 { errors.append(error.description) } }
        for owner in owners {
            let srv: UnicastDNS.Answer<ServiceTarget>
            do { srv = try dns.srv(owner) } catch {
                if owner != service { errors.append(error.description) }
                continue
            }
            let txt = (try? dns.txt(owner)) ?? .init(records: [], ttl: srv.ttl)
            let attributes = ThingDataService.attributes(txt.records.flatMap { $0 })
            let id = attributes["id"].flatMap { NodeID($0)?.compact }
            for target in ServiceTarget.ordered(srv.records) {
                var host = target.host
                var ttl = min(srv.ttl, txt.records.isEmpty ? srv.ttl : txt.ttl)
                if settings.nameserver != nil, IPAddress(host) == nil {
                    guard let a = try? dns.a(host), let first = a.records.first else {
                        errors.append("\(host): no A record")
                        continue
                    }
                    host = first
                    ttl = min(ttl, a.ttl)
                }
                let via = owner == service ? "SRV" : "PTR \(owner)"
                answer.records.append((ThingDataService.url(host: host, port: target.port, attributes: attributes), id, ttl, via))
            }
        }
        if answer.records.isEmpty { answer.error = errors.first ?? "no _thingdata._tcp records for \(domain)" }
        return answer
    }

    /// Runs blocking work (libresolv) on a thread of its own, off Swift's cooperative pool.
    static func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in
            let thread = Thread { c.resume(returning: body()) }
            thread.start()
        }
    }

    // MARK: Peer exchange

    func exchangeLoop() async {
        let interval = max(60_000, settings.pexInterval)
        while !Task.isCancelled {
            let now = Self.now()
            let peers = await federation.peers.all().filter { $0.state == .active && $0.trust >= federation.settings.policy.pull }
            for peer in peers {
                let due = status.withLock { s in
                    guard let e = s.exchanges[peer.nodeID] else { return true }
                    return now >= max(e.at + interval, e.retryAt)
                }
                guard due, !Task.isCancelled else { continue }
                await exchange(with: peer)
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    /// Asks one peer for its peers and hears every acceptable address they claim.
    func exchange(with peer: PeerRecord) async {
        let fetch = await federation.fetchExchange(from: peer)
        let now = Self.now()
        var accepted = 0
        var filtered = 0
        for claim in fetch.claims {
            // A peer already pulled from only gains the source; one known but not pulled from
            // (pinned on first use when it called us) is dialled, so its descriptor can vouch.
            if let known = await federation.peers.get(claim.nodeID), known.trust >= federation.settings.policy.pull || known.trust == .blocked {
                _ = try? await federation.peers.update(claim.nodeID) { p in if !p.sources.contains("pex") { p.sources.append("pex") } }
                continue
            }
            for address in claim.addresses {
                if settings.filter.refusal(host: address, port: claim.port) != nil {
                    filtered += 1
                    continue
                }
                accepted += 1
                await hear(url: claim.url(address), expected: claim.nodeID, supplier: "pex:\(peer.nodeID)")
            }
        }
        status.withLock { s in
            s.exchanges[peer.nodeID] = Exchange(
                at: now, received: fetch.received, accepted: accepted, rejected: fetch.rejected, ignored: fetch.ignored, error: fetch.error,
                retryAt: fetch.retryAfter.map { now + $0 } ?? 0)
            s.filtered += filtered
            s.rejectedRecords += fetch.rejected
        }
        if fetch.rejected > 0 || fetch.ignored > 0 {
            logger.warning("discovery: peer exchange from \(peer.nodeID.prefix(6)) had \(fetch.rejected) bad and \(fetch.ignored) excess record(s)")
        }
    }
}
