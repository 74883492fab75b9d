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
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            // Integers within ±2^53 are exact in ECMAScript and print as themselves.
            if i.magnitude <= 1 << 53 { out.append(contentsOf: String(i).utf8) } else { out.append(contentsOf: number(Double(i)).utf8) }
        case .double(let d): out.append(contentsOf: number(d).utf8)
        case .string(let s): JSONSerializer.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(v, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, entry) in sortedEntries(o).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONSerializer.writeString(entry.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(entry.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Members in JCS order: by UTF-16 code units, not by code points or bytes (they differ
    /// for characters beyond the Basic Multilingual Plane).
    static func sortedEntries(_ o: JSONObject) -> [(key: String, value: JSONValue)] {
        o.entries.sorted { a, b in
            if a.key.utf8.allSatisfy({ $0 < 0x80 }) && b.key.utf8.allSatisfy({ $0 < 0x80 }) {
                return a.key.utf8.lexicographicallyPrecedes(b.key.utf8)
            }
            return a.key.utf16.lexicographicallyPrecedes(b.key.utf16)
        }
    }

    /// ECMAScript Number::toString (ECMA-262 7.1.12.1) for a finite double. Swift's
    /// `description` already gives the shortest digits that round-trip; only the layout differs.
    public static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }  // not representable in JSON; never produced by the parser
        if d == 0 { return "0" }
        let text = d.magnitude.description  // e.g. "4.5", "1e-27", "1.2345e+20", "333333333.3333333"
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
        var out = d < 0 ? "-" : ""
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
