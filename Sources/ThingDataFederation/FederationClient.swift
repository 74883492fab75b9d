public import AsyncHTTPClient
public import NIOCore
public import NIOHTTP1
import ThingDataCore
public import ThingDataSigning
import Foundation

/// Signed HTTP requests to other nodes (RFC 9421, see `RequestSignature`).
public struct FederationClient: Sendable {
    public let http: HTTPClient
    public let key: NodeKey
    /// This node's base URL, sent as `ThingData-Origin` so an unknown receiver can fetch our
    /// descriptor.
    public let origin: @Sendable () -> String
    public var timeout: TimeAmount = .seconds(30)

    public init(http: HTTPClient = .shared, key: NodeKey, origin: @escaping @Sendable () -> String) {
        self.http = http
        self.key = key
        self.origin = origin
    }

    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
        /// Bytes sent and received, counting the request line, headers and body.
        public var bytesOut: Int
        public var bytesIn: Int
        public var milliseconds: Double

        /// `Retry-After` in milliseconds (seconds form only).
        public var retryAfter: Int64? { headers.first(name: "retry-after").flatMap { Int64($0) }.map { $0 * 1000 } }
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Sends a signed request; throws only when the peer cannot be reached.
    public func send(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, accept: String = "application/json",
                     signed: Bool = true, limit: Int = 256 << 20, timeout: TimeAmount? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "ThingData-Federation/1")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        if signed {
            let created = Int64(Date().timeIntervalSince1970)
            let nonce = method == .POST ? Base64URL.encode((0..<12).map { _ in UInt8.random(in: 0...255) }) : nil
            for (name, value) in RequestSignature.headers(method: method.rawValue, url: url, body: body, origin: origin(), key: key, created: created, nonce: nonce) {
                request.headers.add(name: name, value: value)
            }
        }
        let start = ContinuousClock.now
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout ?? self.timeout)
            bytes = try await response.body.collect(upTo: limit)
        } catch {
            throw Failure(description: "cannot reach \(url): \(error)")
        }
        let elapsed = ContinuousClock.now - start
        let headerBytes = { (h: HTTPHeaders) in h.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } }
        return Answer(
            status: Int(response.status.code), headers: response.headers, body: Array(buffer: bytes),
            bytesOut: url.utf8.count + 20 + headerBytes(request.headers) + (body?.count ?? 0),
            bytesIn: 17 + headerBytes(response.headers) + bytes.readableBytes,
            milliseconds: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }

    /// Fetches and checks a node's descriptor.
    public func descriptor(at baseURL: String, timeout: TimeAmount? = nil) async throws -> NodeDescriptor {
        let answer = try await send(.GET, Self.join(baseURL, "/.well-known/thingdata"), signed: false, limit: 1 << 20, timeout: timeout)
        guard answer.status == 200 else { throw Failure(description: "\(baseURL) answered \(answer.status) for its descriptor; is it a ThingData node?") }
        do {
            return try NodeDescriptor(verifying: try JSONParser.parse(answer.body))
        } catch {
            throw Failure(description: "the descriptor of \(baseURL) does not verify: \(error)")
        }
    }

    public static func join(_ base: String, _ path: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
    }
}
