/// A short excerpt of the text that matched a search, with matches marked.
///
/// The snippet is HTML-safe: the text is escaped and each match is wrapped in `<mark>`.
public struct Snippet: Sendable, Hashable {
    public var field: String
    public var language: String?
    public var html: String

    /// Picks the field that matches the most terms (preferring `language` when given) and cuts
    /// a window of about `width` characters around the first match. `document`, the entity's
    /// stored search document, saves folding every field to weigh it: only the field shown is
    /// tokenized then.
    public static func make(for entity: Entity, terms: [SearchText.Term], language: String? = nil, width: Int = 160, document: String? = nil) -> Snippet? {
        let fields = SearchText.fields(of: entity)
        guard !fields.isEmpty else { return nil }
        let stored = document.flatMap { SearchText.fieldMatches(of: $0, count: fields.count, terms: terms) }
        var best: (score: Int, field: SearchText.FieldText, tokens: [SearchText.Token])?
        // Good enough to stop looking: every term, and in the wanted language when one is asked for.
        let perfect = terms.count * 10 + (language == nil ? 0 : 5)
        // Folding keeps ASCII text ASCII: a field without other characters cannot hold these terms.
        let termsNeedNonASCII = terms.allSatisfy { term in
            switch term {
            case .word(let w): !w.utf8.allSatisfy { $0 < 0x80 }
            case .phrase(let p): p.contains { !$0.utf8.allSatisfy { $0 < 0x80 } }
            }
        }
        for (index, f) in fields.enumerated() {
            // Each field is tokenized at most once; the chosen one's tokens are marked below.
            let tokens: [SearchText.Token]
            var score: Int
            if let stored {
                tokens = []
                score = stored[index] * 10
            } else {
                tokens = termsNeedNonASCII && f.text.utf8.allSatisfy({ $0 < 0x80 }) ? [] : SearchText.tokenize(f.text)
                let folded = tokens.map(\.folded)
                score = terms.filter { SearchText.matchPosition(folded, $0) != nil }.count * 10
            }
            if let language, f.language?.lowercased() == language.lowercased() { score += 5 }
            if f.language == nil { score += 1 }
            if best == nil || score > best!.score { best = (score, f, tokens) }
            if score >= perfect { break }
        }
        guard let (_, field, chosen) = best else { return nil }
        // A field not tokenized above is tokenized if it is the one shown.
        let tokens = chosen.isEmpty ? SearchText.tokenize(field.text) : chosen
        let text = field.text
        let folded = tokens.map(\.folded)
        var marked: [Range<String.Index>] = []
        for term in terms {
            switch term {
            case .word(let w):
                for (i, t) in folded.enumerated() where t.hasPrefix(w) { marked.append(tokens[i].range) }
            case .phrase(let p):
                if p.count <= folded.count {
                    for i in 0...(folded.count - p.count) where Array(folded[i..<(i + p.count)]) == p {
                        marked.append(tokens[i].range.lowerBound..<tokens[i + p.count - 1].range.upperBound)
                    }
                }
            }
        }
        marked.sort { $0.lowerBound < $1.lowerBound }
        // Window around the first match.
        let anchor = marked.first?.lowerBound ?? text.startIndex
        let before = text.distance(from: text.startIndex, to: anchor)
        let startOffset = max(0, before - width / 3)
        let start = text.index(text.startIndex, offsetBy: startOffset)
        let end = text.index(start, offsetBy: width, limitedBy: text.endIndex) ?? text.endIndex
        var html = startOffset > 0 ? "…" : ""
        var cursor = start
        for r in marked where r.lowerBound >= cursor && r.upperBound <= end {
            html += escape(text[cursor..<r.lowerBound]) + "<mark>" + escape(text[r]) + "</mark>"
            cursor = r.upperBound
        }
        html += escape(text[cursor..<end])
        if end < text.endIndex { html += "…" }
        return Snippet(field: field.field, language: field.language, html: html)
    }

    static func escape(_ s: Substring) -> String {
        // Every character escaped is ASCII, so bytes will do; no grapheme breaking.
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 16)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            default: out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
