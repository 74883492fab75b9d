import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The admin CLI. It talks to a node's admin API (loopback, token) over HTTP only.
@main
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thingdata-admin",
        abstract: "Inspect and steer a ThingData node: its peers, sync, conflicts and trust.",
        discussion: """
            By default it talks to the node whose data directory is ./thingdata-data (or THINGDATA_DATA_DIR, or --data-dir): the admin URL comes from admin.url and the token from admin.token there. --node and --token (or THINGDATA_ADMIN_URL and THINGDATA_ADMIN_TOKEN) override them. Every command takes --json.

            Exit status: 0 done, 1 the node refused the request, 64 bad usage, 69 the node does not answer, 77 the token was refused.
            """,
        subcommands: [NodeCommand.self, PeersCommand.self, DiscoveryCommand.self, SyncCommand.self, ConflictsCommand.self, AuthorsCommand.self, UsersCommand.self, TokensCommand.self, AuditCommand.self])
}

// MARK: Connection

struct Connection: ParsableArguments {
    @Option(help: "The node's admin API URL (THINGDATA_ADMIN_URL; default: admin.url in the data directory).")
    var node: String?
    @Option(help: "The admin token (THINGDATA_ADMIN_TOKEN; default: admin.token in the data directory).")
    var token: String?
    @Option(name: .customLong("data-dir"), help: "The node's data directory (THINGDATA_DATA_DIR; default ./thingdata-data).")
    var dataDir: String?
    @Flag(help: "Print JSON for scripts.") var json = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }
    var directory: String { dataDir ?? environment["THINGDATA_DATA_DIR"] ?? "./thingdata-data" }

    func read(_ file: String) -> String? {
        (try? String(contentsOfFile: (directory as NSString).appendingPathComponent(file), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var baseURL: String {
        let url = node ?? environment["THINGDATA_ADMIN_URL"] ?? read("admin.url") ?? "http://127.0.0.1:8001"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    func resolvedToken() throws -> String {
        if let t = token ?? environment["THINGDATA_ADMIN_TOKEN"] ?? read("admin.token") { return t }
        throw AdminError("no admin token: pass --token, set THINGDATA_ADMIN_TOKEN, or point --data-dir at the node's data directory (it holds admin.token)", code: 64)
    }

    /// Sends a request to the admin API; returns the JSON answer of a 2xx, throws otherwise.
    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, body: Any? = nil) async throws -> Any {
        var request = HTTPClientRequest(url: baseURL + "/admin/v1" + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + (try resolvedToken()))
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw AdminError("cannot reach the admin API at \(baseURL): \(error). Is `thingdata serve` running with this data directory? Pass --node URL to choose another node.", code: 69)
        }
        let data = Data(bytes.readableBytesView)
        let answer = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) ?? [:]
        let message = (answer as? [String: Any])?["error"] as? String ?? String(decoding: data.prefix(300), as: UTF8.self)
        switch response.status.code {
        case 200..<300: return answer
        case 401: throw AdminError("the node refused the admin token: \(message)", code: 77)
        default: throw AdminError("the node answered \(response.status.code): \(message)", code: 1)
        }
    }

    func printJSON(_ value: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .fragmentsAllowed])
        print(String(decoding: data, as: UTF8.self))
    }
}

struct AdminError: Error, CustomStringConvertible {
    var description: String
    var code: Int32
    init(_ description: String, code: Int32 = 1) {
        self.description = description
        self.code = code
    }
}

/// Runs a command body, turning failures into a message on stderr and an exit status.
func guarded(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as AdminError {
        FileHandle.standardError.write(Data("Error: \(e.description)\n".utf8))
        throw ExitCode(e.code)
    }
}

// MARK: Human output

enum Style {
    static let colour = isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    static func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    static func trust(_ t: String) -> String {
        switch t {
        case "blocked": paint(t, "31")
        case "untrusted": paint(t, "33")
        case "verified", "trusted", "preferred": paint(t, "32")
        default: t
        }
    }
    static func state(_ s: String) -> String {
        switch s {
        case "active": paint(s, "32")
        case "backoff", "key-changed": paint(s, "31")
        default: s
        }
    }

