import Crypto
import Foundation
import Testing
@testable import ThingDataCore
import ThingDataSigning

/// The files under `Protocol/vectors`, which another implementation can run too.
enum ProtocolVectors {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocol/vectors")
    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: directory.appendingPathComponent(path))) }
    static func json(_ path: String) throws -> JSONValue { try JSONParser.parse(try bytes(path)) }
}

func key(seedHex: String) -> NodeKey {
    var seed: [UInt8] = []
    var chars = Array(seedHex)
    while chars.count >= 2 {
        seed.append(UInt8(String(chars[0..<2]), radix: 16)!)
        chars.removeFirst(2)
    }
    return NodeKey(privateKey: try! Curve25519.Signing.PrivateKey(rawRepresentation: seed))
}

@Suite struct CanonicalJSONTests {
    @Test(arguments: ["arrays", "french", "structures", "unicode", "values", "weird"])
    func rfc8785Vectors(name: String) throws {
        let input = try JSONParser.parse(try ProtocolVectors.bytes("jcs/input/\(name).json"))
        let expected = try ProtocolVectors.bytes("jcs/output/\(name).json")
        #expect(CanonicalJSON.encode(input) == expected, "\(String(decoding: CanonicalJSON.encode(input), as: UTF8.self))")
    }

    @Test func ecmaScriptNumbers() {
        let cases: [(Double, String)] = [
            (0, "0"), (-0.0, "0"), (1, "1"), (-1.5, "-1.5"), (20.5, "20.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
            (123e-9, "1.23e-7"), (0.000001, "0.000001"), (1e-7, "1e-7"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992, "9007199254740992"), (0.1 + 0.2, "0.30000000000000004"), (333333333.33333329, "333333333.3333333"),
        ]
        for (d, text) in cases { #expect(CanonicalJSON.number(d) == text, "\(d)") }
    }

    /// `number` lays out Swift's plain descriptions itself (a fast path); that must give what
    /// the general layout gives, for values of every size around the switches between
    /// Swift's and ECMAScript's plain and exponent forms, and at random.
    @Test func plainNumbersLaidOutAsTheGeneralLayoutDoes() {
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [1e-7, 1e-6, 1e-5, 1e-4, 0.00012345, 0.001, 0.5, 1, 9.999, 10, 100, 1e15, 1e16, 2e16, 9007199254740991, 9007199254740993, 1e20, 1e21, 1e22]
        for exponent in -9...23 {
            for _ in 0..<300 {
                let mantissa = Double.random(in: 1..<10, using: &rng)
                values.append(mantissa * pow(10, Double(exponent)))
                values.append((mantissa * pow(10, Double(exponent))).rounded())
            }
        }
        for _ in 0..<20_000 { values.append(Double(bitPattern: UInt64.random(in: 1..<0x7FF0_0000_0000_0000, using: &rng))) }
        var plain = 0
        for v in values where v.isFinite && v != 0 {
            for d in [v, -v] {
                #expect(CanonicalJSON.number(d) == CanonicalJSON.layout(d.magnitude.description, negative: d < 0), "\(d)")
                if !d.description.contains("e") { plain += 1 }
            }
        }
        #expect(plain > 10_000)  // the fast path was taken, often
    }

    @Test func keysSortByUTF16CodeUnits() {
        // U+1F602 (surrogates D83D DE02) sorts before U+FB33 in UTF-16, after it by code point.
        let o: JSONValue = ["\u{FB33}": 1, "\u{1F602}": 2, "a": 3]
        #expect(String(decoding: CanonicalJSON.encode(o), as: UTF8.self) == "{\"a\":3,\"\u{1F602}\":2,\"\u{FB33}\":1}")
    }

    @Test func keyOrderIsUTF16OrderForEveryKindOfCharacter() {
        // ASCII, Latin-1, BMP below and above the surrogates, beyond the BMP; shared prefixes.
        let keys = ["", "a", "ab", "b", "Z", "é", "aé", "a\u{FB33}", "a\u{1F602}", "\u{FB33}", "\u{1F602}", "\u{E000}", "\u{FFFF}", "\u{10000}", "\u{D7FF}", "~"]
        for a in keys {
            for b in keys {
                #expect(CanonicalJSON.precedes(a, b) == a.utf16.lexicographicallyPrecedes(b.utf16), "\(a) < \(b)")
            }
        }
    }

    @Test(arguments: ["arrays", "french", "structures", "unicode", "values", "weird"])
    func canonicalCheckAgreesWithEncoding(name: String) throws {
        let input = try JSONParser.parse(try ProtocolVectors.bytes("jcs/input/\(name).json"))
        let canonical = try ProtocolVectors.bytes("jcs/output/\(name).json")
        #expect(CanonicalJSON.isCanonical(input, canonical))
        // Every one-byte change, cut and extension of the canonical bytes is refused: the check
        // says yes exactly when encoding would give the same bytes.
        for i in canonical.indices {
            var changed = canonical
            changed[i] ^= 0x01
            #expect(CanonicalJSON.isCanonical(input, changed) == (CanonicalJSON.encode(input) == changed))
            #expect(!CanonicalJSON.isCanonical(input, Array(canonical[..<i])))
        }
        #expect(!CanonicalJSON.isCanonical(input, canonical + [0x20]))
        // The input as the vectors write it (spaces, other key order) is not canonical.
        let raw = try ProtocolVectors.bytes("jcs/input/\(name).json")
        #expect(CanonicalJSON.isCanonical(input, raw) == (raw == canonical))
    }
}

@Suite struct IdentityTests {
    @Test func nodeIDFormsRoundTripAndCarryAChecksum() throws {
        let k = key(seedHex: String(repeating: "01", count: 32))
        let id = k.nodeID
        #expect(id.compact.count == 36)
        #expect(id.longForm.split(separator: "-").count == 6)
        #expect(NodeID(id.longForm) == id)
        #expect(NodeID(id.compact.lowercased()) == id)
        #expect(NodeID(id.compact.lowercased())?.compact == id.compact)
        #expect(NodeID(id.longForm.lowercased())?.compact == id.compact)
        #expect(id.isGenesis(k.privateKey.publicKey.rawRepresentation.map { $0 }))
        #expect(!id.isGenesis(NodeKey.generate().privateKey.publicKey.rawRepresentation.map { $0 }))
        #expect(id.short == String(id.compact.prefix(6)))
        // One character changed in the body or the check is refused.
        var chars = Array(id.compact)
        chars[3] = chars[3] == "A" ? "B" : "A"
        #expect(NodeID(String(chars)) == nil)
        #expect(NodeID("not-a-node-id") == nil)
    }

    @Test func rotationStatementsIntroduceKeysThatStayValid() throws {
        let genesis = key(seedHex: String(repeating: "07", count: 32))
        let rotated = genesis.rotated(now: Timestamp(microsecondsSinceEpoch: 1_000_000))
        #expect(rotated.nodeID == genesis.nodeID)
        #expect(rotated.publicKey != genesis.publicKey)
        let old = sample(by: genesis)
        let new = sample(by: rotated)
        var book = KeyBook()
        try old.verify(keys: book)
        #expect(throws: RevisionError.self) { try new.verify(keys: book) }
        try book.add(rotated.rotations)
        try new.verify(keys: book)
        try old.verify(keys: book)
        // A statement signed by a stranger's key is refused.
        let stranger = key(seedHex: String(repeating: "08", count: 32))
        let forged = KeyBook.forgedRotation(for: genesis.nodeID, by: stranger)
        var other = KeyBook()
        #expect(throws: RevisionError.self) { try other.add([forged]) }
    }

    @Test func keyFileIsPrivateRefusedWhenReadableAndKeepsRotations() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thingdata-key-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (key, created) = try KeyFile.loadOrCreate(directory: dir, now: Timestamp(microsecondsSinceEpoch: 0))
        #expect(created)
        let path = dir + "/" + KeyFile.name
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let (again, createdAgain) = try KeyFile.loadOrCreate(directory: dir, now: Timestamp(microsecondsSinceEpoch: 0))
        #expect(!createdAgain && again.nodeID == key.nodeID && again.publicKey == key.publicKey)
        // Rotated and written back: same node id, new key, the statement kept.
        let rotated = key.rotated(now: Timestamp(microsecondsSinceEpoch: 1))
        try KeyFile.write(rotated, path: path)
        let reloaded = try KeyFile.load(path: path)
        #expect(reloaded.nodeID == key.nodeID && reloaded.publicKey == rotated.publicKey && reloaded.rotations == rotated.rotations)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        // Readable by others: refused, and the message says how to fix it.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect { try KeyFile.load(path: path) } throws: { "\($0)".contains("chmod 600") }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: KeyFile.Failure.self) { try KeyFile.load(path: path) }
    }

    func sample(by key: NodeKey) -> SignedRevision {
        let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["00000000000000a1": 1]),
            author: key.author, hlc: HLC(wall: 5), body: ["type": "tool"])
        return r.signed(signature: key.sign(r.signingBytes))
    }
}

