import Crypto

/// Ed25519 batch verification (the random-linear-combination check of Bernstein et al.,
/// "High-speed high-security signatures", section 5): many signatures checked with one
/// multi-scalar multiplication instead of one double scalar multiplication each.
///
/// swift-crypto verifies one signature at a time and has no batch API; this is the arithmetic
/// a batch needs and nothing more, in variable time (it handles only public data). It only ever
/// *accepts*: when a batch fails, its caller (`SignedRevision.verifyAll`) checks each signature
/// on its own with swift-crypto to find which one is bad.
///
/// The check is the cofactored one: 8·(Σzᵢ·Sᵢ·B − Σzᵢ·Rᵢ − Σzᵢ·kᵢ·Aᵢ) = 0 with random 128-bit zᵢ.
/// It accepts every signature swift-crypto accepts. The one difference, as with every batch
/// verifier (see "Taming the many EdDSAs", Chalkias et al. 2020): a key holder can craft a
/// signature whose R or A carries a small-order component that passes here and fails one by
/// one. That needs the private key, so it cannot forge or alter anyone else's content.
public enum Ed25519Batch {
    /// One signature to check: a 32-byte public key, the signed bytes and a 64-byte signature.
    public struct Item: Sendable {
        public var publicKey: [UInt8]
        public var message: [UInt8]
        public var signature: [UInt8]
        public init(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) {
            self.publicKey = publicKey
            self.message = message
            self.signature = signature
        }
    }

    /// True when every signature is valid (a false "valid": probability about 2⁻¹²⁷ per call).
    /// False when any is invalid or malformed; it does not say which.
    public static func verify(_ items: [Item]) -> Bool {
        var rng = SystemRandomNumberGenerator()
        return verify(items, using: &rng)
    }

    /// After `verify(items)` failed: the indices that may hold the bad signatures, for the
    /// caller to check one by one. The batch is halved: a half that passes is cleared whole,
    /// and when the left half passes the right one must hold a bad signature, so it is halved
    /// without a check of its own. Parts of `leaf` items or fewer are returned as they are.
    ///
    /// One bad signature among 500 then costs about one more batch of 500 and a few checks
    /// alone, instead of 500 checks alone: a peer that slips one bad signature into every part
    /// no longer multiplies the work five times. Many bad signatures would make the halving
    /// cost more than checking each alone, so it stops once its batches have cost about that
    /// (`budget`, in batch items, about four to a check alone) and returns everything left.
    public static func suspects(_ items: [Item], leaf: Int = 8) -> [Int] {
        var rng = SystemRandomNumberGenerator()
        return suspects(items, leaf: leaf, using: &rng)
    }

    static func suspects(_ items: [Item], leaf: Int = 8, using rng: inout some RandomNumberGenerator) -> [Int] {
        var out: [Int] = []
        var budget = 4 * items.count
        /// `range` is known to hold a bad signature.
        func settle(_ range: Range<Int>) {
            guard range.count > leaf, budget > 0 else {
                out += range
                return
            }
            let left = range.lowerBound..<(range.lowerBound + range.count / 2)
            let right = left.upperBound..<range.upperBound
            budget -= left.count
            if verify(Array(items[left]), using: &rng) {
                settle(right)
                return
            }
            settle(left)
            budget -= right.count
            if budget <= 0 || !verify(Array(items[right]), using: &rng) { settle(right) }
        }
        settle(items.indices)
        return out
    }

