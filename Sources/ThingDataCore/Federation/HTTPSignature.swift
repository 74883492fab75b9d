import Crypto
import Foundation

/// RFC 9421 HTTP Message Signatures: the signature base, `Signature-Input` and `Signature`
/// fields, and RFC 9530 `Content-Digest`. Pure text work; signing and verifying the base
/// with a key is the caller's (ThingDataSigning).
///
/// Only what federation needs of RFC 8941 structured fields is parsed: one dictionary member
/// whose value is an inner list of strings with integer or string parameters, and byte
/// sequences. Anything else is refused rather than guessed.
public enum HTTPSignature {
    /// The message as the signer or verifier sees it.
    public struct Message: Sendable {
        public var method: String
        /// The full request URI, as sent: `http://host:port/path?query`.
        public var targetURI: String
        /// Lower-cased field names; several values of one field are joined by ", ".
        public var fields: [String: String]

        public init(method: String, targetURI: String, fields: [String: String]) {
            self.method = method
            self.targetURI = targetURI
            var lowered: [String: String] = [:]
            for (k, v) in fields { lowered[k.lowercased()] = v }
            self.fields = lowered
        }

        /// The value of one covered component, derived (`@…`) or a field.
        func value(of component: String) throws(Failure) -> String {
            guard component.hasPrefix("@") else {
                guard let v = fields[component] else { throw Failure(.missingComponent, "the covered field \(component) is not in the message") }
                return v.trimmingCharacters(in: .whitespaces)
            }
            guard let url = URLComponents(string: targetURI), let host = url.host else { throw Failure(.malformed, "the target URI \(targetURI) is not absolute") }
            let scheme = (url.scheme ?? "http").lowercased()
            switch component {
            case "@method": return method.uppercased()
            case "@target-uri": return targetURI
            case "@scheme": return scheme
            case "@authority":
                let port = url.port.flatMap { (scheme == "http" && $0 == 80) || (scheme == "https" && $0 == 443) ? nil : $0 }
                return host.lowercased() + (port.map { ":\($0)" } ?? "")
            case "@path": return url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath
            case "@query": return "?" + (url.percentEncodedQuery ?? "")
            case "@request-target": return (url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath) + (url.percentEncodedQuery.map { "?" + $0 } ?? "")
            default: throw Failure(.malformed, "the derived component \(component) is not supported")
            }
        }
    }

    /// Signature parameters: the covered components in order, then `created`, `keyid`, `alg`,
    /// `expires` and `nonce` in the order they were given.
    public struct Parameters: Sendable, Equatable {
        public var components: [String]
        public var created: Int64?
        public var expires: Int64?
        public var keyID: String?
        public var algorithm: String?
        public var nonce: String?
        /// The parameter names in their serialized order.
        var order: [String]

        public init(components: [String], created: Int64?, keyID: String?, algorithm: String? = nil, nonce: String? = nil) {
            self.components = components
            self.created = created
            self.keyID = keyID
            self.algorithm = algorithm
            self.nonce = nonce
            order = ["created", "keyid", "alg", "nonce"].filter {
                switch $0 {
                case "created": created != nil
                case "keyid": keyID != nil
                case "alg": algorithm != nil
                default: nonce != nil
                }
            }
        }

        /// The inner list as it appears after `label=` and in `@signature-params`.
        public var serialized: String {
            var s = "(" + components.map { "\"\($0)\"" }.joined(separator: " ") + ")"
            for name in order {
                switch name {
                case "created": s += ";created=\(created!)"
                case "expires": s += ";expires=\(expires!)"
                case "keyid": s += ";keyid=\"\(keyID!)\""
                case "alg": s += ";alg=\"\(algorithm!)\""
                case "nonce": s += ";nonce=\"\(nonce!)\""
                default: break
                }
            }
            return s
        }
    }