    /// Columns padded to their widest cell (colour codes do not count).
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        func visible(_ s: String) -> Int { s.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression).count }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], visible(c)) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c + String(repeating: " ", count: widths[i] - visible(c)) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header.map { paint($0, "1") })] + rows.map(line)).joined(separator: "\n")
    }

    static func date(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    static func ago(_ value: Any?) -> String {
        guard let text = value as? String, let date = date(text) else { return "never" }
        let s = Int(Date().timeIntervalSince(date))
        if s < 0 { return "in \(-s)s" }
        if s < 90 { return "\(s)s ago" }
        if s < 5400 { return "\(s / 60)m ago" }
        if s < 172_800 { return "\(s / 3600)h ago" }
        return "\(s / 86400)d ago"
    }

    static func bytes(_ value: Any?) -> String {
        let n = (value as? NSNumber)?.doubleValue ?? 0
        if n < 1024 { return "\(Int(n)) B" }
        if n < 1024 * 1024 { return String(format: "%.1f KiB", n / 1024) }
        return String(format: "%.1f MiB", n / 1024 / 1024)
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let s as String: s
        case let n as NSNumber: n.stringValue
        case let a as [Any]: a.map { text($0) }.joined(separator: ",")
        default: "\(value!)"
        }
    }
}

// MARK: node

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "The node itself.", subcommands: [Info.self, Digest.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Identity, version, database, content and peer counts, trust policy.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await guarded {
                let info = try await connection.call(.GET, "/node")
                if connection.json { return try connection.printJSON(info) }
                let o = info as? [String: Any] ?? [:]
                let e = o["entities"] as? [String: Any] ?? [:]
                let p = o["policy"] as? [String: Any] ?? [:]
                print("Node:       \(Style.text(o["name"])) \(Style.text(o["node_id"]))")
                print("Version:    \(Style.text(o["version"])) (\(Style.text(o["protocols"])))")
                print("Base URL:   \(Style.text(o["base_url"]))")
                print("Database:   \(Style.text(o["database"]))")
                print("Content:    \(Style.text(e["thing"])) things, \(Style.text(e["story"])) stories, \(Style.text(e["guide"])) guides, \(Style.text(e["relationship"])) relationships")
                print("Revisions:  \(Style.text(o["revisions"])) (feed head \(Style.text(o["head"])), index \(Style.text(o["index_id"])))")
                print("Conflicts:  \(Style.text(o["conflicts"])) open")
                print("Peers:      \(Style.text(o["peers"]))")
                print("Policy:     pull from ≥\(Style.text(p["pull"])), accept pushes from ≥\(Style.text(p["accept_push"])), announce to ≥\(Style.text(p["relay"])), serve ≥\(Style.text(p["serve"]))")
            }
        }
    }

    struct Digest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Digests of revisions, views and conflicts: converged nodes print the same.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await guarded {
                let d = try await connection.call(.GET, "/digest")
                if connection.json { return try connection.printJSON(d) }
                let o = d as? [String: Any] ?? [:]
                for k in ["revisions", "revision_digest", "views", "view_digest", "conflicts", "conflict_digest"] {
                    print("\(k):".padding(toLength: 17, withPad: " ", startingAt: 0) + Style.text(o[k]))
                }
            }
        }
    }
}

// MARK: discovery