extension KeyBook {
    /// A rotation for `node` signed by a key that is not the node's.
    static func forgedRotation(for node: NodeID, by stranger: NodeKey) -> KeyRotation {
        let fake = NodeKey(privateKey: stranger.privateKey, genesisPublicKey: stranger.publicKey)
        let statement = fake.rotated(now: Timestamp(microsecondsSinceEpoch: 0)).rotations[0]
        var json = statement.json.objectValue!
        json["node_id"] = .string(node.compact)
        return try! KeyRotation(json: .object(json))
    }
}

@Suite struct VersionVectorTests {
    func vector(_ v: JSONValue?) -> VersionVector { VersionVector(json: v ?? [:])! }

    @Test func comparisonVectors() throws {
        let doc = try ProtocolVectors.json("version-vectors.json")
        for c in doc["cases"]!.arrayValue! {
            let a = vector(c["a"]), b = vector(c["b"])
            let order = VersionVector.Order(rawValue: c["order"]!.stringValue!)!
            #expect(a.compare(b) == order, "\(a) vs \(b)")
            let mirrored: VersionVector.Order = switch order {
            case .before: .after
            case .after: .before
            default: order
            }
            #expect(b.compare(a) == mirrored)
        }
        for c in doc["next"]!.arrayValue! {
            let parents = c["parents"]!.arrayValue!.map { vector($0) }
            #expect(VersionVector.next(actor: c["actor"]!.stringValue!, parents: parents) == vector(c["expect"]))
        }
    }

