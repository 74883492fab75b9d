import Foundation

/// Text normalization shared by every backend's full-text index, so search behaves the same on
/// SQLite (FTS5) and PostgreSQL (tsvector): case and accents folded, punctuation dropped, and
/// scripts written without spaces (Chinese, Japanese, Thai) split into one token per character
/// so that a word inside a run is found as a phrase.
public enum SearchText {
    /// Lowercased, accents removed, one space between tokens.
    public static func fold(_ text: String) -> String {
        tokens(text).joined(separator: " ")
    }

    /// Folds one token's characters: NFD, combining marks dropped, lowercased, a few letters
    /// that have no decomposition mapped by hand.
    static func foldWord(_ word: Substring) -> String {
        if word.utf8.allSatisfy({ $0 < 0x80 }) { return asciiLower(word.utf8) }
        var out = String.UnicodeScalarView()
        for s in word.unicodeScalars {
            FoldTable.shared.forEach(s) { appendFolded($0, to: &out) }
        }
        return String(out)
    }

    /// Each scalar's lowercase mapping in canonical decomposition (NFD), combining marks
    /// dropped: what `lowercased().decomposedStringWithCanonicalMapping` without marks gives
    /// for a whole text, one scalar at a time. Both steps work scalar by scalar (Swift's
    /// lowercasing has no context rules; NFD's reordering only moves marks, and every scalar
    /// with a nonzero combining class is a mark), so the results are the same; a test checks
    /// every scalar of the Basic Multilingual Plane and mixed texts. Built once (about 65 ms)
    /// for the BMP, so folding stops calling Foundation's normalizer per word; scalars beyond
    /// it take the direct path.
    struct FoldTable: Sendable {
        static let shared = FoldTable()
        private let offsets: [UInt32]
        private let scalars: [Unicode.Scalar]

        private init() {
            var offsets: [UInt32] = []
            var scalars: [Unicode.Scalar] = []
            offsets.reserveCapacity(0x10001)
            scalars.reserveCapacity(0x11000)
            for v in 0..<UInt32(0x10000) {
                offsets.append(UInt32(scalars.count))
                if let s = Unicode.Scalar(v) { scalars.append(contentsOf: FoldTable.direct(s)) }
            }
            offsets.append(UInt32(scalars.count))
            self.offsets = offsets
            self.scalars = scalars
        }

        /// The fold of one scalar through Foundation: lowercase, NFD, no marks.
        static func direct(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
            String(s).lowercased().decomposedStringWithCanonicalMapping.unicodeScalars.filter { !SearchText.isMark($0) }
        }

        @inline(__always)
        func forEach(_ s: Unicode.Scalar, _ body: (Unicode.Scalar) -> Void) {
            guard s.value < 0x10000 else {
                for t in FoldTable.direct(s) { body(t) }
                return
            }
            let v = Int(s.value)
            for i in Int(offsets[v])..<Int(offsets[v + 1]) { body(scalars[i]) }
        }
    }

