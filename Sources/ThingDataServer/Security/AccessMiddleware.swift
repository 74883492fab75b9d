import Foundation
import Hummingbird
import HTTPTypes
public import ThingDataCore
import ThingDataStore

/// Security settings of the public API.
public struct SecuritySettings: Sendable, Equatable {
    public var authMode = AuthMode.auto
    /// Whether v1 reads need a token (`token`) or not (`open`).
    public var readsNeedToken = false
    /// Requests per client (token, else address) per minute, hour and day; 0 turns a window off.
    public var clientLimits = (minute: 600, hour: 10_000, day: 100_000)
    /// The same for each federation peer (by node id).
    public var peerLimits = (minute: 1_200, hour: 30_000, day: 300_000)
    /// Whether clients on loopback are limited too (off: the host's own tools and benchmarks).
    public var limitLoopback = false

    public init() {}

    public static func == (a: SecuritySettings, b: SecuritySettings) -> Bool {
        a.authMode == b.authMode && a.readsNeedToken == b.readsNeedToken && a.clientLimits == b.clientLimits && a.peerLimits == b.peerLimits
            && a.limitLoopback == b.limitLoopback
    }

    var clientLimiter: RateLimiter {
        RateLimiter(windows: [.init(name: "minute", limit: clientLimits.minute, length: 60_000), .init(name: "hour", limit: clientLimits.hour, length: 3_600_000),
                              .init(name: "day", limit: clientLimits.day, length: 86_400_000)])
    }
    var peerLimiter: RateLimiter {
        RateLimiter(windows: [.init(name: "minute", limit: peerLimits.minute, length: 60_000), .init(name: "hour", limit: peerLimits.hour, length: 3_600_000),
                              .init(name: "day", limit: peerLimits.day, length: 86_400_000)])
    }
}

/// Establishes who a request comes from (a bearer token, or its address), slows and then
/// blocks repeated bad tokens, refuses writes (and, if configured, reads) that need a token,
/// and applies per-client and per-peer rate limits with the IETF RateLimit headers.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = NodeRequestContext
    let access: AccessControl
    let settings: SecuritySettings
    let clientLimiter: RateLimiter
    let peerLimiter: RateLimiter

    init(access: AccessControl, settings: SecuritySettings) {
        self.access = access
        self.settings = settings
        clientLimiter = settings.clientLimiter
        peerLimiter = settings.peerLimiter
    }

    static func isWrite(_ request: Request) -> Bool {
        switch request.method {
        case .get, .head, .options: return false
        case .post where request.uri.path == "/api/v1/preflight": return false  // checks, writes nothing
        default: return true
        }
    }

    static func now() -> Timestamp { Timestamp(microsecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000_000)) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let (address, loopback) = context.client
        let path = request.uri.path
        var identity = ClientIdentity(user: nil, role: nil, tokenID: nil, address: address, loopback: loopback)

        // Federation requests carry their own signatures; they are limited per peer.
        if path.hasPrefix("/federation/") {
            // Keyed by the claimed node id and the address together, so nobody can spend an
            // honest peer's allowance by claiming its id from elsewhere.
            let peer = Self.keyID(request.headers[HTTPField.Name("Signature-Input")!]).map { "peer:\($0)@\(address ?? "?")" } ?? "addr:\(address ?? "?")"
            return try await limited(request, context: context, key: peer, limiter: peerLimiter, next: next)
        }

        if let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer ") else {
                throw APIError(.unauthorized, "Use Authorization: Bearer <token>", extra: ["part": "token-malformed"])
            }
            let key = address ?? "?"
            let nowMs = Self.now().microsecondsSinceEpoch / 1000
            switch await access.throttleVerdict(address: key, now: nowMs) {
            case .blocked(let until):
                let seconds = max(1, (until - nowMs + 999) / 1000)
                throw APIError(.tooManyRequests, "Too many bad tokens from this address; try again in \(seconds) s", extra: ["part": "token-blocked", "retry_after": .int(seconds)],
                               headers: [.retryAfter: String(seconds)])
            case .proceed(let delay):
                if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
            }
            let secret = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
            guard let (user, token) = await access.authenticate(secret: secret, address: key, now: Self.now()) else {
                throw APIError(.unauthorized, "The token is unknown, expired or revoked", extra: ["part": "token-invalid"])
            }
            identity.user = user.name
            identity.role = user.role
            identity.tokenID = token.id
        }

        if path.hasPrefix("/api/") {
            let write = Self.isWrite(request)
            let needsToken = write ? settings.authMode.writeNeedsToken(fromLoopback: loopback) : (settings.readsNeedToken && settings.authMode != .open)
            if needsToken && identity.user == nil {
                throw APIError(.unauthorized, write ? "Writing needs a token (Authorization: Bearer <token>) with the editor or admin role"
                                                    : "Reading needs a token (Authorization: Bearer <token>) on this node", extra: ["part": "token-missing"])
            }
            if let role = identity.role, !role.allows(write ? .editor : .viewer) {
                throw APIError(.forbidden, "Role \(role.rawValue) may not \(write ? "write" : "read"); writing needs editor or admin", extra: ["part": "role"])
            }
        }
        context.identity = identity
        if loopback && !settings.limitLoopback && identity.user == nil { return try await next(request, context) }
        return try await limited(request, context: context, key: identity.rateKey, limiter: clientLimiter, next: next)
    }

    func limited(_ request: Request, context: Context, key: String, limiter: RateLimiter, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !limiter.windows.isEmpty else { return try await next(request, context) }
        let d = await access.take(key, limiter: limiter, now: Self.now().microsecondsSinceEpoch / 1000)
        var headers = HTTPFields()
        if let w = d.policy {
            headers[HTTPField.Name("RateLimit-Policy")!] = limiter.windows.map { "\"\($0.name)\";q=\($0.limit);w=\($0.length / 1000)" }.joined(separator: ", ")
            headers[HTTPField.Name("RateLimit")!] = "\"\(w.name)\";r=\(d.remaining);t=\(d.resetSeconds)"
            if d.warning && d.allowed {
                headers[HTTPField.Name("Warning")!] = "199 thingdata \"rate limit nearly reached: \(d.remaining) requests left this \(w.name)\""
            }
        }
        guard d.allowed else {
            headers[.retryAfter] = String(d.retryAfterSeconds)
            throw APIError(.tooManyRequests, "Rate limit exceeded; try again in \(d.retryAfterSeconds) s", extra: ["part": "rate-limit", "retry_after": .int(Int64(d.retryAfterSeconds))],
                           headers: headers)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch var error as APIError {
            for f in headers { error.headers[f.name] = f.value }
            throw error
        }
        for f in headers { response.headers[f.name] = f.value }
        return response
    }

    /// The `keyid` of a `Signature-Input` field, without checking anything else (the routes do).
    static func keyID(_ field: String?) -> String? {
        guard let field, let r = field.range(of: "keyid=\"") else { return nil }
        let rest = field[r.upperBound...]
        guard let end = rest.firstIndex(of: "\""), rest.distance(from: rest.startIndex, to: end) <= 64 else { return nil }
        return String(rest[..<end])
    }
}
