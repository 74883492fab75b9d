import Crypto
import Foundation
import Testing
@testable import ThingDataCore
import ThingDataSigning

@Suite("RFC 9421 HTTP message signatures")
struct HTTPSignatureTests {
    /// RFC 9421 Appendix B.2.6, with the key of B.1.4: the same base and (Ed25519 being
    /// deterministic) the very signature the RFC prints.
    @Test func rfcEd25519Example() throws {
        let doc = try ProtocolVectors.json("http-signatures.json")["ed25519"]!
        let request = doc["request"]!
        var fields: [String: String] = [:]
        for (k, v) in request["fields"]!.objectValue! { fields[k] = v.stringValue! }
        let message = HTTPSignature.Message(method: request["method"]!.stringValue!, targetURI: request["target_uri"]!.stringValue!, fields: fields)
        let parsed = try HTTPSignature.parse(input: doc["signature_input"]!.stringValue!, signature: doc["signature"]!.stringValue!)
        #expect(parsed.label == "sig-b26")
        #expect(parsed.parameters.keyID == "test-key-ed25519")
        #expect(parsed.parameters.created == 1618884473)
        let base = try HTTPSignature.signatureBase(message, parsed.parameters)
        #expect(String(decoding: base, as: UTF8.self) == doc["signature_base"]!.stringValue!)

        let seed = Base64URL.decode(doc["private_seed_base64url"]!.stringValue!)!
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        #expect(Base64URL.encode(key.publicKey.rawRepresentation) == doc["public_key_base64url"]!.stringValue!)
        let signature = try key.signature(for: base)
        #expect(Array(signature) == parsed.signature, "Ed25519 is deterministic: the RFC's signature must come out")
        let fieldsOut = HTTPSignature.fields(label: parsed.label, parameters: parsed.parameters, signature: Array(signature))
        #expect(fieldsOut.input == doc["signature_input"]!.stringValue!)
        #expect(fieldsOut.signature == doc["signature"]!.stringValue!)
        try RequestSignature.verify(message, parameters: parsed.parameters, signature: parsed.signature, publicKey: Array(key.publicKey.rawRepresentation))

        // Any change to a covered component breaks it.
        var changed = message
        changed.method = "PUT"
        #expect(throws: HTTPSignature.Failure.self) {
            try RequestSignature.verify(changed, parameters: parsed.parameters, signature: parsed.signature, publicKey: Array(key.publicKey.rawRepresentation))
        }
    }

    @Test func contentDigestExample() throws {
        let doc = try ProtocolVectors.json("http-signatures.json")["content_digest"]!
        let body = Array(doc["body"]!.stringValue!.utf8)
        #expect(HTTPSignature.contentDigest(body) == doc["sha-256"]!.stringValue!)
        try HTTPSignature.checkDigest(doc["sha-256"]!.stringValue!, body: body)
        #expect(throws: HTTPSignature.Failure.self) { try HTTPSignature.checkDigest(doc["sha-256"]!.stringValue!, body: body + [0x20]) }
        #expect(throws: HTTPSignature.Failure.self) { try HTTPSignature.checkDigest(nil, body: body) }
        #expect(throws: HTTPSignature.Failure.self) { try HTTPSignature.checkDigest("sha-512=:AAAA:", body: body) }
    }

    /// Our own requests: every covered part is checked.
    @Test func nodeRequestsRoundTrip() throws {
        let key = NodeKey.generate()
        let url = "http://127.0.0.1:8000/federation/v1/announce"
        let body = Array(#"{"head":3}"#.utf8)
        let headers = RequestSignature.headers(method: "POST", url: url, body: body, origin: "http://127.0.0.1:9000", key: key, created: 1_700_000_000, nonce: "n1")
        var fields: [String: String] = [:]
        for (k, v) in headers { fields[k] = v }
        let message = HTTPSignature.Message(method: "POST", targetURI: url, fields: fields)
        let parsed = try HTTPSignature.parse(input: message.fields["signature-input"]!, signature: message.fields["signature"]!)
        #expect(parsed.parameters.components == ["@method", "@target-uri", "content-digest", "thingdata-origin"])
        #expect(parsed.parameters.keyID == key.nodeID.compact)
        #expect(parsed.parameters.algorithm == "ed25519")
        try RequestSignature.verify(message, parameters: parsed.parameters, signature: parsed.signature, publicKey: key.publicKey)
        try HTTPSignature.checkDigest(message.fields["content-digest"], body: body)

        for (field, value) in [("thingdata-origin", "http://evil:1"), ("content-digest", HTTPSignature.contentDigest(Array("x".utf8)))] {
            var m = message
            m.fields[field] = value
            #expect(throws: HTTPSignature.Failure.self) { try RequestSignature.verify(m, parameters: parsed.parameters, signature: parsed.signature, publicKey: key.publicKey) }
        }
        var other = message
        other.targetURI = "http://127.0.0.1:8000/federation/v1/revisions"
        #expect(throws: HTTPSignature.Failure.self) { try RequestSignature.verify(other, parameters: parsed.parameters, signature: parsed.signature, publicKey: key.publicKey) }
        #expect(throws: HTTPSignature.Failure.self) {
            try RequestSignature.verify(message, parameters: parsed.parameters, signature: parsed.signature, publicKey: NodeKey.generate().publicKey)
        }
    }

    @Test func malformedFieldsAreRefused() {
        for (input, signature) in [
            ("sig1", "sig1=:AAAA:"),
            ("sig1=\"@method\";created=1", "sig1=:AAAA:"),
            ("sig1=(@method);created=1", "sig1=:AAAA:"),
            ("sig1=(\"@method\");created=x", "sig1=:AAAA:"),
            ("sig1=(\"@method\");created=1", "sig2=:AAAA:"),
            ("sig1=(\"@method\");created=1", "sig1=AAAA"),
            ("sig1=(\"@Method\");created=1", "sig1=:AAAA:"),
        ] {
            #expect(throws: HTTPSignature.Failure.self, "\(input) / \(signature)") { try HTTPSignature.parse(input: input, signature: signature) }
        }
    }
}

