import ArgumentParser
import Foundation
import Logging
import ThingDataCore
import ThingDataServer
import ThingDataSigning
import ThingDataStore

@main
struct ThingDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thingdata",
        abstract: "A ThingData node: federated repair knowledge for repair cafés, fixit clinics and makerspaces.",
        version: ThingDataVersion.current,
        subcommands: [Serve.self, Init.self, SampleDataCommand.self, ExportCommand.self, ImportCommand.self, RestoreCommand.self, KeysCommand.self, OpenAPICommand.self],
        defaultSubcommand: Serve.self)
}

/// Options every command that opens the node's data shares. Each maps to a setting; see
/// `docs/configuration.md`. Flags beat `THINGDATA_*` variables, which beat the config file.
struct NodeOptions: ParsableArguments {
    @Option(help: "Address to listen on (THINGDATA_HOST; default 0.0.0.0).")
    var host: String?
    @Option(help: "TCP port to listen on (THINGDATA_PORT; default 8000).")
    var port: String?
    @Option(name: .customLong("data-dir"), help: "Data directory for the SQLite database and files (THINGDATA_DATA_DIR; default ./thingdata-data).")
    var dataDir: String?
    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:5432/db to use PostgreSQL instead of SQLite (THINGDATA_DATABASE_URL).")
    var databaseURL: String?
    @Option(help: "The node's display name (THINGDATA_NAME; default the host name).")
    var name: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (THINGDATA_LOG_LEVEL; default info).")
    var logLevel: String?
    @Option(name: .customLong("cors-origins"), help: "CORS origins: * or a comma-separated list (THINGDATA_CORS_ORIGINS; default *).")
    var corsOrigins: String?
    @Option(name: .customLong("db-pool-size"), help: "Maximum PostgreSQL connections (THINGDATA_DB_POOL_SIZE; default 4 per core, 4 to 64).")
    var dbPoolSize: String?
    @Option(help: "JSON config file (THINGDATA_CONFIG; default DATA_DIR/thingdata.json when it exists).")
    var config: String?
    @Option(name: .customLong("admin-port"), help: "Port of the admin API, on loopback (THINGDATA_ADMIN_PORT; default PORT + 1).")
    var adminPort: String?
    @Option(name: .customLong("base-url"), help: "The URL other nodes reach this one at (THINGDATA_BASE_URL; default http://HOST:PORT).")
    var baseURL: String?

    func resolve() throws -> NodeConfiguration {
        var flags: [String: String] = [:]
        flags["host"] = host
        flags["port"] = port
        flags["data_dir"] = dataDir
        flags["database_url"] = databaseURL
        flags["name"] = name
        flags["log_level"] = logLevel
        flags["cors_origins"] = corsOrigins
        flags["db_pool_size"] = dbPoolSize
        flags["admin_port"] = adminPort
        flags["base_url"] = baseURL
        do {
            return try NodeConfiguration.resolve(flags: flags, environment: ProcessInfo.processInfo.environment, configFile: config)
        } catch {
            throw ValidationError("invalid configuration: \(error.description)")
        }
    }

    /// Makes the data directory (0700) when it is missing.
    /// The node key in the data directory, made on first use. A key others can read stops the
    /// node with exit status 78 (EX_CONFIG) and says how to fix it.
    static func loadKey(_ dataDirectory: String, logger: Logger) throws -> NodeKey {
        do {
            let (key, created) = try KeyFile.loadOrCreate(directory: dataDirectory, now: Timestamp.now())
            if created { logger.notice("Created a node key", metadata: ["node_id": "\(key.nodeID.longForm)", "file": "\(dataDirectory)/\(KeyFile.name)"]) }
            return key
        } catch let error as KeyFile.Failure {
            FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
            throw ExitCode(78)
        }
    }

    /// The admin API token in the data directory, made on first use (mode 0600; exit 78 if
    /// others can read it).
    static func loadAdminToken(_ dataDirectory: String) throws -> String {
        do {
            return try AdminTokenFile.loadOrCreate(directory: dataDirectory)
        } catch let error as KeyFile.Failure {
            FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
            throw ExitCode(78)
        }
    }