    @Test func pruningKeepsTheWriterAndTheMostActive() {
        var counters: [String: Int64] = [:]
        for i in 0..<40 { counters[String(format: "%016x", i)] = Int64(i + 1) }
        let writer = String(format: "%016x", 0)
        let v = VersionVector.next(actor: writer, parents: [VersionVector(counters)])
        #expect(v.counters.count == VersionVector.maxActors)
        #expect(v[writer] == 2)
        #expect(v[String(format: "%016x", 39)] == 40)
        #expect(v[String(format: "%016x", 5)] == 0)
    }
}

@Suite struct RevisionCodecTests {
    let author = key(seedHex: String(repeating: "01", count: 32))

    func make(body: JSONObject? = ["type": "device", "name": ["default": "Kettle", "translations": ["ja": "ケトル"]], "d": 20.5]) -> SignedRevision {
        let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [String(repeating: "ab", count: 32)],
            versionVector: VersionVector(["00000000000000a1": 2]), author: author.author, hlc: HLC(wall: 1_780_000_000_000, logical: 3), body: body)
        return r.signed(signature: author.sign(r.signingBytes))
    }

    @Test func roundTripKeepsBytesIdAndSignature() throws {
        let s = make()
        let decoded = try SignedRevision.decode(s.bytes)
        #expect(decoded.id == s.id)
        #expect(decoded.revision == s.revision)
        #expect(decoded.bytes == s.bytes)
        #expect(s.id == ContentHash.sha256Hex(s.revision.signingBytes))
        try decoded.verify(keys: KeyBook())
        let tomb = try SignedRevision.decode(make(body: nil).bytes)
        #expect(tomb.revision.isTombstone)
    }

    @Test func everyChangedByteIsRejected() throws {
        let s = make()
        for i in s.bytes.indices {
            var bytes = s.bytes
            bytes[i] ^= 0x01
            var accepted = false
            if let d = try? SignedRevision.decode(bytes), (try? d.verify(keys: KeyBook())) != nil { accepted = true }
            #expect(!accepted, "byte \(i) changed and still accepted")
        }
    }

    @Test func wrongKeyIsRejected() throws {
        let other = key(seedHex: String(repeating: "02", count: 32))
        // Claims author's node but is signed by another key (and carries that key).
        let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["00000000000000a1": 1]),
            author: .init(nodeID: author.nodeID, publicKey: other.publicKey), hlc: HLC(wall: 1), body: ["type": "tool"])
        let forged = r.signed(signature: other.sign(r.signingBytes))
        #expect { try SignedRevision.decode(forged.bytes).verify(keys: KeyBook()) } throws: { ($0 as? RevisionError)?.code == .wrongKey }
        // The right key but someone else's signature.
        let r2 = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["00000000000000a1": 1]),
            author: author.author, hlc: HLC(wall: 1), body: ["type": "tool"])
        let badSig = r2.signed(signature: other.sign(r2.signingBytes))
        #expect { try SignedRevision.decode(badSig.bytes).verify(keys: KeyBook()) } throws: { ($0 as? RevisionError)?.code == .badSignature }
    }

    /// `verifyAll` (one batch, then one by one when it fails) says exactly what `verify` of each
    /// says, wherever the bad ones sit among good ones.
    @Test func verifyingManyGivesEachRevisionsOwnVerdict() throws {
        let other = key(seedHex: String(repeating: "02", count: 32))
        /// Signed by `signer`, naming `node`'s node and `key` as the author.
        func revision(_ i: Int, by signer: NodeKey, node: NodeKey? = nil, key: [UInt8]? = nil) -> SignedRevision {
            let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["00000000000000a1": Int64(i + 1)]),
                author: .init(nodeID: (node ?? signer).nodeID, publicKey: key ?? signer.publicKey), hlc: HLC(wall: Int64(i + 1)), body: ["type": "tool", "n": .int(Int64(i))])
            return r.signed(signature: signer.sign(r.signingBytes))
        }
        let good = (0..<30).map { revision($0, by: $0 % 3 == 0 ? other : author) }
        #expect(SignedRevision.verifyAll(good, keys: KeyBook()).allSatisfy { $0 == nil })
        var mixed = good
        mixed[4] = revision(4, by: other, node: author, key: author.publicKey)  // the author's key, another's signature
        mixed[9] = revision(9, by: other, node: author)  // another's key for the author's node
        mixed[17] = try SignedRevision.decode(Array(String(decoding: good[17].bytes, as: UTF8.self).replacingOccurrences(of: "\"n\":17", with: "\"n\":18").utf8))
        let verdicts = SignedRevision.verifyAll(mixed, keys: KeyBook())
        for (i, s) in mixed.enumerated() {
            let alone: RevisionError.Code? = { () -> RevisionError.Code? in do throws(RevisionError) { try s.verify(keys: KeyBook()); return nil } catch { return error.code } }()
            #expect(verdicts[i]?.code == alone, "revision \(i)")
        }
        #expect(verdicts.compactMap { $0?.code } == [.badSignature, .wrongKey, .badSignature])
        #expect(verdicts[4] != nil && verdicts[9] != nil && verdicts[17] != nil)
    }

    @Test func nonCanonicalAndOversizedAreRejected() {
        let s = make()
        let spaced = Array(String(decoding: s.bytes, as: UTF8.self).replacingOccurrences(of: ",", with: ", ").utf8)
        #expect { try SignedRevision.decode(spaced) } throws: { ($0 as? RevisionError)?.code == .notCanonical }
        let big = make(body: ["blob": .string(String(repeating: "x", count: Revision.maxBytes))])
        #expect { try SignedRevision.decode(big.bytes) } throws: { ($0 as? RevisionError)?.code == .tooLarge }
    }

    /// Mutated inputs (cut, spliced, bytes inserted, deleted or changed) never crash the
    /// decoder and are never accepted with a valid signature unless they are the original.
    @Test func fuzzDecoder() {
        var rng = SplitMix64(seed: 42)
        let original = make()
        for _ in 0..<3000 {
            var b = original.bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: b.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...b.count, using: &rng))
                case 2: if b.count > 1 { b.remove(at: Int.random(in: 0..<b.count, using: &rng)) }
                default: b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
                }
            }
            if let d = try? SignedRevision.decode(b), (try? d.verify(keys: KeyBook())) != nil {
                #expect(b == original.bytes)
            }
        }
    }
}

