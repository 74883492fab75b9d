import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import Testing
import ThingDataCore
@testable import ThingDataServer
import ThingDataStore
import ThingDataSigning

/// HTTP tests at two depths, as Hummingbird's own: through the router (no sockets) on the
/// in-memory store, and through a live server on SQLite.
@Suite struct APITests {
    static let logger: Logger = {
        var l = Logger(label: "api-test")
        l.logLevel = .critical
        return l
    }()

    func withApp(_ setup: TestingSetup = .router, sqlite: Bool = false, corsOrigins: String = "*", _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var settings = NodeConfiguration()
        settings.host = "127.0.0.1"
        settings.port = 0
        settings.name = "Test Café <&>"
        settings.corsOrigins = corsOrigins
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-api-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        settings.dataDirectory = dir
        let config = settings
        let location: StoreLocation = sqlite ? .sqlite(path: dir + "/t.sqlite") : .memory
        try await withContentStore(location, logger: Self.logger) { store in
            let app = buildApplication(configuration: config, catalog: try await Catalog.open(store: store, key: .generate()), logger: Self.logger)
            try await app.test(setup) { client in try await body(client) }
        }
    }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    /// The response body as JSON; `.null` when it is not JSON (so a test fails on a comparison).
    static func json(_ response: TestResponse) -> JSONValue {
        (try? JSONParser.parse(Array(response.body.readableBytesView))) ?? .null
    }

    static func body(_ v: JSONValue) -> ByteBuffer { ByteBuffer(bytes: JSONSerializer.serialize(v)) }

    static let kettle: JSONValue = ["type": "device", "name": ["default": "Electric Kettle", "translations": ["ja": "電気ケトル"]], "manufacturer": ["name": "BoilRight"]]

    @Test func crudWithTheOriginalsWireDetails() async throws {
        try await withApp { client in
            let created = try await client.execute(uri: "/api/v1/things", method: .post, headers: Self.jsonHeaders, body: Self.body(Self.kettle)) { r in
                #expect(r.status == .ok)  // 200, not 201, as the original
                #expect(r.headers[.contentType] == "application/json")
                return Self.json(r)
            }
            let id = try #require(created["id"]?.stringValue)
            #expect(created["manufacturer"]?["website"] == .null)
            #expect(created["properties"]?["materials"] == [])
            try await client.execute(uri: "/api/v1/things/\(id)", method: .get) { r in
                #expect(r.status == .ok)
                #expect(Self.json(r)["relationships"] == [])
            }
            var replacement = Self.kettle
            replacement["type"] = "tool"
            replacement["id"] = "client-sent-ids-are-ignored"
            try await client.execute(uri: "/api/v1/things/\(id)", method: .put, headers: Self.jsonHeaders, body: Self.body(replacement)) { r in
                let j = Self.json(r)
                #expect(r.status == .ok && j["type"] == "tool" && j["id"] == .string(id) && j["updated_at"] != .null)
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .patch, headers: [.contentType: "application/merge-patch+json"], body: Self.body(["name": ["translations": ["de": "Wasserkocher"]]])) { r in
                let j = Self.json(r)
                #expect(j["name"]?["translations"] == ["ja": "電気ケトル", "de": "Wasserkocher"])
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .delete) { r in
                #expect(r.status == .badRequest)
                #expect(Self.json(r)["error"]?.stringValue?.contains("X-Confirm-Delete") == true)
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .delete, headers: [HTTPField.Name("X-Confirm-Delete")!: "true"]) { r in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .get) { r in
                #expect(r.status == .notFound)
                #expect(Self.json(r) == ["error": "Thing not found", "detail": "Thing not found"])
            }
            try await client.execute(uri: "/api/v1/things/\(id)/stories", method: .get) { r in
                #expect(Self.json(r) == [])
            }
        }
    }

