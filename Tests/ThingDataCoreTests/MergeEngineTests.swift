import Foundation
import Testing
import ThingDataCore
import ThingDataSigning

@Suite struct MergeEngineTests {
    struct Author {
        var key: NodeKey
        var actor: String
    }

    /// Builds a case's revisions as `Protocol/vectors/merge-cases.json` describes.
    static func build(_ c: JSONValue, doc: JSONValue) -> (nodes: [MergeEngine.Node], names: [String: RevisionID]) {
        let kind = EntityKind(rawValue: doc["entity"]!["kind"]!.stringValue!)!
        let entity = doc["entity"]!["entity_id"]!.stringValue!
        var authors: [String: Author] = [:]
        for (name, a) in doc["authors"]!.objectValue! {
            authors[name] = Author(key: key(seedHex: a["seed"]!.stringValue!), actor: a["actor"]!.stringValue!)
        }
        var names: [String: RevisionID] = [:]
        var vectors: [RevisionID: VersionVector] = [:]
        var nodes: [MergeEngine.Node] = []
        for r in c["revisions"]!.arrayValue! {
            let author = authors[r["author"]!.stringValue!]!
            let parents = r["parents"]!.arrayValue!.map { names[$0.stringValue!]! }
            let hlc = r["hlc"]!.arrayValue!
            let revision = Revision(kind: kind, entityID: entity, parents: parents,
                versionVector: VersionVector.next(actor: author.actor, parents: parents.map { vectors[$0]! }),
                author: author.key.author, hlc: HLC(wall: hlc[0].intValue!, logical: hlc[1].intValue!),
                body: r["tombstone"] == .bool(true) ? nil : r["body"]!.objectValue!)
            // Through the wire form, as another node would see it.
            let signed = try! SignedRevision.decode(revision.signed(signature: author.key.sign(revision.signingBytes)).bytes)
            names[r["name"]!.stringValue!] = signed.id
            vectors[signed.id] = revision.versionVector
            nodes.append(.init(id: signed.id, revision: signed.revision))
        }
        return (nodes, names)
    }

    static func canonical(_ v: JSONValue?) -> String { String(decoding: CanonicalJSON.encode(v ?? .null), as: UTF8.self) }