    /// As `verify`, with the weights drawn from `rng` (tests only pass a seeded one).
    static func verify(_ items: [Item], using rng: inout some RandomNumberGenerator) -> Bool {
        if items.isEmpty { return true }
        var rs: [EdwardsPoint] = []
        var weights: [(UInt64, UInt64)] = []
        rs.reserveCapacity(items.count)
        weights.reserveCapacity(items.count)
        var sumS = BigScalar()
        // Each author's key, decoded once a batch, with the sum of its zᵢ·kᵢ.
        var keyIndex: [[UInt8]: Int] = [:]
        var keyPoints: [EdwardsPoint] = [], keySums: [BigScalar] = []
        for item in items {
            guard item.publicKey.count == 32, item.signature.count == 64 else { return false }
            let rBytes = item.signature[0..<32], sBytes = item.signature[32..<64]
            guard Scalar.isCanonical(sBytes), let r = EdwardsPoint(decoding: rBytes, canonical: true) else { return false }
            let key: Int
            if let known = keyIndex[item.publicKey] {
                key = known
            } else {
                guard let a = EdwardsPoint(decoding: item.publicKey[...], canonical: false) else { return false }
                key = keyPoints.count
                keyIndex[item.publicKey] = key
                keyPoints.append(a)
                keySums.append(BigScalar())
            }
            var hash = SHA512()
            hash.update(data: rBytes)
            hash.update(data: item.publicKey)
            hash.update(data: item.message)
            let k = hash.finalize().withUnsafeBytes { BigScalar(littleEndian: $0) }
            let z = (rng.next() as UInt64 | 1, rng.next() as UInt64)
            sumS.add(BigScalar(littleEndian: sBytes).times(z))
            keySums[key].add(k.times(z))
            rs.append(r)
            weights.append(z)
        }
        // The few large terms (B and each author's key) share their doublings (Straus); the
        // 128-bit ones (each R) join them in a small batch and go through buckets (Pippenger)
        // from 128 on, where buckets start to cost less per point than a table each.
        var terms = [(EdwardsPoint.basePoint, sumS.reducedModOrder())]
        for (a, sum) in zip(keyPoints, keySums) { terms.append((a.negated, sum.reducedModOrder())) }
        let q: EdwardsPoint
        if rs.count < 128 {
            q = EdwardsPoint.straus(terms + zip(rs, weights).map { r, z in (r.negated, BigScalar(limbs: [z.0, z.1])) })
        } else {
            q = EdwardsPoint.straus(terms).subtracting(EdwardsPoint.multiScalar(weights, rs))
        }
        return q.doubled().doubled().doubled().isIdentity
    }
}

// MARK: - Scalars

enum Scalar {
    /// The group order L = 2²⁵² + 27742317777372353535851937790883648493, little-endian bytes.
    static let order: [UInt8] = [
        0xED, 0xD3, 0xF5, 0x5C, 0x1A, 0x63, 0x12, 0x58, 0xD6, 0x9C, 0xF7, 0xA2, 0xDE, 0xF9, 0xDE, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    /// S < L, as RFC 8032 (and swift-crypto) require of a signature's S.
    static func isCanonical(_ s: ArraySlice<UInt8>) -> Bool {
        for i in (0..<32).reversed() {
            let a = s[s.startIndex + i], b = order[i]
            if a != b { return a < b }
        }
        return false
    }
}

/// A non-negative integer of any size, 64-bit limbs, little-endian: the batch's sums, built
/// unreduced and reduced modulo L once before the multiplication.
struct BigScalar {
    var limbs: [UInt64] = []

    init() {}

    init(limbs: [UInt64]) { self.limbs = limbs }