@Suite("Sync schedule and trust")
struct SyncScheduleTests {
    @Test func backoffDoublesUpToTheCapAndResetsOnSuccess() {
        var rng = SplitMix64(seed: 1)
        var s = SyncSchedule(interval: 30_000, backoffBase: 1_000, backoffCap: 16_000, now: 0)
        var waits: [Int64] = []
        for _ in 0..<8 { waits.append(s.record(.failed(retryAfter: nil), now: 0, random: &rng)) }
        for (i, w) in waits.enumerated() {
            let nominal = min(16_000, Int64(1_000) << Int64(i))
            #expect(w >= nominal - nominal / 5 && w <= nominal + nominal / 5, "failure \(i + 1): \(w) ms")
        }
        #expect(s.failures == 8)
        let next = s.record(.pulled(more: false), now: 100_000, random: &rng)
        #expect(s.failures == 0)
        #expect(next >= 100_000 + 24_000 && next <= 100_000 + 36_000)
        #expect(s.record(.pulled(more: true), now: 200_000, random: &rng) == 200_000)
    }

    @Test func retryAfterWinsWhenLonger() {
        var rng = SplitMix64(seed: 2)
        var s = SyncSchedule(interval: 30_000, backoffBase: 1_000, backoffCap: 300_000, now: 0)
        #expect(s.record(.failed(retryAfter: 60_000), now: 0, random: &rng) == 60_000)
        let short = s.record(.failed(retryAfter: 10), now: 0, random: &rng)
        #expect(short >= 1_600 && short <= 2_400)
    }

    @Test func announcesAndRequestsMakeThePeerDue() {
        var rng = SplitMix64(seed: 3)
        var s = SyncSchedule(now: 0)
        s.record(.failed(retryAfter: nil), now: 0, random: &rng)
        #expect(s.due > 0)
        #expect(s.record(.announced, now: 5, random: &rng) == 5)
        #expect(s.failures == 1, "an announce does not forget failures")
        s.record(.pulled(more: false), now: 10, random: &rng)
        #expect(s.record(.requested, now: 11, random: &rng) == 11)
    }

