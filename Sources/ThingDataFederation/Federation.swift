public import ThingDataCore
public import ThingDataSigning
public import ThingDataStore
public import Logging
public import AsyncHTTPClient
import NIOHTTP1
import Foundation
import Synchronization

/// Federation settings (from the node's configuration).
public struct FederationSettings: Sendable, Equatable {
    /// The URL other nodes reach this one at; nil: `http://<listening address>`.
    public var baseURL: String?
    public var name = "thingdata"
    public var softwareVersion = "0"
    public var description = ""
    public var languages: [String] = ["en"]
    public var policy = TrustPolicy()
    /// Poll interval when nothing is announced, in milliseconds.
    public var pollInterval: Int64 = 30_000
    /// Revisions per pulled batch (one transaction each).
    public var batchSize = 2000
    /// Pages of a pull under way at once, the one being stored included (fetched and checked
    /// ahead of it).
    public var lookahead = 3
    /// How old (or how far ahead) a signed request may be, in seconds.
    public var window: Int64 = 300
    /// Pulls running at once.
    public var concurrentPulls = 4
    /// Backoff after a failed pull: the first wait and the cap, in milliseconds.
    public var backoffBase: Int64 = 1_000
    public var backoffCap: Int64 = 300_000
    /// Peer exchange: answer limits and freshness.
    public var exchange = PeerExchangeRules()
    /// The addresses this node claims in peer exchange; empty: the host of its base URL.
    public var advertise: [String] = []
    /// The trust a node found by discovery gets once its descriptor proved its id.
    public var discoveryTrust: TrustLevel = .verified
    /// The most peers discovery may add (admins may add more by hand).
    public var maxPeers = 100

    func schedule(now: Int64) -> SyncSchedule {
        SyncSchedule(interval: pollInterval, backoffBase: backoffBase, backoffCap: backoffCap, now: now)
    }

    public init() {}
}

/// The federation of one node: its descriptor, the peer table, inbound request checks, the
/// changes feed, and the sync engine that pulls from peers and announces to them.
public final class Federation: Sendable {
    public let catalog: Catalog
    public let key: NodeKey
    public let settings: FederationSettings
    public let peers: PeerTable
    public let client: FederationClient
    public let indexID: String
    public let logger: Logger
    let base: SharedText
    let replay = Mutex(ReplayCache())
    let schedules = Mutex<[String: SyncSchedule]>([:])
    let pulling = Mutex<Set<String>>([])
    let scheduler = Doorbell()
    let announcer = Doorbell()
    let exchangeLimiter: Mutex<ExchangeLimiter>
    let ownClaimCache = Mutex<PeerClaim?>(nil)

    public static let capabilities = ["changes", "changes-ndjson", "revisions", "push", "announce", "keys", "webfinger"]

    init(catalog: Catalog, key: NodeKey, settings: FederationSettings, peers: PeerTable, indexID: String, http: HTTPClient, logger: Logger) {
        self.catalog = catalog
        self.key = key
        self.settings = settings
        self.peers = peers
        self.indexID = indexID
        self.logger = logger
        self.exchangeLimiter = Mutex(ExchangeLimiter(rules: settings.exchange))
        let base = SharedText(settings.baseURL ?? "http://127.0.0.1")
        self.base = base
        self.client = FederationClient(http: http, key: key, origin: { base.value })
        catalog.commits.observe { [announcer] in announcer.ring() }
    }

    /// Opens the federation of a catalog: its index id (made once per store) and the peers.
    public static func open(catalog: Catalog, key: NodeKey, settings: FederationSettings, http: HTTPClient = .shared, logger: Logger) async throws -> Federation {
        let index: String
        if let saved = try await catalog.store.nodeState("index_id") {
            index = saved
        } else {
            index = Self.newIndexID()
            try await catalog.store.setNodeState("index_id", index)
        }
        return Federation(catalog: catalog, key: key, settings: settings, peers: try await PeerTable(store: catalog.store), indexID: index, http: http, logger: logger)
    }

    /// A fresh index id: after a restore the sequence numbers mean something else, so peers
    /// holding a cursor into the old index must start over.
    public static func newIndexID() -> String {
        var rng = SystemRandomNumberGenerator()
        return Base32.encode((0..<10).map { _ in UInt8.random(in: 0...255, using: &rng) }).lowercased()
    }

    public var baseURL: String { base.value }
    /// Sets the base URL once the listening port is known (when none is configured).
    public func listening(host: String, port: Int, scheme: String = "http") {
        guard settings.baseURL == nil else { return }
        let h = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        base.value = "\(scheme)://\(h.contains(":") ? "[\(h)]" : h):\(port)"
    }

    public func descriptor() -> NodeDescriptor {
        NodeDescriptor(key: key, name: settings.name, description: settings.description, softwareVersion: settings.softwareVersion,
            capabilities: Self.capabilities, languages: settings.languages, baseURL: baseURL, actorEpoch: catalog.signer.actor,
            indexID: indexID, now: Timestamp.now())
    }

    public static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: The author block list

    public func blockedAuthors() async throws -> [String] {
        guard let text = try await catalog.store.nodeState("blocked_authors"), case .array(let list)? = try? JSONParser.parse(Array(text.utf8)) else { return [] }
        return list.compactMap(\.stringValue)
    }

    public func setAuthor(_ id: NodeID, blocked: Bool) async throws {
        var list = Set(try await blockedAuthors())
        if blocked { list.insert(id.compact) } else { list.remove(id.compact) }
        try await catalog.store.setNodeState("blocked_authors", String(decoding: CanonicalJSON.encode(.array(list.sorted().map { .string($0) })), as: UTF8.self))
    }
}

/// Signatures of POSTs seen within the freshness window: a second use is a replay.
struct ReplayCache {
    var seen: [[UInt8]: Int64] = [:]
    var lastPurge: Int64 = 0
    static let limit = 200_000

    /// Records a signature; false if it was already seen.
    mutating func admit(_ signature: [UInt8], now: Int64, window: Int64) -> Bool {
        if now - lastPurge > 10 || seen.count > Self.limit {
            seen = seen.filter { $0.value > now - window }
            lastPurge = now
        }
        if seen[signature] != nil { return false }
        seen[signature] = now
        return true
    }
}

/// A string several tasks read and one sets.
final class SharedText: Sendable {
    let storage: Mutex<String>
    init(_ value: String) { storage = Mutex(value) }
    var value: String {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
