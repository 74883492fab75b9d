public import Foundation
public import Logging
public import ThingDataStore
public import ThingDataFederation
public import ThingDataCore
public import ThingDataDiscovery

/// Everything a node needs to start. Built from, in order of precedence: command-line flags,
/// `THINGDATA_*` environment variables, the JSON config file, and defaults.
public struct NodeConfiguration: Sendable, Equatable {
    public var host = "0.0.0.0"
    public var port = 8000
    public var dataDirectory = "./thingdata-data"
    /// `postgres://...` selects PostgreSQL; nil means the embedded SQLite file in the data directory.
    public var databaseURL: String?
    public var name = NodeConfiguration.defaultName()
    public var logLevel = Logger.Level.info
    /// `*` or a comma-separated list of origins.
    public var corsOrigins = "*"
    /// Four connections per core (at least 4, at most 64): a pool larger than the machine can
    /// serve only queues inside PostgreSQL (measured on 2 cores: 8 connections answer a single
    /// GET at 7,959 req/s, 32 connections at 6,767).
    public var databasePoolSize = min(64, max(4, 4 * ProcessInfo.processInfo.activeProcessorCount))
    /// The admin API's listener: loopback by default, on `port + 1` unless set.
    public var adminHost = "127.0.0.1"
    public var adminPort: Int?
    public var effectiveAdminPort: Int { adminPort ?? (port == 0 ? 0 : port + 1) }
    /// Who may write and read, and how fast.
    public var security = SecuritySettings()
    /// HTTPS: PEM certificate chain and private key (mode 0600); both or neither.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Extra trusted CA certificates (PEM) for federation requests (a private CA, the testnet's).
    public var tlsCA: String?
    /// Connection hardening.
    public var maxConnections = 1024
    public var headerTimeout = 20
    public var requestTimeout = 60
    public var maxHeaderBytes = 80 * 1024
    /// Federation: how other nodes reach this one, what it says about itself, how it syncs and whom it trusts.
    public var federation = FederationSettings()
    /// Discovery: mDNS, DNS, seeds and peer exchange.
    public var discovery = DiscoverySettings()

    /// The discovery settings with the node's own port as the seeds' default.
    public var discoverySettings: DiscoverySettings {
        var d = discovery
        d.defaultPort = port == 0 ? 8000 : port
        return d
    }

    /// The federation settings with the node's name and the listening address filled in.
    public var federationSettings: FederationSettings {
        var f = federation
        f.name = name
        f.softwareVersion = ThingDataVersion.current
        return f
    }

    public init() {}

    /// One setting: its config-file key, environment variable, and what it means.
    public struct Setting: Sendable {
        public var key: String
        public var environment: String { "THINGDATA_" + key.uppercased() }
        public var help: String
        public var defaultValue: String
    }

