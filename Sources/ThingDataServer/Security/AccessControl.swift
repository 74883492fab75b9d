import Foundation
public import ThingDataCore
public import ThingDataStore

/// A user of the node's API.
public struct UserRecord: Codable, Sendable, Equatable {
    public var name: String
    public var role: Role
    public var createdAt: String

    enum CodingKeys: String, CodingKey { case name, role, createdAt = "created_at" }
    public var json: JSONValue { ["name": .string(name), "role": .string(role.rawValue), "created_at": .string(createdAt)] }
}

/// A bearer token: only its SHA-256 is kept (tokens are 256 random bits, so a fast hash is
/// enough; a password hash is for guessable secrets).
public struct TokenRecord: Codable, Sendable, Equatable {
    public var id: String
    public var user: String
    public var hash: String
    public var createdAt: String
    public var expiresAt: String?
    public var revokedAt: String?

    enum CodingKeys: String, CodingKey { case id, user, hash, createdAt = "created_at", expiresAt = "expires_at", revokedAt = "revoked_at" }

    public func isValid(at now: Timestamp) -> Bool {
        revokedAt == nil && (expiresAt.flatMap { Timestamp(iso8601: $0) }.map { now < $0 } ?? true)
    }

    public var json: JSONValue {
        ["id": .string(id), "user": .string(user), "created_at": .string(createdAt), "expires_at": expiresAt.map { .string($0) } ?? .null,
         "revoked_at": revokedAt.map { .string($0) } ?? .null]
    }
}

/// Who a request comes from, as the access middleware established it.
public struct ClientIdentity: Sendable, Equatable {
    /// The user, when a valid token was shown.
    public var user: String?
    public var role: Role?
    public var tokenID: String?
    public var address: String?
    public var loopback: Bool

    /// The audit log's actor: the user; the admin token's holder; or the address's kind.
    public var actor: String { user.map { "user:\($0)" } ?? (role == .admin ? "admin-token" : loopback ? "loopback" : "anonymous") }
    /// The rate limiter's key: the token, else the address.
    public var rateKey: String { tokenID.map { "token:\($0)" } ?? "addr:\(address ?? "?")" }
}

/// Users, tokens, login throttling and rate buckets. Users and tokens live in the store's node
/// state (`user/NAME`, `token/ID`) and in memory, so a check costs no query and a revocation
/// takes effect on the next request.
public actor AccessControl {
    let store: any ContentStore
    var users: [String: UserRecord] = [:]
    var tokens: [String: TokenRecord] = [:]
    var byHash: [String: String] = [:]
    var throttles: [String: LoginThrottle.State] = [:]
    var buckets: [String: RateLimiter.Buckets] = [:]
    public let throttle: LoginThrottle

    public init(store: any ContentStore, throttle: LoginThrottle = LoginThrottle()) async throws {
        self.store = store
        self.throttle = throttle
        let decoder = JSONDecoder()
        for (_, value) in try await store.nodeStates(prefix: "user/") {
            if let u = try? decoder.decode(UserRecord.self, from: Data(value.utf8)) { users[u.name] = u }
        }
        for (_, value) in try await store.nodeStates(prefix: "token/") {
            if let t = try? decoder.decode(TokenRecord.self, from: Data(value.utf8)) {
                tokens[t.id] = t
                byHash[t.hash] = t.id
            }
        }
    }

    static func encode(_ value: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { message }
    }

    // MARK: Users and tokens

    public func allUsers() -> [UserRecord] { users.values.sorted { $0.name < $1.name } }

    public func addUser(_ name: String, role: Role, audit: AuditEntry) async throws -> UserRecord {
        guard (1...64).contains(name.count), name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw Refusal(status: 400, message: "a user name has 1 to 64 letters, digits, '-', '_', '.' or '@'")
        }
        guard users[name] == nil else { throw Refusal(status: 409, message: "user \(name) already exists") }
        let user = UserRecord(name: name, role: role, createdAt: Timestamp.now().description)
        users[name] = user
        try await store.setNodeState("user/" + name, try Self.encode(user))
        try await store.appendAudit([audit])
        return user
    }

    /// A new token for `user`; the secret is returned once and never stored.
    public func createToken(for user: String, expiresAt: Timestamp?, audit: (String) -> AuditEntry) async throws -> (record: TokenRecord, secret: String) {
        guard users[user] != nil else { throw Refusal(status: 404, message: "no user \(user); add one with `thingdata-admin users add NAME --role R`") }
        var rng = SystemRandomNumberGenerator()
        let secret = "td_" + Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let id = "tok_" + Base32.encode((0..<5).map { _ in UInt8.random(in: 0...255, using: &rng) }).lowercased()
        let record = TokenRecord(id: id, user: user, hash: ContentHash.sha256Hex(Array(secret.utf8)), createdAt: Timestamp.now().description,
                                 expiresAt: expiresAt?.description, revokedAt: nil)
        tokens[id] = record
        byHash[record.hash] = id
        try await store.setNodeState("token/" + id, try Self.encode(record))
        try await store.appendAudit([audit(id)])
        return (record, secret)
    }

    public func allTokens(user: String?) -> [TokenRecord] {
        tokens.values.filter { user == nil || $0.user == user }.sorted { $0.createdAt < $1.createdAt }
    }

    public func revoke(_ id: String, audit: AuditEntry) async throws -> TokenRecord {
        guard var t = tokens[id] else { throw Refusal(status: 404, message: "no token \(id)") }
        if t.revokedAt == nil {
            t.revokedAt = Timestamp.now().description
            tokens[id] = t
            try await store.setNodeState("token/" + id, try Self.encode(t))
            try await store.appendAudit([audit])
        }
        return t
    }

    // MARK: Checking requests

    /// The verdict for a token attempt from `address` before checking it.
    public func throttleVerdict(address: String, now: Int64) -> LoginThrottle.Verdict {
        throttle.verdict(throttles[address] ?? .init(), now: now)
    }

    /// Checks a bearer token; records the failure or success against the address.
    public func authenticate(secret: String, address: String, now: Timestamp) -> (user: UserRecord, token: TokenRecord)? {
        let ms = now.microsecondsSinceEpoch / 1000
        guard let id = byHash[ContentHash.sha256Hex(Array(secret.utf8))], let t = tokens[id], t.isValid(at: now), let u = users[t.user] else {
            throttles[address] = throttle.failed(throttles[address] ?? .init(), now: ms)
            if throttles.count > 100_000 { throttles = throttles.filter { $0.value.blockedUntil > ms || ms - $0.value.lastFailure < throttle.window } }
            return nil
        }
        throttles[address] = nil
        return (u, t)
    }

    /// Takes one request from the bucket of `key` under `limiter`.
    public func take(_ key: String, limiter: RateLimiter, now: Int64) -> RateLimiter.Decision {
        var b = buckets[key] ?? limiter.fresh(now: now)
        let decision = limiter.take(&b, now: now)
        buckets[key] = b
        if buckets.count > 100_000 {
            // Forget idle clients (their buckets would be full again anyway).
            let cutoff = now - (limiter.windows.map(\.length).max() ?? 0)
            buckets = buckets.filter { $0.value.updated > cutoff }
        }
        return decision
    }
}
