import Foundation

/// RFC 8785 JSON Canonicalization Scheme (JCS): the bytes that revision ids hash and
/// signatures sign.
///
/// - no whitespace;
/// - object members sorted by the UTF-16 code units of their names;
/// - strings escaped minimally (`\"`, `\\`, `\b \t \n \f \r`, other controls as `\u00xx`),
///   everything else as raw UTF-8;
/// - numbers as ECMAScript's Number-to-String writes them (`4.5`, `1e+30`, `0.002`, `1e-27`).
public enum CanonicalJSON {
    public static func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out)
        return out
    }

    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        write(value, to: &out)
    }

    /// Whether `bytes` are exactly `value`'s canonical form: the same walk as `encode`, but
    /// compared as it goes, with no copy made (received revisions are checked this way).
    public static func isCanonical(_ value: JSONValue, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { expected in
            var check = Comparison(expected: expected)
            write(value, to: &check)
            return check.same && check.at == expected.count
        }
    }

    static func write<Sink: ByteSink>(_ value: JSONValue, to out: inout Sink) {
        switch value {
        case .null: out.put(contentsOf: "null".utf8)
        case .bool(let b): out.put(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            // Integers within ±2^53 are exact in ECMAScript and print as themselves.
            if i.magnitude <= 1 << 53 { out.put(contentsOf: String(i).utf8) } else { out.put(contentsOf: number(Double(i)).utf8) }
        case .double(let d): out.put(contentsOf: number(d).utf8)
        case .string(let s): JSONSerializer.writeString(s, to: &out)
        case .array(let a):
            out.put(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.put(UInt8(ascii: ",")) }
                write(v, to: &out)
            }
            out.put(UInt8(ascii: "]"))
        case .object(let o):
            out.put(UInt8(ascii: "{"))
            for (i, entry) in sortedEntries(o).enumerated() {
                if i > 0 { out.put(UInt8(ascii: ",")) }
                JSONSerializer.writeString(entry.key, to: &out)
                out.put(UInt8(ascii: ":"))
                write(entry.value, to: &out)
            }
            out.put(UInt8(ascii: "}"))
        }
    }

    /// Members in JCS order: by UTF-16 code units, not by code points or bytes (they differ
    /// for characters beyond the Basic Multilingual Plane). Members already in order (every
    /// object parsed from canonical bytes) are taken as they are.
    static func sortedEntries(_ o: JSONObject) -> [(key: String, value: JSONValue)] {
        let entries = o.entries
        var i = 1
        while i < entries.count, precedes(entries[i - 1].key, entries[i].key) { i += 1 }
        return i >= entries.count ? entries : entries.sorted { precedes($0.key, $1.key) }
    }

    /// UTF-16 code-unit order. UTF-8 byte order is the same up to the first byte that
    /// differs, and decides there unless both bytes are non-ASCII (only then can a character
    /// beyond the BMP, a surrogate pair in UTF-16, sort differently from one at U+E000 and above).
    static func precedes(_ a: String, _ b: String) -> Bool {
        var x = a.utf8.makeIterator()
        var y = b.utf8.makeIterator()
        while true {
            switch (x.next(), y.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case (let p?, let q?) where p == q: continue
            case (let p?, let q?) where p < 0x80 || q < 0x80: return p < q
            default: return a.utf16.lexicographicallyPrecedes(b.utf16)
            }
        }
    }

    /// ECMAScript Number::toString (ECMA-262 7.1.12.1) for a finite double. Swift's
    /// `description` already gives the shortest digits that round-trip; only the layout differs.
    public static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }  // not representable in JSON; never produced by the parser
        if d == 0 { return "0" }
        let text = d.magnitude.description  // e.g. "4.5", "1e-27", "1.2345e+20", "333333333.3333333"
        // Without an exponent (Swift writes one below 1e-4 and from 2^53 on), Swift's layout
        // is already ECMAScript's but for the ".0" that Swift gives whole numbers.
        if !text.utf8.contains(UInt8(ascii: "e")) {
            let plain = text.hasSuffix(".0") ? String(text.dropLast(2)) : text
            return d < 0 ? "-" + plain : plain
        }
        return layout(text, negative: d < 0)
    }

    /// ECMAScript's layout of the shortest digits in `text` (Swift's `description` of a
    /// magnitude), for any finite non-zero magnitude.
    static func layout(_ text: String, negative: Bool) -> String {
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        // Digits without the point, and n such that the value is 0.DIGITS × 10^n.
        var digits = ""
        var pointAt = mantissa.count
        for (i, c) in mantissa.enumerated() {
            if c == "." { pointAt = i } else { digits.append(c) }
        }
        var n = pointAt + exponent
        while digits.first == "0" {
            digits.removeFirst()
            n -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        var out = negative ? "-" : ""
        if k <= n && n <= 21 {
            out += digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            out += digits.prefix(n) + "." + digits.dropFirst(n)
        } else if -6 < n && n <= 0 {
            out += "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            out += String(digits.prefix(1))
            if k > 1 { out += "." + digits.dropFirst() }
            out += "e" + (e < 0 ? "-" : "+") + String(e.magnitude)
        }
        return out
    }
}

/// Where encoders put bytes: an array they grow, or a comparison with bytes already there.
protocol ByteSink {
    mutating func put(_ byte: UInt8)
    mutating func put<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes)
}

extension Array: ByteSink where Element == UInt8 {
    mutating func put(_ byte: UInt8) { append(byte) }
    mutating func put<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes) { append(contentsOf: bytes) }
}

/// Counts what is put.
struct ByteCount: ByteSink {
    var count = 0
    mutating func put(_ byte: UInt8) { count += 1 }
    mutating func put<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes) { count += bytes.count }
}

/// Compares what is put with `expected`, from the start; `same` turns false at the first
/// difference (or when more is put than `expected` holds).
struct Comparison: ByteSink {
    let expected: UnsafeBufferPointer<UInt8>
    var at = 0
    var same = true

    mutating func put(_ byte: UInt8) {
        guard same, at < expected.count, expected[at] == byte else { same = false; return }
        at += 1
    }

    mutating func put<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes) {
        guard same else { return }
        let n = bytes.count
        guard expected.count - at >= n else { same = false; return }
        let rest = UnsafeBufferPointer(rebasing: expected[at..<at + n])
        let equal = bytes.withContiguousStorageIfAvailable { b in n == 0 || memcmp(b.baseAddress!, rest.baseAddress!, n) == 0 } ?? bytes.elementsEqual(rest)
        if equal { at += n } else { same = false }
    }
}