    @Test func protocolMergeCases() throws {
        let doc = try ProtocolVectors.json("merge-cases.json")
        for c in doc["cases"]!.arrayValue! {
            let name = c["name"]!.stringValue!
            let (nodes, names) = Self.build(c, doc: doc)
            let byID = Dictionary(uniqueKeysWithValues: names.map { ($1, $0) })
            let expect = c["expect"]!
            // Every delivery order, with duplicates, gives the same result.
            var rng = SplitMix64(seed: 7)
            for _ in 0..<6 {
                let shuffled = (nodes + nodes.prefix(2)).shuffled(using: &rng)
                let result = MergeEngine.merge(shuffled)
                #expect(Self.canonical(result.view.map(JSONValue.object)) == Self.canonical(expect["view"]), "\(name): view")
                #expect(result.heads.map { byID[$0]! }.sorted() == expect["heads"]!.arrayValue!.map { $0.stringValue! }.sorted(), "\(name): heads")
                guard let conflict = expect["conflict"], conflict != .null else {
                    #expect(result.conflict == nil, "\(name): no conflict expected")
                    continue
                }
                guard let got = result.conflict else {
                    Issue.record("\(name): a conflict was expected")
                    continue
                }
                #expect(got.base.map { byID[$0]! } == conflict["base"]?.stringValue, "\(name): base")
                #expect(got.deletedBy.map { byID[$0]! } == conflict["deleted_by"]!.arrayValue!.map { $0.stringValue! }, "\(name): deleted_by")
                let fields = conflict["fields"]!.arrayValue!
                #expect(got.fields.count == fields.count, "\(name): field conflicts")
                for (g, e) in zip(got.fields, fields) {
                    #expect(g.path.map(\.json) == e["path"]!.arrayValue!, "\(name): path")
                    #expect(Self.canonical(g.base) == Self.canonical(e["base"]), "\(name): base value")
                    #expect(byID[g.winner] == e["winner"]!.stringValue, "\(name): winner")
                    let sides = e["sides"]!.objectValue!
                    #expect(g.sides.map { byID[$0.revision]! } == sides.keys, "\(name): sides in rank order")
                    for side in g.sides { #expect(Self.canonical(side.value) == Self.canonical(sides[byID[side.revision]!])) }
                }
            }
        }
    }

    // MARK: Properties over random histories

    static let authors = (1...3).map { i in Author(key: key(seedHex: String(repeating: String(format: "%02x", i), count: 32)), actor: String(format: "%016x", i)) }
    static let languages = ["en", "fr", "de", "es"]
    static let materials: [JSONValue] = ["steel", "glass", "plastic", "wood", "copper"]

    /// A random DAG of edits to one thing: each revision has 1 to 3 parents among the earlier
    /// ones (or none, the first), a random author and HLC, random field edits, sometimes a delete.
    static func randomHistory(_ rng: inout SplitMix64, size: Int) -> [MergeEngine.Node] {
        var nodes: [MergeEngine.Node] = []
        var vectors: [RevisionID: VersionVector] = [:]
        var bodies: [RevisionID: JSONObject] = [:]
        for i in 0..<size {
            let author = authors.randomElement(using: &rng)!
            let parentCount = i == 0 ? 0 : Int.random(in: 1...min(3, i), using: &rng)
            let parents = Array(Set((0..<parentCount).map { _ in nodes.randomElement(using: &rng)!.id }))
            var body: JSONObject = parents.compactMap { bodies[$0] }.first ?? [
                "type": "device", "name": ["default": "Kettle", "translations": [:]], "properties": ["materials": ["steel"]], "created_at": "2026-01-01T00:00:00.000000Z",
            ]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: body["name"] = ["default": .string("Kettle \(Int.random(in: 0..<4, using: &rng))"), "translations": body["name"]?["translations"] ?? [:]]
                case 1:
                    var name = body["name"]?.objectValue ?? [:]
                    var t = name["translations"]?.objectValue ?? [:]
                    t[languages.randomElement(using: &rng)!] = .string("t\(Int.random(in: 0..<3, using: &rng))")
                    name["translations"] = .object(t)
                    body["name"] = .object(name)
                case 2: body["properties"] = ["materials": .array(materials.filter { _ in Bool.random(using: &rng) })]
                default: body["manufacturer"] = ["name": .string("M\(Int.random(in: 0..<3, using: &rng))")]
                }
            }
            let tombstone = i > 0 && Int.random(in: 0..<10, using: &rng) == 0
            let r = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: parents,
                versionVector: VersionVector.next(actor: author.actor, parents: parents.map { vectors[$0]! }), author: author.key.author,
                hlc: HLC(wall: Int64(1000 + Int.random(in: 0..<50, using: &rng)), logical: Int64(i)), body: tombstone ? nil : body)
            let id = r.id
            vectors[id] = r.versionVector
            if !tombstone { bodies[id] = body }
            nodes.append(.init(id: id, revision: r))
        }
        return nodes
    }

    static func fingerprint(_ r: MergeResult) -> String {
        canonical(r.view.map(JSONValue.object)) + "|" + r.heads.joined(separator: ",") + "|" + canonical(r.conflict?.json)
    }

    /// Convergence: any order, any duplicates, gives byte-identical views and conflicts.
    /// Commutativity: merging A∪B equals merging B∪A. Idempotence: S∪S equals S.
    @Test func convergenceCommutativityIdempotence() {
        var rng = SplitMix64(seed: 2026)
        for round in 0..<150 {
            let history = Self.randomHistory(&rng, size: Int.random(in: 2...25, using: &rng))
            let reference = Self.fingerprint(MergeEngine.merge(history))
            for _ in 0..<4 {
                let shuffled = history.shuffled(using: &rng)
                #expect(Self.fingerprint(MergeEngine.merge(shuffled)) == reference, "round \(round): order changed the result")
                let withDuplicates = shuffled + shuffled.shuffled(using: &rng).prefix(Int.random(in: 1...history.count, using: &rng))
                #expect(Self.fingerprint(MergeEngine.merge(withDuplicates)) == reference, "round \(round): duplicates changed the result")
                let cut = Int.random(in: 0...history.count, using: &rng)
                let a = Array(shuffled.prefix(cut)), b = Array(shuffled.dropFirst(cut))
                #expect(Self.fingerprint(MergeEngine.merge(a + b)) == Self.fingerprint(MergeEngine.merge(b + a)))
            }
            // The view always comes from the revisions: every head's edits are either in the
            // view or named in a conflict; a single head is the view.
            let result = MergeEngine.merge(history)
            if result.heads.count == 1, let head = history.first(where: { $0.id == result.heads[0] }) {
                #expect(result.view == head.revision.body)
            }
        }
    }

    @Test func headsAreCapped() {
        var nodes: [MergeEngine.Node] = []
        let root = Revision(kind: .thing, entityID: "5f0c6a8e-1a7e-4b8a-9a51-0b0f1d2c3e4f", parents: [], versionVector: VersionVector(["0000000000000001": 1]),
            author: Self.authors[0].key.author, hlc: HLC(wall: 1), body: ["n": 0])
        nodes.append(.init(id: root.id, revision: root))
        for i in 1...12 {
            let r = Revision(kind: .thing, entityID: root.entityID, parents: [root.id], versionVector: VersionVector(["0000000000000001": 1, String(format: "%016x", 100 + i): 1]),
                author: Self.authors[i % 3].key.author, hlc: HLC(wall: Int64(10 + i)), body: ["n": .int(Int64(i))])
            nodes.append(.init(id: r.id, revision: r))
        }
        let result = MergeEngine.merge(nodes)
        #expect(result.heads.count == 12)
        #expect(result.conflict?.heads.count == MergeEngine.maxOpenHeads)
        #expect(result.conflict?.overflow.count == 12 - MergeEngine.maxOpenHeads)
        #expect(result.view?["n"] == 12)  // the latest HLC wins provisionally
    }
}

