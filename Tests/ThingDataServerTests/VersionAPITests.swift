import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing
import ThingDataCore
import ThingDataServer

/// ETags and If-Match, history, single revisions, diffs and the conflict endpoints over HTTP.
@Suite struct VersionAPITests {
    let api = APITests()

    @Test func etagsIfMatchHistoryAndDiff() async throws {
        try await api.withApp(sqlite: true) { client in
            let (id, tag0) = try await client.execute(uri: "/api/v1/things", method: .post, headers: APITests.jsonHeaders, body: APITests.body(APITests.kettle)) { r in
                (APITests.json(r)["id"]?.stringValue ?? "", r.headers[.eTag] ?? "")
            }
            #expect(tag0.count == 66)  // a quoted SHA-256
            let tagOnGet = try await client.execute(uri: "/api/v1/things/\(id)", method: .get) { $0.headers[.eTag] }
            #expect(tagOnGet == tag0)
            let patch: HTTPFields = [.contentType: "application/merge-patch+json", .ifMatch: tag0]
            let tag1 = try await client.execute(uri: "/api/v1/things/\(id)", method: .patch, headers: patch, body: APITests.body(["manufacturer": ["name": "Acme"]])) { r in
                #expect(r.status == .ok)
                return r.headers[.eTag] ?? ""
            }
            #expect(tag1 != tag0)
            // The old tag is stale now: 412 with a JSON reason, and nothing written.
            try await client.execute(uri: "/api/v1/things/\(id)", method: .patch, headers: patch, body: APITests.body(["manufacturer": ["name": "Other"]])) { r in
                #expect(r.status == .preconditionFailed)
                #expect(APITests.json(r)["error"]?.stringValue?.contains("changed") == true)
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .delete, headers: [HTTPField.Name("X-Confirm-Delete")!: "true", .ifMatch: tag0]) { r in
                #expect(r.status == .preconditionFailed)
            }
            try await client.execute(uri: "/api/v1/things/\(id)", method: .put, headers: [.contentType: "application/json", .ifMatch: "no-quotes"], body: APITests.body(APITests.kettle)) { r in
                #expect(r.status == .badRequest)
            }
            let history = try await client.execute(uri: "/api/v1/things/\(id)/history", method: .get) { APITests.json($0) }
            #expect(history.arrayValue?.map { $0["operation"] } == ["update", "create"])
            #expect(history.arrayValue?.first?["changed_fields"] == ["manufacturer"])
            #expect(history.arrayValue?.allSatisfy { $0["signature"] == "valid" } == true)
            #expect("\"\(history.arrayValue?.first?["id"]?.stringValue ?? "")\"" == tag1)
            let rev = try #require(history.arrayValue?.last?["id"]?.stringValue)
            let detail = try await client.execute(uri: "/api/v1/things/\(id)/revisions/\(rev)", method: .get) { APITests.json($0) }
            #expect(detail["body"]?["manufacturer"]?["name"] == "BoilRight")
            #expect(detail["signed"]?["signature"]?.stringValue?.count == 86)
            let diff = try await client.execute(uri: "/api/v1/things/\(id)/diff", method: .get) { APITests.json($0) }
            #expect(diff["from"] == .string(rev))
            #expect(diff["changes"]?.arrayValue?.contains { $0["path"] == ["manufacturer", "name"] && $0["from"] == "BoilRight" && $0["to"] == "Acme" } == true)
            try await client.execute(uri: "/api/v1/things/\(id)/revisions/\(String(repeating: "0", count: 64))", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/api/v1/things/\(UUID().uuidString.lowercased())/history", method: .get) { #expect($0.status == .notFound) }
            // No conflicts: an empty list, 404 for one, 409 for a resolve.
            try await client.execute(uri: "/api/v1/conflicts", method: .get) { #expect(APITests.json($0) == []) }
            try await client.execute(uri: "/api/v1/conflicts/thing/\(id)", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/api/v1/conflicts/thing/\(id)/resolve", method: .post, headers: APITests.jsonHeaders, body: APITests.body(["choose": .string(rev)])) { r in
                #expect(r.status == .conflict)
            }
            try await client.execute(uri: "/api/v1/conflicts/spaceship/\(id)", method: .get) { #expect($0.status == .badRequest) }
        }
    }
}
