import AsyncHTTPClient
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Testing
import ThingDataCore
import ThingDataFederation
import ThingDataServer
import ThingDataSigning
@testable import ThingDataStore
import PostgresKit

/// One node of an in-process test network: a SQLite store in a temporary directory, a real
/// HTTP listener on a loopback port, and the federation's sync loop. The server can stop and
/// start again on the same port while the store stays open (a cut link), or the whole node can
/// be killed mid-work and reopened from its files (a crash).
final class TestNode: @unchecked Sendable {
    let label: String
    let directory: URL
    /// Replaced between a stop and a start to model key rotation (or a forged key change).
    var key: NodeKey
    var settings: FederationSettings
    /// Rate limits and auth of its public listener.
    var security = SecuritySettings()
    /// HTTPS: certificate, key, and the CA its federation client trusts.
    var tls: (cert: String, key: String, ca: String)?
    private(set) var catalog: Catalog!
    private(set) var federation: Federation!
    private(set) var port = 0
    private var storeTask: Task<Void, any Error>?
    private var serverTask: Task<Void, any Error>?
    private var closeStore: AsyncStream<Void>.Continuation?

    static let logger: Logger = {
        var l = Logger(label: "test-network")
        l.logLevel = .critical  // cancelling a server mid-connection logs "already closed" at error
        return l
    }()

    /// Where the store lives: SQLite in the directory, or a fresh PostgreSQL database.
    private var location: StoreLocation?
    let onPostgres: Bool

    static var postgresURL: String? { ProcessInfo.processInfo.environment["THINGDATA_TEST_POSTGRES_URL"] }