    init(littleEndian bytes: some Collection<UInt8>) {
        var limbs = [UInt64](repeating: 0, count: (bytes.count + 7) / 8)
        for (i, b) in bytes.enumerated() { limbs[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
        self.limbs = limbs
    }

    /// self × (low + high·2⁶⁴).
    func times(_ z: (UInt64, UInt64)) -> BigScalar {
        var out = [UInt64](repeating: 0, count: limbs.count + 2)
        for (j, w) in [z.0, z.1].enumerated() {
            var carry: UInt64 = 0
            for i in limbs.indices {
                let (hi, lo) = limbs[i].multipliedFullWidth(by: w)
                let (s1, c1) = out[i + j].addingReportingOverflow(lo)
                let (s2, c2) = s1.addingReportingOverflow(carry)
                out[i + j] = s2
                carry = hi &+ (c1 ? 1 : 0) &+ (c2 ? 1 : 0)
            }
            var k = limbs.count + j
            while carry != 0 {
                let (s, c) = out[k].addingReportingOverflow(carry)
                out[k] = s
                carry = c ? 1 : 0
                k += 1
            }
        }
        return BigScalar(limbs: out)
    }

    mutating func add(_ other: BigScalar) {
        if limbs.count < other.limbs.count + 1 { limbs += [UInt64](repeating: 0, count: other.limbs.count + 1 - limbs.count) }
        var carry = false
        for i in limbs.indices {
            let (s1, c1) = limbs[i].addingReportingOverflow(i < other.limbs.count ? other.limbs[i] : 0)
            let (s2, c2) = s1.addingReportingOverflow(carry ? 1 : 0)
            limbs[i] = s2
            carry = c1 || c2
            if !carry && i >= other.limbs.count { break }
        }
    }

    var bitWidth: Int { limbs.count * 64 }

    /// self mod L, by shift and subtract from the top (a few hundred steps, once per key and
    /// batch). B has order L and 8·A a divisor of it, so the sums may be reduced.
    func reducedModOrder() -> BigScalar {
        var x = limbs
        while x.last == 0 { x.removeLast() }
        let order = BigScalar(littleEndian: Scalar.order).limbs
        let width = x.isEmpty ? 0 : x.count * 64 - x.last!.leadingZeroBitCount
        var shift = width - 253
        while shift >= 0 {
            let m = Self.shifted(order, by: shift, count: x.count)
            if !Self.less(x, m) { Self.subtract(&x, m) }
            shift -= 1
        }
        return BigScalar(limbs: Array((x + [0, 0, 0, 0]).prefix(4)))  // < L < 2²⁵³
    }

    static func shifted(_ v: [UInt64], by s: Int, count: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        let words = s / 64, bits = UInt64(s % 64)
        for (i, w) in v.enumerated() {
            if i + words < count { out[i + words] |= w << bits }
            if bits > 0, i + words + 1 < count { out[i + words + 1] |= w >> (64 - bits) }
        }
        return out
    }

    static func less(_ a: [UInt64], _ b: [UInt64]) -> Bool {
        for i in (0..<max(a.count, b.count)).reversed() {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x < y }
        }
        return false
    }

    static func subtract(_ a: inout [UInt64], _ b: [UInt64]) {
        var borrow = false
        for i in a.indices {
            let (d1, b1) = a[i].subtractingReportingOverflow(i < b.count ? b[i] : 0)
            let (d2, b2) = d1.subtractingReportingOverflow(borrow ? 1 : 0)
            a[i] = d2
            borrow = b1 || b2
        }
    }

    /// `count` (≤ 64) bits from bit `at`.
    func bits(at: Int, count: Int) -> UInt64 {
        let word = at / 64, shift = at % 64
        guard word < limbs.count else { return 0 }
        var v = limbs[word] >> UInt64(shift)
        if shift + count > 64, word + 1 < limbs.count { v |= limbs[word + 1] << UInt64(64 - shift) }
        return count == 64 ? v : v & ((1 << UInt64(count)) - 1)
    }
}

// MARK: - The field GF(2²⁵⁵ − 19)

/// Five 51-bit limbs, little-endian. Operations keep every limb under 2⁵⁴, which `*` needs.
struct FieldElement {
    var l0, l1, l2, l3, l4: UInt64

    static let mask: UInt64 = (1 << 51) - 1
    static let zero = FieldElement(l0: 0, l1: 0, l2: 0, l3: 0, l4: 0)
    static let one = FieldElement(l0: 1, l1: 0, l2: 0, l3: 0, l4: 0)

    /// 32 little-endian bytes; the top bit is ignored (it is the sign of x in a point).
    init(bytes: ArraySlice<UInt8>) {
        func word(_ i: Int) -> UInt64 {
            var w: UInt64 = 0
            for j in 0..<8 { w |= UInt64(bytes[bytes.startIndex + 8 * i + j]) << UInt64(8 * j) }
            return w
        }
        let w0 = word(0), w1 = word(1), w2 = word(2), w3 = word(3)
        l0 = w0 & Self.mask
        l1 = (w0 >> 51 | w1 << 13) & Self.mask
        l2 = (w1 >> 38 | w2 << 26) & Self.mask
        l3 = (w2 >> 25 | w3 << 39) & Self.mask
        l4 = (w3 >> 12) & Self.mask
    }

    init(l0: UInt64, l1: UInt64, l2: UInt64, l3: UInt64, l4: UInt64) {
        (self.l0, self.l1, self.l2, self.l3, self.l4) = (l0, l1, l2, l3, l4)
    }

    init(_ small: UInt64) { self.init(l0: small, l1: 0, l2: 0, l3: 0, l4: 0) }

    /// Carries so every limb is under 2⁵¹ + 2¹⁵.
    @inline(__always) static func carried(_ l0: UInt64, _ l1: UInt64, _ l2: UInt64, _ l3: UInt64, _ l4: UInt64) -> FieldElement {
        let c0 = l0 >> 51, c1 = l1 >> 51, c2 = l2 >> 51, c3 = l3 >> 51, c4 = l4 >> 51
        return FieldElement(l0: (l0 & mask) &+ c4 &* 19, l1: (l1 & mask) &+ c0, l2: (l2 & mask) &+ c1, l3: (l3 & mask) &+ c2, l4: (l4 & mask) &+ c3)
    }