    /// The media type is read case-blind, without parameters and the blanks around it; a
    /// type that only starts like JSON's is not JSON.
    @Test func contentTypesAreReadAsRFC9110Says() async throws {
        #expect(Request.mediaType("application/json") == "application/json")
        #expect(Request.mediaType(" Application/JSON ; charset=utf-8") == "application/json")
        #expect(Request.mediaType("\tapplication/merge-patch+json\t;") == "application/merge-patch+json")
        #expect(Request.mediaType("application/jsonx") == "application/jsonx")
        #expect(Request.mediaType("") == "")
        try await withApp { client in
            for (type, status) in [("APPLICATION/json;charset=UTF-8", HTTPResponse.Status.ok), ("\tapplication/json ", .ok), ("application/json-seq", .badRequest)] {
                try await client.execute(uri: "/api/v1/things", method: .post, headers: [.contentType: type], body: Self.body(Self.kettle)) { r in
                    #expect(r.status == status, "\(type)")
                }
            }
            // Two Content-Type fields are read joined, as one list, which is not JSON.
            let twice = HTTPFields([HTTPField(name: .contentType, value: "application/json"), HTTPField(name: .contentType, value: "text/plain")])
            try await client.execute(uri: "/api/v1/things", method: .post, headers: twice, body: Self.body(Self.kettle)) { r in
                #expect(r.status == .badRequest)
            }
        }
    }