    /// Why a signature could not be checked; `part` names the failing part for the 401 answer.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Part: String, Sendable {
            case missingSignature = "signature-missing"
            case malformed = "signature-malformed"
            case missingComponent = "signature-component-missing"
            case digest = "content-digest"
            case expired = "signature-expired"
            case future = "signature-from-future"
            case replayed = "signature-replayed"
            case unknownKey = "keyid-unknown"
            case badSignature = "signature-invalid"
        }
        public var part: Part
        public var reason: String
        public init(_ part: Part, _ reason: String) {
            self.part = part
            self.reason = reason
        }
        public var description: String { "\(part.rawValue): \(reason)" }
    }

    /// The bytes that are signed (RFC 9421 §2.5).
    public static func signatureBase(_ message: Message, _ parameters: Parameters) throws(Failure) -> [UInt8] {
        var lines: [String] = []
        for c in parameters.components {
            guard !c.contains("\"") && !c.contains("\n") else { throw Failure(.malformed, "bad component name") }
            lines.append("\"\(c)\": \(try message.value(of: c))")
        }
        lines.append("\"@signature-params\": \(parameters.serialized)")
        return Array(lines.joined(separator: "\n").utf8)
    }

    /// `Signature-Input` and `Signature` field values for one signature labelled `label`.
    public static func fields(label: String, parameters: Parameters, signature: [UInt8]) -> (input: String, signature: String) {
        (label + "=" + parameters.serialized, label + "=:" + Data(signature).base64EncodedString() + ":")
    }

    /// Parses the two fields and returns, for their first label, the parameters and signature.
    public static func parse(input: String, signature: String) throws(Failure) -> (label: String, parameters: Parameters, signature: [UInt8]) {
        guard let eq = input.firstIndex(of: "=") else { throw Failure(.malformed, "Signature-Input has no label") }
        let label = input[..<eq].trimmingCharacters(in: .whitespaces)
        var rest = Substring(input[input.index(after: eq)...]).drop { $0 == " " }
        guard rest.first == "(", let close = rest.firstIndex(of: ")") else { throw Failure(.malformed, "Signature-Input \(label) is not an inner list") }
        var components: [String] = []
        for item in rest[rest.index(after: rest.startIndex)..<close].split(separator: " ") {
            guard item.count >= 2, item.first == "\"", item.last == "\"" else { throw Failure(.malformed, "covered components must be quoted strings") }
            let name = String(item.dropFirst().dropLast())
            guard name == name.lowercased(), !name.contains("\"") else { throw Failure(.malformed, "covered component \(name) is not a lower-case name") }
            components.append(name)
        }
        rest = rest[rest.index(after: close)...]
        // Parameters up to the next dictionary member (a second signature is ignored).
        if let comma = rest.firstIndex(of: ",") { rest = rest[..<comma] }
        var p = Parameters(components: components, created: nil, keyID: nil)
        for param in rest.split(separator: ";", omittingEmptySubsequences: true) {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { throw Failure(.malformed, "signature parameter \(param) has no value") }
            let (key, raw) = (kv[0], kv[1])
            let string: String? = raw.count >= 2 && raw.first == "\"" && raw.last == "\"" ? String(raw.dropFirst().dropLast()) : nil
            switch key {
            case "created", "expires":
                guard let n = Int64(raw) else { throw Failure(.malformed, "\(key) must be an integer") }
                if key == "created" { p.created = n } else { p.expires = n }
            case "keyid": p.keyID = string
            case "alg": p.algorithm = string
            case "nonce": p.nonce = string
            default: continue
            }
            guard key == "created" || key == "expires" || string != nil else { throw Failure(.malformed, "\(key) must be a string") }
            p.order.append(key)
        }
        // The signature with the same label.
        var value: Substring?
        for member in signature.split(separator: ",") {
            let kv = member.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == label { value = kv[1] }
        }
        guard let v = value?.trimmingCharacters(in: .whitespaces), v.count >= 2, v.first == ":", v.last == ":",
            let bytes = Data(base64Encoded: String(v.dropFirst().dropLast()))
        else { throw Failure(.malformed, "Signature has no byte sequence for label \(label)") }
        return (label, p, Array(bytes))
    }

    /// RFC 9530 `Content-Digest` of a body: `sha-256=:BASE64:`.
    public static func contentDigest(_ body: some Sequence<UInt8>) -> String {
        "sha-256=:" + Data(SHA256.hash(data: Array(body))).base64EncodedString() + ":"
    }

    /// Checks a `Content-Digest` field against the body; only sha-256 is accepted.
    public static func checkDigest(_ field: String?, body: [UInt8]) throws(Failure) {
        guard let field else { throw Failure(.digest, "a request with a body must carry Content-Digest (sha-256)") }
        for member in field.split(separator: ",") {
            let kv = member.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0] == "sha-256" else { continue }
            guard "sha-256=" + kv[1] == contentDigest(body) else { throw Failure(.digest, "the body does not match its Content-Digest") }
            return
        }
        throw Failure(.digest, "Content-Digest has no sha-256 member")
    }
}
