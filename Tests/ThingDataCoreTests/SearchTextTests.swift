import Foundation
import Testing
@testable import ThingDataCore

@Suite struct SearchTextTests {
    /// The fold as it was written first: the whole text lowercased and decomposed by
    /// Foundation at once, marks dropped. The table's scalar-by-scalar fold must equal it.
    static func referenceTokens(_ text: String) -> [String] {
        var result: [String] = []
        var word = String.UnicodeScalarView()
        for s in text.lowercased().decomposedStringWithCanonicalMapping.unicodeScalars where !SearchText.isMark(s) {
            if SearchText.isUnspaced(s) {
                if !word.isEmpty { result.append(String(word)); word = String.UnicodeScalarView() }
                result.append(String(s))
            } else if SearchText.isWordScalar(s) {
                SearchText.appendFolded(s, to: &word)
            } else if !word.isEmpty {
                result.append(String(word))
                word = String.UnicodeScalarView()
            }
        }
        if !word.isEmpty { result.append(String(word)) }
        return result
    }

    /// Every scalar of the Basic Multilingual Plane, alone and after a letter, and texts
    /// mixing scripts, combining marks, Hangul, ligatures and letters beyond the BMP.
    @Test func theFoldTableFoldsAsFoundationDoesOverWholeTexts() {
        var differing: [String] = []
        for v in UInt32(0x80)..<0x10000 {
            guard let s = Unicode.Scalar(v) else { continue }
            for text in [String(s), "a" + String(s) + "b", String(s) + "\u{301}"] where SearchText.tokens(text) != Self.referenceTokens(text) {
                differing.append(String(v, radix: 16))
            }
        }
        #expect(differing.isEmpty, "\(differing.prefix(20))")
        let pool = Array("aZéÉßØłİıΣσςΆἌДжЁコーガパ掃除機한국어ﬁﬀǅǄ\u{301}\u{308}\u{0345}\u{093F}ÅÅḱ̀ 𠀋𝐀🙂-_1٣".unicodeScalars)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 1...12, using: &generator) { text.append(pool.randomElement(using: &generator)!) }
            let string = String(text)
            #expect(SearchText.tokens(string) == Self.referenceTokens(string), "\(string.unicodeScalars.map { String($0.value, radix: 16) })")
            #expect(SearchText.tokenize(string).map(\.folded) == SearchText.tokenizeScalars(string).map(\.folded))
        }
    }

    /// The word test's shortcut for ASCII and Latin letters agrees with Unicode's properties
    /// for every scalar of the Basic Multilingual Plane.
    @Test func wordScalarsAreWhatTheirPropertiesSay() {
        var differing: [String] = []
        for v in UInt32(0)..<0x10000 {
            guard let s = Unicode.Scalar(v) else { continue }
            if SearchText.isWordScalar(s) != SearchText.isWordScalarByProperties(s) { differing.append(String(v, radix: 16)) }
        }
        #expect(differing.isEmpty, "\(differing.prefix(20))")
    }

    /// Matching a word by its bytes gives what `hasPrefix` gives, for folded tokens of mixed
    /// scripts, Hangul syllables that decompose into jamo, and a prepended letter.
    @Test func wordPrefixesAreWhatHasPrefixSays() {
        let pool = ["kettle", "k", "ke", "ket", "ketö", "éc", "ecole", "한", "하", "한국", "ㅎ", "\u{0D4E}", "\u{0D4E}a", "\u{0D4E}ക",
                    "ß", "ss", "σ", "σς", "ж", "12", "1", "\u{1112}\u{1161}", "\u{1112}\u{1161}\u{11AB}", "a\u{1160}", ""]
        // Both sides as the index and the query have them: folded.
        let tokens = pool.flatMap { SearchText.tokens($0) }
        #expect(tokens.contains("\u{0D4E}a") && tokens.contains("\u{1112}\u{1161}\u{11AB}"))
        for t in tokens {
            for w in tokens {
                #expect(SearchText.startsWord(t, w) == t.hasPrefix(w), "\(t.unicodeScalars.map { String($0.value, radix: 16) }) / \(w.unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
        #expect(SearchText.startsWord("kettles", "kettle"))
        #expect(!SearchText.startsWord("\u{1112}\u{1161}\u{11AB}", "\u{1112}\u{1161}"))
    }

    @Test func foldsCaseAndAccents() {
        #expect(SearchText.fold("Máquina de CAFÉ") == "maquina de cafe")
        #expect(SearchText.fold("Straße, Øre & Łódź!") == "strasse ore lodz")
        #expect(SearchText.fold("Φρυγανιέρα") == "φρυγανιερα")
    }

    @Test func splitsUnspacedScriptsIntoCharacters() {
        #expect(SearchText.tokens("コーヒーメーカー XK-42") == ["コ", "ー", "ヒ", "ー", "メ", "ー", "カ", "ー", "xk", "42"])
        #expect(SearchText.terms("メーカー kettle") == [.phrase(["メ", "ー", "カ", "ー"]), .word("kettle")])
        #expect(SearchText.terms("  ,;  ").isEmpty)
    }

    @Test func matchesByPrefixAndPhrase() {
        let terms = SearchText.terms("cafe maq")
        #expect(SearchText.matches("Máquina de Café XK-42", terms: terms))
        #expect(!SearchText.matches("Máquina de té", terms: terms))
        #expect(SearchText.matches("電気ケトル", terms: SearchText.terms("ケトル")))
        #expect(!SearchText.matches("ケト", terms: SearchText.terms("ケトル")))
    }

    @Test func snippetMarksMatchesAndEscapesHTML() throws {
        let body = try ContentRules.normalize(.thing, ["type": "tool", "name": ["default": "Soldering <iron> for Café use", "translations": ["ja": "はんだごて"]], "manufacturer": ["name": "Weller"]])
        let e = ContentRules.create(.thing, body: body, id: "00000000-0000-0000-0000-000000000001", now: Timestamp(microsecondsSinceEpoch: 0))
        let s = Snippet.make(for: e, terms: SearchText.terms("cafe"))
        #expect(s?.html == "Soldering &lt;iron&gt; for <mark>Café</mark> use")
        #expect(s?.field == "name")
        let ja = Snippet.make(for: e, terms: SearchText.terms("ごて"), language: "ja")
        #expect(ja?.html == "はんだ<mark>ごて</mark>")
        #expect(ja?.language == "ja")
        let ascii = ContentRules.create(.thing, body: try ContentRules.normalize(.thing, ["type": "tool", "name": ["default": "Rinse & \"descale\" the <kettle>s"], "manufacturer": ["name": "Weller"]]), id: "00000000-0000-0000-0000-000000000002", now: Timestamp(microsecondsSinceEpoch: 0))
        #expect(Snippet.make(for: ascii, terms: SearchText.terms("KETTLE"))?.html == "Rinse &amp; &quot;descale&quot; the &lt;<mark>kettle</mark>&gt;s")
    }

    /// Entities whose fields cover what a document holds: several scripts, an empty field and
    /// fields of no words at the start, the middle and the end.
    static func fieldEntities() throws -> [Entity] {
        let now = Timestamp(microsecondsSinceEpoch: 0)
        var n = 0
        func make(_ kind: EntityKind, _ body: JSONValue) throws -> Entity {
            n += 1
            return ContentRules.create(kind, body: try ContentRules.normalize(kind, body), id: "00000000-0000-0000-0000-\(String(repeating: "0", count: 10))\(n < 10 ? "0" : "")\(n)", now: now)
        }
        return [
            try make(.thing, ["type": "device", "name": ["default": "Lamp LU-8", "translations": ["ja": "電気スタンド LU-8", "de": "Lampe – Lümo", "ko": "한국 램프"]], "manufacturer": ["name": "Lumo"], "tags": ["desk lamp", "--", "ランプ"]]),
            try make(.thing, ["type": "tool", "name": ["default": "--", "translations": ["es": "Cafetera Café", "fr": "…"]], "manufacturer": ["name": "!!"]]),
            try make(.thing, ["type": "tool", "name": ["default": "Kettle"], "manufacturer": ["name": "Kettle & Co"]]),
            try make(.story, ["type": "repair", "procedure": [
                ["order": 1, "description": ["default": "--"], "warnings": ["Unplug the lamp first"]],
                ["order": 2, "description": ["default": "Replace the lamp's switch", "translations": ["ja": "スイッチを交換する"]]],
            ], "thing_category": ["category": "lamps"]]),
            try make(.guide, ["type": ["primary": "manual"], "content": ["title": ["default": "Kettle descaling"], "summary": ["default": "Descale a kettle with citric acid", "translations": ["de": "Wasserkocher entkalken"]]]]),
        ]
    }

    static let fieldQueries = ["lamp", "lamp lumo", "lu", "LU-8", "ランプ", "スタンド", "電気", "한", "한국", "lampe lümo", "cafe", "kettle co", "descal citric", "switch ja", "スイッチ", "x", "unplug lamp"]

    /// What a document says of each field's matches is what folding each field's text says.
    @Test func fieldMatchesAreWhatEachFieldsTokensMatch() throws {
        for e in try Self.fieldEntities() {
            let fields = SearchText.fields(of: e)
            let document = SearchText.document(for: e)
            for query in Self.fieldQueries {
                let terms = SearchText.terms(query)
                let expected = fields.map { f in terms.filter { SearchText.matchPosition(SearchText.tokens(f.text), $0) != nil }.count }
                #expect(SearchText.fieldMatches(of: document, count: fields.count, terms: terms) == expected, "\(query) in \(document)")
            }
            // The separator leaves the tokens as they were.
            #expect(document.split(separator: " ").map(String.init) == fields.flatMap { SearchText.tokens($0.text) })
            // A document with one space between fields (as stored before) is not read as fields.
            let joined = fields.map { SearchText.fold($0.text) }.filter { !$0.isEmpty }.joined(separator: " ")
            #expect(SearchText.fieldMatches(of: joined, count: fields.count, terms: SearchText.terms("lamp")) == nil)
            #expect(SearchText.fieldMatches(of: document, count: fields.count + 1, terms: SearchText.terms("lamp")) == nil)
            #expect(SearchText.fieldMatches(of: document, count: fields.count - 1, terms: SearchText.terms("lamp")) == nil)
        }
        #expect(SearchText.fieldMatches(of: "", count: 1, terms: SearchText.terms("a")) == [0])
        #expect(SearchText.fieldMatches(of: "a b    c", count: 3, terms: SearchText.terms("c")) == [0, 0, 1])
    }

    /// A snippet made with the stored document is the one made by folding every field.
    @Test func snippetsFromTheDocumentAreTheSame() throws {
        for e in try Self.fieldEntities() {
            let document = SearchText.document(for: e)
            for query in Self.fieldQueries {
                for language in [nil, "ja", "de", "es"] {
                    let terms = SearchText.terms(query)
                    let folded = Snippet.make(for: e, terms: terms, language: language)
                    #expect(Snippet.make(for: e, terms: terms, language: language, document: document) == folded, "\(query), \(language ?? "-")")
                    #expect(Snippet.make(for: e, terms: terms, language: language, document: "unrelated words") == folded)
                }
            }
        }
    }
}

@Suite struct SearchTokenAgreementTests {
    /// `tokens` (the fast path) and `tokenize` (with ranges, for snippets) must agree.
    @Test(arguments: [
        "Máquina de Café XK-42", "Straße, Øre & Łódź!", "コーヒーメーカー ガス", "電気ケトル K3", "Φρυγανιέρα T200",
        "ผู้ใหญ่บ้าน", "e\u{301}cole", " \u{301}x", "Ärger ÆON œuvre", "a1_b2-c3", "", "   ", "नमस्ते दुनिया", "안녕하세요 세계",
    ])
    func fastTokensAgreeWithTokenize(_ text: String) {
        #expect(SearchText.tokens(text) == SearchText.tokenize(text).map(\.folded))
    }

    /// The ASCII path of `tokenize` gives the same tokens, ranges and flags as the scalar path.
    @Test(arguments: ["Electric Kettle K3, model BA-5 (2019)", "a1_b2-c3", "", "   ", "x", "--Kettle--", "Rinse & \"descale\" <twice>"])
    func asciiTokenizeAgreesWithTheScalarPath(_ text: String) {
        let fast = SearchText.tokenizeASCII(text)
        let slow = SearchText.tokenizeScalars(text)
        #expect(fast.map(\.folded) == slow.map(\.folded))
        #expect(fast.map(\.range) == slow.map(\.range))
        #expect(fast.map { String(text[$0.range]) } == slow.map { String(text[$0.range]) })
        #expect(fast.allSatisfy { !$0.unspaced })
    }
}

@Suite struct DuplicateKeyTests {
    /// Stored keys (the `dup_key` column) stay what every earlier version wrote: each part
    /// folded, its tokens joined by one space, the parts by "|".
    @Test func keysAreFoldedTokensJoined() {
        let parts = ["Kettle", "  Wasser--kocher  ", "Café Crème", "電気ケトル 3000", "ÅNGSTRÖM\tLab", "", "a  b\u{3000}c", "İstanbul ǅ", "x.y,z"]
        for type in ["device", "Device!"] {
            for manufacturer in parts {
                for name in parts {
                    let earlier = [type, manufacturer, name].map { SearchText.fold($0).split(separator: " ").joined(separator: " ") }.joined(separator: "|")
                    #expect(EntityIndex.duplicateKey(type: type, manufacturer: manufacturer, name: name) == earlier)
                }
            }
        }
        #expect(EntityIndex.duplicateKey(type: "device", manufacturer: "Bösch  GmbH", name: "Kettle K-3") == "device|bosch gmbh|kettle k 3")
    }
}

@Suite struct SearchRankingTests {
    func rank(_ docs: [String], _ query: String) -> [Int64] {
        SearchRanking.rank(docs.enumerated().map { .init(sequence: Int64($0), document: SearchText.fold($1)) }, terms: SearchText.terms(query)).map(\.sequence)
    }

    @Test func earlyAndRepeatedMatchesRankFirst() {
        let docs = [
            "Open the case unscrew the lid then check the kettle element and the kettle base for scale deposits",
            "Kettle K3",
            "Toaster",
            "Kettle kettle",
        ]
        let order = rank(docs, "kettle")
        #expect(order.first == 3)  // the word twice in a short name
        #expect(Array(order.prefix(3)).contains(1))
        #expect(order.last == 2)  // no match at all ranks last
    }

    @Test func tiesGoToTheOlderEntryAndPhrasesCount() {
        #expect(rank(["Lamp", "Lamp"], "lamp") == [0, 1])
        #expect(rank(["電気ケトル", "ケトルの電気"], "電気ケトル").first == 0)
        #expect(SearchRanking.rank([], terms: SearchText.terms("x")).isEmpty)
    }
}
