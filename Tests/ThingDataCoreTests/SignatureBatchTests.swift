import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ThingDataSigning

/// Ed25519 batch verification against swift-crypto's one-at-a-time check: every valid batch
/// passes, and every batch with one bad signature anywhere fails.
@Suite struct SignatureBatchTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// `count` signatures by `keys` keys over random messages of 0 to 600 bytes.
    static func batch(_ count: Int, keys: Int, rng: inout SplitMix64) -> [Ed25519Batch.Item] {
        let privateKeys = (0..<keys).map { _ in Curve25519.Signing.PrivateKey() }
        return (0..<count).map { i in
            let key = privateKeys[i % keys]
            let message = (0..<Int.random(in: 0...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            return Ed25519Batch.Item(publicKey: Array(key.publicKey.rawRepresentation), message: message, signature: Array(try! key.signature(for: message)))
        }
    }

    /// The encoding of the smallest y with no x on the curve.
    static let notOnTheCurve: [UInt8] = {
        for y in UInt8(2)... where EdwardsPoint(decoding: ([y] + [UInt8](repeating: 0, count: 31))[...], canonical: true) == nil {
            return [y] + [UInt8](repeating: 0, count: 31)
        }
        fatalError("every small y is on the curve")
    }()

    static func singly(_ item: Ed25519Batch.Item) -> Bool {
        NodeKey.isValid(signature: item.signature, of: item.message, by: item.publicKey)
    }

    /// Runs CPU-heavy work on one thread shared by these tests, at a lower priority, and waits
    /// for its result; the expectations stay in the test's task, on the results.
    ///
    /// A test's body runs on one of Swift's cooperative threads, of which a two-core machine
    /// has two. A debug build's curve arithmetic held both for about 15 s at the start of a
    /// run, and every other test's tasks (HTTP answers, database pools) waited as long: in CI
    /// that failed a timed HTTP test (and probably, once, PostgreSQL pools, which give up after
    /// 15 s without a connection). On a thread per test they would still take both cores; on
    /// one thread they take at most one, and give way to the rest.
    static func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in
            heavyWork.async {
                // Linux keeps a nice value per thread: 0 here is this thread alone.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 5)
                c.resume(returning: work())
            }
        }
    }
    static let heavyWork = DispatchQueue(label: "thingdata-tests.heavy-work")

    @Test func theFieldsConstantsAreWhatRFC8032Says() {
        #expect(FieldElement.d * FieldElement(121666) + FieldElement(121665) == .zero)
        #expect(FieldElement.sqrtMinusOne.squared() == -FieldElement.one)
        // B's encoding: y = 4/5, x even.
        let b = EdwardsPoint.basePoint
        let y = b.y * b.z.inverted()
        #expect(y.bytes == Self.hex("5866666666666666666666666666666666666666666666666666666666666666"))
        // B has order L; the point (0, −1) has order 2 and the cofactor kills it.
        #expect(b.multiplied(by: BigScalar(littleEndian: Scalar.order)).isIdentity)
        #expect(!b.multiplied(by: BigScalar(littleEndian: [7])).isIdentity)
        let minusOne = (-FieldElement.one).bytes
        let two = EdwardsPoint(decoding: minusOne[...], canonical: true)!
        #expect(!two.isIdentity && two.doubled().isIdentity)
    }

    @Test func fieldArithmeticAgreesWithItsOwnIdentities() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let a = FieldElement(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }[...])
            let b = FieldElement(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }[...])
            #expect((a + b) * (a - b) == a.squared() - b.squared())
            #expect(a * b == b * a)
            if !a.isZero { #expect(a * a.inverted() == .one) }
            #expect((a - b) + b == a)
        }
    }

    @Test func sumsReduceModuloTheGroupOrder() {
        var rng = SplitMix64(seed: 11)
        let order = BigScalar(littleEndian: Scalar.order)
        for _ in 0..<200 {
            let r = BigScalar(littleEndian: (0..<31).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let q = (rng.next() as UInt64, rng.next() as UInt64)
            // r + q·L, with r < 2²⁴⁸ < L, reduces to r; so does a multiple of L on its own to 0.
            var x = order.times(q)
            x.add(r)
            #expect(x.reducedModOrder().limbs == r.limbs)
            #expect(order.times(q).reducedModOrder().limbs.allSatisfy { $0 == 0 })
        }
        #expect(order.reducedModOrder().limbs.allSatisfy { $0 == 0 })
    }

    @Test func rfc8032TestVectorsPass() {
        let one = Ed25519Batch.Item(
            publicKey: Self.hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), message: [],
            signature: Self.hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))
        let two = Ed25519Batch.Item(
            publicKey: Self.hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"), message: [0x72],
            signature: Self.hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"))
        #expect(Self.singly(one) && Self.singly(two))
        #expect(Ed25519Batch.verify([one]))
        #expect(Ed25519Batch.verify([two]))
        #expect(Ed25519Batch.verify([one, two]))
        var wrong = two
        wrong.message = [0x73]
        #expect(!Ed25519Batch.verify([one, wrong]))
    }

    /// Sizes across every window width of the multi-scalar multiplication.
    @Test(arguments: [1, 2, 5, 31, 32, 127, 128, 700, 1100])
    func validBatchesPass(count: Int) async {
        let passed = await Self.offThePool {
            var rng = SplitMix64(seed: UInt64(count))
            return Ed25519Batch.verify(Self.batch(count, keys: min(count, 3), rng: &rng))
        }
        #expect(passed)
        #expect(Ed25519Batch.verify([]))
    }

    /// Each way a signature can be wrong, at a random place in a batch (small: one table per
    /// point; large: buckets) and alone.
    @Test(arguments: [40, 150])
    func oneBadSignatureFailsTheBatch(size: Int) async {
        /// Each tampering's verdicts: swift-crypto's alone, the batch's, and the batch of one's.
        struct Verdicts: Sendable { var name: String; var at: Int; var singly: Bool; var inBatch: Bool; var alone: Bool }
        let all = await Self.offThePool { Self.tamperedVerdicts(size: size).map { Verdicts(name: $0.0, at: $0.1, singly: $0.2, inBatch: $0.3, alone: $0.4) } }
        #expect(all.count == 13)
        for v in all {
            #expect(!v.singly, "\(v.name): swift-crypto accepts it")
            #expect(!v.inBatch, "\(v.name) at \(v.at) passed in a batch")
            #expect(!v.alone, "\(v.name) passed alone")
        }
    }

    static func tamperedVerdicts(size: Int) -> [(String, Int, Bool, Bool, Bool)] {
        var rng = SplitMix64(seed: 42)
        let items = Self.batch(size, keys: 4, rng: &rng)
        let other = Curve25519.Signing.PrivateKey()
        let l = Scalar.order
        var tamperings: [(String, (inout Ed25519Batch.Item) -> Void)] = [
            ("message bit", { $0.message.append(1) }),
            ("R bit", { $0.signature[3] ^= 0x10 }),
            ("S bit", { $0.signature[40] ^= 0x01 }),
            ("R's sign bit", { $0.signature[31] ^= 0x80 }),
            ("another key", { $0.publicKey = Array(other.publicKey.rawRepresentation) }),
            ("another key's signature", { $0.signature = Array(try! other.signature(for: $0.message)) }),
            ("S + L (malleated)", { item in
                var carry = 0
                for i in 0..<32 {
                    let s = Int(item.signature[32 + i]) + Int(l[i]) + carry
                    item.signature[32 + i] = UInt8(s & 0xFF)
                    carry = s >> 8
                }
            }),
            ("S = 0, R = identity", { item in item.signature = [1] + [UInt8](repeating: 0, count: 63) }),
            ("R's y not below p", { item in item.signature.replaceSubrange(0..<32, with: [UInt8](repeating: 0xFF, count: 31) + [0x7F]) }),
            ("R not on the curve", { item in item.signature.replaceSubrange(0..<32, with: Self.notOnTheCurve) }),
            ("short signature", { $0.signature.removeLast() }),
            ("short key", { $0.publicKey.removeLast() }),
        ]
        // Another valid signature's R and S swapped in.
        tamperings.append(("the neighbour's signature", { $0.signature = items[($0.message.count + 1) % items.count].signature }))
        return tamperings.map { name, tamper in
            let at = Int.random(in: 0..<items.count, using: &rng)
            var bad = items
            tamper(&bad[at])
            return (name, at, Self.singly(bad[at]), Ed25519Batch.verify(bad), Ed25519Batch.verify([bad[at]]))
        }
    }

    @Test func randomBitFlipsAreAllCaught() async {
        let (valid, acceptedSingly, caught) = await Self.offThePool { Self.bitFlips() }
        #expect(valid)
        #expect(acceptedSingly == 0)
        #expect(caught == 100)
    }

    /// Whether the untouched batch passes, then over 100 flips of one bit: how many flipped
    /// signatures swift-crypto still accepts alone, and how many flipped batches fail.
    static func bitFlips() -> (Bool, Int, Int) {
        var rng = SplitMix64(seed: 2026)
        let items = Self.batch(24, keys: 2, rng: &rng)
        let valid = Ed25519Batch.verify(items)
        var caught = 0, acceptedSingly = 0
        for _ in 0..<100 {
            var bad = items
            let at = Int.random(in: 0..<bad.count, using: &rng)
            let bit = Int.random(in: 0..<(64 + 32 + bad[at].message.count) * 8, using: &rng)
            switch bit / 8 {
            case ..<64: bad[at].signature[bit / 8] ^= 1 << UInt8(bit % 8)
            case ..<96: bad[at].publicKey[bit / 8 - 64] ^= 1 << UInt8(bit % 8)
            default: bad[at].message[bit / 8 - 96] ^= 1 << UInt8(bit % 8)
            }
            if Self.singly(bad[at]) { acceptedSingly += 1 }
            if !Ed25519Batch.verify(bad) { caught += 1 }
        }
        return (valid, acceptedSingly, caught)
    }

    /// Halving a failed batch: every bad signature is among the suspects, whatever the size
    /// and wherever they sit; a few bad ones leave only a few suspects (the point: not every
    /// item checked alone); many bad ones stop the halving and leave everything unresolved.
    @Test(arguments: [9, 64, 500])
    func halvingAFailedBatchFindsEveryBadSignature(size: Int) async {
        struct Round: Sendable { var bad: Int; var positions: Set<Int>; var passed: Bool; var suspects: [Int] }
        let (rounds, allBadSuspects) = await Self.offThePool { () -> ([Round], [Int]) in
            var rng = SplitMix64(seed: UInt64(size))
            let items = Self.batch(size, keys: 3, rng: &rng)
            var rounds: [Round] = []
            for bad in [1, 2, 3, 5, size / 2, size] {
                var mixed = items
                var positions = Set<Int>()
                while positions.count < bad { positions.insert(Int.random(in: 0..<size, using: &rng)) }
                for at in positions { mixed[at].signature[Int.random(in: 0..<32, using: &rng)] ^= 0x10 }
                rounds.append(Round(bad: bad, positions: positions, passed: Ed25519Batch.verify(mixed), suspects: Ed25519Batch.suspects(mixed, leaf: 8, using: &rng)))
            }
            // Every signature bad: no half passes, the budget ends the halving, all are suspects.
            var allBad = items
            for i in allBad.indices { allBad[i].signature[0] ^= 1 }
            return (rounds, Ed25519Batch.suspects(allBad, leaf: 8, using: &rng))
        }
        #expect(rounds.count == 6)
        for r in rounds {
            #expect(!r.passed)
            #expect(Set(r.suspects).isSuperset(of: r.positions), "\(r.bad) bad of \(size)")
            #expect(r.suspects == r.suspects.sorted() && Set(r.suspects).count == r.suspects.count)
            if r.bad <= 3 {
                #expect(r.suspects.count <= r.bad * 8, "\(r.bad) bad of \(size): \(r.suspects.count) suspects")
            }
        }
        #expect(allBadSuspects == Array(0..<size))
    }
}

extension EdwardsPoint {
    /// [n]self.
    func multiplied(by n: BigScalar) -> EdwardsPoint { Self.straus([(self, n)]) }
}