    public static let settings: [Setting] = [
        Setting(key: "host", help: "Address to listen on.", defaultValue: "0.0.0.0"),
        Setting(key: "port", help: "TCP port to listen on.", defaultValue: "8000"),
        Setting(key: "data_dir", help: "Where the node keeps its SQLite database and files.", defaultValue: "./thingdata-data"),
        Setting(key: "database_url", help: "postgres://user:password@host:5432/db selects PostgreSQL instead of SQLite.", defaultValue: "(none: SQLite)"),
        Setting(key: "name", help: "The node's display name.", defaultValue: "the host name"),
        Setting(key: "log_level", help: "trace, debug, info, notice, warning, error or critical.", defaultValue: "info"),
        Setting(key: "cors_origins", help: "Origins allowed by CORS: * or a comma-separated list.", defaultValue: "*"),
        Setting(key: "db_pool_size", help: "Maximum PostgreSQL connections.", defaultValue: "4 per core (4 to 64)"),
        Setting(key: "admin_host", help: "Address of the admin API's listener.", defaultValue: "127.0.0.1"),
        Setting(key: "admin_port", help: "Port of the admin API's listener.", defaultValue: "port + 1"),
        Setting(key: "base_url", help: "The URL other nodes reach this one at (in its descriptor and signed requests).", defaultValue: "http://<host>:<port>"),
        Setting(key: "description", help: "A sentence about this node, in its descriptor.", defaultValue: "(empty)"),
        Setting(key: "languages", help: "Languages of this node's content, comma-separated, in its descriptor.", defaultValue: "en"),
        Setting(key: "sync_interval", help: "Seconds between pulls from a peer when it announces nothing (jittered ±20 %).", defaultValue: "30"),
        Setting(key: "sync_batch", help: "Revisions per pulled batch (one transaction each; up to 5000). Larger batches sync faster (fewer transactions and full-text index merges); smaller ones redo less after a crash on a slow link.", defaultValue: "2000"),
        Setting(key: "trust_pull", help: "Lowest trust of a peer this node pulls from.", defaultValue: "verified"),
        Setting(key: "trust_accept_push", help: "Lowest trust of a peer whose pushed revisions are accepted.", defaultValue: "verified"),
        Setting(key: "trust_relay", help: "Lowest trust of a peer this node announces its changes to.", defaultValue: "verified"),
        Setting(key: "trust_serve", help: "Lowest trust of a peer whose federation reads are answered.", defaultValue: "untrusted"),
        Setting(key: "auth_mode", help: "open (no tokens), token (every write needs a token) or auto (writes from loopback need none).", defaultValue: "auto"),
        Setting(key: "auth_reads", help: "open, or token: v1 reads need a token too (not in auth_mode open).", defaultValue: "open"),
        Setting(key: "rate_limit", help: "Requests per client per minute,hour,day (a token, else an address); 0 turns a window off.", defaultValue: "600,10000,100000"),
        Setting(key: "peer_rate_limit", help: "Federation requests per peer per minute,hour,day.", defaultValue: "1200,30000,300000"),
        Setting(key: "rate_limit_loopback", help: "true: clients on loopback are rate limited too.", defaultValue: "false"),
        Setting(key: "tls_cert", help: "PEM certificate chain: serve HTTPS (with tls_key).", defaultValue: "(none: HTTP)"),
        Setting(key: "tls_key", help: "PEM private key of tls_cert; must be mode 0600.", defaultValue: "(none)"),
        Setting(key: "tls_ca", help: "PEM CA certificates federation requests trust besides the system's.", defaultValue: "(none)"),
        Setting(key: "max_connections", help: "Connections served at once; more wait in the backlog.", defaultValue: "1024"),
        Setting(key: "header_timeout", help: "Seconds a client has to send a request's head (slow clients are cut off).", defaultValue: "20"),
        Setting(key: "request_timeout", help: "Seconds a client has to send the rest of a request after its head.", defaultValue: "60"),
        Setting(key: "max_header_bytes", help: "Largest total size of a request's request line and header fields.", defaultValue: "81920"),
        Setting(key: "mdns", help: "true: publish this node and find others on the LAN by mDNS (through avahi-daemon).", defaultValue: "true"),
        Setting(key: "dns_domains", help: "Bootstrap domains, comma-separated: SRV, TXT and PTR of _thingdata._tcp.<domain>.", defaultValue: "(none)"),
        Setting(key: "dns_server", help: "Nameserver for DNS discovery, address or address:port.", defaultValue: "(the system resolver)"),
        Setting(key: "seeds", help: "Nodes to start from, comma-separated: host, host:port or URL.", defaultValue: "(none)"),
        Setting(key: "pex", help: "true: ask active peers for their peers (peer exchange).", defaultValue: "true"),
        Setting(key: "pex_interval", help: "Seconds between peer-exchange requests to one peer (at least 60).", defaultValue: "300"),
        Setting(key: "pex_ranges", help: "Address ranges (CIDR, comma-separated) peer-exchange addresses must fall in.", defaultValue: "0.0.0.0/0,::/0"),
        Setting(key: "advertise", help: "Addresses (IP literals) this node claims in peer exchange, comma-separated.", defaultValue: "the base URL's host"),
        Setting(key: "discovery_dials", help: "Unverified addresses dialled per minute, at most.", defaultValue: "20"),
        Setting(key: "discovery_trust", help: "Trust of a node found by discovery once its descriptor proves its id.", defaultValue: "verified"),
        Setting(key: "max_peers", help: "The most peers discovery adds (admins may add more).", defaultValue: "100"),
    ]

    static func defaultName() -> String {
        ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "thingdata"
    }

    public var storeLocation: StoreLocation {
        if let databaseURL { return .postgres(url: databaseURL) }
        return .sqlite(path: (dataDirectory as NSString).appendingPathComponent("thingdata.sqlite"))
    }

