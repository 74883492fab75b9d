public import Hummingbird
import HTTPTypes
import Foundation
import Synchronization
public import Logging
import ThingDataCore
public import ThingDataStore

/// The composition root: the router, its middleware and the server, for a given store.
/// `thingdata serve` and the tests both build the node through here.
public func buildApplication(configuration: NodeConfiguration, catalog: Catalog, logger: Logger) -> some ApplicationProtocol {
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
    ContentRoutes(catalog: catalog).register(on: router)
    NodeRoutes(configuration: configuration, catalog: catalog).register(on: router)
    _ = NodeMetrics.registry
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .seconds(75))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "ThingData/\(ThingDataVersion.current)"),
        logger: logger)
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

/// Runs the node until SIGINT or SIGTERM, then shuts down gracefully.
public func runNode(configuration: NodeConfiguration, catalog: Catalog, logger: Logger) async throws {
    try await buildApplication(configuration: configuration, catalog: catalog, logger: logger).runService()
}
