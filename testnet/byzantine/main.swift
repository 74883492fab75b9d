// thingdata-byzantine: a dishonest node for testnet's byzantine scenario. It speaks the
// federation protocol well enough to be discovered and pulled from, then misbehaves:
//   - its changes feed serves, after --bad-after seconds (or once --bad-when FILE exists), a revision whose body was changed
//     after signing (tampered) and one signed by it in another node's name (forged);
//   - its peer exchange answers with --records claims (half of them forged), each naming an
//     address in --flood-prefix (no host there), to drain its peers' dial budgets.
// It writes its bad revisions' ids and entity ids to --bad-ids, so the scenario can check that
// no honest node stored any. Not part of a node: a test tool, like the benchmarks.
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals
import ThingDataCore
import ThingDataFederation
import ThingDataSigning
import ThingDataStore

struct Options {
    var port = 8000
    var baseURL = "http://127.0.0.1:8000"
    var records = 10_000
    var badAfter = 8.0
    var badIDs = "/dev/null"
    var floodPrefix = "10.213.0"
    /// Plant the bad revisions when this file appears (instead of after --bad-after).
    var badWhen: String?
}

func parse() -> Options {
    var o = Options()
    var it = CommandLine.arguments.dropFirst().makeIterator()
    while let a = it.next() {
        guard let v = it.next() else { fatalError("\(a) needs a value") }
        switch a {
        case "--port": o.port = Int(v)!
        case "--base-url": o.baseURL = v
        case "--records": o.records = Int(v)!
        case "--bad-after": o.badAfter = Double(v)!
        case "--bad-ids": o.badIDs = v
        case "--flood-prefix": o.floodPrefix = v
        case "--bad-when": o.badWhen = v
        default: fatalError("unknown option \(a)")
        }
    }
    return o
}

func response(_ bytes: [UInt8], type: String = "application/json", status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: .init(bytes: bytes)))
}

/// A tampered copy of a valid revision, and a revision claiming another author, signed by us.
func badRevisions(_ catalog: Catalog, key: NodeKey) -> [SignedRevision] {
    let signer = catalog.signer
    let body: JSONObject = ["type": "device", "name": ["default": "Honest kettle", "translations": [:]], "manufacturer": ["name": "Acme"]]
    let valid = signer.revision(kind: .thing, entityID: UUID().uuidString.lowercased(), parents: [], body: body)
    var changed = valid.revision
    changed.body?["name"] = ["default": "Tampered kettle", "translations": [:]]
    let tampered = changed.signed(signature: valid.signature)
    let victim = NodeKey.generate()
    var rng = SystemRandomNumberGenerator()
    let claim = Revision(kind: .thing, entityID: UUID().uuidString.lowercased(), parents: [], versionVector: .next(actor: ActorID.make(random: &rng), parents: []),
                         author: victim.author, hlc: signer.tick(), body: body)
    return [tampered, claim.signed(signature: key.sign(claim.signingBytes))]
}

@main
struct Byzantine {
    static func main() async throws {
        let o = parse()
        var logger = Logger(label: "byzantine")
        logger.logLevel = .notice
        let key = NodeKey.generate()
        let store = MemoryContentStore()
        let catalog = try await Catalog.open(store: store, key: key)
        for i in 0..<5 {
            _ = try await catalog.apply(Operation(.create, .thing, body: ["type": "device", "name": ["default": .string("Byzantine radio \(i)"), "translations": [:]], "manufacturer": ["name": "Acme"]]))
        }
        var settings = FederationSettings()
        settings.baseURL = o.baseURL
        settings.name = "byzantine"
        let federation = try await Federation.open(catalog: catalog, key: key, settings: settings, logger: logger)

        var claims: [JSONValue] = []
        for i in 0..<o.records {
            var c = PeerClaim.signed(by: .generate(), addresses: ["\(o.floodPrefix).\(200 + i % 50)"], port: 8000, scheme: "http", path: "", issuedAt: Int64(Date().timeIntervalSince1970), seq: 1)
            if i % 2 == 1 { c.port = 8001 }  // changed after signing
            claims.append(c.json)
        }
        let flood = CanonicalJSON.encode(["self": federation.ownClaim()?.json ?? .null, "peers": .array(claims)])

        let router = Router()
        router.get("health/ready") { _, _ in response(Array(#"{"status":"ready"}"#.utf8)) }
        router.get(".well-known/thingdata") { _, _ in response(CanonicalJSON.encode(federation.descriptor().json)) }
        router.get("federation/v1/changes") { request, _ -> Response in
            let since = request.uri.queryParameters.get("since", as: Int64.self) ?? 0
            let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 500
            return response(try await federation.changes(since: since, limit: min(limit, 5_000)).bytes, type: "application/x-ndjson")
        }
        router.get("federation/v1/keys") { _, _ in response(CanonicalJSON.encode(try await federation.keys(nodes: []))) }
        router.get("federation/v1/peers") { _, _ in response(flood) }
        router.post("federation/v1/announce") { _, _ in response(Array(#"{"status":"accepted"}"#.utf8), status: .accepted) }
        let app = Application(router: router, configuration: .init(address: .hostname("0.0.0.0", port: o.port)), logger: logger)

        let plant = Task {
            if let trigger = o.badWhen {
                while !FileManager.default.fileExists(atPath: trigger) { try await Task.sleep(for: .milliseconds(200)) }
            } else {
                try await Task.sleep(for: .milliseconds(Int(o.badAfter * 1000)))
            }
            let bad = badRevisions(catalog, key: key)
            _ = try await store.ingest(bad, prepared: [:])
            // "<revision id> <entity id>" per line: each bad revision creates an entity of its own.
            try bad.map { "\($0.id) \($0.revision.entityID)" }.joined(separator: "\n").write(toFile: o.badIDs, atomically: true, encoding: .utf8)
            logger.notice("byzantine: planted \(bad.count) bad revisions")
        }
        logger.notice("byzantine: node \(key.nodeID.compact) at \(o.baseURL), \(o.records) flood records")
        try await ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        plant.cancel()
    }
}