    @Test func badInputGets4xxWithReasonsAndStoresNothing() async throws {
        try await withApp { client in
            let cases: [(HTTPFields, ByteBuffer, HTTPResponse.Status, String)] = [
                ([.contentType: "text/plain"], Self.body(Self.kettle), .badRequest, "Only application/json"),
                (Self.jsonHeaders, ByteBuffer(string: #"{"type": "device""#), .badRequest, "Malformed JSON"),
                (Self.jsonHeaders, ByteBuffer(bytes: Array(#"{"type":""#.utf8) + [0xFF] + Array(#""}"#.utf8)), .badRequest, "UTF-8"),
                (Self.jsonHeaders, ByteBuffer(string: String(repeating: "[", count: 21) + String(repeating: "]", count: 21)), .badRequest, "too deep"),
                (Self.jsonHeaders, ByteBuffer(string: #"{"type":"appliance","name":{"default":"x"},"manufacturer":{"name":"y"}}"#), .badRequest, "Input should be"),
                (Self.jsonHeaders, ByteBuffer(string: "[]"), .badRequest, "dictionary"),
                (Self.jsonHeaders, ByteBuffer(), .badRequest, "empty"),
            ]
            for (headers, body, status, text) in cases {
                try await client.execute(uri: "/api/v1/things", method: .post, headers: headers, body: body) { r in
                    #expect(r.status == status)
                    let j = Self.json(r)
                    #expect(j["error"]?.stringValue?.contains(text) == true, "\(j)")
                    #expect(j["detail"] != nil)
                }
            }
            try await client.execute(uri: "/api/v1/things", method: .post, headers: Self.jsonHeaders, body: ByteBuffer(string: #"{"type":"device","name":{"default":5},"manufacturer":{}}"#)) { r in
                let detail = Self.json(r)["detail"]?.arrayValue ?? []
                #expect(detail.map { $0["loc"] } == [["body", "name", "default"], ["body", "manufacturer", "name"]])
            }
            try await client.execute(uri: "/api/v1/things?limit=5000", method: .get) { r in
                #expect(r.status == .badRequest)
                #expect(Self.json(r)["detail"]?.arrayValue?.first?["loc"] == ["query", "limit"])
            }
            try await client.execute(uri: "/api/v1/things", method: .get) { r in #expect(Self.json(r) == []) }
        }
    }

    @Test func bodiesOverTenMegabytesAre413AndUpToTenAreAccepted() async throws {
        try await withApp(.live) { client in
            var big = Self.kettle
            big["padding"] = .string(String(repeating: "x", count: 9_900_000))
            try await client.execute(uri: "/api/v1/things", method: .post, headers: Self.jsonHeaders, body: Self.body(big)) { r in
                #expect(r.status == .ok)
            }
            let tooBig = ByteBuffer(repeating: UInt8(ascii: " "), count: 10_000_001)
            try await client.execute(uri: "/api/v1/things", method: .post, headers: Self.jsonHeaders, body: tooBig) { r in
                #expect(r.status == .contentTooLarge)
            }
        }
    }

    @Test func batchPreflightSearchGraphAndCursors() async throws {
        try await withApp(.live, sqlite: true) { client in
            let batch: JSONValue = ["operations": [
                ["op": "create", "kind": "thing", "ref": "m", "body": Self.kettle],
                ["op": "create", "kind": "things", "ref": "c", "body": ["type": "component", "name": ["default": "Thermostat"], "manufacturer": ["name": "BoilRight"]]],
                ["op": "create", "kind": "relationship", "body": ["source_type": "thing", "source_id": "$ref:m", "target_type": "thing", "target_id": "$ref:c", "relationship_type": "has_component"]],
                ["op": "create", "kind": "story", "body": ["thing_id": "$ref:m", "type": "repair", "procedure": [["order": 1, "description": ["default": "Replace the thermostat"]]]]],
            ]]
            let results = try await client.execute(uri: "/api/v1/batch", method: .post, headers: Self.jsonHeaders, body: Self.body(batch)) { r in
                #expect(r.status == .ok)
                return Self.json(r)["results"]?.arrayValue ?? []
            }
            #expect(results.count == 4 && results.allSatisfy { $0["status"] == "ok" })
            // Each planned write answers with its entity as written.
            #expect(results.allSatisfy { $0["entity"]?["id"] != nil && $0["entity"]?["id"] == $0["id"] })
            let machine = try #require(results[0]["id"]?.stringValue)

            // A failing batch answers for every operation and writes nothing.
            let failing: JSONValue = ["operations": [["op": "create", "kind": "thing", "body": Self.kettle], ["op": "delete", "kind": "thing", "id": "00000000-0000-0000-0000-000000000000"]]]
            try await client.execute(uri: "/api/v1/batch", method: .post, headers: Self.jsonHeaders, body: Self.body(failing)) { r in
                #expect(r.status == .notFound)
                let j = Self.json(r)
                #expect(j["detail"]?.arrayValue?.first?["loc"] == ["body", "operations", 1, "id"])
                #expect(j["results"]?.arrayValue?.count == 2)
                #expect(j["results"]?.arrayValue?.map { $0["entity"] != nil } == [true, false])
            }
            try await client.execute(uri: "/api/v1/things?limit=1000", method: .get) { r in #expect(Self.json(r).arrayValue?.count == 2) }

            try await client.execute(uri: "/api/v1/preflight", method: .post, headers: Self.jsonHeaders, body: Self.body(["kind": "thing", "body": Self.kettle])) { r in
                let j = Self.json(r)
                #expect(r.status == .ok && j["ok"] == true && j["warnings"] == 1)
                // Nothing was written: no entity, and no id for a create.
                let preflight = j["results"]?.arrayValue ?? []
                #expect(preflight.count == 1 && preflight[0]["entity"] == nil && preflight[0]["id"] == nil && preflight[0]["status"] == "ok")
                #expect(j["issues"]?.arrayValue?.first?["duplicate_of"] == .string(machine))
            }
            try await client.execute(uri: "/api/v1/search?q=%E3%82%B1%E3%83%88%E3%83%AB&lang=ja", method: .get) { r in
                let first = Self.json(r)["results"]?.arrayValue?.first
                #expect(first?["id"] == .string(machine) && first?["title"] == "電気ケトル")
            }
            try await client.execute(uri: "/api/v1/search?q=thermo&kind=story", method: .get) { r in
                #expect(Self.json(r)["results"]?.arrayValue?.first?["snippet"] == "Replace the <mark>thermostat</mark>")
            }
            try await client.execute(uri: "/api/v1/search", method: .get) { r in #expect(r.status == .badRequest) }
            try await client.execute(uri: "/api/v1/things/\(machine)/graph?depth=2", method: .get) { r in
                let j = Self.json(r)
                #expect(j["nodes"]?.arrayValue?.count == 3 && j["edges"]?.arrayValue?.count == 2)
            }
            try await client.execute(uri: "/api/v1/things/\(machine)/graph?depth=9", method: .get) { r in #expect(r.status == .badRequest) }

            // Cursor paging walks every thing once.
            var seen: [String] = []
            var uri = "/api/v1/things?limit=1"
            for _ in 0..<5 {
                let (page, next) = try await client.execute(uri: uri, method: .get) { r in
                    (Self.json(r).arrayValue ?? [], r.headers[HTTPField.Name("X-Next-Cursor")!])
                }
                seen += page.compactMap { $0["id"]?.stringValue }
                guard let next else { break }
                uri = "/api/v1/things?limit=1&cursor=\(next)"
            }
            #expect(seen.count == 2 && Set(seen).count == 2)
            try await client.execute(uri: "/api/v1/things?cursor=garbage", method: .get) { r in #expect(r.status == .badRequest) }
        }
    }

    @Test func nodeEndpoints() async throws {
        try await withApp { client in
            try await client.execute(uri: "/", method: .get) { r in
                let html = String(buffer: r.body)
                #expect(html.contains("<title>ThingData Server</title>"))
                #expect(html.contains("Test Café &lt;&amp;&gt;"))
                #expect(html.contains(ThingDataVersion.current))
            }
            try await client.execute(uri: "/health", method: .get) { r in
                let j = Self.json(r)
                #expect(j["status"] == "healthy" && j["components"] == ["database": "healthy", "api": "healthy"])
                #expect(j["metrics"]?.objectValue?.keys == ["memory_usage", "cpu_usage", "active_connections", "storage_usage", "federation_peers"])
            }
            try await client.execute(uri: "/health/ready", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/health/live", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { r in #expect(String(buffer: r.body).contains("thingdata_entities")) }
            try await client.execute(uri: "/favicon.ico", method: .get) { r in #expect(r.status == .ok && r.body.readableBytes > 100) }
            try await client.execute(uri: "/docs", method: .get) { r in #expect(String(buffer: r.body).contains("openapi.json")) }
            try await client.execute(uri: "/openapi.json", method: .get) { r in #expect(Self.json(r)["openapi"] == "3.1.0") }
            try await client.execute(uri: "/api/v1/things", method: .options, headers: [.origin: "https://repair.example", .accessControlRequestMethod: "POST"]) { r in
                #expect(r.headers[.accessControlAllowOrigin] == "*")
            }
        }
    }

    @Test func corsAnswersOnlyListedOrigins() async throws {
        try await withApp(corsOrigins: "https://cafe.example, https://clinic.example") { client in
            try await client.execute(uri: "/api/v1/things", method: .get, headers: [.origin: "https://clinic.example"]) { r in
                #expect(r.headers[.accessControlAllowOrigin] == "https://clinic.example")
            }
            try await client.execute(uri: "/api/v1/things", method: .get, headers: [.origin: "https://evil.example"]) { r in
                #expect(r.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    /// The committed `Protocol/openapi.json` is what the server serves; regenerate it with
    /// `swift run thingdata openapi > Protocol/openapi.json`.
    @Test func committedOpenAPIDocumentIsCurrent() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Protocol/openapi.json").standardized.path
        let data = try #require(FileManager.default.contents(atPath: path), "Protocol/openapi.json is missing")
        #expect(try JSONParser.parse(data) == OpenAPIDocument.document, "Protocol/openapi.json is stale: run `swift run thingdata openapi > Protocol/openapi.json`")
    }
}

@Suite struct ConfigurationTests {
    @Test func flagsBeatEnvironmentWhichBeatsTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"port": 9001, "name": "From file", "log_level": "debug"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/thingdata.json"))
        let c = try NodeConfiguration.resolve(flags: ["data_dir": dir, "port": "9003"], environment: ["THINGDATA_PORT": "9002", "THINGDATA_NAME": "From env"], configFile: nil)
        #expect(c.port == 9003 && c.name == "From env" && c.logLevel == .debug)
        #expect(c.storeLocation == .sqlite(path: dir + "/thingdata.sqlite"))
        let pg = try NodeConfiguration.resolve(flags: [:], environment: ["THINGDATA_DATABASE_URL": "postgres://u:secret@db/x"], configFile: nil)
        #expect(pg.storeLocation == .postgres(url: "postgres://u:secret@db/x"))
        #expect(pg.storeLocation.description == "postgres:postgres://u:***@db/x")
    }

    @Test func invalidSettingsAreClearErrors() {
        #expect(throws: NodeConfiguration.Invalid.self) { try NodeConfiguration.resolve(flags: ["port": "70000"], environment: [:], configFile: nil) }
        #expect(throws: NodeConfiguration.Invalid.self) { try NodeConfiguration.resolve(flags: [:], environment: ["THINGDATA_LOG_LEVEL": "loud"], configFile: nil) }
        #expect(throws: NodeConfiguration.Invalid.self) { try NodeConfiguration.resolve(flags: [:], environment: ["THINGDATA_DATABASE_URL": "mysql://x"], configFile: nil) }
        #expect(throws: NodeConfiguration.Invalid.self) { try NodeConfiguration.resolve(flags: [:], environment: [:], configFile: "/nonexistent/thingdata.json") }
    }
}