struct DiscoveryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discovery", abstract: "How this node finds others: mDNS, DNS, seeds and peer exchange.", subcommands: [Status.self], defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What each mechanism sees now: mDNS services, DNS answers and their TTLs, peer-exchange candidates and the dial budget, and errors.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await guarded {
                let status = try await connection.call(.GET, "/discovery")
                if connection.json { return try connection.printJSON(status) }
                let o = status as? [String: Any] ?? [:]
                let mdns = o["mdns"] as? [String: Any] ?? [:]
                print(Style.paint("mDNS", "1") + ": \(Style.text(mdns["state"]))" + ((mdns["detail"] as? String).map { $0.isEmpty ? "" : " (\($0))" } ?? "")
                      + ((mdns["published_as"] as? String).map { ", published as \"\($0)\"" } ?? ""))
                let services = mdns["services"] as? [[String: Any]] ?? []
                if !services.isEmpty {
                    print(Style.table(["  INSTANCE", "ADDRESS", "NODE", "SEEN"], services.map { v in
                        ["  " + Style.text(v["instance"]) + ((v["own"] as? Bool) == true ? " (this node)" : ""), "\(Style.text(v["address"])):\(Style.text(v["port"]))",
                         String(Style.text(v["node_id"]).prefix(6)), Style.ago(v["seen"])]
                    }))
                }
                let dns = o["dns"] as? [String: Any] ?? [:]
                let domains = dns["domains"] as? [[String: Any]] ?? []
                print(Style.paint("DNS", "1") + ": " + (domains.isEmpty ? "no bootstrap domains configured" : "\(domains.count) domain(s) via \(Style.text(dns["nameserver"]))"))
                for d in domains {
                    print("  \(Style.text(d["domain"])): checked \(Style.ago(d["checked"])), next \(Style.ago(d["next_refresh"]))" + ((d["error"] as? String).map { ", " + Style.paint("error: " + $0, "31") } ?? ""))
                    for a in d["answers"] as? [[String: Any]] ?? [] {
                        print("    \(Style.text(a["url"]))  id \(String(Style.text(a["node_id"]).prefix(6)))  ttl \(Style.text(a["ttl"]))s  (\(Style.text(a["via"])))")
                    }
                }
                let pex = o["pex"] as? [String: Any] ?? [:]
                print(Style.paint("Peer exchange", "1") + ": " + ((pex["enabled"] as? Bool) == true ? "on, every \(Style.text(pex["interval_seconds"]))s per peer" : "off")
                      + "; \(Style.text(pex["records_rejected"])) records rejected, \(Style.text(pex["addresses_filtered"])) addresses filtered; ranges \(Style.text(pex["allowed_ranges"]))")
                for e in pex["exchanges"] as? [[String: Any]] ?? [] {
                    print("  from \(String(Style.text(e["peer"]).prefix(6))) \(Style.ago(e["at"])): \(Style.text(e["received"])) received, \(Style.text(e["accepted"])) accepted, \(Style.text(e["rejected"])) rejected, \(Style.text(e["ignored"])) over the limit"
                          + ((e["error"] as? String).map { ", error: " + $0 } ?? ""))
                }
                let budget = o["budget"] as? [String: Any] ?? [:]
                print(Style.paint("Dial budget", "1") + ": \(Style.text(budget["dials_in_window"])) of \(Style.text(budget["dials_per_window"])) in the last \(Style.text(budget["window_seconds"]))s (at most \(Style.text(budget["per_hearsay_source"])) per peer-exchange source)")
                let candidates = o["candidates"] as? [String: Any] ?? [:]
                let byState = (candidates["by_state"] as? [String: Any] ?? [:]).map { "\($0.value) \($0.key)" }.sorted().joined(separator: ", ")
                print(Style.paint("Candidates", "1") + ": \(Style.text(candidates["total"]))" + (byState.isEmpty ? "" : " (\(byState))"))
                let entries = candidates["entries"] as? [[String: Any]] ?? []
                if !entries.isEmpty {
                    print(Style.table(["  ADDRESS", "STATE", "SOURCES", "NODE", "FAILURES", "NEXT", "LAST ERROR"], entries.map { c in
                        ["  " + Style.text(c["url"]), Style.state(Style.text(c["state"])), Style.text(c["sources"]), String(Style.text(c["node_id"] ?? c["expected_node_id"]).prefix(6)),
                         Style.text(c["failures"]), Style.ago(c["next_attempt"]), String(Style.text(c["last_error"]).prefix(60))]
                    }))
                }
            }
        }
    }
}

// MARK: peers

struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "The nodes this one federates with.",
        subcommands: [List.self, Show.self, Add.self, Trust.self, Block.self, Forget.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A table of every peer.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await guarded {
                let peers = try await connection.call(.GET, "/peers") as? [[String: Any]] ?? []
                if connection.json { return try connection.printJSON(peers) }
                if peers.isEmpty { return print("No peers yet. Add one with: thingdata-admin peers add http://HOST:PORT") }
                print(Style.table(
                    ["ID", "NAME", "ADDRESS", "SOURCES", "TRUST", "STATE", "LAST SEEN", "LAST SYNC", "LAG", "RTT", "IN", "OUT", "REJECTED"],
                    peers.map { p in
                        [Style.text(p["short_id"]), Style.text(p["name"]), Style.text(p["base_url"]), Style.text(p["sources"]),
                         Style.trust(Style.text(p["trust"])), Style.state(Style.text(p["state"])), Style.ago(p["last_seen"]), Style.ago(p["last_sync"]),
                         Style.text(p["lag"]), (p["rtt_milliseconds"] as? NSNumber).map { String(format: "%.0f ms", $0.doubleValue) } ?? "-",
                         Style.bytes(p["bytes_in"]), Style.bytes(p["bytes_out"]), Style.text(p["rejected"])]
                    }))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything about one peer, its recent sync log and key history.")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's node id (any unambiguous prefix of its compact form).") var id: String

        func run() async throws {
            try await guarded {
                let p = try await connection.call(.GET, "/peers/\(id)") as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(p) }
                let fields: [(String, String)] = [
                    ("Node id", Style.text(p["node_id"])), ("Name", Style.text(p["name"])), ("Address", Style.text(p["base_url"])),
                    ("Sources", Style.text(p["sources"])), ("Trust", Style.trust(Style.text(p["trust"]))), ("State", Style.state(Style.text(p["state"]))),
                    ("First seen", Style.text(p["first_seen"])), ("Last seen", Style.ago(p["last_seen"])), ("Last sync", Style.ago(p["last_sync"])),
                    ("Next pull", Style.ago(p["next_due"])), ("Checkpoint", "index \(Style.text(p["index_id"])), cursor \(Style.text(p["cursor"])) of \(Style.text(p["remote_head"])) (lag \(Style.text(p["lag"])))"),
                    ("Received", "\(Style.text(p["received"])) revisions, \(Style.text(p["rejected"])) rejected"),
                    ("Traffic", "\(Style.bytes(p["bytes_in"])) in, \(Style.bytes(p["bytes_out"])) out"), ("Last error", Style.text(p["last_error"])),
                    ("Public key", Style.text(p["public_key"])),
                ]
                for (k, v) in fields { print((k + ":").padding(toLength: 12, withPad: " ", startingAt: 0) + v) }
                print("\nKey history:")
                for k in p["key_history"] as? [[String: Any]] ?? [] { print("  \(Style.text(k["at"]))  \(Style.text(k["key"]))  \(Style.text(k["how"]))") }
                print("\nRecent sync log:")
                let events = p["events"] as? [[String: Any]] ?? []
                if events.isEmpty { print("  (nothing yet)") }
                for e in events.suffix(20) { print("  \(Style.text(e["at"]))  \(Style.text(e["kind"]).padding(toLength: 11, withPad: " ", startingAt: 0)) \(Style.text(e["detail"]))") }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a peer by URL; its descriptor must prove its node id. It starts as verified.")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's base URL, e.g. http://repair-cafe.example:8000") var url: String

        func run() async throws {
            try await guarded {
                let p = try await connection.call(.POST, "/peers", body: ["url": url]) as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(p) }
                print("Added \(Style.text(p["short_id"])) (\(Style.text(p["name"]))) at \(Style.text(p["base_url"])): trust \(Style.trust(Style.text(p["trust"]))); a first pull is under way.")
            }
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a peer's trust: blocked, untrusted, verified, trusted or preferred.")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's node id (or prefix).") var id: String
        @Argument(help: "blocked, untrusted, verified, trusted or preferred.") var level: String

        func validate() throws {
            guard ["blocked", "untrusted", "verified", "trusted", "preferred"].contains(level) else {
                throw ValidationError("level must be one of blocked, untrusted, verified, trusted, preferred")
            }
        }

        func run() async throws {
            try await guarded {
                let p = try await connection.call(.POST, "/peers/\(id)/trust", body: ["level": level]) as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(p) }
                print("\(Style.text(p["short_id"])) (\(Style.text(p["name"]))) is now \(Style.trust(Style.text(p["trust"]))).")
            }
        }
    }

    struct Block: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Block a peer: no pulls, no announces, its requests refused.")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's node id (or prefix).") var id: String

        func run() async throws {
            try await guarded {
                let p = try await connection.call(.POST, "/peers/\(id)/block") as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(p) }
                print("\(Style.text(p["short_id"])) (\(Style.text(p["name"]))) is now \(Style.trust("blocked")).")
            }
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a peer (its revisions stay; it may come back as a new, untrusted peer).")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's node id (or prefix).") var id: String

        func run() async throws {
            try await guarded {
                let r = try await connection.call(.DELETE, "/peers/\(id)")
                if connection.json { return try connection.printJSON(r) }
                print("Forgot \(Style.text((r as? [String: Any])?["forgotten"])).")
            }
        }
    }
}