    static func prepareDataDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ValidationError("data directory \(path) exists but is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ValidationError("cannot create data directory \(path): \(error.localizedDescription)")
        }
    }

    static func bootstrapLogging(_ level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "thingdata")
        logger.logLevel = level
        return logger
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the node (the default command).")

    @OptionGroup var options: NodeOptions

    func run() async throws {
        let config = try options.resolve()
        try NodeOptions.prepareDataDirectory(config.dataDirectory)
        let logger = NodeOptions.bootstrapLogging(config.logLevel)
        logger.notice("Starting ThingData node", metadata: [
            "name": "\(config.name)", "version": "\(ThingDataVersion.current)", "store": "\(config.storeLocation)",
            "address": "\(config.host):\(config.port)",
        ])
        do {
            let key = try NodeOptions.loadKey(config.dataDirectory, logger: logger)
            try await withContentStore(config.storeLocation, logger: logger, maxConnections: config.databasePoolSize) { store in
                let catalog = try await Catalog.open(store: store, key: key)
                logger.notice("Node identity", metadata: ["node_id": "\(key.nodeID.longForm)", "actor": "\(catalog.signer.actor)"])
                let token = try NodeOptions.loadAdminToken(config.dataDirectory)
                try await runNode(configuration: config, catalog: catalog, key: key, adminToken: token, logger: logger)
            }
        } catch let error as StoreError {
            logger.critical("The node cannot start", metadata: ["reason": "\(error)"])
            throw ExitCode(3)
        } catch let error as NodeConfiguration.Invalid {
            FileHandle.standardError.write(Data("Error: invalid configuration: \(error.description)\n".utf8))
            throw ExitCode(64)
        }
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the data directory, a config file and the database, then exit.")

    @OptionGroup var options: NodeOptions
    @Flag(help: "Print a JSON summary.") var json = false

    func run() async throws {
        let config = try options.resolve()
        try NodeOptions.prepareDataDirectory(config.dataDirectory)
        let logger = NodeOptions.bootstrapLogging(.warning)
        let file = (config.dataDirectory as NSString).appendingPathComponent("thingdata.json")
        var wroteConfig = false
        if !FileManager.default.fileExists(atPath: file) {
            let body: JSONValue = ["name": .string(config.name), "port": .int(Int64(config.port)), "host": .string(config.host)]
            guard FileManager.default.createFile(atPath: file, contents: Data(JSONSerializer.serialize(body)), attributes: [.posixPermissions: 0o600]) else {
                try CommandFailure.exit("cannot write \(file); check that the data directory is writable", status: 73)
            }
            wroteConfig = true
        }
        let key = try NodeOptions.loadKey(config.dataDirectory, logger: logger)
        let actor = try await withContentStore(config.storeLocation, logger: logger) { store in try await Catalog.open(store: store, key: key).signer.actor }
        _ = try NodeOptions.loadAdminToken(config.dataDirectory)
        if json {
            print(JSONSerializer.string([
                "data_dir": .string(config.dataDirectory), "config_file": .string(file), "config_written": .bool(wroteConfig), "store": .string(config.storeLocation.description),
                "node_id": .string(key.nodeID.longForm), "actor": .string(actor),
                "admin_token_file": .string((config.dataDirectory as NSString).appendingPathComponent(AdminTokenFile.name)),
            ]))
        } else {
            print("Data directory: \(config.dataDirectory)")
            print("Config file:    \(file)\(wroteConfig ? " (created)" : " (kept)")")
            print("Store:          \(config.storeLocation) (migrated)")
            print("Node id:        \(key.nodeID.longForm) (key in \(config.dataDirectory)/\(KeyFile.name), mode 0600)")
            print("Admin token:    \(config.dataDirectory)/\(AdminTokenFile.name) (mode 0600; thingdata-admin reads it)")
            print("Start the node with: thingdata serve --data-dir \(config.dataDirectory)")
        }
    }
}

struct SampleDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-data",
        abstract: "Load realistic multilingual repair data (devices, components, stories, guides, relationships). Re-running adds nothing twice.")

    @OptionGroup var options: NodeOptions
    @Option(help: "How many device groups to load (each: a device, 2 components, a story, a guide, 4 relationships).")
    var count = 12
    @Flag(help: "Print a JSON summary instead of progress.") var json = false

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be from 1 to 100000") }
    }

    func run() async throws {
        let config = try options.resolve()
        try NodeOptions.prepareDataDirectory(config.dataDirectory)
        let logger = NodeOptions.bootstrapLogging(.warning)
        let bar = ProgressBar(label: "Loading", quiet: json)
        let added = try await withContentStore(config.storeLocation, logger: logger) { store in
            try await SampleData.load(count: count, into: try await Catalog.open(store: store, key: try NodeOptions.loadKey(config.dataDirectory, logger: logger))) { done, total, _ in
                if done % 10 == 0 || done == total { bar.update(done, total) }
            }
        }
        bar.finish()
        if json {
            print(JSONSerializer.string(["requested": .int(Int64(count)), "added": .int(Int64(added)), "skipped": .int(Int64(count - added))]))
        } else {
            print("Sample data: \(added) device groups added, \(count - added) already present.")
        }
    }
}

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the OpenAPI 3.1 document (Protocol/openapi.json is this output).")

    func run() throws {
        print(JSONSerializer.pretty(OpenAPIDocument.document))
    }
}
