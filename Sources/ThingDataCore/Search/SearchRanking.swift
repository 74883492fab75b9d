import Foundation

/// Relevance ranking over folded search documents, the same for every store.
///
/// BM25 (k1 = 1.2, b = 0.75) over the candidate set, plus a small boost for a first match
/// early in the document: a document starts with its name or title, so a thing named
/// "Kettle" ranks above a story that mentions a kettle in its fifth step.
public enum SearchRanking {
    public struct Candidate: Sendable {
        public var sequence: Int64
        /// The folded, space-separated search document (`SearchText.document`); empty when
        /// the store gave `statistics` instead.
        public var document: String
        /// The document's term statistics, when a store's index already knows them (SQLite's
        /// FTS5 keeps positions and token counts), so ranking need not read the text.
        public var statistics: Statistics?
        public init(sequence: Int64, document: String) {
            self.sequence = sequence
            self.document = document
        }
        public init(sequence: Int64, statistics: Statistics) {
            self.sequence = sequence
            self.document = ""
            self.statistics = statistics
        }
    }

    /// What ranking needs of one document: its token count and, for each query term in
    /// order, how often it occurs and the token position of its first occurrence (0 if none).
    public struct Statistics: Sendable, Equatable {
        public var length: Int
        public var terms: [Occurrences]
        public init(length: Int, terms: [Occurrences]) {
            self.length = length
            self.terms = terms
        }
    }

    public struct Occurrences: Sendable, Equatable {
        public var count: Int
        public var first: Int
        public init(count: Int, first: Int) {
            self.count = count
            self.first = first
        }
    }

    /// A folded document's statistics for `terms`: words match as prefixes of tokens,
    /// phrases as runs of whole tokens.
    public static func statistics(of document: String, terms: [SearchText.Term]) -> Statistics {
        statistics(of: document, patterns(terms))
    }

    static func statistics(of document: String, _ patterns: [(parts: [[UInt8]], prefix: Bool)]) -> Statistics {
        var doc = document
        return doc.withUTF8 { bytes in occurrences(patterns, in: bytes) }
    }

    /// Work on UTF-8 bytes: documents and terms are folded by the same function, so byte
    /// equality is the right equality, and it is much cheaper than String's.
    static func patterns(_ terms: [SearchText.Term]) -> [(parts: [[UInt8]], prefix: Bool)] {
        terms.map { term in
            switch term {
            case .word(let w): ([Array(w.utf8)], true)
            case .phrase(let p): (p.map { Array($0.utf8) }, false)
            }
        }
    }

    /// Candidates ordered best first; ties go to the older entry.
    public static func rank(_ candidates: [Candidate], terms: [SearchText.Term]) -> [(sequence: Int64, score: Double)] {
        guard !candidates.isEmpty else { return [] }
        let patterns = patterns(terms)
        let stats = candidates.map { $0.statistics ?? statistics(of: $0.document, patterns) }
        let lengths = stats.map(\.length)
        // A term a store's statistics leave out counts as not found.
        func found(_ i: Int, _ t: Int) -> Occurrences { t < stats[i].terms.count ? stats[i].terms[t] : Occurrences(count: 0, first: 0) }
        let averageLength = max(1, Double(lengths.reduce(0, +)) / Double(lengths.count))
        let n = Double(candidates.count)
        let idf: [Double] = terms.indices.map { t in
            let df = Double(stats.indices.filter { found($0, t).count > 0 }.count)
            return log(1 + (n - df + 0.5) / (df + 0.5))
        }
        var scored: [(sequence: Int64, score: Double)] = []
        scored.reserveCapacity(candidates.count)
        for (i, candidate) in candidates.enumerated() {
            let length = Double(lengths[i])
            var score = 0.0
            for t in terms.indices {
                let occurrences = found(i, t)
                guard occurrences.count > 0 else { continue }
                let f = Double(occurrences.count)
                score += idf[t] * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * length / averageLength))
                score += 0.5 / Double(1 + occurrences.first)
            }
            scored.append((candidate.sequence, score))
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.sequence < $1.sequence }
        return scored
    }

    /// For each pattern: occurrences and first token position; and the document's token count.
    static func occurrences(_ patterns: [(parts: [[UInt8]], prefix: Bool)], in doc: UnsafeBufferPointer<UInt8>) -> Statistics {
        // Token boundaries.
        var starts: [Int] = []
        var ends: [Int] = []
        var i = 0
        while i < doc.count {
            while i < doc.count && doc[i] == 0x20 { i += 1 }
            if i >= doc.count { break }
            let start = i
            while i < doc.count && doc[i] != 0x20 { i += 1 }
            starts.append(start)
            ends.append(i)
        }
        func tokenMatches(_ k: Int, _ part: [UInt8], prefix: Bool) -> Bool {
            let length = ends[k] - starts[k]
            guard prefix ? length >= part.count : length == part.count else { return false }
            for j in 0..<part.count where doc[starts[k] + j] != part[j] { return false }
            return true
        }
        var result: [Occurrences] = []
        for (parts, prefix) in patterns {
            var tf = 0
            var first = Int.max
            if parts.count <= starts.count {
                for k in 0...(starts.count - parts.count) {
                    var hit = true
                    for (j, part) in parts.enumerated() where !tokenMatches(k + j, part, prefix: prefix) {
                        hit = false
                        break
                    }
                    if hit {
                        tf += 1
                        first = min(first, k)
                    }
                }
            }
            result.append(Occurrences(count: tf, first: first == Int.max ? 0 : first))
        }
        return Statistics(length: starts.count, terms: result)
    }
}
