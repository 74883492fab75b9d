/// Writes `JSONValue`s as compact JSON text in key order.
///
/// Strings escape only what RFC 8259 requires (quote, backslash, control characters), so
/// non-Latin text stays readable on the wire.
public enum JSONSerializer {
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out)
        return out
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: serialize(value), as: UTF8.self)
    }

    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        write(value, to: &out)
    }

    /// How many bytes `serialize` would give, without making them.
    public static func size(of value: JSONValue) -> Int {
        var counter = ByteCount()
        write(value, to: &counter)
        return counter.count
    }

    static func write<Sink: ByteSink>(_ value: JSONValue, to out: inout Sink) {
        switch value {
        case .null: out.put(contentsOf: "null".utf8)
        case .bool(let b): out.put(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.put(contentsOf: String(i).utf8)
        case .double(let d): out.put(contentsOf: formatDouble(d).utf8)
        case .string(let s): writeString(s, to: &out)
        case .array(let a):
            out.put(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.put(UInt8(ascii: ",")) }
                write(v, to: &out)
            }
            out.put(UInt8(ascii: "]"))
        case .object(let o):
            out.put(UInt8(ascii: "{"))
            var first = true
            for (k, v) in o {
                if !first { out.put(UInt8(ascii: ",")) }
                first = false
                writeString(k, to: &out)
                out.put(UInt8(ascii: ":"))
                write(v, to: &out)
            }
            out.put(UInt8(ascii: "}"))
        }
    }

    /// Doubles as Python's `json` writes them for finite values: `30.0`, `0.1`, `1e+21`.
    static func formatDouble(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        return d.description
    }

    public static func writeString(_ s: String, into out: inout [UInt8]) {
        writeString(s, to: &out)
    }

    static func writeString<Sink: ByteSink>(_ s: String, to out: inout Sink) {
        out.put(UInt8(ascii: "\""))
        // Most strings need no escaping: scanned in place and copied whole. (A string without
        // contiguous UTF-8, which native strings always have, takes the loop below.)
        let copied = s.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            for b in bytes where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return false }
            out.put(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.put(UInt8(ascii: "\""))
            return
        }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.put(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.put(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.put(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.put(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.put(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.put(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.put(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                out.put(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, Hex.digits[Int(b >> 4)], Hex.digits[Int(b & 0xF)]])
            default: out.put(b)
            }
        }
        out.put(UInt8(ascii: "\""))
    }
}
