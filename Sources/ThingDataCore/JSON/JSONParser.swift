/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Why not Foundation's decoder: the node must refuse deep nesting *while* parsing (a
/// million nested arrays must not reach a recursion limit), report where malformed input
/// breaks, reject invalid UTF-8 and lone surrogates, and keep key order. All of that is
/// cheap here and hard to bolt on afterwards.
public struct JSONParser {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Reason: Sendable, Equatable {
            case syntax(String)
            case tooDeep(limit: Int)
            case invalidUTF8
        }
        public var reason: Reason
        /// Byte offset where parsing stopped.
        public var offset: Int
        public init(reason: Reason, offset: Int) {
            self.reason = reason
            self.offset = offset
        }
        public var description: String {
            switch reason {
            case .syntax(let m): "\(m) at byte \(offset)"
            case .tooDeep(let limit): "JSON nesting deeper than \(limit) at byte \(offset)"
            case .invalidUTF8: "invalid UTF-8 at byte \(offset)"
            }
        }
    }

    /// Parses a complete document. `maxDepth` counts containers: `[[1]]` has depth 2.
    public static func parse<Bytes: Collection>(_ bytes: Bytes, maxDepth: Int = 512) throws(Failure) -> JSONValue
    where Bytes.Element == UInt8 {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(Failure) in
            var p = Cursor(bytes: buffer, maxDepth: maxDepth)
            p.skipWhitespace()
            let value = try p.parseValue(depth: 0)
            p.skipWhitespace()
            if p.index != buffer.count { throw p.fail("unexpected data after the JSON value") }
            return value
        }
    }

    public static func parse(_ string: String, maxDepth: Int = 512) throws(Failure) -> JSONValue {
        try parse(Array(string.utf8), maxDepth: maxDepth)
    }
}

private struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func fail(_ message: String) -> JSONParser.Failure { .init(reason: .syntax(message), offset: index) }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ literal: StaticString, value: JSONValue) throws(JSONParser.Failure) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of input") }
        let ok = literal.withUTF8Buffer { lit in
            for i in 0..<count where bytes[index + i] != lit[i] { return false }
            return true
        }
        guard ok else { throw fail("invalid literal") }
        index += count
        return value
    }

    mutating func parseValue(depth: Int) throws(JSONParser.Failure) -> JSONValue {
        guard let c = peek else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParser.Failure) -> JSONValue {
        if depth > maxDepth { throw JSONParser.Failure(reason: .tooDeep(limit: maxDepth), offset: index) }
        index += 1
        var object = JSONObject()
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            object[key] = value  // a repeated key keeps its last value, as most parsers do
            skipWhitespace()
            guard let c = peek else { throw fail("unexpected end of input") }
            index += 1
            if c == UInt8(ascii: "}") { return .object(object) }
            if c != UInt8(ascii: ",") {
                index -= 1
                throw fail("expected ',' or '}'")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParser.Failure) -> JSONValue {
        if depth > maxDepth { throw JSONParser.Failure(reason: .tooDeep(limit: maxDepth), offset: index) }
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let c = peek else { throw fail("unexpected end of input") }
            index += 1
            if c == UInt8(ascii: "]") { return .array(array) }
            if c != UInt8(ascii: ",") {
                index -= 1
                throw fail("expected ',' or ']'")
            }
        }
    }

    mutating func parseHex4() throws(JSONParser.Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("unexpected end of input in \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }

    mutating func parseString() throws(JSONParser.Failure) -> String {
        index += 1  // opening quote
        var out: [UInt8] = []
        var start = index
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                let tail = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // Without escapes (most strings) the text is made straight from the input.
                if out.isEmpty { return String(decoding: tail, as: UTF8.self) }
                out.append(contentsOf: tail)
                break
            }
            if c < 0x20 { throw fail("control character in string") }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                index += 1
                guard let e = peek else { throw fail("unterminated escape") }
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw fail("lone surrogate in \\u escape") }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("lone surrogate in \\u escape")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    out.append(contentsOf: String(Character(u)).utf8)
                default: throw fail("invalid escape")
                }
                start = index
                continue
            }
            if c >= 0x80 {
                // Validate one UTF-8 sequence strictly (no overlongs, no surrogates).
                let len: Int
                var lo: UInt8 = 0x80
                var hi: UInt8 = 0xBF
                switch c {
                case 0xC2...0xDF: len = 2
                case 0xE0: len = 3; lo = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: len = 3
                case 0xED: len = 3; hi = 0x9F
                case 0xF0: len = 4; lo = 0x90
                case 0xF1...0xF3: len = 4
                case 0xF4: len = 4; hi = 0x8F
                default: throw JSONParser.Failure(reason: .invalidUTF8, offset: index)
                }
                guard index + len <= bytes.count else { throw JSONParser.Failure(reason: .invalidUTF8, offset: index) }
                let b1 = bytes[index + 1]
                guard b1 >= lo && b1 <= hi else { throw JSONParser.Failure(reason: .invalidUTF8, offset: index) }
                for k in 2..<max(2, len) where bytes[index + k] & 0xC0 != 0x80 {
                    throw JSONParser.Failure(reason: .invalidUTF8, offset: index)
                }
                index += len
                continue
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func parseNumber() throws(JSONParser.Failure) -> JSONValue {
        let start = index
        var isInteger = true
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else {
            throw fail("invalid number")
        }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { index += 1 }
        }
        if peek == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { throw fail("invalid number") }
            while let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { index += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { throw fail("invalid number") }
            while let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { index += 1 }
        }
        // Integers of up to 18 digits cannot overflow: added up here without making a text.
        let digits = index - start - (bytes[start] == UInt8(ascii: "-") ? 1 : 0)
        if isInteger, digits <= 18 {
            var v: Int64 = 0
            for i in (index - digits)..<index { v = v &* 10 &+ Int64(bytes[i] &- UInt8(ascii: "0")) }
            return .int(bytes[start] == UInt8(ascii: "-") ? -v : v)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { throw fail("number out of range") }
        return .double(d)
    }
}
