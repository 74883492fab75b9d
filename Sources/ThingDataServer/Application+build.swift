public import Hummingbird
import HTTPTypes
import Foundation
import Synchronization
public import Logging
import ThingDataCore
public import ThingDataStore
public import ThingDataFederation
public import ThingDataDiscovery
public import ThingDataSigning
public import ServiceLifecycle
import UnixSignals
import NIOCore
import NIOSSL
import HummingbirdTLS
public import HummingbirdCore
public import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#endif

/// The composition root: the router, its middleware and the server, for a given store.
/// `thingdata serve` and the tests both build the node through here.
public func buildApplication(configuration: NodeConfiguration, catalog: Catalog, federation: Federation? = nil, access: AccessControl? = nil,
                             server: HTTPServerBuilder? = nil, logger: Logger,
                             onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = Router(context: NodeRequestContext.self)
    router.add(middleware: InFlightMiddleware())
    router.add(middleware: MetricsMiddleware())
    let origins = configuration.corsOrigins == "*" ? nil : Set(configuration.corsOrigins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    if let origins { router.add(middleware: OriginFilterMiddleware(allowed: origins)) }
    router.add(middleware: CORSMiddleware(
        allowOrigin: origins == nil ? .all : .originBased,
        allowHeaders: [.contentType, .authorization, .accept, .ifMatch, HTTPField.Name("X-Confirm-Delete")!],
        allowMethods: [.get, .post, .put, .patch, .delete, .options, .head],
        exposedHeaders: ["X-Next-Cursor", "Link", "ETag"]))
    router.add(middleware: ErrorMiddleware())
    if let access { router.add(middleware: AccessMiddleware(access: access, settings: configuration.security)) }
    ContentRoutes(catalog: catalog).register(on: router)
    NodeRoutes(configuration: configuration, catalog: catalog).register(on: router)
    if let federation { FederationRoutes(federation: federation, scheme: configuration.tlsCertificate == nil ? "http" : "https").register(on: router) }
    _ = NodeMetrics.registry
    return Application(
        router: router,
        server: server ?? .http1(configuration: configuration.http1),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "ThingData/\(ThingDataVersion.current)",
                             availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections, logger: logger)),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}

extension NodeConfiguration {
    /// HTTP/1.1 with the connection hardening: header size limits, a deadline for each
    /// request's head and body, idle connections closed after 75 s.
    var http1: HTTP1Channel.Configuration {
        let (head, body) = (TimeAmount.seconds(Int64(headerTimeout)), TimeAmount.seconds(Int64(requestTimeout)))
        return .init(
            additionalChannelHandlers: [RequestDeadlineHandler(headTimeout: head, bodyTimeout: body)], idleTimeout: .seconds(75),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes, maxHeaderFieldCount: 100))
    }

    /// The public listener: HTTPS when a certificate and key are configured. Refuses a key file
    /// others can read.
    public func httpServer() throws -> HTTPServerBuilder {
        guard let cert = tlsCertificate, let key = tlsKey else { return .http1(configuration: http1) }
        var st = stat()
        guard stat(key, &st) == 0 else { throw Invalid("tls_key \(key) cannot be read") }
        if st.st_mode & 0o077 != 0 {
            throw Invalid("tls_key \(key) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600 \(key)")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            return try .tls(.http1(configuration: http1), tlsConfiguration: tls)
        } catch {
            throw Invalid("cannot use tls_cert \(cert) and tls_key \(key): \(error)")
        }
    }

    /// The HTTP client federation uses: the system's trust roots, plus `tls_ca` if set. One
    /// client per CA file for the life of the process (like `HTTPClient.shared`).
    public func federationHTTPClient() throws -> HTTPClient {
        guard let ca = tlsCA else { return .shared }
        return try FederationHTTPClients.client(trusting: ca)
    }
}

enum FederationHTTPClients {
    static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(trusting ca: String) throws -> HTTPClient {
        try clients.withLock { all in
            if let c = all[ca] { return c }
            var tls = TLSConfiguration.makeClientConfiguration()
            do { tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(ca))] } catch {
                throw NodeConfiguration.Invalid("cannot read tls_ca \(ca): \(error)")
            }
            var config = HTTPClient.Configuration(tlsConfiguration: tls)
            config.timeout = .init(connect: .seconds(10), read: .seconds(60))
            let c = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            all[ca] = c
            return c
        }
    }
}

/// The admin API's application: its own listener (loopback by default), token required.
public func buildAdminApplication(configuration: NodeConfiguration, federation: Federation, discovery: Discovery? = nil, access: AccessControl, token: String,
                                  logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = Router(context: NodeRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: AdminTokenMiddleware(token: Array(token.utf8), access: access))
    AdminRoutes(federation: federation, discovery: discovery, access: access, configuration: configuration, logger: logger).register(on: router)
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .seconds(75))),
        configuration: .init(address: .hostname(configuration.adminHost, port: configuration.effectiveAdminPort), serverName: "ThingData-Admin/\(ThingDataVersion.current)"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.effectiveAdminPort) },
        logger: logger)
}