// MARK: sync

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sync", abstract: "Pull from peers now, or see where each stands.", subcommands: [Now.self, Status.self])

    struct Now: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pull now from one peer, or from every peer this node pulls from.")
        @OptionGroup var connection: Connection
        @Argument(help: "The peer's node id (or prefix); all when left out.") var id: String?

        func run() async throws {
            try await guarded {
                let reports = try await connection.call(.POST, "/sync", body: id.map { ["peer": $0] } ?? [:]) as? [[String: Any]] ?? []
                if connection.json { return try connection.printJSON(reports) }
                if reports.isEmpty { print("No peer to pull from (peers list shows their trust).") }
                var failed = false
                for r in reports {
                    let rev = r["revisions"] as? [String: Any] ?? [:]
                    let ok = r["ok"] as? Bool ?? false
                    failed = failed || !ok
                    print("\(String(Style.text(r["peer"]).prefix(6))): " + (ok
                        ? "\(Style.text(rev["stored"])) new, \(Style.text(rev["duplicates"])) already held, \(Style.text(rev["rejected"])) rejected in \(Style.text(r["batches"])) batch(es), \(Style.bytes(r["bytes_in"])) in"
                        : Style.paint("failed: \(Style.text(r["error"]))", "31")))
                }
                if failed { throw AdminError("some pulls failed", code: 1) }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each peer's checkpoint, lag, last sync and next pull.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await guarded {
                let s = try await connection.call(.GET, "/sync") as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(s) }
                print("This node: \(Style.text(s["node_id"])), feed head \(Style.text(s["head"])), index \(Style.text(s["index_id"]))")
                let peers = s["peers"] as? [[String: Any]] ?? []
                if peers.isEmpty { return print("No peers.") }
                print(Style.table(["PEER", "NAME", "TRUST", "STATE", "CURSOR", "HEAD", "LAG", "LAST SYNC", "NEXT", "LAST ERROR"], peers.map { p in
                    [String(Style.text(p["node_id"]).prefix(6)), Style.text(p["name"]), Style.trust(Style.text(p["trust"])), Style.state(Style.text(p["state"])),
                     Style.text(p["cursor"]), Style.text(p["remote_head"]), Style.text(p["lag"]), Style.ago(p["last_sync"]), Style.ago(p["next_due"]),
                     String(Style.text(p["last_error"]).prefix(60))]
                }))
            }
        }
    }
}

// MARK: conflicts

struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conflicts", abstract: "Concurrent edits of the same field, until someone resolves them.",
                                                    subcommands: [List.self, Show.self, Resolve.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entities with an open conflict.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this kind: thing, story, guide or relationship.") var kind: String?

        func run() async throws {
            try await guarded {
                let list = try await connection.call(.GET, "/conflicts" + (kind.map { "?kind=\($0)" } ?? "")) as? [[String: Any]] ?? []
                if connection.json { return try connection.printJSON(list) }
                if list.isEmpty { return print("No open conflicts.") }
                print(Style.table(["KIND", "ID", "HEADS", "FIELDS", "DELETED BY"], list.map { c in
                    [Style.text(c["kind"]), Style.text(c["id"]), "\((c["heads"] as? [Any])?.count ?? 0)", Style.text(c["fields"]), "\((c["deleted_by"] as? [Any])?.count ?? 0)"]
                }))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The base, each side, and the fields in conflict.")
        @OptionGroup var connection: Connection
        @Argument(help: "thing, story, guide or relationship.") var kind: String
        @Argument(help: "The entity id.") var id: String

        func run() async throws {
            try await guarded {
                let c = try await connection.call(.GET, "/conflicts/\(kind)/\(id)") as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(c) }
                print("\(kind) \(id): provisional winner \(Style.text(c["winner"]))")
                for side in c["sides"] as? [[String: Any]] ?? [] {
                    let author = side["author"] as? [String: Any] ?? [:]
                    print("  side \(Style.text(side["id"]).prefix(12))… by \(Style.text(author["short_id"])) at \(Style.text(side["time"]))")
                }
                print("Fields in conflict:")
                for f in c["fields"] as? [[String: Any]] ?? [] {
                    let values = (f["values"] as? [Any]) ?? (f["sides"] as? [Any]) ?? []
                    let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .fragmentsAllowed])) ?? Data()
                    print("  \(Style.text(f["path"])): \(String(decoding: data, as: UTF8.self))")
                }
                print("Resolve with: thingdata-admin conflicts resolve \(kind) \(id) --choose REVISION")
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a conflict: choose one side, or give the merged body from a file.")
        @OptionGroup var connection: Connection
        @Argument(help: "thing, story, guide or relationship.") var kind: String
        @Argument(help: "The entity id.") var id: String
        @Option(help: "The revision id of the side to keep in the conflicting fields.") var choose: String?
        @Option(help: "A JSON file with the merged body (as for a PUT).") var body: String?

        func validate() throws {
            guard (choose == nil) != (body == nil) else { throw ValidationError("give exactly one of --choose REVISION or --body FILE") }
        }

        func run() async throws {
            try await guarded {
                var payload: Any = ["choose": choose ?? ""]
                if let body {
                    guard let data = FileManager.default.contents(atPath: body), let parsed = try? JSONSerialization.jsonObject(with: data) else {
                        throw AdminError("\(body) cannot be read as JSON", code: 66)
                    }
                    payload = parsed
                }
                let r = try await connection.call(.POST, "/conflicts/\(kind)/\(id)/resolve", body: payload)
                if connection.json { return try connection.printJSON(r) }
                print("Resolved \(kind) \(id); the resolution is a new revision and reaches the peers like any write.")
            }
        }
    }
}

// MARK: authors

struct AuthorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "authors", abstract: "The author block list: revisions by these nodes are refused, whoever relays them.",
                                                    subcommands: [List.self, Block.self, Unblock.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Blocked authors.")
        @OptionGroup var connection: Connection
        func run() async throws {
            try await guarded {
                let list = try await connection.call(.GET, "/authors/blocked") as? [String] ?? []
                if connection.json { return try connection.printJSON(list) }
                print(list.isEmpty ? "No blocked authors." : list.joined(separator: "\n"))
            }
        }
    }

    struct Block: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse every revision by this node id from now on.")
        @OptionGroup var connection: Connection
        @Argument(help: "The author's node id.") var id: String
        func run() async throws {
            try await guarded {
                let r = try await connection.call(.POST, "/authors/\(id)/block")
                if connection.json { return try connection.printJSON(r) }
                print("Blocked author \(Style.text((r as? [String: Any])?["author"])).")
            }
        }
    }

    struct Unblock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept revisions by this node id again (already refused ones come with the next full resync).")
        @OptionGroup var connection: Connection
        @Argument(help: "The author's node id.") var id: String
        func run() async throws {
            try await guarded {
                let r = try await connection.call(.DELETE, "/authors/\(id)/block")
                if connection.json { return try connection.printJSON(r) }
                print("Unblocked author \(Style.text((r as? [String: Any])?["author"])).")
            }
        }
    }
}

