import ArgumentParser
import Foundation
import Logging
import ThingDataCore
import ThingDataServer
import ThingDataSigning
import ThingDataStore

/// A progress bar on standard error, drawn only on a terminal.
struct ProgressBar: Sendable {
    let enabled: Bool
    let label: String
    init(label: String, quiet: Bool) {
        self.label = label
        enabled = isatty(STDERR_FILENO) == 1 && !quiet
    }
    func update(_ done: Int, _ total: Int?) {
        guard enabled else { return }
        if let total, total > 0 {
            let width = 30
            let filled = width * min(done, total) / total
            FileHandle.standardError.write(Data("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)".utf8))
        } else {
            FileHandle.standardError.write(Data("\r\(label) \(done)".utf8))
        }
    }
    func finish() { if enabled { FileHandle.standardError.write(Data("\n".utf8)) } }
}

/// Fails a command with a message and an exit status, without ArgumentParser's usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var status: Int32
    static func exit(_ message: String, status: Int32) throws -> Never {
        FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
        throw ExitCode(status)
    }
}

/// Opens the node's data (key, store, catalog) for a command that is not the server.
func withCatalog<T: Sendable>(_ options: NodeOptions, _ body: @Sendable (Catalog) async throws -> T) async throws -> T {
    let config = try options.resolve()
    try NodeOptions.prepareDataDirectory(config.dataDirectory)
    let logger = NodeOptions.bootstrapLogging(.warning)
    let key = try NodeOptions.loadKey(config.dataDirectory, logger: logger)
    do {
        return try await withContentStore(config.storeLocation, logger: logger) { store in try await body(try await Catalog.open(store: store, key: key)) }
    } catch let error as StoreError {
        try CommandFailure.exit("\(error)", status: 3)
    } catch let error as CatalogError {
        try CommandFailure.exit(error.message, status: 65)
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the node's revisions to a signed bundle (JSON lines: header, revisions, signed manifest).",
        discussion: "Bundles carry every revision verbatim, so they import anywhere and verify there. See Protocol/bundles.md.")

    @OptionGroup var options: NodeOptions
    @Option(help: "Only revisions after this revision id, or at or after this time (2026-11-21T10:00:00Z).") var since: String?
    @Option(help: "Only this kind (thing, story, guide, relationship); repeat for several.") var kind: [String] = []
    @Option(name: [.short, .long], help: "File to write (default: standard output).") var output: String?
    @Flag(help: "Print a JSON summary (on standard error when the bundle goes to standard output).") var json = false

    func run() async throws {
        var kinds: Set<EntityKind>?
        if !kind.isEmpty {
            kinds = Set(try kind.map { k in
                guard let e = EntityKind(rawValue: k) ?? EntityKind(collection: k) else { throw ValidationError("unknown kind \(k): use thing, story, guide or relationship") }
                return e
            })
        }
        var from: RevisionBundle.Since = .everything
        if let since {
            if let t = Timestamp(iso8601: since) {
                from = .time(t)
            } else if Hex.isLowercaseHex(since.lowercased(), count: 64) {
                from = .revision(since.lowercased())
            } else {
                throw ValidationError("--since takes a revision id (64 hex digits) or a UTC time such as 2026-11-21T10:00:00Z")
            }
        }
        let path = output
        let quiet = json || path == nil
        let (since, only) = (from, kinds)
        let summary = try await withCatalog(options) { catalog in
            let handle: FileHandle
            let temp = path.map { $0 + ".partial" }
            if let temp {
                guard FileManager.default.createFile(atPath: temp, contents: nil, attributes: [.posixPermissions: 0o600]), let h = FileHandle(forWritingAtPath: temp) else {
                    try CommandFailure.exit("cannot write \(temp)", status: 73)
                }
                handle = h
            } else {
                handle = FileHandle.standardOutput
            }
            let total = try await catalog.store.revisionCount()
            let bar = ProgressBar(label: "Exporting", quiet: quiet)
            var buffer: [UInt8] = []
            let summary: RevisionBundle.Summary
            do {
                summary = try await RevisionBundle.export(from: catalog, since: since, kinds: only, now: Timestamp.now(), write: { line in
                    buffer += line
                    if buffer.count > 1 << 20 {
                        handle.write(Data(buffer))
                        buffer.removeAll(keepingCapacity: true)
                    }
                }, progress: { bar.update($0, total) })
            } catch {
                // A failed export leaves no partial file behind.
                bar.finish()
                if let temp { try? FileManager.default.removeItem(atPath: temp) }
                throw error
            }
            handle.write(Data(buffer))
            bar.finish()
            if let temp, let path {
                try handle.synchronize()
                try handle.close()
                // Only a complete bundle gets the name asked for.
                _ = try? FileManager.default.removeItem(atPath: path)
                try FileManager.default.moveItem(atPath: temp, toPath: path)
            }
            return summary
        }
        var out = summary.json.objectValue!
        out["file"] = path.map(JSONValue.string) ?? "-"
        if json {
            let text = JSONSerializer.string(.object(out)) + "\n"
            if path == nil { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
        } else if path != nil {
            print("Exported \(summary.revisions) revisions (\(EntityKind.allCases.map { "\(summary.counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))) to \(path!), \(summary.bytes) bytes.")
        }
    }
}

/// Reads a bundle file and checks its container (header, manifest signature, checksums);
/// its revisions are checked while they are imported.
func openBundle(_ file: String) throws -> RevisionBundle.Opened {
    guard let data = FileManager.default.contents(atPath: file) else { try CommandFailure.exit("cannot read \(file)", status: 66) }
    do { return try RevisionBundle.open(Array(data)) } catch { try refuse(file, error.reason) }
}

