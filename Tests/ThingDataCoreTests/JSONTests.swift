import Testing
import ThingDataCore

@Suite struct JSONParserTests {
    @Test func parsesEveryValueKindAndKeepsKeyOrder() throws {
        let v = try JSONParser.parse(#"{"z":1,"a":[true,false,null],"m":-2.5e3,"s":"caf\u00e9 \ud83d\ude00","n":{}}"#)
        #expect(v.objectValue?.keys == ["z", "a", "m", "s", "n"])
        #expect(v["z"] == .int(1))
        #expect(v["a"] == [true, false, nil])
        #expect(v["m"] == .double(-2500))
        #expect(v["s"] == .string("café 😀"))
        #expect(v["n"] == .object([:]))
    }

    /// Objects written as literals keep their members' order, and a repeated key its last value
    /// in its first place, as parsed objects do.
    @Test func literalObjectsKeepOrderAndTheLastOfARepeatedKey() throws {
        let literal: JSONValue = ["b": 1, "a": "x", "b": 3, "c": nil]
        let object: JSONObject = ["b": 1, "a": "x", "b": 3, "c": nil]
        let parsed = try JSONParser.parse(Array(#"{"b":1,"a":"x","b":3,"c":null}"#.utf8))
        for value in [literal, .object(object)] {
            #expect(value == parsed)
            #expect(value.objectValue?.keys == ["b", "a", "c"])
            #expect(value["b"] == 3)
        }
        #expect(JSONObject([(key: "k", value: 1), (key: "k", value: 2)]).entries.map(\.value) == [2])
    }

    /// Integers are read digit by digit up to 18 digits and through text beyond; both give
    /// what Swift's own conversion gives, at every length and at the edges of Int64.
    @Test func integersOfEveryLengthAndTheEdgesOfInt64() throws {
        var texts = ["0", "-0", "7", "-7", "9223372036854775807", "-9223372036854775808"]
        var digits = ""
        for d in 1...19 {
            digits += String(d % 10)
            texts += [digits, "-" + digits]
        }
        for text in texts {
            #expect(try JSONParser.parse(text) == .int(Int64(text)!), "\(text)")
            #expect(try JSONParser.parse("[\(text), \(text)]") == .array([.int(Int64(text)!), .int(Int64(text)!)]), "\(text) in an array")
        }
        // One past Int64 falls back to a double, as before.
        #expect(try JSONParser.parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONParser.parse("-9223372036854775809") == .double(-9223372036854775809))
    }

    /// Strings with and without escapes, and an escape at either end.
    @Test func stringsWithAndWithoutEscapes() throws {
        let cases: [(String, String)] = [(#""""#, ""), (#""plain""#, "plain"), (#""a\nb""#, "a\nb"), (#""\"x""#, "\"x"),
            (#""x\"""#, "x\""), (#""ケトル \u0041""#, "ケトル A"), (#""\\""#, "\\"), (#""long text without any escape, longer than fifteen bytes""#, "long text without any escape, longer than fifteen bytes")]
        for (json, text) in cases { #expect(try JSONParser.parse(json) == .string(text), "\(json)") }
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "tru", "{\"a\":1}x", "\"a\nb\"", "\"\\ud800\"", "\"\\udc00x\"", "NaN", "1e999"])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    /// Nested containers, a repeated key (its first place, its last value), and bytes in an
    /// array, in place or from a lazy collection give the same values.
    @Test func nestedContainersAndRepeatedKeysFromAnyBytes() throws {
        let text = #"{"a":1,"b":{"a":[1,[2,{"c":[]}],{}],"a":2,"b":null},"a":3,"d":[{"e":"f","e":"g"},[[]]]}"#
        let expected: JSONValue = ["a": 3, "b": ["a": 2, "b": nil], "d": [["e": "g"], [[]]]]
        let bytes = Array(text.utf8)
        let parsed = [
            try JSONParser.parse(bytes),
            try bytes.withUnsafeBytes { try JSONParser.parse($0) },
            try JSONParser.parse(bytes.lazy.map { $0 }),
        ]
        for value in parsed {
            #expect(value == expected)
            #expect(value.objectValue?.keys == ["a", "b", "d"])
            #expect(value["b"]?.objectValue?.keys == ["a", "b"])
        }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(#"{"a":[1,{"b":2}],"c":[3,"#) }
        #expect(try JSONParser.parse(#"[{"a":[1,2]},{"a":[3]}]"#) == [["a": [1, 2]], ["a": [3]]])
    }

    @Test func rejectsInvalidUTF8WithItsOffset() {
        let bytes: [UInt8] = Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("invalid UTF-8 was accepted")
        } catch {
            #expect(error.reason == .invalidUTF8)
            #expect(error.offset == 6)
        }
        // Overlong encoding and a UTF-16 surrogate encoded in UTF-8 are invalid too.
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC0, 0xAF, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
    }

    @Test func depthLimitIsEnforcedWhileParsing() throws {
        let ok = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        #expect(try JSONParser.parse(ok, maxDepth: 20).depth == 20)
        let tooDeep = String(repeating: "[", count: 21) + String(repeating: "]", count: 21)
        #expect(throws: JSONParser.Failure(reason: .tooDeep(limit: 20), offset: 20)) { try JSONParser.parse(tooDeep, maxDepth: 20) }
        // A million open brackets must not reach the stack.
        let bomb = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(bomb, maxDepth: 20) }
    }

    @Test func serializerRoundTrips() throws {
        let text = #"{"name":{"default":"Kettle \"K3\"","translations":{"ja":"電気ケトル"}},"n":[1,2.5,-0.001,null],"ctl":"\u0001\n\t"}"#
        let v = try JSONParser.parse(text)
        let again = try JSONParser.parse(JSONSerializer.serialize(v))
        #expect(again == v)
        #expect(JSONSerializer.string(v).contains("電気ケトル"))  // non-ASCII stays readable
        #expect(JSONSerializer.string(["a": 30.0]) == #"{"a":30.0}"#)
    }

    /// Exact bytes: strings copied whole when nothing needs escaping, escaped byte by byte
    /// otherwise, short (inline) and long strings alike.
    @Test func stringsAreEscapedExactlyWhereRFC8259Requires() {
        let cases: [(String, String)] = [("", #""""#), ("kettle", #""kettle""#), ("電気ケトル", #""電気ケトル""#),
            ("a long string of plain text with no escapes at all", #""a long string of plain text with no escapes at all""#),
            ("a\"b\\c\n\u{1}é", #""a\"b\\c\n\u0001é""#), ("\"", #""\"""#), ("end\t", #""end\t""#),
            ("a long string whose very last character needs an escape\"", #""a long string whose very last character needs an escape\"""#)]
        for (text, json) in cases {
            #expect(JSONSerializer.string(.string(text)) == json, "\(json)")
            #expect(String(decoding: CanonicalJSON.encode(.string(text)), as: UTF8.self) == json, "canonical \(json)")
        }
    }
}

@Suite struct MergePatchTests {
    // The examples of RFC 7396, appendix A.
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, "null", "null"),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func rfc7396Examples(target: String, patch: String, expected: String) throws {
        let result = MergePatch.apply(try JSONParser.parse(patch), to: try JSONParser.parse(target))
        #expect(result == (try JSONParser.parse(expected)))
    }
}
