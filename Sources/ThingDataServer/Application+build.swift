public import Hummingbird
import HTTPTypes
import Synchronization
public import Logging
import ThingDataCore
public import ThingDataStore

/// The composition root: the router, its middleware and the server, for a given store.
/// `thingdata serve` and the tests both build the node through here.
public func buildApplication(configuration: NodeConfiguration, store: any ContentStore, logger: Logger) -> some ApplicationProtocol {
    let catalog = Catalog(store: store)
    let router = Router(context: NodeRequestContext.self)
    router.add(middleware: InFlightMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: CORSMiddleware(
        allowOrigin: configuration.corsOrigins == "*" ? .all : .originBased,
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

/// Counts requests being served, for `/health`.
struct InFlightMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        NodeMetrics.inFlight.add(1, ordering: .relaxed)
        defer { NodeMetrics.inFlight.subtract(1, ordering: .relaxed) }
        return try await next(request, context)
    }
}

/// Runs the node until SIGINT or SIGTERM, then shuts down gracefully.
public func runNode(configuration: NodeConfiguration, store: any ContentStore, logger: Logger) async throws {
    try await buildApplication(configuration: configuration, store: store, logger: logger).runService()
}
