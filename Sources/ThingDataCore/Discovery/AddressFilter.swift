import Foundation

/// An IPv4 or IPv6 address as bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Parses a literal: `10.0.0.1`, `::1`, `[fe80::1]` (brackets and a `%zone` are dropped).
    public init?(_ text: String) {
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        if let zone = t.firstIndex(of: "%") { t = t[..<zone] }
        guard !t.isEmpty, t.count <= 45 else { return nil }
        if t.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, String(t), &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: a) { Array($0) }
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, String(t), &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: a) { Array($0) }
        }
    }

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var isIPv4: Bool { bytes.count == 4 }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count)) != nil else { return "::" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// How it must appear in a URL's host.
    public var urlHost: String { isIPv4 ? description : "[\(description)]" }
}

/// An address block: `10.213.0.0/24`, `::/0`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let width = address.bytes.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...width).contains(p) else { return nil }
            prefix = p
        } else {
            prefix = width
        }
        self.address = address
    }

    public init(_ address: IPAddress, _ prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.bytes.count == address.bytes.count else { return false }
        var bits = prefix
        for i in 0..<a.bytes.count where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a.bytes[i] & mask != address.bytes[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    public var description: String { "\(address)/\(prefix)" }
}

/// Which addresses learned from other nodes (peer exchange) this node may dial.
///
/// An address must fall in one of the configured ranges. Loopback, link-local, unspecified,
/// multicast and broadcast addresses are refused even then, unless a configured range names
/// their block explicitly (a range at least as narrow as the block: `127.0.0.0/8` allows
/// loopback, `0.0.0.0/0` does not). Hostnames are refused: a record must carry IP literals,
/// so a peer cannot make this node look names up. Ports below 1024 other than 443 are refused,
/// so hearsay cannot aim this node's dials at other services (web servers on 80, mail, ssh).
public struct AddressFilter: Sendable, Equatable {
    public var ranges: [IPNetwork]

    public init(ranges: [IPNetwork] = [IPNetwork("0.0.0.0/0")!, IPNetwork("::/0")!]) { self.ranges = ranges }

    static let special: [(IPNetwork, String)] = [
        (IPNetwork("127.0.0.0/8")!, "loopback"), (IPNetwork("::1/128")!, "loopback"),
        (IPNetwork("169.254.0.0/16")!, "link-local"), (IPNetwork("fe80::/10")!, "link-local"),
        (IPNetwork("0.0.0.0/8")!, "unspecified"), (IPNetwork("::/128")!, "unspecified"),
        (IPNetwork("224.0.0.0/4")!, "multicast"), (IPNetwork("ff00::/8")!, "multicast"),
        (IPNetwork("255.255.255.255/32")!, "broadcast"),
    ]

    /// Nil if the address may be dialled; otherwise why not.
    public func refusal(host: String, port: Int) -> String? {
        guard let a = IPAddress(host) else { return "not an IP address" }
        guard (1...65535).contains(port) else { return "port out of range" }
        if port < 1024 && port != 443 { return "privileged port \(port)" }
        if let (block, kind) = Self.special.first(where: { $0.0.contains(a) }) {
            let explicit = ranges.contains { $0.prefix >= block.prefix && $0.contains(a) }
            return explicit ? nil : "\(kind) address"
        }
        return ranges.contains { $0.contains(a) } ? nil : "outside the allowed ranges"
    }
}
