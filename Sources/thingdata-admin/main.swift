import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The admin CLI. It talks to a node over HTTP only; it grows with the federation (peers,
/// sync, conflicts) and security (users, tokens, audit) work.
@main
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thingdata-admin",
        abstract: "Inspect and steer a ThingData node.",
        subcommands: [NodeCommand.self])
}

struct Connection: ParsableArguments {
    @Option(help: "The node's base URL (THINGDATA_NODE; default http://127.0.0.1:8000).")
    var node: String = ProcessInfo.processInfo.environment["THINGDATA_NODE"] ?? "http://127.0.0.1:8000"
    @Flag(help: "Print JSON for scripts.") var json = false

    /// GETs `path` and returns the body; a clear error when the node does not answer.
    func get(_ path: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: node.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        request.method = .GET
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 10 << 20)
            return (Int(response.status.code), String(buffer: body))
        } catch {
            throw AdminError("cannot reach the node at \(node): \(error). Is `thingdata serve` running there? Pass --node URL to choose another node.")
        }
    }
}

struct AdminError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "The node itself.", subcommands: [Info.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Version, health, database and content counts.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let health = try await connection.get("/health")
            guard let data = health.body.data(using: .utf8), let h = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw AdminError("the node at \(connection.node) answered \(health.status) with something that is not its health page")
            }
            var counts: [String: Int] = [:]
            let metrics = try await connection.get("/metrics").body
            for line in metrics.split(separator: "\n") where line.hasPrefix("thingdata_entities{") {
                if let kind = line.split(separator: "\"").dropFirst().first, let v = line.split(separator: " ").last.flatMap({ Double($0) }) {
                    counts[String(kind)] = Int(v)
                }
            }
            if connection.json {
                var out = h
                out["node"] = connection.node
                out["entities"] = counts
                let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let components = h["components"] as? [String: Any] ?? [:]
            let m = h["metrics"] as? [String: Any] ?? [:]
            print("Node:      \(connection.node)")
            print("Version:   \(h["version"] ?? "?")")
            print("Status:    \(h["status"] ?? "?") (database \(components["database"] ?? "?"), api \(components["api"] ?? "?"))")
            print("Memory:    \(m["memory_usage"] ?? "?") % of the machine in use")
            print("Content:   " + ["thing", "story", "guide", "relationship"].map { "\(counts[$0] ?? 0) \($0 == "story" ? "stories" : $0 + "s")" }.joined(separator: ", "))
        }
    }
}
