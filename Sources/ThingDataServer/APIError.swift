public import Hummingbird
public import HTTPTypes
import Logging
public import ThingDataCore
public import ThingDataStore

/// An error answer in the shape clients of the original read: `error` (a message) and
/// `detail` (the message, or FastAPI's list of `{loc, msg, type}`).
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var issues: [ValidationIssue]
    public var extra: JSONObject
    /// Extra response headers (Retry-After, RateLimit).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, issues: [ValidationIssue] = [], extra: JSONObject = [:], headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.issues = issues
        self.extra = extra
        self.headers = headers
    }

    public static func badRequest(_ message: String, loc: [String] = [], type: String = "value_error") -> APIError {
        APIError(.badRequest, message, issues: loc.isEmpty ? [] : [ValidationIssue(loc: loc.map { .key($0) }, msg: message, type: type)])
    }

    public static func validation(_ failure: ValidationFailure) -> APIError {
        APIError(.badRequest, failure.message, issues: failure.issues)
    }

    public static func from(_ error: CatalogError) -> APIError {
        let status = HTTPResponse.Status(code: error.status.rawValue)
        // Validation answers list every issue; a missing entity or a conflict is one message, as the original.
        let issues = error.status == .badRequest || (error.results != nil) ? error.issues : []
        var extra: JSONObject = [:]
        if let results = error.results { extra["results"] = .array(results) }
        return APIError(status, error.message, issues: issues, extra: extra)
    }

    public var body: JSONValue {
        var o: JSONObject = ["error": .string(message), "detail": issues.isEmpty ? .string(message) : .array(issues.map(\.json))]
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(body, status: status, headers: headers)
    }
}

/// Builds JSON responses from `JSONValue`s with the project's serializer.
public enum JSONResponse {
    public static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        make(bytes: JSONSerializer.serialize(value), status: status, headers: headers)
    }

    public static func make(bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        var h = headers
        h[.contentType] = "application/json"
        h[.contentLength] = String(bytes.count)
        return Response(status: status, headers: h, body: .init(byteBuffer: buffer))
    }
}

/// Turns every error into a JSON answer. Client mistakes get a 4xx with a reason; only a
/// fault of the node itself (a database that is down) answers 5xx, and it is logged.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return JSONResponse.make(error.body, status: error.status, headers: error.headers)
        } catch let error as CatalogError {
            let api = APIError.from(error)
            return JSONResponse.make(api.body, status: api.status)
        } catch let error as ValidationFailure {
            let api = APIError.validation(error)
            return JSONResponse.make(api.body, status: api.status)
        } catch let error as HTTPError {
            let message: String
            switch error.status {
            case .notFound: message = "Not Found"
            case .contentTooLarge: message = "Request body too large: at most \(ContentRules.maxBodyBytes) bytes are accepted"
            case .methodNotAllowed: message = "Method Not Allowed"
            default: message = error.body ?? error.status.reasonPhrase
            }
            var headers = error.headers
            headers[.contentType] = nil
            return JSONResponse.make(APIError(error.status, message).body, status: error.status, headers: headers)
        } catch let error as StoreError {
            context.logger.error("Store unavailable", metadata: ["error": "\(error)"])
            return JSONResponse.make(APIError(.serviceUnavailable, "The database is unavailable; try again shortly").body, status: .serviceUnavailable)
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return JSONResponse.make(APIError(.internalServerError, "Internal error; the node's log has details").body, status: .internalServerError)
        }
    }
}
