import Foundation
public import Hummingbird
import NIOCore
import ThingDataCore

extension Request {
    /// Reads the body as JSON: `application/json` only (or `application/merge-patch+json`
    /// where allowed), at most 10 MB, nesting at most 20, valid UTF-8. Every failure is a 4xx.
    func jsonBody(context: some RequestContext, allowMergePatch: Bool = false) async throws -> JSONValue {
        let (contentType, contentLength) = bodyHeaders
        let mediaType = Self.mediaType(contentType ?? "")
        guard mediaType == "application/json" || (allowMergePatch && mediaType == "application/merge-patch+json") else {
            throw APIError(.badRequest, allowMergePatch
                ? "Only application/json or application/merge-patch+json content type is allowed"
                : "Only application/json content type is allowed")
        }
        if let length = contentLength.flatMap(Int.init), length > ContentRules.maxBodyBytes {
            throw HTTPError(.contentTooLarge)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await self.body.collect(upTo: ContentRules.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw HTTPError(.contentTooLarge)  // a chunked body that grew past the limit
        }
        guard buffer.readableBytes > 0 else {
            throw APIError(.badRequest, "Request body is empty; send a JSON object", issues: [ValidationIssue(loc: [.key("body")], msg: "Field required", type: "missing")])
        }
        do {
            return try buffer.withUnsafeReadableBytes { raw in try JSONParser.parse(raw, maxDepth: ContentRules.maxDepth) }
        } catch let failure as JSONParser.Failure {
            switch failure.reason {
            case .tooDeep:
                throw APIError(.badRequest, "JSON structure too deep: nesting deeper than \(ContentRules.maxDepth) is refused",
                    issues: [ValidationIssue(loc: [.key("body"), .index(failure.offset)], msg: "JSON structure too deep", type: "json_too_deep")])
            case .invalidUTF8:
                throw APIError(.badRequest, "Request body is not valid UTF-8 (byte \(failure.offset))",
                    issues: [ValidationIssue(loc: [.key("body"), .index(failure.offset)], msg: "Invalid UTF-8", type: "json_invalid")])
            case .syntax(let message):
                throw APIError(.badRequest, "Malformed JSON: \(message) at byte \(failure.offset)",
                    issues: [ValidationIssue(loc: [.key("body"), .index(failure.offset)], msg: "JSON decode error: \(message)", type: "json_invalid")])
            }
        }
    }
}

extension Request {
    /// Content-Type and Content-Length, read in one pass over the fields, each name's values
    /// joined with ", " as `HTTPFields`' subscript joins them. Two subscript look-ups walked
    /// the fields twice and built an array each time: 0.8 % of a node's CPU under POST load.
    var bodyHeaders: (contentType: String?, contentLength: String?) {
        var type: String?
        var length: String?
        for field in headers {
            switch field.name {
            case .contentType: type = type.map { $0 + ", " + field.value } ?? field.value
            case .contentLength: length = length.map { $0 + ", " + field.value } ?? field.value
            default: continue
            }
        }
        return (type, length)
    }

    /// A Content-Type's media type, lowercased, without its parameters or the spaces and tabs
    /// around it (RFC 9110's optional whitespace). Foundation's `trimmingCharacters` went
    /// through NSString for this, about 2 % of a node's CPU under POST load.
    static func mediaType(_ contentType: String) -> String {
        var type = contentType.prefix { $0 != ";" }
        while let c = type.first, c == " " || c == "\t" { type = type.dropFirst() }
        while let c = type.last, c == " " || c == "\t" { type = type.dropLast() }
        return type.lowercased()
    }
}

/// Query parameters, checked: a wrong value is a 400 that names the parameter.
struct Query {
    let parameters: Hummingbird.Parameters

    init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    func string(_ name: String, maxLength: Int = 500) throws -> String? {
        guard let v = parameters[name[...]].map(String.init) else { return nil }
        if v.isEmpty { return nil }
        guard v.count <= maxLength else { throw APIError.badRequest("Query parameter \(name) is longer than \(maxLength) characters", loc: ["query", name], type: "string_too_long") }
        // SQLite reads text up to a NUL: one inside a value would cut it short (or break a
        // full-text query), so it is refused here.
        guard !v.unicodeScalars.contains("\u{0}") else { throw APIError.badRequest("Query parameter \(name) contains a NUL character", loc: ["query", name], type: "value_error") }
        return v
    }

    func int(_ name: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = try string(name) else { return d }
        guard let v = Int(raw) else {
            throw APIError.badRequest("Query parameter \(name) should be a valid integer, not '\(raw)'", loc: ["query", name], type: "int_parsing")
        }
        guard range.contains(v) else {
            throw APIError.badRequest("Query parameter \(name) should be from \(range.lowerBound) to \(range.upperBound), not \(v)", loc: ["query", name], type: "out_of_range")
        }
        return v
    }

    func bool(_ name: String) throws -> Bool {
        guard let raw = try string(name) else { return false }
        switch raw.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw APIError.badRequest("Query parameter \(name) should be true or false, not '\(raw)'", loc: ["query", name], type: "bool_parsing")
        }
    }

    func oneOf(_ name: String, _ allowed: [String]) throws -> String? {
        guard let v = try string(name) else { return nil }
        guard allowed.contains(v) else {
            throw APIError.badRequest("Query parameter \(name) should be one of \(allowed.joined(separator: ", ")), not '\(v)'", loc: ["query", name], type: "enum")
        }
        return v
    }
}
