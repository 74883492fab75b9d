public import ThingDataCore
public import ThingDataStore
import Foundation

/// Everything this node knows about one peer, kept in the store's node state as
/// `peer/<node id>` (so it lives in the same database on SQLite and PostgreSQL).
public struct PeerRecord: Codable, Sendable, Equatable {
    public var nodeID: String
    public var name: String
    public var baseURL: String
    /// The pinned key (base64url), and the genesis key the id derives from.
    public var publicKey: String
    public var genesisKey: String
    public var trust: TrustLevel
    public var state: PeerState
    /// Every way it became known: manual, inbound, seed, dns, mdns, pex.
    public var sources: [String]
    public var firstSeen: String
    public var lastSeen: String?
    public var lastSync: String?
    public var lastError: String?
    /// Sync checkpoint: the peer's index id and the last sequence of it we hold.
    public var indexID: String?
    public var cursor: Int64 = 0
    /// The peer's newest sequence, as of the last exchange (for lag).
    public var remoteHead: Int64 = 0
    public var rttMilliseconds: Double?
    public var bytesIn: Int64 = 0
    public var bytesOut: Int64 = 0
    /// Revisions from it that were new here, and revisions from it that were refused.
    public var received: Int64 = 0
    public var rejected: Int64 = 0
    /// Keys pinned over time: `{at, key, how}`.
    public var keyHistory: [KeyEvent] = []
    /// The key its descriptor showed when it no longer matched the pin (state key-changed).
    public var offeredKey: String?
    /// Its newest signed claim of where it can be reached (canonical JSON), as peer exchange
    /// passes it on.
    public var claim: String?

    public struct KeyEvent: Codable, Sendable, Equatable {
        public var at: String
        public var key: String
        public var how: String
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", name, baseURL = "base_url", publicKey = "public_key", genesisKey = "genesis_key", trust, state, sources
        case firstSeen = "first_seen", lastSeen = "last_seen", lastSync = "last_sync", lastError = "last_error", indexID = "index_id", cursor
        case remoteHead = "remote_head", rttMilliseconds = "rtt_milliseconds", bytesIn = "bytes_in", bytesOut = "bytes_out", received, rejected
        case keyHistory = "key_history", offeredKey = "offered_key", claim
    }

    public var lag: Int64 { max(0, remoteHead - cursor) }
    public var id: NodeID? { NodeID(nodeID) }

    public var json: JSONValue {
        // Codable through Foundation, then into our JSON value for the admin API.
        let data = (try? PeerRecord.encoder.encode(self)) ?? Data("{}".utf8)
        return (try? JSONParser.parse(Array(data))) ?? .null
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    static let decoder = JSONDecoder()
}

/// One line of a peer's sync log.
public struct PeerEvent: Codable, Sendable, Equatable {
    public var at: String
    public var kind: String
    public var detail: String
}

/// The peer table: in memory, written through to the store on every change.
public actor PeerTable {
    let store: any ContentStore
    var peers: [String: PeerRecord] = [:]
    var logs: [String: [PeerEvent]] = [:]
    static let logLength = 50

    public init(store: any ContentStore) async throws {
        self.store = store
        for (_, value) in try await store.nodeStates(prefix: "peer/") {
            if let p = try? PeerRecord.decoder.decode(PeerRecord.self, from: Data(value.utf8)) { peers[p.nodeID] = p }
        }
        for (key, value) in try await store.nodeStates(prefix: "peerlog/") {
            logs[String(key.dropFirst("peerlog/".count))] = (try? PeerRecord.decoder.decode([PeerEvent].self, from: Data(value.utf8))) ?? []
        }
    }

    public func all() -> [PeerRecord] { peers.values.sorted { ($0.trust, $0.nodeID) > ($1.trust, $1.nodeID) } }
    public func get(_ id: String) -> PeerRecord? { peers[id] }

    /// A peer by compact id or any unambiguous prefix of it (as admins type short ids).
    public func find(_ text: String) -> PeerRecord? {
        let t = text.replacingOccurrences(of: "-", with: "").uppercased()
        if let p = peers[t] { return p }
        if let id = NodeID(text), let p = peers[id.compact] { return p }
        let matches = peers.values.filter { $0.nodeID.hasPrefix(t) }
        return matches.count == 1 ? matches[0] : nil
    }

    public func put(_ peer: PeerRecord) async throws {
        peers[peer.nodeID] = peer
        let data = try PeerRecord.encoder.encode(peer)
        try await store.setNodeState("peer/" + peer.nodeID, String(decoding: data, as: UTF8.self))
    }

    /// Records `peer` if it is not known yet; otherwise applies `merge` to the known record and
    /// saves it. One step on the actor, so a first-use pin, an admin's add and a discovery dial
    /// racing for the same node cannot undo one another.
    public func insertOrMerge(_ peer: PeerRecord, merge: (inout PeerRecord) -> Void = { _ in }) async throws -> (record: PeerRecord, new: Bool) {
        guard var p = peers[peer.nodeID] else {
            try await put(peer)
            return (peer, true)
        }
        let before = p
        merge(&p)
        if p != before { try await put(p) }
        return (p, false)
    }

    /// Changes one peer and saves it; returns the new record (nil if unknown).
    @discardableResult
    public func update(_ id: String, _ change: (inout PeerRecord) -> Void) async throws -> PeerRecord? {
        guard var p = peers[id] else { return nil }
        change(&p)
        try await put(p)
        return p
    }

    /// Notes that a peer was just heard from, in memory only: every signed request would
    /// otherwise cost a database write; the time is saved with the peer's next change.
    public func touch(_ id: String, at time: String) -> PeerRecord? {
        peers[id]?.lastSeen = time
        return peers[id]
    }

    public func remove(_ id: String) async throws {
        peers[id] = nil
        logs[id] = nil
        try await store.removeNodeState("peer/" + id)
        try await store.removeNodeState("peerlog/" + id)
    }

    public func log(_ id: String, _ kind: String, _ detail: String) async {
        var list = logs[id] ?? []
        list.append(PeerEvent(at: Timestamp.now().description, kind: kind, detail: detail))
        if list.count > Self.logLength { list.removeFirst(list.count - Self.logLength) }
        logs[id] = list
        if let data = try? PeerRecord.encoder.encode(list) {
            try? await store.setNodeState("peerlog/" + id, String(decoding: data, as: UTF8.self))
        }
    }

    public func events(_ id: String) -> [PeerEvent] { logs[id] ?? [] }
}
