/// New entity ids: UUID version 7 (RFC 9562 §5.7), 48 bits of Unix milliseconds, then random
/// bits. Still UUIDs to every client, but ids made close in time sort close together, so a
/// store's id indexes take new entries at their end: a commit of 16 new things then dirties one
/// or two index pages instead of 16 scattered ones (random version 4 ids), in each index keyed
/// by entity id.
public enum EntityID {
    public static func make<R: RandomNumberGenerator>(milliseconds: Int64, random: inout R) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let ms = UInt64(max(0, milliseconds)) & 0xFFFF_FFFF_FFFF
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: ms >> (8 * (5 - i))) }
        let r1 = random.next() as UInt64
        let r2 = random.next() as UInt64
        for i in 6..<8 { bytes[i] = UInt8(truncatingIfNeeded: r1 >> (8 * (i - 6))) }
        for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: r2 >> (8 * (i - 8))) }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)  // version 7
        bytes[8] = 0x80 | (bytes[8] & 0x3F)  // variant 10
        let hex = Hex.digits
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