    /// A configuration problem, reported before any port is bound.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The effective settings, as text, for the audit log (no secrets: the database URL's
    /// password is redacted; TLS files appear by path only).
    public var auditedSettings: [String: String] {
        func limits(_ l: (minute: Int, hour: Int, day: Int)) -> String { "\(l.minute),\(l.hour),\(l.day)" }
        let f = federation
        return [
            "host": host, "port": String(port), "data_dir": dataDirectory, "database_url": databaseURL.map(StoreLocation.redact) ?? "", "name": name,
            "log_level": logLevel.rawValue, "cors_origins": corsOrigins, "db_pool_size": String(databasePoolSize), "admin_host": adminHost,
            "admin_port": String(effectiveAdminPort), "base_url": f.baseURL ?? "", "description": f.description, "languages": f.languages.joined(separator: ","),
            "sync_interval": String(Double(f.pollInterval) / 1000), "sync_batch": String(f.batchSize), "trust_pull": f.policy.pull.rawValue,
            "trust_accept_push": f.policy.acceptPush.rawValue, "trust_relay": f.policy.relay.rawValue, "trust_serve": f.policy.serve.rawValue,
            "auth_mode": security.authMode.rawValue, "auth_reads": security.readsNeedToken ? "token" : "open", "rate_limit": limits(security.clientLimits),
            "peer_rate_limit": limits(security.peerLimits), "rate_limit_loopback": String(security.limitLoopback), "tls_cert": tlsCertificate ?? "",
            "tls_key": tlsKey ?? "", "tls_ca": tlsCA ?? "", "max_connections": String(maxConnections), "header_timeout": String(headerTimeout),
            "request_timeout": String(requestTimeout), "max_header_bytes": String(maxHeaderBytes),
            "mdns": String(discovery.mdns), "dns_domains": discovery.domains.joined(separator: ","),
            "dns_server": discovery.nameserver.map { "\($0):\(discovery.nameserverPort)" } ?? "", "seeds": discovery.seeds.joined(separator: ","),
            "pex": String(discovery.pex), "pex_interval": String(discovery.pexInterval / 1000),
            "pex_ranges": discovery.filter.ranges.map(\.description).joined(separator: ","), "advertise": f.advertise.joined(separator: ","),
            "discovery_dials": String(discovery.limits.dialsPerMinute), "discovery_trust": f.discoveryTrust.rawValue, "max_peers": String(f.maxPeers),
        ]
    }