    @inline(__always) static func + (a: FieldElement, b: FieldElement) -> FieldElement {
        carried(a.l0 &+ b.l0, a.l1 &+ b.l1, a.l2 &+ b.l2, a.l3 &+ b.l3, a.l4 &+ b.l4)
    }

    /// a + 16p − b, carried.
    @inline(__always) static func - (a: FieldElement, b: FieldElement) -> FieldElement {
        carried(
            (a.l0 &+ 0x7FFFFFFFFFFED0) &- b.l0, (a.l1 &+ 0x7FFFFFFFFFFFF0) &- b.l1, (a.l2 &+ 0x7FFFFFFFFFFFF0) &- b.l2,
            (a.l3 &+ 0x7FFFFFFFFFFFF0) &- b.l3, (a.l4 &+ 0x7FFFFFFFFFFFF0) &- b.l4)
    }

    @inline(__always) static prefix func - (a: FieldElement) -> FieldElement { zero - a }

    @inline(__always) static func wide(_ a: UInt64, _ b: UInt64) -> UInt128 { UInt128(a) &* UInt128(b) }

    /// The 128-bit column sums reduced to limbs (the carry out of the top limb times 19 goes
    /// back into the bottom one: 2²⁵⁵ = 19).
    @inline(__always) static func reduced(_ c0: UInt128, _ c1: UInt128, _ c2: UInt128, _ c3: UInt128, _ c4: UInt128) -> FieldElement {
        let c1 = c1 &+ (c0 >> 51), c2 = c2 &+ (c1 >> 51), c3 = c3 &+ (c2 >> 51), c4 = c4 &+ (c3 >> 51)
        var r0 = (UInt64(truncatingIfNeeded: c0) & mask) &+ UInt64(truncatingIfNeeded: c4 >> 51) &* 19
        let r1 = (UInt64(truncatingIfNeeded: c1) & mask) &+ (r0 >> 51)
        r0 &= mask
        return FieldElement(
            l0: r0, l1: r1, l2: UInt64(truncatingIfNeeded: c2) & mask, l3: UInt64(truncatingIfNeeded: c3) & mask,
            l4: UInt64(truncatingIfNeeded: c4) & mask)
    }

    @inline(__always) static func * (a: FieldElement, b: FieldElement) -> FieldElement {
        let b1 = b.l1 &* 19, b2 = b.l2 &* 19, b3 = b.l3 &* 19, b4 = b.l4 &* 19
        let c0 = wide(a.l0, b.l0) &+ wide(a.l4, b1) &+ wide(a.l3, b2) &+ wide(a.l2, b3) &+ wide(a.l1, b4)
        let c1 = wide(a.l1, b.l0) &+ wide(a.l0, b.l1) &+ wide(a.l4, b2) &+ wide(a.l3, b3) &+ wide(a.l2, b4)
        let c2 = wide(a.l2, b.l0) &+ wide(a.l1, b.l1) &+ wide(a.l0, b.l2) &+ wide(a.l4, b3) &+ wide(a.l3, b4)
        let c3 = wide(a.l3, b.l0) &+ wide(a.l2, b.l1) &+ wide(a.l1, b.l2) &+ wide(a.l0, b.l3) &+ wide(a.l4, b4)
        let c4 = wide(a.l4, b.l0) &+ wide(a.l3, b.l1) &+ wide(a.l2, b.l2) &+ wide(a.l1, b.l3) &+ wide(a.l0, b.l4)
        return reduced(c0, c1, c2, c3, c4)
    }

    @inline(__always) func squared() -> FieldElement {
        let d0 = l0 &* 2, d1 = l1 &* 2, d2 = l2 &* 2
        let t3 = l3 &* 19, t4 = l4 &* 19
        let c0 = Self.wide(l0, l0) &+ Self.wide(d1, t4) &+ Self.wide(d2, t3)
        let c1 = Self.wide(d0, l1) &+ Self.wide(d2, t4) &+ Self.wide(l3, t3)
        let c2 = Self.wide(d0, l2) &+ Self.wide(l1, l1) &+ Self.wide(l3 &* 2, t4)
        let c3 = Self.wide(d0, l3) &+ Self.wide(d1, l2) &+ Self.wide(l4, t4)
        let c4 = Self.wide(d0, l4) &+ Self.wide(d1, l3) &+ Self.wide(l2, l2)
        return Self.reduced(c0, c1, c2, c3, c4)
    }

    func squared(times n: Int) -> FieldElement {
        var x = self
        for _ in 0..<n { x = x.squared() }
        return x
    }