    /// Written straight into the string's storage: no array between (a word of up to 15 bytes
    /// then allocates nothing at all).
    static func asciiLower<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            var i = 0
            for b in bytes {
                buffer[i] = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
                i += 1
            }
            return i
        }
    }

    static func isMark(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: true
        default: false
        }
    }

    static func appendFolded(_ s: Unicode.Scalar, to out: inout String.UnicodeScalarView) {
        switch s {
        case "ß": out.append(contentsOf: "ss".unicodeScalars)
        case "æ": out.append(contentsOf: "ae".unicodeScalars)
        case "œ": out.append(contentsOf: "oe".unicodeScalars)
        case "ø": out.append("o")
        case "ł": out.append("l")
        case "đ": out.append("d")
        case "ı": out.append("i")
        case "þ": out.append(contentsOf: "th".unicodeScalars)
        default: out.append(s)
        }
    }

    /// Scripts written without spaces between words.
    static func isUnspaced(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x0E00...0x0EFF,  // Thai, Lao
            0x1000...0x109F,  // Myanmar
            0x1780...0x17FF,  // Khmer
            0x3040...0x30FF,  // Hiragana, Katakana
            0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF,  // CJK ideographs
            0xFF66...0xFF9F,  // halfwidth Katakana
            0x20000...0x3134F:
            true
        default: false
        }
    }

    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        // ASCII, and Latin-1's and Latin Extended-A and -B's letters, without Unicode's
        // property tables (their look-ups were 3 % of a search's CPU); a test checks every
        // scalar of the BMP against the properties.
        switch s.value {
        case 0..<0x80: return isASCIIWord(UInt8(s.value))
        case 0xC0...0x24F: return s.value != 0xD7 && s.value != 0xF7
        default: return isWordScalarByProperties(s)
        }
    }

    static func isWordScalarByProperties(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic { return true }
        switch p.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .modifierLetter: return true
        default: return false
        }
    }

    /// A token with the range of the original text it came from.
    public struct Token: Sendable {
        public var folded: String
        public var range: Range<String.Index>
        /// Part of a run of an unspaced script (matched as a phrase, not a prefix).
        public var unspaced: Bool
    }

    public static func tokenize(_ text: String) -> [Token] {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return tokenizeASCII(text) }
        return tokenizeScalars(text)
    }

    /// `tokenize` of an ASCII text: bytes instead of scalars and their Unicode properties
    /// (a word is a run of letters and digits; the same as the scalar path gives for ASCII).
    static func tokenizeASCII(_ text: String) -> [Token] {
        var result: [Token] = []
        let utf8 = text.utf8
        var start: String.Index?
        var i = utf8.startIndex
        while i < utf8.endIndex {
            if isASCIIWord(utf8[i]) {
                if start == nil { start = i }
            } else if let s = start {
                result.append(Token(folded: asciiLower(utf8[s..<i]), range: s..<i, unspaced: false))
                start = nil
            }
            i = utf8.index(after: i)
        }
        if let s = start { result.append(Token(folded: asciiLower(utf8[s..<utf8.endIndex]), range: s..<utf8.endIndex, unspaced: false)) }
        return result
    }

    /// A letter or digit: what the scalar path takes as a word character, for ASCII.
    static func isASCIIWord(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    static func tokenizeScalars(_ text: String) -> [Token] {
        var result: [Token] = []
        var wordStart: String.Index?
        let scalars = text.unicodeScalars
        var i = scalars.startIndex
        func closeWord(at end: String.Index) {
            if let start = wordStart {
                let folded = foldWord(text[start..<end])
                if !folded.isEmpty { result.append(Token(folded: folded, range: start..<end, unspaced: false)) }
                wordStart = nil
            }
        }
        while i < scalars.endIndex {
            let s = scalars[i]
            let next = scalars.index(after: i)
            if isUnspaced(s) {
                closeWord(at: i)
                let folded = foldWord(text[i..<next])
                if !folded.isEmpty { result.append(Token(folded: folded, range: i..<next, unspaced: true)) }
            } else if isWordScalar(s) {
                if wordStart == nil { wordStart = i }
            } else {
                closeWord(at: i)
            }
            i = next
        }
        closeWord(at: scalars.endIndex)
        return result
    }

    /// The folded tokens of a text: what `tokenize` gives without the ranges, folding the
    /// whole text at once (the hot path of indexing and matching).
    public static func tokens(_ text: String) -> [String] {
        var result: [String] = []
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var word: [UInt8] = []
            for b in text.utf8 {
                if isASCIIWord(b) {
                    word.append(b >= 0x41 && b <= 0x5A ? b | 0x20 : b)
                } else if !word.isEmpty {
                    result.append(String(decoding: word, as: UTF8.self))
                    word.removeAll(keepingCapacity: true)
                }
            }
            if !word.isEmpty { result.append(String(decoding: word, as: UTF8.self)) }
            return result
        }
        var word = String.UnicodeScalarView()
        for original in text.unicodeScalars {
            FoldTable.shared.forEach(original) { s in
                if isUnspaced(s) {
                    if !word.isEmpty {
                        result.append(String(word))
                        word = String.UnicodeScalarView()
                    }
                    result.append(String(s))
                } else if isWordScalar(s) {
                    appendFolded(s, to: &word)
                } else if !word.isEmpty {
                    result.append(String(word))
                    word = String.UnicodeScalarView()
                }
            }
        }
        if !word.isEmpty { result.append(String(word)) }
        return result
    }

    /// What an index stores for an entity: every searchable text (`fields(of:)`), folded, in
    /// order, with `fieldSeparator` between two fields (an empty one included).
    public static func document(for entity: Entity) -> String {
        fields(of: entity).map { fold($0.text) }.joined(separator: fieldSeparator)
    }

    /// Between two fields in a document: two spaces. Folding joins a field's tokens with one
    /// and no token holds a space, so every reader that splits the document at spaces (FTS5's
    /// tokenizer, PostgreSQL's `tsvector`, `SearchRanking`) finds the same tokens at the same
    /// positions as with one; and a snippet finds each field's folded tokens in the document
    /// again without folding the field's text (`fieldMatches`).
    static let fieldSeparator = "  "

    /// For each field of a document `document(for:)` made of an entity with `count` fields (in
    /// `fields(of:)` order), how many of `terms` its folded tokens match, as `matchPosition`
    /// matches them: read from the document's bytes, without folding the fields' text again.
    /// Nil if the document does not hold `count` fields: one stored before fields were kept
    /// apart has one space between fields and no empty ones.
    public static func fieldMatches(of document: String, count: Int, terms: [Term]) -> [Int]? {
        let patterns = SearchRanking.patterns(terms)
        var doc = document
        return doc.withUTF8 { bytes -> [Int]? in
            var counts: [Int] = []
            counts.reserveCapacity(count)
            var tokens: [Range<Int>] = []
            tokens.reserveCapacity(32)
            var fieldStart = 0
            var i = 0
            while true {
                let start = i
                while i < bytes.count && bytes[i] != 0x20 { i += 1 }
                if i > start { tokens.append(start..<i) }
                // The end, or the separator's two spaces, ends a field; one space, a token.
                guard i == bytes.count || (i + 1 < bytes.count && bytes[i + 1] == 0x20) else {
                    i += 1
                    continue
                }
                counts.append(matched(tokens[fieldStart...], in: bytes, patterns))
                fieldStart = tokens.count
                if i == bytes.count { break }
                guard counts.count < count else { return nil }
                i += 2
            }
            return counts.count == count ? counts : nil
        }
    }

    /// How many of `patterns` (`SearchRanking.patterns`) the folded `tokens` of `bytes` match.
    private static func matched(_ tokens: ArraySlice<Range<Int>>, in bytes: UnsafeBufferPointer<UInt8>, _ patterns: [(parts: [[UInt8]], prefix: Bool)]) -> Int {
        var n = 0
        for (parts, prefix) in patterns {
            if prefix {
                if tokens.contains(where: { startsWord(UnsafeBufferPointer(rebasing: bytes[$0]), parts[0]) }) { n += 1 }
            } else if !parts.isEmpty, tokens.count >= parts.count {
                let found = (tokens.startIndex...(tokens.endIndex - parts.count)).contains { first in
                    parts.indices.allSatisfy { k in
                        let token = tokens[first + k]
                        return token.count == parts[k].count && UnsafeBufferPointer(rebasing: bytes[token]).elementsEqual(parts[k])
                    }
                }
                if found { n += 1 }
            }
        }
        return n
    }

    /// `startsWord` on the bytes of a folded token and word.
    static func startsWord(_ token: UnsafeBufferPointer<UInt8>, _ word: [UInt8]) -> Bool {
        guard token.count >= word.count, token.starts(with: word) else { return false }
        guard token.count > word.count, let last = word.last else { return true }
        if last < 0x80 && token[word.count] < 0x80 { return true }
        return startsWord(String(decoding: token, as: UTF8.self), String(decoding: word, as: UTF8.self))
    }

    /// One searchable text of an entity, with where it came from.
    public struct FieldText: Sendable, Hashable {
        /// `name`, `procedure[2].description`, `content.title`...
        public var field: String
        /// BCP 47 tag, or nil for the default text.
        public var language: String?
        public var text: String
    }

    /// Every multilingual text of an entity: names, translations, step descriptions, guide
    /// titles and summaries, warnings; and the manufacturer and relationship type.
    public static func fields(of entity: Entity) -> [FieldText] {
        var out: [FieldText] = []
        func addML(_ value: JSONValue?, _ field: String) {
            guard let value, case .object(let o) = value else { return }
            if let d = o["default"]?.stringValue { out.append(FieldText(field: field, language: nil, text: d)) }
            if case .object(let t)? = o["translations"] {
                for (lang, v) in t { if let s = v.stringValue { out.append(FieldText(field: field, language: lang, text: s)) } }
            }
        }
        let b = entity.body
        switch entity.kind {
        case .thing:
            addML(b["name"], "name")
            if let m = b["manufacturer"]?["name"]?.stringValue { out.append(FieldText(field: "manufacturer", language: nil, text: m)) }
            if let tags = b["tags"]?.arrayValue {
                for t in tags { if let s = t.stringValue { out.append(FieldText(field: "tags", language: nil, text: s)) } }
            }
        case .story:
            for (i, step) in (b["procedure"]?.arrayValue ?? []).enumerated() {
                addML(step["description"], "procedure[\(i)].description")
                for w in step["warnings"]?.arrayValue ?? [] {
                    if let s = w.stringValue { out.append(FieldText(field: "procedure[\(i)].warnings", language: nil, text: s)) }
                    addML(w["message"], "procedure[\(i)].warnings")
                }
            }
            if let c = b["thing_category"]?["category"]?.stringValue { out.append(FieldText(field: "thing_category", language: nil, text: c)) }
        case .guide:
            addML(b["content"]?["title"], "content.title")
            addML(b["content"]?["summary"], "content.summary")
            for w in b["content"]?["warnings"]?.arrayValue ?? [] { addML(w["message"], "content.warnings") }
            if let c = b["thing_category"]?["category"]?.stringValue { out.append(FieldText(field: "thing_category", language: nil, text: c)) }
        case .relationship:
            if let t = b["relationship_type"]?.stringValue { out.append(FieldText(field: "relationship_type", language: nil, text: t)) }
        }
        return out
    }

    /// A search query as terms: a word matches by prefix; a run of an unspaced script must
    /// appear as a phrase.
    public enum Term: Sendable, Hashable {
        case word(String)
        case phrase([String])
    }

    public static func terms(_ query: String) -> [Term] {
        var terms: [Term] = []
        var run: [String] = []
        var lastEnd: String.Index?
        for token in tokenize(query) {
            if token.unspaced {
                if !run.isEmpty, lastEnd != token.range.lowerBound {
                    terms.append(.phrase(run))
                    run = []
                }
                run.append(token.folded)
                lastEnd = token.range.upperBound
            } else {
                if !run.isEmpty {
                    terms.append(.phrase(run))
                    run = []
                }
                terms.append(.word(token.folded))
            }
        }
        if !run.isEmpty { terms.append(.phrase(run)) }
        // A query of many terms is cut, not refused: the first 16 are plenty.
        return Array(terms.prefix(16))
    }

    /// Whether a text matches every term (used to pick snippet fields and filter by language).
    public static func matches(_ text: String, terms: [Term]) -> Bool {
        let tokens = tokens(text)
        return terms.allSatisfy { term in matchPosition(tokens, term) != nil }
    }

    /// `token.hasPrefix(word)` for folded tokens, comparing bytes first. Folded text is in one
    /// normal form, so unequal bytes are unequal characters; equal bytes decide alone where an
    /// ASCII scalar meets an ASCII scalar (only CR LF joins two), else `hasPrefix` decides.
    static func startsWord(_ token: String, _ word: String) -> Bool {
        let t = token.utf8, w = word.utf8
        guard t.count >= w.count, t.starts(with: w) else { return false }
        guard t.count > w.count, let last = w.last else { return true }
        return last < 0x80 && t[t.index(t.startIndex, offsetBy: w.count)] < 0x80 ? true : token.hasPrefix(word)
    }

    /// Where a term first matches folded tokens (`tokens(_:)`, `tokenize(_:)`'s `folded`).
    public static func matchPosition(_ tokens: [String], _ term: Term) -> Int? {
        switch term {
        case .word(let w):
            return tokens.firstIndex { startsWord($0, w) }
        case .phrase(let p):
            guard !p.isEmpty, tokens.count >= p.count else { return nil }
            for i in 0...(tokens.count - p.count) where Array(tokens[i..<(i + p.count)]) == p { return i }
            return nil
        }
    }
}