    /// Applies `values` (setting key → text) over this configuration, checking each.
    public mutating func apply(_ values: [String: String], source: String) throws(Invalid) {
        for (key, raw) in values {
            let value = raw.trimmingCharacters(in: .whitespaces)
            switch key {
            case "host":
                guard !value.isEmpty else { throw Invalid("\(source): host must not be empty") }
                host = value
            case "port":
                guard let p = Int(value), (1...65535).contains(p) else { throw Invalid("\(source): port must be a number from 1 to 65535, not '\(value)'") }
                port = p
            case "data_dir":
                guard !value.isEmpty else { throw Invalid("\(source): data_dir must not be empty") }
                dataDirectory = value
            case "database_url":
                if value.isEmpty { databaseURL = nil; continue }
                guard value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") else {
                    throw Invalid("\(source): database_url must start with postgres:// (leave it unset to use SQLite), not '\(StoreLocation.redact(value))'")
                }
                databaseURL = value
            case "name":
                guard (1...100).contains(value.count) else { throw Invalid("\(source): name must have 1 to 100 characters") }
                name = value
            case "log_level":
                guard let level = Logger.Level(rawValue: value.lowercased()) else {
                    throw Invalid("\(source): log_level must be one of trace, debug, info, notice, warning, error, critical; not '\(value)'")
                }
                logLevel = level
            case "cors_origins":
                corsOrigins = value.isEmpty ? "*" : value
            case "db_pool_size":
                guard let n = Int(value), (1...1000).contains(n) else { throw Invalid("\(source): db_pool_size must be a number from 1 to 1000") }
                databasePoolSize = n
            case "admin_host":
                guard !value.isEmpty else { throw Invalid("\(source): admin_host must not be empty") }
                adminHost = value
            case "admin_port":
                guard let p = Int(value), (0...65535).contains(p) else { throw Invalid("\(source): admin_port must be a number from 0 to 65535, not '\(value)'") }
                adminPort = p
            case "base_url":
                if value.isEmpty { federation.baseURL = nil; continue }
                guard let u = URLComponents(string: value), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), u.host?.isEmpty == false, u.query == nil else {
                    throw Invalid("\(source): base_url must be an http(s) URL such as https://repair.example.org, not '\(value)'")
                }
                federation.baseURL = value.hasSuffix("/") ? String(value.dropLast()) : value
            case "description":
                guard value.count <= 500 else { throw Invalid("\(source): description must have at most 500 characters") }
                federation.description = value
            case "languages":
                let list = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !list.isEmpty, list.allSatisfy({ $0.count <= 35 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }) else {
                    throw Invalid("\(source): languages must be a comma-separated list of language tags such as en,fr,de")
                }
                federation.languages = list
            case "sync_interval":
                guard let n = Double(value), n >= 0.05, n <= 86_400 else { throw Invalid("\(source): sync_interval must be a number of seconds from 0.05 to 86400") }
                federation.pollInterval = Int64(n * 1000)
            case "sync_batch":
                guard let n = Int(value), (1...5_000).contains(n) else { throw Invalid("\(source): sync_batch must be a number from 1 to 5000") }
                federation.batchSize = n
            case "trust_pull", "trust_accept_push", "trust_relay", "trust_serve":
                guard let level = TrustLevel(rawValue: value.lowercased()) else {
                    throw Invalid("\(source): \(key) must be one of \(TrustLevel.allCases.map(\.rawValue).joined(separator: ", ")), not '\(value)'")
                }
                switch key {
                case "trust_pull": federation.policy.pull = level
                case "trust_accept_push": federation.policy.acceptPush = level
                case "trust_relay": federation.policy.relay = level
                default: federation.policy.serve = level
                }
            case "tls_cert", "tls_key", "tls_ca":
                let path: String? = value.isEmpty ? nil : value
                if let path, !FileManager.default.isReadableFile(atPath: path) { throw Invalid("\(source): \(key) \(path) cannot be read") }
                switch key {
                case "tls_cert": tlsCertificate = path
                case "tls_key": tlsKey = path
                default: tlsCA = path
                }
            case "max_connections", "header_timeout", "request_timeout", "max_header_bytes":
                let ranges = ["max_connections": 1...1_000_000, "header_timeout": 1...3600, "request_timeout": 1...86_400, "max_header_bytes": 1024...1_048_576]
                guard let n = Int(value), ranges[key]!.contains(n) else {
                    throw Invalid("\(source): \(key) must be a number from \(ranges[key]!.lowerBound) to \(ranges[key]!.upperBound), not '\(value)'")
                }
                switch key {
                case "max_connections": maxConnections = n
                case "header_timeout": headerTimeout = n
                case "request_timeout": requestTimeout = n
                default: maxHeaderBytes = n
                }
            case "auth_mode":
                guard let mode = AuthMode(rawValue: value.lowercased()) else { throw Invalid("\(source): auth_mode must be open, token or auto, not '\(value)'") }
                security.authMode = mode
            case "auth_reads":
                guard ["open", "token"].contains(value.lowercased()) else { throw Invalid("\(source): auth_reads must be open or token, not '\(value)'") }
                security.readsNeedToken = value.lowercased() == "token"
            case "rate_limit", "peer_rate_limit":
                let parts = value.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.count == 3, let m = parts[0], let h = parts[1], let d = parts[2], [m, h, d].allSatisfy({ $0 >= 0 && $0 <= 100_000_000 }) else {
                    throw Invalid("\(source): \(key) must be three numbers, per minute,hour,day (0 turns one off), such as 600,10000,100000")
                }
                if key == "rate_limit" { security.clientLimits = (m, h, d) } else { security.peerLimits = (m, h, d) }
            case "mdns", "pex":
                guard let b = Bool(value.lowercased()) else { throw Invalid("\(source): \(key) must be true or false") }
                if key == "mdns" { discovery.mdns = b } else { discovery.pex = b }
            case "dns_domains":
                let list = Self.list(value)
                guard list.allSatisfy({ $0.count <= 253 && !$0.contains(" ") && $0.contains(".") }) else {
                    throw Invalid("\(source): dns_domains must be domain names such as repair.example.org, comma-separated")
                }
                discovery.domains = list.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 }
            case "dns_server":
                if value.isEmpty { discovery.nameserver = nil; continue }
                let (address, port) = value.split(separator: ":").count == 2 ? (String(value.split(separator: ":")[0]), Int(value.split(separator: ":")[1])) : (value, 53)
                guard let port, (1...65535).contains(port), let ip = IPAddress(address), ip.isIPv4 else {
                    throw Invalid("\(source): dns_server must be an IPv4 address or address:port such as 10.0.0.53:5353, not '\(value)'")
                }
                discovery.nameserver = address
                discovery.nameserverPort = port
            case "seeds":
                let list = Self.list(value)
                if let bad = list.first(where: { discovery.seedURL($0) == nil }) { throw Invalid("\(source): seed '\(bad)' is not a host, host:port or http(s) URL") }
                discovery.seeds = list
            case "pex_interval":
                guard let n = Int(value), (60...86_400).contains(n) else { throw Invalid("\(source): pex_interval must be a number of seconds from 60 to 86400") }
                discovery.pexInterval = Int64(n) * 1000
            case "pex_ranges":
                let ranges = Self.list(value).map { ($0, IPNetwork($0)) }
                if let bad = ranges.first(where: { $0.1 == nil }) { throw Invalid("\(source): pex_ranges: '\(bad.0)' is not a CIDR range such as 10.0.0.0/8") }
                discovery.filter = AddressFilter(ranges: ranges.compactMap(\.1))
            case "advertise":
                let list = Self.list(value)
                guard list.count <= PeerClaim.maxAddresses, list.allSatisfy({ IPAddress($0) != nil }) else {
                    throw Invalid("\(source): advertise must be at most \(PeerClaim.maxAddresses) IP addresses, comma-separated")
                }
                federation.advertise = list
            case "discovery_dials", "max_peers":
                guard let n = Int(value), (1...100_000).contains(n) else { throw Invalid("\(source): \(key) must be a number from 1 to 100000") }
                if key == "max_peers" { federation.maxPeers = n } else { discovery.limits.dialsPerMinute = n }
            case "discovery_trust":
                guard let level = TrustLevel(rawValue: value.lowercased()), level != .blocked else {
                    throw Invalid("\(source): discovery_trust must be untrusted, verified, trusted or preferred, not '\(value)'")
                }
                federation.discoveryTrust = level
            case "rate_limit_loopback":
                guard let b = Bool(value.lowercased()) else { throw Invalid("\(source): rate_limit_loopback must be true or false") }
                security.limitLoopback = b
            default:
                throw Invalid("\(source): unknown setting '\(key)'. Known settings: \(Self.settings.map(\.key).joined(separator: ", "))")
            }
        }
    }

    static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `THINGDATA_*` variables that name a setting.
    public static func environmentValues(_ environment: [String: String]) -> [String: String] {
        var out: [String: String] = [:]
        for s in settings { if let v = environment[s.environment] { out[s.key] = v } }
        return out
    }

    /// Reads a JSON config file: one object whose keys are setting keys.
    public static func fileValues(path: String) throws(Invalid) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Invalid("config file \(path) cannot be read") }
        let value: JSONValue
        do { value = try JSONParser.parse(data, maxDepth: 4) } catch { throw Invalid("config file \(path) is not valid JSON: \(error)") }
        guard case .object(let object) = value else { throw Invalid("config file \(path) must hold one JSON object") }
        var out: [String: String] = [:]
        for (k, v) in object {
            switch v {
            case .string(let s): out[k] = s
            case .int(let i): out[k] = String(i)
            case .double(let d): out[k] = String(d)
            case .bool(let b): out[k] = String(b)
            case .array(let a) where a.allSatisfy({ $0.intValue != nil }): out[k] = a.compactMap(\.intValue).map(String.init).joined(separator: ",")
            case .array(let a) where a.allSatisfy({ $0.stringValue != nil }): out[k] = a.compactMap(\.stringValue).joined(separator: ",")
            case .null: out[k] = ""
            default: throw Invalid("config file \(path): \(k) must be a string or a number")
            }
        }
        return out
    }

    /// Resolves the configuration: defaults, then the file, then the environment, then flags.
    public static func resolve(flags: [String: String], environment: [String: String], configFile: String?) throws(Invalid) -> NodeConfiguration {
        var config = NodeConfiguration()
        let env = environmentValues(environment)
        let dataDir = flags["data_dir"] ?? env["data_dir"] ?? config.dataDirectory
        let explicitFile = configFile ?? environment["THINGDATA_CONFIG"]
        let file = explicitFile ?? (dataDir as NSString).appendingPathComponent("thingdata.json")
        if explicitFile != nil || FileManager.default.fileExists(atPath: file) {
            try config.apply(try fileValues(path: file), source: "config file \(file)")
        }
        try config.apply(env, source: "environment")
        try config.apply(flags, source: "command line")
        guard (config.tlsCertificate == nil) == (config.tlsKey == nil) else { throw Invalid("tls_cert and tls_key go together: set both to serve HTTPS, or neither") }
        return config
    }
}