    /// self^(2²⁵² − 3), the power in square roots and inverses (ref10's addition chain).
    func pow22523() -> FieldElement {
        let z2 = squared()
        let z9 = self * z2.squared(times: 2)
        let z11 = z2 * z9
        let z2_5 = z9 * z11.squared()  // 2⁵ − 1
        let z2_10 = z2_5.squared(times: 5) * z2_5
        let z2_20 = z2_10.squared(times: 10) * z2_10
        let z2_40 = z2_20.squared(times: 20) * z2_20
        let z2_50 = z2_40.squared(times: 10) * z2_10
        let z2_100 = z2_50.squared(times: 50) * z2_50
        let z2_200 = z2_100.squared(times: 100) * z2_100
        let z2_250 = z2_200.squared(times: 50) * z2_50
        return z2_250.squared(times: 2) * self
    }

    /// self^(p − 2) = self⁻¹ (0 for 0).
    func inverted() -> FieldElement {
        let t = pow22523().squared(times: 3)  // 2²⁵⁵ − 24
        return t * squared() * self  // + 3
    }

    /// The value in [0, p), as 32 little-endian bytes.
    var bytes: [UInt8] {
        let words = canonicalWords
        var out = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 { out[i] = UInt8(truncatingIfNeeded: words[i / 8] >> UInt64(8 * (i % 8))) }
        return out
    }

    /// The value in [0, p), as four little-endian 64-bit words.
    var canonicalWords: SIMD4<UInt64> {
        // Two carries bring every limb under 2⁵¹ (and the value under 2p); then subtract p once
        // if the value is p or more: q is 1 exactly when value + 19 reaches 2²⁵⁵.
        let a = Self.carried(l0, l1, l2, l3, l4)
        var (r0, r1, r2, r3, r4) = (a.l0, a.l1, a.l2, a.l3, a.l4)
        var q = (r0 &+ 19) >> 51
        q = (r1 &+ q) >> 51
        q = (r2 &+ q) >> 51
        q = (r3 &+ q) >> 51
        q = (r4 &+ q) >> 51
        r0 &+= 19 &* q
        r1 &+= r0 >> 51; r0 &= Self.mask
        r2 &+= r1 >> 51; r1 &= Self.mask
        r3 &+= r2 >> 51; r2 &= Self.mask
        r4 &+= r3 >> 51; r3 &= Self.mask
        r4 &= Self.mask
        return SIMD4(r0 | r1 << 51, r1 >> 13 | r2 << 38, r2 >> 26 | r3 << 25, r3 >> 39 | r4 << 12)
    }

    var isZero: Bool { canonicalWords == .zero }
    /// x is "negative" when its canonical value is odd (RFC 8032).
    var isNegative: Bool { canonicalWords[0] & 1 == 1 }

    static func == (a: FieldElement, b: FieldElement) -> Bool { a.canonicalWords == b.canonicalWords }

    static let d: FieldElement = -(FieldElement(121665) * FieldElement(121666).inverted())
    static let d2: FieldElement = d + d
    /// 2^((p − 1)/4), a square root of −1.
    static let sqrtMinusOne: FieldElement = FieldElement(2).pow22523().squared() * FieldElement(2)
}

// MARK: - Points of edwards25519

/// A point in extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, x·y = T/Z. The addition
/// formulas (Hisil–Wong–Carter–Dawson 2008, a = −1) are complete on this curve, so they take the
/// identity, doublings and small-order points alike.
struct EdwardsPoint {
    var x, y, z, t: FieldElement

    static let identity = EdwardsPoint(x: .zero, y: .one, z: .one, t: .zero)

    /// The base point B: y = 4/5, x even.
    static let basePoint: EdwardsPoint = {
        let y = FieldElement(4) * FieldElement(5).inverted()
        return EdwardsPoint(decoding: y.bytes[...], canonical: true)!
    }()

    /// A point's 32-byte encoding (RFC 8032 5.1.3). `canonical` also refuses y ≥ p, as
    /// comparing re-encoded bytes (swift-crypto's check of R) does.
    init?(decoding b: ArraySlice<UInt8>, canonical: Bool) {
        let y = FieldElement(bytes: b)
        if canonical {
            var top = Array(b)
            top[31] &= 0x7F
            guard y.bytes == top else { return nil }
        }
        let sign = b[b.startIndex + 31] >> 7
        let yy = y.squared()
        let u = yy - .one
        let v = FieldElement.d * yy + .one
        let v3 = v.squared() * v
        var x = u * v3 * (u * v3.squared() * v).pow22523()
        let vxx = v * x.squared()
        if !(vxx == u) {
            guard vxx == -u else { return nil }
            x = x * FieldElement.sqrtMinusOne
        }
        if x.isZero && sign == 1 { return nil }
        if (x.isNegative ? 1 : 0) != sign { x = -x }
        self.init(x: x, y: y, z: .one, t: x * y)
    }