@Suite struct PathTests {
    @Test func valuesAreReadAndSetByKeyAndStepOrder() {
        let story: JSONValue = ["type": "repair", "procedure": [["order": 1, "description": ["default": "Unplug"]], ["order": 3, "description": ["default": "Open"]]]]
        let path: [PathElement] = [.key("procedure"), .step(3), .key("description"), .key("default")]
        #expect(PathElement.value(at: path, in: story) == "Open")
        #expect(PathElement.value(at: [.key("procedure"), .step(2)], in: story) == nil)
        let changed = PathElement.setting("Open the base", at: path, in: story)
        #expect(PathElement.value(at: path, in: changed) == "Open the base")
        #expect(PathElement.value(at: [.key("procedure"), .step(1), .key("description"), .key("default")], in: changed) == "Unplug")
        // A missing step is added in order; nil removes.
        let added = PathElement.setting(["order": 2, "description": ["default": "Wait"]], at: [.key("procedure"), .step(2)], in: changed)
        #expect(added?["procedure"]?.arrayValue?.map { $0["order"] } == [1, 2, 3])
        let removed = PathElement.setting(nil, at: [.key("procedure"), .step(1)], in: added)
        #expect(removed?["procedure"]?.arrayValue?.map { $0["order"] } == [2, 3])
        #expect(PathElement.setting(nil, at: [.key("type")], in: story)?["type"] == nil)
        #expect(PathElement(json: "name") == .key("name") && PathElement(json: 4) == .step(4) && PathElement(json: true) == nil)
    }
}