/// Configuration is read at start: a start whose effective settings differ from the last
/// start's is recorded in the audit log with the settings that changed.
func auditConfiguration(_ configuration: NodeConfiguration, store: any ContentStore, logger: Logger) async throws {
    let now = configuration.auditedSettings
    let text = String(decoding: CanonicalJSON.encode(.object(JSONObject(now.map { ($0.key, JSONValue.string($0.value)) }))), as: UTF8.self)
    let saved = try await store.nodeState("config")
    guard saved != text else { return }
    var before: [String: String] = [:]
    if let saved, case .object(let o)? = try? JSONParser.parse(Array(saved.utf8)) { for (k, v) in o { before[k] = v.stringValue } }
    let changed = now.keys.filter { before[$0] != now[$0] }.sorted()
    let detail = saved == nil ? "first start with settings" : changed.map { "\($0): \(before[$0] ?? "-") → \(now[$0] ?? "-")" }.joined(separator: "; ")
    try await store.appendAudit([AuditEntry(at: Timestamp.now(), actor: "node", address: nil, action: saved == nil ? "config.initial" : "config.change", detail: detail)])
    try await store.setNodeState("config", text)
    if saved != nil { logger.notice("Configuration changed since the last start", metadata: ["changed": .string(changed.joined(separator: ", "))]) }
}

/// Runs the federation's sync loop as a service of the node.
public struct FederationService: Service {
    let federation: Federation
    public init(federation: Federation) { self.federation = federation }
    public func run() async throws {
        await cancelWhenGracefulShutdown { await federation.run() }
    }
}

/// Runs discovery (seeds, DNS, mDNS, peer exchange) as a service of the node.
public struct DiscoveryService: Service {
    let discovery: Discovery
    public init(discovery: Discovery) { self.discovery = discovery }
    public func run() async throws {
        await cancelWhenGracefulShutdown { await discovery.run() }
    }
}

/// With a configured origin list, answers to an `Origin` outside it lose their CORS headers,
/// so browsers refuse them; CORS itself (which reflects the origin) runs inside this.
struct OriginFilterMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: Set<String>
    static var corsHeaders: [HTTPField.Name] {
        [.accessControlAllowOrigin, .accessControlAllowCredentials, .accessControlAllowHeaders, .accessControlAllowMethods, .accessControlExposeHeaders, .accessControlMaxAge]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if let origin = request.headers[.origin], !allowed.contains(origin) {
            for name in Self.corsHeaders { response.headers[name] = nil }
        }
        return response
    }
}

/// Counts requests being served, for `/health`.
struct InFlightMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        NodeMetrics.inFlight.add(1, ordering: .relaxed)
        defer { NodeMetrics.inFlight.subtract(1, ordering: .relaxed) }
        return try await next(request, context)
    }
}

/// Runs the node until SIGINT or SIGTERM, then shuts down gracefully: the public listener,
/// the admin listener, the federation's sync loop and discovery. `admin.url` in the data directory tells
/// `thingdata-admin` where the admin API listens.
public func runNode(configuration: NodeConfiguration, catalog: Catalog, key: NodeKey, adminToken: String, logger: Logger) async throws {
    let server = try configuration.httpServer()
    try await auditConfiguration(configuration, store: catalog.store, logger: logger)
    let federation = try await Federation.open(catalog: catalog, key: key, settings: configuration.federationSettings, http: try configuration.federationHTTPClient(), logger: logger)
    let access = try await AccessControl(store: catalog.store)
    let discovery = Discovery(federation: federation, settings: configuration.discoverySettings, logger: logger)
    let app = buildApplication(configuration: configuration, catalog: catalog, federation: federation, access: access, server: server, logger: logger) { port in
        federation.listening(host: configuration.host, port: port, scheme: configuration.tlsCertificate == nil ? "http" : "https")
        discovery.listening(port: port)
        logger.notice("Federation", metadata: ["node_id": "\(key.nodeID.longForm)", "base_url": "\(federation.baseURL)"])
    }
    let adminURLFile = (configuration.dataDirectory as NSString).appendingPathComponent("admin.url")
    let admin = buildAdminApplication(configuration: configuration, federation: federation, discovery: discovery, access: access, token: adminToken, logger: logger) { port in
        let host = configuration.adminHost == "0.0.0.0" ? "127.0.0.1" : configuration.adminHost
        try? "http://\(host):\(port)\n".write(toFile: adminURLFile, atomically: true, encoding: .utf8)
        logger.notice("Admin API listening", metadata: ["url": "http://\(host):\(port)"])
    }
    let group = ServiceGroup(
        configuration: .init(services: [.init(service: app), .init(service: admin), .init(service: FederationService(federation: federation)),
                                        .init(service: DiscoveryService(discovery: discovery))],
                             gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}