    init(x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement) {
        (self.x, self.y, self.z, self.t) = (x, y, z, t)
    }

    /// The point prepared as an addend: (Y + X, Y − X, 2Z, 2d·T).
    struct Cached {
        var yPlusX, yMinusX, z2, t2d: FieldElement
    }

    var cached: Cached { Cached(yPlusX: y + x, yMinusX: y - x, z2: z + z, t2d: t * FieldElement.d2) }

    @inline(__always) func adding(_ q: Cached) -> EdwardsPoint {
        let a = (y - x) * q.yMinusX
        let b = (y + x) * q.yPlusX
        let c = t * q.t2d
        let d = z * q.z2
        let e = b - a, f = d - c, g = d + c, h = b + a
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    func adding(_ q: EdwardsPoint) -> EdwardsPoint { adding(q.cached) }
    func subtracting(_ q: EdwardsPoint) -> EdwardsPoint { adding(q.negated) }
    var negated: EdwardsPoint { EdwardsPoint(x: -x, y: y, z: z, t: -t) }

    @inline(__always) func doubled() -> EdwardsPoint {
        let a = x.squared(), b = y.squared()
        let zz = z.squared()
        let c = zz + zz
        let h = a + b
        let e = h - (x + y).squared()
        let g = a - b
        let f = c + g
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// X = 0 and Y = Z.
    var isIdentity: Bool { x.isZero && y == z }

    /// Σ [nᵢ]pᵢ for a few points: one table of 16 multiples each, doublings shared (Straus).
    static func straus(_ terms: [(EdwardsPoint, BigScalar)]) -> EdwardsPoint {
        let tables = terms.map { term in
            var table = [Cached](repeating: EdwardsPoint.identity.cached, count: 16)
            var p = EdwardsPoint.identity
            for i in 1..<16 {
                p = p.adding(term.0.cached)
                table[i] = p.cached
            }
            return table
        }
        let width = terms.map(\.1.bitWidth).max() ?? 0
        var acc = EdwardsPoint.identity
        for w in stride(from: width - 4, through: 0, by: -4) {
            acc = acc.doubled().doubled().doubled().doubled()
            for (table, term) in zip(tables, terms) {
                let digit = Int(term.1.bits(at: w, count: 4))
                if digit != 0 { acc = acc.adding(table[digit]) }
            }
        }
        return acc
    }

    /// Σ [zᵢ]pᵢ for 128-bit zᵢ (low, high): Pippenger's bucket method, `c` bits per window.
    static func multiScalar(_ scalars: [(UInt64, UInt64)], _ points: [EdwardsPoint]) -> EdwardsPoint {
        // Only batches of 128 or more come here (`verify`).
        let c = scalars.count < 256 ? 5 : scalars.count < 1024 ? 6 : 7
        let addends = points.map(\.cached)
        var buckets = [EdwardsPoint](repeating: .identity, count: (1 << c) - 1)
        var result = EdwardsPoint.identity
        for window in stride(from: (128 + c - 1) / c - 1, through: 0, by: -1) {
            for _ in 0..<c { result = result.doubled() }
            for i in buckets.indices { buckets[i] = .identity }
            let at = window * c
            for (i, z) in scalars.enumerated() {
                let digit = Self.bits(z, at: at, count: c)
                if digit != 0 { buckets[digit - 1] = buckets[digit - 1].adding(addends[i]) }
            }
            // Σ j·bucket[j] as running sums from the top bucket down.
            var running = EdwardsPoint.identity, total = EdwardsPoint.identity
            for bucket in buckets.reversed() {
                running = running.adding(bucket)
                total = total.adding(running)
            }
            result = result.adding(total)
        }
        return result
    }

    @inline(__always) static func bits(_ z: (UInt64, UInt64), at: Int, count: Int) -> Int {
        let mask: UInt64 = (1 << UInt64(count)) - 1
        if at >= 64 { return Int((z.1 >> UInt64(at - 64)) & mask) }
        var v = z.0 >> UInt64(at)
        if at + count > 64 { v |= z.1 << UInt64(64 - at) }
        return Int(v & mask)
    }
}
