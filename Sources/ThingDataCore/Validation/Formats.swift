/// Syntax checks for the string formats the content model uses. Pure and allocation-light.
public enum Formats {
    static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    static func isHex(_ c: UInt8) -> Bool { isDigit(c) || ((c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "f")) }

    /// An absolute http(s) URL with a host and no whitespace.
    public static func isURL(_ s: String) -> Bool {
        let lower = s.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") { rest = s.dropFirst(8) } else if lower.hasPrefix("http://") { rest = s.dropFirst(7) } else { return false }
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !host.isEmpty, !host.hasPrefix(":"), !host.hasPrefix("@"), !host.hasPrefix(".") else { return false }
        return !s.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0 == "<" || $0 == ">" || $0 == "\"" }
    }

    /// `local@domain.tld`, as HTML's email input checks it.
    public static func isEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last else { return false }
        guard !local.isEmpty, local.utf8.count <= 64, domain.utf8.count <= 253 else { return false }
        let localOK = local.utf8.allSatisfy { isAlpha($0) || isDigit($0) || "!#$%&'*+/=?^_`{|}~.-".utf8.contains($0) }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        let domainOK = labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { ($0.isASCII && (isAlpha(UInt8($0.value)) || isDigit(UInt8($0.value)) || $0 == "-")) || !$0.isASCII && $0.properties.isAlphabetic }
        }
        return localOK && domainOK
    }

    /// `YYYY-MM-DD`, optionally followed by `THH:MM[:SS[.fff]]` and `Z` or `±HH:MM`.
    public static func isDateOrDateTime(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
            [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ isDigit(b[$0]) })
        else { return false }
        func num(_ r: Range<Int>) -> Int { r.reduce(0) { $0 * 10 + Int(b[$1] - 48) } }
        let year = num(0..<4), month = num(5..<7), day = num(8..<10)
        guard (1...12).contains(month), day >= 1, day <= Timestamp.daysIn(month: month, year: year) else { return false }
        if b.count == 10 { return true }
        guard b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "), b.count >= 16,
            isDigit(b[11]), isDigit(b[12]), b[13] == UInt8(ascii: ":"), isDigit(b[14]), isDigit(b[15]),
            num(11..<13) < 24, num(14..<16) < 60
        else { return false }
        var i = 16
        if i < b.count, b[i] == UInt8(ascii: ":") {
            guard i + 3 <= b.count, isDigit(b[i + 1]), isDigit(b[i + 2]), num((i + 1)..<(i + 3)) < 61 else { return false }
            i += 3
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                let start = i
                while i < b.count, isDigit(b[i]) { i += 1 }
                guard i > start, i - start <= 9 else { return false }
            }
        }
        if i == b.count { return true }
        if (b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z")) && i + 1 == b.count { return true }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), i + 6 == b.count,
            isDigit(b[i + 1]), isDigit(b[i + 2]), b[i + 3] == UInt8(ascii: ":"), isDigit(b[i + 4]), isDigit(b[i + 5])
        else { return false }
        return num((i + 1)..<(i + 3)) < 24 && num((i + 4)..<(i + 6)) < 60
    }

    /// A well-formed BCP 47 language tag (RFC 5646 section 2.1 syntax; registry not consulted).
    public static func isLanguageTag(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 64, s.utf8.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") }) else { return false }
        let subtags = s.split(separator: "-", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard subtags.allSatisfy({ !$0.isEmpty && $0.count <= 8 }) else { return false }
        func alpha(_ t: [UInt8]) -> Bool { t.allSatisfy(isAlpha) }
        func digits(_ t: [UInt8]) -> Bool { t.allSatisfy(isDigit) }
        func alnum(_ t: [UInt8]) -> Bool { t.allSatisfy { isAlpha($0) || isDigit($0) } }
        var i = 0
        // private use only: x-...
        if subtags[0].count == 1, (subtags[0][0] | 0x20) == UInt8(ascii: "x") {
            return subtags.count > 1 && subtags.dropFirst().allSatisfy { alnum($0) }
        }
        let lang = subtags[0]
        guard alpha(lang), (2...3).contains(lang.count) else { return false }  // ISO 639; 5-8 letter languages are reserved and unused
        i = 1
        if lang.count <= 3 {
            var ext = 0
            while i < subtags.count, ext < 3, subtags[i].count == 3, alpha(subtags[i]) { i += 1; ext += 1 }
        }
        if i < subtags.count, subtags[i].count == 4, alpha(subtags[i]) { i += 1 }  // script
        if i < subtags.count, (subtags[i].count == 2 && alpha(subtags[i])) || (subtags[i].count == 3 && digits(subtags[i])) { i += 1 }  // region
        while i < subtags.count, alnum(subtags[i]),
            (subtags[i].count >= 5) || (subtags[i].count == 4 && isDigit(subtags[i][0]))
        { i += 1 }  // variants
        while i < subtags.count, subtags[i].count == 1, (subtags[i][0] | 0x20) != UInt8(ascii: "x"), alnum(subtags[i]) {
            i += 1
            let start = i
            while i < subtags.count, subtags[i].count >= 2, alnum(subtags[i]) { i += 1 }
            if i == start { return false }
        }
        if i < subtags.count, subtags[i].count == 1, (subtags[i][0] | 0x20) == UInt8(ascii: "x") {
            i += 1
            let start = i
            while i < subtags.count, alnum(subtags[i]) { i += 1 }
            if i == start { return false }
        }
        return i == subtags.count
    }

    /// The canonical 8-4-4-4-12 hex form, either case.
    public static func isUUID(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 36 else { return false }
        for (i, c) in b.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !isHex(c) {
                return false
            }
        }
        return true
    }
}