    init(_ label: String, postgres: Bool = false, configure: (inout FederationSettings) -> Void = { _ in }) {
        self.label = label
        onPostgres = postgres
        directory = Self.root.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        key = .generate()
        var s = FederationSettings()
        s.name = label
        s.pollInterval = 2_000
        s.backoffBase = 100
        s.backoffCap = 1_000
        configure(&s)
        settings = s
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Every node's directory is under one directory for the test process, removed when the
    /// process exits: tests stop their nodes in a task after they end, and the process may
    /// exit before the last of them is released (and its `deinit` removes its directory).
    static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-fed-\(getpid())")
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestNode.root) }
        return root
    }()

    var url: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }
    var nodeID: String { key.nodeID.compact }

    func start() async throws {
        if catalog == nil { try await openStore() }
        try await startServer()
    }

    func openStore() async throws {
        let (opened, openedContinuation) = AsyncStream<Result<(Catalog, Federation), any Error>>.makeStream()
        let (close, closeContinuation) = AsyncStream<Void>.makeStream()
        closeStore = closeContinuation
        if location == nil {
            location = onPostgres ? .postgres(url: try await Self.freshPostgresDatabase()) : .sqlite(path: directory.appendingPathComponent("node.sqlite").path)
        }
        let (key, settings, location, tls) = (self.key, self.settings, self.location!, self.tls)
        storeTask = Task {
            try await withContentStore(location, logger: Self.logger, maxConnections: 4) { store in
                do {
                    let catalog = try await Catalog.open(store: store, key: key)
                    var config = NodeConfiguration()
                    config.tlsCA = tls?.ca
                    let federation = try await Federation.open(catalog: catalog, key: key, settings: settings, http: try config.federationHTTPClient(), logger: Self.logger)
                    openedContinuation.yield(.success((catalog, federation)))
                } catch {
                    openedContinuation.yield(.failure(error))
                    throw error
                }
                for await _ in close { break }
            }
        }
        for await result in opened {
            (catalog, federation) = try result.get()
            break
        }
    }

    func startServer() async throws {
        var config = NodeConfiguration()
        config.host = "127.0.0.1"
        config.port = port
        config.security = security
        config.tlsCertificate = tls?.cert
        config.tlsKey = tls?.key
        let (ready, readyContinuation) = AsyncStream<Int>.makeStream()
        let access = try await AccessControl(store: catalog.store)
        let app = buildApplication(configuration: config, catalog: catalog, federation: federation, access: access, server: try config.httpServer(), logger: Self.logger) {
            readyContinuation.yield($0)
        }
        let federation = self.federation!
        serverTask = Task {
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: app), .init(service: FederationService(federation: federation))], logger: Self.logger))
            try await group.run()
        }
        for await p in ready {
            port = p
            federation.listening(host: "127.0.0.1", port: p, scheme: tls == nil ? "http" : "https")
            break
        }
    }

    /// A new, empty database on the test server (scripts/test starts one).
    static func freshPostgresDatabase() async throws -> String {
        guard let base = postgresURL else { throw StoreError.unavailable("THINGDATA_TEST_POSTGRES_URL is not set") }
        let name = "fed_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let client = PostgresClient(configuration: try PostgresSessions.configuration(url: base, maxConnections: 1), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query("CREATE DATABASE \(unescaped: name)")
            group.cancelAll()
        }
        guard let q = base.firstIndex(of: "?"), let slash = base[..<q].lastIndex(of: "/") else { return base }
        return String(base[...slash]) + name + String(base[q...])
    }

    /// Cuts the node off: no listener, no sync loop; local writes still work.
    func stopServer() async {
        serverTask?.cancel()
        _ = try? await serverTask?.value
        serverTask = nil
    }

    func stop() async {
        await stopServer()
        closeStore?.finish()
        _ = try? await storeTask?.value
        catalog = nil
        federation = nil
    }

    /// The listener and the sync loop stop in the middle of a sync (a pull in flight finishes
    /// its batch and checkpoint, as on shutdown), and the store is closed; the files stay.
    /// A real `kill -9` in the middle of a batch is in `scripts/federation-smoke`.
    func kill() async {
        serverTask?.cancel()
        closeStore?.finish()
        _ = try? await storeTask?.value
        _ = try? await serverTask?.value
        serverTask = nil
        catalog = nil
        federation = nil
    }

    // MARK: Content

    @discardableResult
    func createThing(_ name: String, manufacturer: String = "Acme") async throws -> String {
        let body: JSONValue = ["type": "device", "name": ["default": .string(name), "translations": [:]], "manufacturer": ["name": .string(manufacturer)]]
        return try await catalog.apply(Operation(.create, .thing, body: body))!.id
    }

    func patchThing(_ id: String, _ patch: JSONValue) async throws {
        _ = try await catalog.apply(Operation(.patch, .thing, id: id, body: patch))
    }

    func thing(_ id: String) async throws -> JSONValue? { try await catalog.store.entity(.thing, id: id)?.rendered() }
    func digest() async throws -> JSONValue { try await catalog.digest() }

    /// This node pulls from `other` (an admin's `peers add`).
    @discardableResult
    func add(_ other: TestNode) async throws -> PeerRecord { try await federation.addPeer(url: other.url) }
    func peer(_ other: TestNode) async -> PeerRecord? { await federation.peers.get(other.nodeID) }
}

/// Both nodes add each other (pull both ways, announce both ways).
func link(_ a: TestNode, _ b: TestNode) async throws {
    try await a.add(b)
    try await b.add(a)
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; false on timeout.
func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Whether every node shows the same revisions, views and conflicts.
func converged(_ nodes: [TestNode]) async throws -> Bool {
    var digests: [JSONValue] = []
    for n in nodes { digests.append(try await n.digest()) }
    return Set(digests.map { JSONSerializer.string($0) }).count == 1
}

/// A self-signed certificate for 127.0.0.1 (its own CA), made with the openssl command; the
/// key is written with mode 0600.
func makeTestCertificate(in directory: URL) throws -> (cert: String, key: String) {
    let cert = directory.appendingPathComponent("cert.pem").path
    let key = directory.appendingPathComponent("key.pem").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                   "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"]
    p.standardError = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw StoreError.unavailable("openssl could not make a test certificate") }
    chmod(key, 0o600)
    return (cert, key)
}

/// A loopback TCP port that takes connections (the kernel completes them into the backlog)
/// and never answers: a peer that hangs.
final class SilentListener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StoreError.unavailable("cannot open a socket") }
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            _ = Glibc.close(fd)
            throw StoreError.unavailable("cannot listen on loopback")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}
