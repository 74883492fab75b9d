import Foundation
import Testing
import ThingDataCore

@Suite struct FormatTests {
    @Test(arguments: ["en", "pt-BR", "zh-Hant", "zh-Hant-TW", "sr-Latn-RS", "es-419", "de-CH-1901", "x-klingon", "en-US-x-twain", "zh-yue-HK", "ja"])
    func acceptsLanguageTags(_ tag: String) { #expect(Formats.isLanguageTag(tag)) }

    @Test(arguments: ["", "e", "english-language", "en_US", "en-", "-en", "123", "en-US-", "abcd", "en--US", "x-"])
    func rejectsMalformedLanguageTags(_ tag: String) { #expect(!Formats.isLanguageTag(tag)) }

    @Test func urlsEmailsDatesAndUUIDs() {
        #expect(Formats.isURL("https://baristaplus.example.com/support?x=1"))
        #expect(Formats.isURL("http://127.0.0.1:8000"))
        #expect(!Formats.isURL("ftp://example.com"))
        #expect(!Formats.isURL("https://"))
        #expect(!Formats.isURL("https://exa mple.com"))
        #expect(!Formats.isURL("baristaplus.example.com"))
        #expect(Formats.isEmail("support@baristaplus.example.com"))
        #expect(!Formats.isEmail("support@localhost"))
        #expect(!Formats.isEmail("a@@b.c"))
        #expect(!Formats.isEmail("no-at-sign.example.com"))
        #expect(Formats.isDateOrDateTime("2024-01-01"))
        #expect(Formats.isDateOrDateTime("2024-02-29T10:00:00Z"))
        #expect(Formats.isDateOrDateTime("2024-02-29T10:00:00.123+02:00"))
        #expect(!Formats.isDateOrDateTime("2023-02-29"))
        #expect(!Formats.isDateOrDateTime("2024-13-01"))
        #expect(!Formats.isDateOrDateTime("2024-01-01T25:00"))
        #expect(!Formats.isDateOrDateTime("January 1st"))
        #expect(Formats.isUUID("3F2504E0-4F89-11D3-9A0C-0305E82C3301"))
        #expect(!Formats.isUUID("3F2504E04F8911D39A0C0305E82C3301"))
    }
}

@Suite struct ContentValidationTests {
    let coffee: JSONValue = [
        "type": "device",
        "name": ["default": "Coffee Machine", "translations": ["es": "Máquina de Café", "ja": "コーヒーメーカー"]],
        "manufacturer": ["name": "BaristaPlus", "website": "https://example.com", "contact": "info@example.com"],
        "tags": ["kitchen"],
        "x_custom": ["kept": true],
        "id": "ignored-because-server-managed",
    ]

    @Test func normalizesAThingAsTheOriginalFillsIt() throws {
        let body = try ContentRules.normalize(.thing, coffee)
        #expect(body.keys == ["type", "name", "manufacturer", "properties", "tags", "x_custom"])
        #expect(body["properties"] == ["dimensions": nil, "materials": [], "manufacturing_date": nil, "serial_number": nil])
        #expect(body["x_custom"] == ["kept": true])  // unknown fields round-trip unchanged
        #expect(body["id"] == nil)
    }

    @Test func reportsEveryIssueWithItsPath() {
        let bad: JSONValue = [
            "type": "appliance",
            "name": ["default": "", "translations": ["english": "x"]],
            "manufacturer": ["name": 5, "contact": "nope"],
            "properties": ["dimensions": ["length": -1], "materials": "steel"],
        ]
        do {
            _ = try ContentRules.normalize(.thing, bad)
            Issue.record("invalid thing accepted")
        } catch {
            let byPath = Dictionary(error.issues.map { ($0.loc.map(\.description).joined(separator: "."), $0.type) }, uniquingKeysWith: { a, _ in a })
            #expect(byPath["body.type"] == "enum")
            #expect(byPath["body.name.default"] == "string_too_short")
            #expect(byPath["body.name.translations.english"] == "value_error")
            #expect(byPath["body.manufacturer.name"] == "string_type")
            #expect(byPath["body.manufacturer.contact"] == "value_error")
            #expect(byPath["body.properties.dimensions.length"] == "greater_than_equal")
            #expect(byPath["body.properties.materials"] == "list_type")
            #expect(error.issues.count == 7)
        }
    }

    @Test func storiesGetAVersionThatMovesOnEachReplace() throws {
        let body = try ContentRules.normalize(.story, ["type": "repair", "procedure": [["order": 1, "description": ["default": "Open it"]]]])
        let t0 = Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000)
        let story = ContentRules.create(.story, body: body, id: "00000000-0000-0000-0000-000000000001", now: t0)
        #expect(story.body["version"]?["number"] == "1.0.0")
        #expect(story.body["procedure"]?.arrayValue?.first?["warnings"] == [])
        let edited = ContentRules.replace(story, with: body, now: Timestamp(microsecondsSinceEpoch: t0.microsecondsSinceEpoch + 1))
        #expect(edited.body["version"]?["number"] == "1.1.0")
        #expect(edited.body["version"]?["history"]?.arrayValue?.count == 1)
        #expect(edited.createdAt == t0 && edited.updatedAt != nil)
    }

    @Test func theOriginalsOldRelationshipShapeIsUpgraded() throws {
        let a = "00000000-0000-0000-0000-00000000000a", b = "00000000-0000-0000-0000-00000000000b"
        let body = try ContentRules.normalize(.relationship, ["thing_id": .string(a), "relationship_type": "has_component", "target_uri": .string(b), "relation_metadata": ["position": "top"]])
        #expect(body["source_type"] == "thing" && body["source_id"] == .string(a))
        #expect(body["target_type"] == "thing" && body["target_id"] == .string(b))
        #expect(body["metadata"] == ["position": "top"])
        #expect(body["direction"] == "unidirectional")
        #expect(ContentRules.references(of: .relationship, body: body).map(\.id) == [a, b])
    }

    @Test func renderedThingHasTheOriginalsFields() throws {
        let e = ContentRules.create(.thing, body: try ContentRules.normalize(.thing, coffee), id: "00000000-0000-0000-0000-0000000000ff", now: Timestamp(microsecondsSinceEpoch: 0))
        let r = e.rendered(relationships: [])
        #expect(r.objectValue?.keys.prefix(2) == ["id", "uri"])
        #expect(r["uri"] == "thing:00000000-0000-0000-0000-0000000000ff")
        #expect(r["created_at"] == "1970-01-01T00:00:00.000000Z")
        #expect(r["updated_at"] == .null)
        #expect(r["relationships"] == [])
    }
}

@Suite struct TimestampTests {
    @Test func formatsCivilDates() {
        #expect(Timestamp(microsecondsSinceEpoch: 951_782_400_000_000).description == "2000-02-29T00:00:00.000000Z")
        #expect(Timestamp(microsecondsSinceEpoch: 1_795_286_917_123_456).description == "2026-11-21T18:48:37.123456Z")
        #expect(Timestamp(microsecondsSinceEpoch: -1).description == "1969-12-31T23:59:59.999999Z")
    }
}

@Suite struct RenderedJSONTests {
    @Test(arguments: [#"{"type":"tool","name":{"default":"x"}}"#, #"{ "type": "tool", "name": {"default": "x"} }"#, "{}", " { } "])
    func splicedRenderingEqualsTheModel(_ bodyText: String) throws {
        guard case .object(let body) = try JSONParser.parse(bodyText) else { Issue.record("not an object"); return }
        let e = Entity(kind: .thing, id: "00000000-0000-0000-0000-000000000001", body: body, createdAt: Timestamp(microsecondsSinceEpoch: 5), updatedAt: nil)
        let rel = Entity(kind: .relationship, id: "00000000-0000-0000-0000-000000000002", body: ["relationship_type": "x"], createdAt: Timestamp(microsecondsSinceEpoch: 6), updatedAt: Timestamp(microsecondsSinceEpoch: 7))
        let relBytes = JSONSerializer.serialize(rel.rendered())
        let spliced = Entity.renderedJSON(kind: .thing, id: e.id, body: Array(bodyText.utf8), createdAt: e.createdAt, updatedAt: nil, relationships: [relBytes])
        let parsed = try JSONParser.parse(spliced)
        #expect(parsed == e.rendered(relationships: [rel]))
        #expect(parsed.objectValue?.keys == e.rendered(relationships: [rel]).objectValue?.keys)
    }

    /// A create's answer is spliced from the body's bytes; it must be the rendered model's
    /// serialization byte for byte, with and without relationships, for every kind.
    @Test func renderedBytesAreTheRenderedModelSerialized() throws {
        let rel = Entity(kind: .relationship, id: "00000000-0000-0000-0000-000000000002", body: ["relationship_type": "part_of", "metadata": ["k": "v"]], createdAt: Timestamp(microsecondsSinceEpoch: 6), updatedAt: Timestamp(microsecondsSinceEpoch: 7))
        let entities = [
            Entity(kind: .thing, id: "00000000-0000-0000-0000-000000000001", body: ["type": "tool", "name": ["default": "Zange \"<x>\"", "translations": ["ja": "ペンチ"]]], createdAt: Timestamp(microsecondsSinceEpoch: 5), updatedAt: nil),
            Entity(kind: .story, id: "00000000-0000-0000-0000-000000000003", body: ["type": "repair", "procedure": [], "version": ["number": 2, "date": "d", "history": []]], createdAt: Timestamp(microsecondsSinceEpoch: 8), updatedAt: Timestamp(microsecondsSinceEpoch: 9)),
            Entity(kind: .guide, id: "00000000-0000-0000-0000-000000000004", body: [:], createdAt: Timestamp(microsecondsSinceEpoch: 10), updatedAt: nil),
            rel,
        ]
        for e in entities {
            for relationships in [nil, [], [rel]] as [[Entity]?] {
                #expect(e.renderedBytes(relationships: relationships) == JSONSerializer.serialize(e.rendered(relationships: relationships)), "\(e.kind) \(String(describing: relationships?.count))")
            }
        }
    }
}

@Suite struct IdCaseTests {
    @Test func referencesAreStoredLowercase() throws {
        let body = try ContentRules.normalize(.story, ["thing_id": "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "type": "repair", "procedure": []])
        #expect(body["thing_id"] == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    }
}

@Suite("New entity ids (UUID version 7)")
struct EntityIDTests {
    @Test func anIdIsAVersion7UUIDCarryingItsMillisecond() {
        var rng = SplitMix64(seed: 7)
        let ms: Int64 = 1_795_000_000_123  // 2026-11-18
        let id = EntityID.make(milliseconds: ms, random: &rng)
        #expect(Formats.isUUID(id))
        #expect(id == id.lowercased())
        let hex = Array(id.replacingOccurrences(of: "-", with: ""))
        #expect(hex[12] == "7")  // version
        #expect(["8", "9", "a", "b"].contains(hex[16]))  // variant 10xx
        #expect(Int64(String(hex[0..<12]), radix: 16) == ms)
        #expect(UUID(uuidString: id) != nil)
    }

    @Test func idsSortByTimeAndDifferWithinAMillisecond() {
        var rng = SplitMix64(seed: 11)
        let ids = (0..<200).map { i in EntityID.make(milliseconds: 1_795_000_000_000 + Int64(i / 4), random: &rng) }
        #expect(Set(ids).count == ids.count)
        // Ids of later milliseconds sort after every id of earlier ones.
        for i in stride(from: 4, to: ids.count, by: 4) {
            #expect(ids[(i - 4)..<i].allSatisfy { $0 < ids[i] })
        }
    }
}