/// Stops a command over a bundle that failed a check.
func refuse(_ file: String, _ why: String) throws -> Never {
    try CommandFailure.exit("\(file) was refused, nothing was written: \(why)", status: 65)
}

/// Imports a bundle, checking every revision while the ones before it are stored, all in one
/// transaction, with progress; or stops with the reason (exit 65), having written nothing.
func importOrRefuse(_ bundle: RevisionBundle.Opened, from file: String, into catalog: Catalog, quiet: Bool) async throws -> IngestSummary {
    let bar = ProgressBar(label: "Importing", quiet: quiet)
    defer { bar.finish() }
    do {
        return try await catalog.importBundle(bundle) { bar.update($0, $1) }
    } catch let error as IngestError {
        try refuse(file, "\(error)")
    } catch let error as RevisionError {
        try refuse(file, error.reason)
    }
}

func ingestSummaryJSON(_ s: IngestSummary, file: String, bundle: RevisionBundle.Opened) -> JSONValue {
    [
        "file": .string(file), "node_id": .string(bundle.nodeID.longForm), "revisions": .int(Int64(bundle.count)),
        "stored": .int(Int64(s.stored)), "duplicates": .int(Int64(s.duplicates)), "entities": .int(Int64(s.entities)), "conflicts": .int(Int64(s.conflicts)),
    ]
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a signed bundle: every signature and checksum is checked, and nothing is kept unless all pass (one transaction); re-importing changes nothing.")

    @OptionGroup var options: NodeOptions
    @Argument(help: "The bundle file.") var file: String
    @Flag(help: "Print a JSON summary instead of progress.") var json = false

    func run() async throws {
        let bundle = try openBundle(file)
        let (file, json) = (self.file, self.json)
        let summary = try await withCatalog(options) { catalog in try await importOrRefuse(bundle, from: file, into: catalog, quiet: json) }
        if json {
            print(JSONSerializer.string(ingestSummaryJSON(summary, file: file, bundle: bundle)))
        } else {
            print("Imported \(file) from node \(bundle.nodeID.longForm): \(summary.stored) new revisions, \(summary.duplicates) already here, \(summary.entities) entities updated, \(summary.conflicts) with open conflicts.")
        }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Rebuild a node from a bundle into an empty data directory; the restored data takes a new actor id.",
        discussion: "Keep the node's identity by copying its node.key into the data directory first; otherwise the restored node gets a new key.")

    @OptionGroup var options: NodeOptions
    @Argument(help: "The bundle file.") var file: String
    @Flag(help: "Print a JSON summary instead of progress.") var json = false

    func run() async throws {
        let bundle = try openBundle(file)
        let (file, json) = (self.file, self.json)
        let (summary, actor) = try await withCatalog(options) { catalog in
            let entities = try await EntityKind.allCases.asyncReduce(0) { $0 + (try await catalog.store.count($1)) }
            if try await catalog.store.revisionCount() > 0 || entities > 0 {
                try CommandFailure.exit("restore needs an empty data directory and database; this one holds data (use import to add a bundle to it)", status: 73)
            }
            let summary = try await importOrRefuse(bundle, from: file, into: catalog, quiet: json)
            try await catalog.store.setNodeState("restored_from", "\(bundle.nodeID.compact) \(Timestamp.now())")
            return (summary, catalog.signer.actor)
        }
        var out = ingestSummaryJSON(summary, file: file, bundle: bundle).objectValue!
        out["actor"] = .string(actor)
        if json {
            print(JSONSerializer.string(.object(out)))
        } else {
            print("Restored \(summary.stored) revisions (\(summary.entities) entities) from \(file). This node's new actor id is \(actor).")
        }
    }
}

extension Sequence {
    func asyncReduce<R>(_ initial: R, _ next: (R, Element) async throws -> R) async rethrows -> R {
        var r = initial
        for e in self { r = try await next(r, e) }
        return r
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Show or rotate the node's signing key.", subcommands: [Show.self, Rotate.self], defaultSubcommand: Show.self)

    static func describe(_ key: NodeKey) -> JSONValue {
        [
            "node_id": .string(key.nodeID.longForm), "short_id": .string(key.nodeID.short), "public_key": .string(Base64URL.encode(key.publicKey)),
            "genesis_public_key": .string(Base64URL.encode(key.genesisPublicKey)), "rotations": .array(key.rotations.map(\.json)),
        ]
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the node id, the current public key and the rotation history.")
        @OptionGroup var options: NodeOptions
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            let config = try options.resolve()
            try NodeOptions.prepareDataDirectory(config.dataDirectory)
            let key = try NodeOptions.loadKey(config.dataDirectory, logger: NodeOptions.bootstrapLogging(.warning))
            if json {
                print(JSONSerializer.string(KeysCommand.describe(key)))
            } else {
                print("Node id:    \(key.nodeID.longForm) (short \(key.nodeID.short))")
                print("Public key: \(Base64URL.encode(key.publicKey))")
                print("Rotations:  \(key.rotations.count)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new signing key, introduced by a statement signed with the current one. The node id stays; revisions signed by old keys stay valid.")
        @OptionGroup var options: NodeOptions
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            let config = try options.resolve()
            try NodeOptions.prepareDataDirectory(config.dataDirectory)
            let key = try NodeOptions.loadKey(config.dataDirectory, logger: NodeOptions.bootstrapLogging(.warning))
            let rotated = key.rotated(now: Timestamp.now())
            try KeyFile.write(rotated, path: config.dataDirectory + "/" + KeyFile.name)
            if json {
                print(JSONSerializer.string(KeysCommand.describe(rotated)))
            } else {
                print("Rotated the key of \(rotated.nodeID.longForm): new public key \(Base64URL.encode(rotated.publicKey)) (rotation \(rotated.rotations.count)).")
                print("Restart the node to sign with it.")
            }
        }
    }
}
