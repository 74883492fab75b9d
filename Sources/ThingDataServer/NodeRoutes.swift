import Foundation
public import Hummingbird
import HTTPTypes
import Synchronization
import Prometheus
import ThingDataCore
import ThingDataStore

/// The node's own endpoints: the welcome page, health, metrics, the OpenAPI document and docs.
struct NodeRoutes {
    let configuration: NodeConfiguration
    let catalog: Catalog
    let stats = SystemStats()

    func register(on router: Router<NodeRequestContext>) {
        router.get("/") { _, _ in html(welcomePage()) }
        router.get("favicon.ico") { _, _ in
            var buffer = ByteBuffer()
            buffer.writeBytes(Favicon.bytes)
            return Response(status: .ok, headers: [.contentType: "image/x-icon", .cacheControl: "public, max-age=86400"], body: .init(byteBuffer: buffer))
        }
        router.get("health") { _, _ in JSONResponse.make(try await health()) }
        router.get("health/live") { _, _ in JSONResponse.make(["status": "alive"]) }
        router.get("health/ready") { _, _ in
            do {
                try await catalog.store.ping()
                return JSONResponse.make(["status": "ready", "database": "healthy"])
            } catch {
                return JSONResponse.make(["status": "not ready", "database": "unhealthy", "error": "The database does not answer"], status: .serviceUnavailable)
            }
        }
        router.get("metrics") { _, _ in
            for kind in EntityKind.allCases {
                if let n = try? await catalog.store.count(kind) {
                    NodeMetrics.registry.makeGauge(name: "thingdata_entities", labels: [("kind", kind.rawValue)]).set(Double(n))
                }
            }
            NodeMetrics.registry.makeGauge(name: "thingdata_resident_memory_bytes").set(Double(SystemStats.residentBytes()))
            var bytes: [UInt8] = []
            NodeMetrics.registry.emit(into: &bytes)
            var buffer = ByteBuffer()
            buffer.writeBytes(bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: buffer))
        }
        router.get("openapi.json") { _, _ in JSONResponse.make(OpenAPIDocument.document) }
        router.get("docs") { _, _ in html(DocsPage.html) }
    }

    func health() async throws -> JSONValue {
        var database = "healthy"
        do { try await catalog.store.ping() } catch { database = "unhealthy" }
        let storage = configuration.databaseURL == nil ? stats.storagePercent(path: configuration.dataDirectory) : nil
        return [
            "status": .string(database == "healthy" ? "healthy" : "unhealthy"),
            "timestamp": .string(Timestamp.now().description),
            "version": .string(ThingDataVersion.current),
            "components": ["database": .string(database), "api": "healthy"],
            "metrics": [
                "memory_usage": .double(stats.memoryPercent()),
                "cpu_usage": .double(stats.cpuPercent()),
                "active_connections": .int(Int64(NodeMetrics.inFlight.load(ordering: .relaxed))),
                "storage_usage": storage.map(JSONValue.double) ?? .null,
                "federation_peers": .int(Int64((try? await catalog.store.nodeStates(prefix: "peer/").count) ?? 0)),
            ],
        ]
    }

    func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func welcomePage() -> String {
        let links: [(String, String)] = [
            ("docs", "Interactive API documentation"), ("openapi.json", "OpenAPI 3.1 document"),
            ("health", "System health check"), ("metrics", "Prometheus metrics"),
            ("api/v1/things", "Things"), ("api/v1/stories", "Repair stories"), ("api/v1/guides", "Guides"),
            ("api/v1/relationships", "Relationships"), ("api/v1/search?q=", "Search"),
        ]
        let items = links.map { "<li><code><a href=\"\($0.0)\">/\($0.0)</a></code> - \($0.1)</li>" }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>ThingData Server</title>
            <style>body{font-family:system-ui,sans-serif;max-width:800px;margin:40px auto;padding:0 20px;line-height:1.6;color:#333}code{background:#f4f4f4;padding:2px 5px;border-radius:3px}.footer{margin-top:40px;padding-top:20px;border-top:1px solid #eee;font-size:.9em;color:#666}</style>
            </head><body>
            <h1>ThingData Server</h1>
            <p>Node <strong>\(Self.escape(configuration.name))</strong>: an open node for sharing repair knowledge across communities.</p>
            <h2>Available Endpoints</h2>
            <ul>
            \(items)
            </ul>
            <div class="footer"><p>ThingData is open-source software for repair cafés, fixit clinics and makerspaces.</p><p>Version \(ThingDataVersion.current)</p></div>
            </body></html>
            """
    }
}

public enum ThingDataVersion {
    public static let current = "0.2.0"
}

/// A 16×16 ICO with one colour, built in code so the binary needs no resource files.
enum Favicon {
    static let bytes: [UInt8] = {
        let size = 16
        var pixels: [UInt8] = []
        for y in 0..<size {
            for x in 0..<size {
                let inside = (x - 8) * (x - 8) + (y - 8) * (y - 8) < 49
                pixels += inside ? [0x3c, 0x9e, 0x2e, 0xff] : [0, 0, 0, 0]  // BGRA: green disc
            }
        }
        let mask = [UInt8](repeating: 0, count: size * 4)
        let bmpSize = 40 + pixels.count + mask.count
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func le32(_ v: Int) -> [UInt8] { le16(v & 0xffff) + le16(v >> 16) }
        var out: [UInt8] = le16(0) + le16(1) + le16(1)
        out += [UInt8(size), UInt8(size), 0, 0] + le16(1) + le16(32) + le32(bmpSize) + le32(22)
        out += le32(40) + le32(size) + le32(size * 2) + le16(1) + le16(32) + le32(0) + le32(pixels.count + mask.count) + le32(0) + le32(0) + le32(0) + le32(0)
        out += pixels + mask
        return out
    }()
}
