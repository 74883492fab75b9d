import Foundation

/// Relevance ranking over folded search documents, the same for every store.
///
/// BM25 (k1 = 1.2, b = 0.75) over the candidate set, plus a small boost for a first match
/// early in the document: a document starts with its name or title, so a thing named
/// "Kettle" ranks above a story that mentions a kettle in its fifth step.
public enum SearchRanking {
    public struct Candidate: Sendable {
        public var sequence: Int64
        /// The folded, space-separated search document (`SearchText.document`).
        public var document: String
        public init(sequence: Int64, document: String) {
            self.sequence = sequence
            self.document = document
        }
    }

    /// Candidates ordered best first; ties go to the older entry.
    public static func rank(_ candidates: [Candidate], terms: [SearchText.Term]) -> [(sequence: Int64, score: Double)] {
        guard !candidates.isEmpty else { return [] }
        let docs = candidates.map { $0.document.split(separator: " ") }
        let averageLength = max(1, Double(docs.reduce(0) { $0 + $1.count }) / Double(docs.count))
        // Per document and term: occurrences and the first position.
        let stats: [[(tf: Int, first: Int)]] = docs.map { tokens in terms.map { occurrences(of: $0, in: tokens) } }
        let n = Double(candidates.count)
        let idf: [Double] = terms.indices.map { t in
            let df = Double(stats.filter { $0[t].tf > 0 }.count)
            return log(1 + (n - df + 0.5) / (df + 0.5))
        }
        var scored: [(sequence: Int64, score: Double)] = []
        scored.reserveCapacity(candidates.count)
        for (i, candidate) in candidates.enumerated() {
            let length = Double(docs[i].count)
            var score = 0.0
            for t in terms.indices {
                let (tf, first) = stats[i][t]
                guard tf > 0 else { continue }
                let f = Double(tf)
                score += idf[t] * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * length / averageLength))
                score += 0.5 / Double(1 + first)
            }
            scored.append((candidate.sequence, score))
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.sequence < $1.sequence }
        return scored
    }

    static func occurrences(of term: SearchText.Term, in tokens: [Substring]) -> (tf: Int, first: Int) {
        var tf = 0
        var first = Int.max
        switch term {
        case .word(let w):
            for (i, token) in tokens.enumerated() where token.hasPrefix(w) {
                tf += 1
                first = min(first, i)
            }
        case .phrase(let p):
            guard !p.isEmpty, tokens.count >= p.count else { break }
            for i in 0...(tokens.count - p.count) {
                var hit = true
                for (j, part) in p.enumerated() where tokens[i + j] != part[...] {
                    hit = false
                    break
                }
                if hit {
                    tf += 1
                    first = min(first, i)
                }
            }
        }
        return (tf, first == Int.max ? 0 : first)
    }
}