/// A small deterministic generator for property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `Protocol/vectors/revisions.json`: revisions signed with fixed keys (Ed25519 is
/// deterministic, so re-signing must give the same bytes) and broken variants with the error
/// each must give. `THINGDATA_WRITE_VECTORS=1 swift test --filter revisionVectors` rewrites it.
@Suite struct RevisionVectorTests {
    static let seeds = ["A": String(repeating: "01", count: 32), "B": String(repeating: "02", count: 32)]

    static func cases() -> [(name: String, key: String, revision: Revision)] {
        let a = key(seedHex: seeds["A"]!), b = key(seedHex: seeds["B"]!)
        let create = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["00000000000000a1": 1]),
            author: a.author, hlc: HLC(wall: 1_795_000_000_000),
            body: ["type": "device", "name": ["default": "Kettle", "translations": ["ja": "ケトル", "el": "Βραστήρας"]], "manufacturer": ["name": "Acme \"Quality\"\n"],
                "properties": ["dimensions": ["length": 20.5, "width": 15.0, "height": 1e-7], "materials": ["steel"]], "created_at": "2026-11-21T10:00:00.000000Z", "updated_at": nil])
        let update = Revision(kind: .thing, entityID: create.entityID, parents: [create.id], versionVector: VersionVector(["00000000000000a1": 1, "00000000000000b2": 1]),
            author: b.author, hlc: HLC(wall: 1_795_000_000_500, logical: 2), body: ["type": "tool", "created_at": "2026-11-21T10:00:00.000000Z", "updated_at": "2026-11-21T10:00:01.000000Z"])
        let delete = Revision(kind: .thing, entityID: create.entityID, parents: [update.id], versionVector: VersionVector(["00000000000000a1": 2, "00000000000000b2": 1]),
            author: a.author, hlc: HLC(wall: 1_795_000_001_000), body: nil)
        return [("create", "A", create), ("update by another node", "B", update), ("delete", "A", delete)]
    }

    static func generate() -> JSONValue {
        var keys = JSONObject()
        for (name, seed) in seeds.sorted(by: { $0.key < $1.key }) {
            let k = key(seedHex: seed)
            keys[name] = ["seed": .string(seed), "public_key": .string(Base64URL.encode(k.publicKey)), "node_id": .string(k.nodeID.compact)]
        }
        var revisions: [JSONValue] = []
        var signed: [SignedRevision] = []
        for c in cases() {
            let k = key(seedHex: seeds[c.key]!)
            let s = c.revision.signed(signature: k.sign(c.revision.signingBytes))
            signed.append(s)
            revisions.append(["name": .string(c.name), "key": .string(c.key), "signing_bytes": .string(String(decoding: s.signingBytes, as: UTF8.self)),
                "id": .string(s.id), "signed": .string(String(decoding: s.bytes, as: UTF8.self))])
        }
        let good = String(decoding: signed[0].bytes, as: UTF8.self)
        let other = key(seedHex: seeds["B"]!)
        var stolen = cases()[0].revision
        stolen.author = .init(nodeID: stolen.author.nodeID, publicKey: other.publicKey)
        let invalid: [(String, String, RevisionError.Code)] = [
            ("a changed body byte", good.replacingOccurrences(of: "Kettle", with: "Kettlf"), .badSignature),
            ("whitespace added", good.replacingOccurrences(of: "\"format\":1", with: "\"format\": 1"), .notCanonical),
            ("keys out of order", good.replacingOccurrences(of: "{\"author\":", with: "{\"zz\":0,\"author\":"), .notCanonical),
            ("an unknown field", String(good.dropLast()) + ",\"zz\":0}", .malformed),
            ("another node's key claiming A's id", String(decoding: stolen.signed(signature: other.sign(stolen.signingBytes)).bytes, as: UTF8.self), .wrongKey),
            ("no signature", good.replacingOccurrences(of: #","signature":"[^"]*""#, with: "", options: .regularExpression), .malformed),
        ]
        return [
            "description": "Revisions signed with fixed Ed25519 keys (seeds in hex). signing_bytes are the RFC 8785 bytes without the signature; id is their SHA-256; signed is the wire form. Each invalid entry must be refused with the given error code.",
            "keys": .object(keys), "revisions": .array(revisions),
            "invalid": .array(invalid.map { ["name": .string($0.0), "bytes": .string($0.1), "error": .string($0.2.rawValue)] }),
        ]
    }

    @Test func revisionVectors() throws {
        let path = ProtocolVectors.directory.appendingPathComponent("revisions.json")
        let fresh = Self.generate()
        if ProcessInfo.processInfo.environment["THINGDATA_WRITE_VECTORS"] != nil {
            try Data((JSONSerializer.pretty(fresh) + "\n").utf8).write(to: path)
        }
        let stored = try ProtocolVectors.json("revisions.json")
        for r in stored["revisions"]!.arrayValue! {
            let bytes = Array(r["signed"]!.stringValue!.utf8)
            let s = try SignedRevision.decode(bytes)
            #expect(s.id == r["id"]!.stringValue!)
            #expect(s.signingBytes == Array(r["signing_bytes"]!.stringValue!.utf8))
            #expect(ContentHash.sha256Hex(s.signingBytes) == s.id)
            try s.verify(keys: KeyBook())
            // Re-signing with the seed gives the same bytes.
            let k = key(seedHex: stored["keys"]![r["key"]!.stringValue!]!["seed"]!.stringValue!)
            #expect(s.revision.signed(signature: k.sign(s.revision.signingBytes)).bytes == bytes)
        }
        #expect(stored["revisions"] == fresh["revisions"])
        // Decoded in turn with one memo of the last author (as a page is), good and bad lines
        // mixed and several authors in a row, each line gives what it gives decoded alone.
        var lines = stored["revisions"]!.arrayValue!.map { Array($0["signed"]!.stringValue!.utf8) }
        lines += stored["invalid"]!.arrayValue!.map { Array($0["bytes"]!.stringValue!.utf8) }
        lines += lines.reversed()
        #expect(Set(lines.compactMap { try? SignedRevision.decode($0).revision.author.nodeID }).count > 1)
        var authors = AuthorMemo()
        for line in lines {
            let alone = Result { () throws(RevisionError) in try SignedRevision.decode(line) }
            let memo = Result { () throws(RevisionError) in try SignedRevision.decode(line, authors: &authors) }
            switch (alone, memo) {
            case (.success(let a), .success(let b)):
                #expect(a.revision == b.revision && a.id == b.id)
                func verdict(_ s: SignedRevision) -> RevisionError? {
                    do throws(RevisionError) { try s.verify(keys: KeyBook()) } catch { return error }
                    return nil
                }
                #expect(verdict(a) == verdict(b))
            case (.failure(let a), .failure(let b)): #expect(a == b)
            default: Issue.record("decoding with the memo differs from decoding alone: \(alone) against \(memo)")
            }
        }
        for bad in stored["invalid"]!.arrayValue! {
            let code = bad["error"]!.stringValue!
            #expect(throws: RevisionError.self, "\(bad["name"]!)") {
                do throws(RevisionError) { try SignedRevision.decode(Array(bad["bytes"]!.stringValue!.utf8)).verify(keys: KeyBook()) } catch {
                    #expect(error.code.rawValue == code, "\(bad["name"]!)")
                    throw error
                }
            }
        }
    }
}