// MARK: users, tokens, audit

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "Who may use the API: admin (everything), editor (writes content), viewer (reads).",
                                                    subcommands: [List.self, Add.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every user and their role.")
        @OptionGroup var connection: Connection
        func run() async throws {
            try await guarded {
                let users = try await connection.call(.GET, "/users") as? [[String: Any]] ?? []
                if connection.json { return try connection.printJSON(users) }
                if users.isEmpty { return print("No users yet. Add one with: thingdata-admin users add NAME --role editor") }
                print(Style.table(["NAME", "ROLE", "CREATED"], users.map { [Style.text($0["name"]), Style.text($0["role"]), Style.text($0["created_at"])] }))
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; then give them a token with `tokens create NAME`.")
        @OptionGroup var connection: Connection
        @Argument(help: "The user's name (letters, digits, - _ . @).") var name: String
        @Option(help: "admin, editor or viewer.") var role: String

        func validate() throws {
            guard ["admin", "editor", "viewer"].contains(role) else { throw ValidationError("--role must be admin, editor or viewer") }
        }

        func run() async throws {
            try await guarded {
                let u = try await connection.call(.POST, "/users", body: ["name": name, "role": role])
                if connection.json { return try connection.printJSON(u) }
                print("Added \(name) (\(role)). Give them a token: thingdata-admin tokens create \(name)")
            }
        }
    }
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Bearer tokens: shown once when created, stored only as a hash.",
                                                    subcommands: [List.self, Create.self, Revoke.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tokens (never their secret), with expiry and revocation.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this user's tokens.") var user: String?
        func run() async throws {
            try await guarded {
                let tokens = try await connection.call(.GET, "/tokens" + (user.map { "?user=\($0)" } ?? "")) as? [[String: Any]] ?? []
                if connection.json { return try connection.printJSON(tokens) }
                if tokens.isEmpty { return print("No tokens.") }
                print(Style.table(["ID", "USER", "CREATED", "EXPIRES", "REVOKED"], tokens.map {
                    [Style.text($0["id"]), Style.text($0["user"]), Style.text($0["created_at"]), Style.text($0["expires_at"]), Style.text($0["revoked_at"])]
                }))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for a user; the secret is printed once.")
        @OptionGroup var connection: Connection
        @Argument(help: "The user.") var user: String
        @Option(help: "Days until it expires (default: never).") var expires: Int?

        func validate() throws {
            if let expires, !(1...3650).contains(expires) { throw ValidationError("--expires must be 1 to 3650 days") }
        }

        func run() async throws {
            try await guarded {
                var body: [String: Any] = ["user": user]
                if let expires { body["expires_in_days"] = expires }
                let t = try await connection.call(.POST, "/tokens", body: body) as? [String: Any] ?? [:]
                if connection.json { return try connection.printJSON(t) }
                print("Token \(Style.text(t["id"])) for \(user)\(expires.map { ", expires in \($0) days" } ?? ""):")
                print("  \(Style.text(t["token"]))")
                print("It is shown only now. Use it as: Authorization: Bearer <token>")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; it stops working on the next request.")
        @OptionGroup var connection: Connection
        @Argument(help: "The token id (tok_…), as `tokens list` shows.") var id: String
        func run() async throws {
            try await guarded {
                let t = try await connection.call(.DELETE, "/tokens/\(id)")
                if connection.json { return try connection.printJSON(t) }
                print("Revoked \(id).")
            }
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "The audit log: every write and admin action, with who, what, when, from where.")
    @OptionGroup var connection: Connection
    @Option(help: "Only entries at or after this time (ISO 8601, e.g. 2026-11-21T10:00:00Z).") var since: String?
    @Option(help: "Only this user's entries (or loopback, anonymous, admin-token, peer:NODE).") var user: String?
    @Option(help: "At most this many entries (oldest first).") var limit = 100
    @Option(help: "Only entries after this sequence number (for paging).") var after = 0

    func run() async throws {
        try await guarded {
            var query = ["limit=\(limit)", "after=\(after)"]
            if let since { query.append("since=\(since.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? since)") }
            if let user { query.append("user=\(user.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? user)") }
            let entries = try await connection.call(.GET, "/audit?" + query.joined(separator: "&")) as? [[String: Any]] ?? []
            if connection.json { return try connection.printJSON(entries) }
            if entries.isEmpty { return print("No entries.") }
            print(Style.table(["SEQ", "TIME", "ACTOR", "FROM", "ACTION", "TARGET", "REVISION", "DETAIL"], entries.map { e in
                [Style.text(e["seq"]), Style.text(e["at"]), Style.text(e["actor"]), Style.text(e["address"]), Style.text(e["action"]), Style.text(e["target"]),
                 String(Style.text(e["revision"]).prefix(12)), Style.text(e["detail"])]
            }))
        }
    }
}