    @Test func trustOrderAndPenalty() {
        #expect(TrustLevel.allCases == [.blocked, .untrusted, .verified, .trusted, .preferred])
        #expect(TrustLevel.blocked < .untrusted && TrustLevel.trusted < .preferred)
        #expect(TrustLevel.preferred.penalized == .untrusted)
        #expect(TrustLevel.verified.penalized == .untrusted)
        #expect(TrustLevel.blocked.penalized == .blocked)
        let policy = TrustPolicy()
        #expect(TrustLevel.untrusted < policy.pull && TrustLevel.untrusted >= policy.serve)
    }
}

@Suite("Node descriptor")
struct NodeDescriptorTests {
    @Test func verifiesAndRefusesTampering() throws {
        let key = NodeKey.generate().rotated(now: Timestamp(microsecondsSinceEpoch: 1_790_000_000_000_000))
        let d = NodeDescriptor(key: key, name: "Repair Café Lyon", description: "", softwareVersion: "t", capabilities: ["changes"], languages: ["fr"],
                               baseURL: "http://127.0.0.1:1", actorEpoch: "a", indexID: "i", now: Timestamp(microsecondsSinceEpoch: 1_790_000_000_000_000))
        let back = try NodeDescriptor(verifying: try JSONParser.parse(CanonicalJSON.encode(d.json)))
        #expect(back.nodeID == key.nodeID && back.publicKey == key.publicKey && back.rotations.count == 1)
        guard case .object(var o) = d.json else { Issue.record("not an object"); return }
        o["name"] = "Someone else"
        #expect(throws: RevisionError.self) { try NodeDescriptor(verifying: .object(o)) }
        // A key with no rotation leading to it.
        guard case .object(var p) = d.json else { return }
        p["key_rotations"] = []
        #expect(throws: RevisionError.self) { try NodeDescriptor(verifying: .object(p)) }
    }
}

@Suite("Access rules")
struct AccessRuleTests {
    @Test func rolesAndModes() {
        #expect(Role.admin.allows(.editor) && Role.editor.allows(.viewer) && !Role.viewer.allows(.editor) && !Role.editor.allows(.admin))
        #expect(!AuthMode.open.writeNeedsToken(fromLoopback: false))
        #expect(AuthMode.token.writeNeedsToken(fromLoopback: true))
        #expect(!AuthMode.auto.writeNeedsToken(fromLoopback: true) && AuthMode.auto.writeNeedsToken(fromLoopback: false))
    }

    @Test func throttleSlowsThenBlocksThenForgets() {
        let t = LoginThrottle()
        var s = LoginThrottle.State()
        var delays: [Int64] = []
        for i in 0..<9 {
            guard case .proceed(let d) = t.verdict(s, now: Int64(i)) else { Issue.record("blocked too early at \(i)"); return }
            delays.append(d)
            s = t.failed(s, now: Int64(i))
        }
        #expect(delays == [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000])
        s = t.failed(s, now: 10)
        #expect(t.verdict(s, now: 11) == .blocked(until: 10 + t.blockFor))
        #expect(t.verdict(s, now: 10 + t.blockFor + t.window + 1) == .proceed(delay: 0), "failures are forgotten after the block and the window")
    }

    @Test func tokenBucketsPerWindow() {
        let limiter = RateLimiter(windows: [.init(name: "minute", limit: 3, length: 60_000), .init(name: "hour", limit: 5, length: 3_600_000), .init(name: "day", limit: 0, length: 1)])
        #expect(limiter.windows.count == 2, "a zero limit turns a window off")
        var b = limiter.fresh(now: 0)
        let first = limiter.take(&b, now: 0)
        #expect(first.allowed && first.remaining == 2 && first.policy?.name == "minute")
        _ = limiter.take(&b, now: 0)
        _ = limiter.take(&b, now: 0)
        let refused = limiter.take(&b, now: 0)
        #expect(!refused.allowed && refused.retryAfterSeconds == 20)
        // A minute later the minute bucket is full again, but the hour has 2 left.
        let later = limiter.take(&b, now: 60_000)
        #expect(later.allowed)
        _ = limiter.take(&b, now: 60_000)
        let hourly = limiter.take(&b, now: 60_000)
        #expect(!hourly.allowed && hourly.policy?.name == "hour")
    }
}
