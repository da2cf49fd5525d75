import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RoasCore
import RoasRuntime

/// The HTTP side of `roas serve` (Hummingbird): the webhook endpoint and the read endpoints.
struct HTTPRoutes: Sendable {
    let settings: ServeSettings
    let ingestor: Ingestor
    /// Set once the listeners are up and the engine takes input (`/readyz`).
    let readiness: Readiness

    static let webhookID = HTTPField.Name("webhook-id")!
    static let webhookTimestamp = HTTPField.Name("webhook-timestamp")!
    static let webhookSignature = HTTPField.Name("webhook-signature")!

    func router() -> Router<RoasRequestContext> {
        let router = Router(context: RoasRequestContext.self)
        router.post("/v1/events") { request, _ in try await self.events(request) }
        // The read endpoints, behind --api-token when it is set.
        let reads = router.group().add(middleware: APITokenMiddleware(token: self.settings.apiToken))
        reads.get("/v1/roas") { request, _ in try await self.roas(request) }
        reads.get("/v1/spread") { request, _ in try await self.spread(request) }
        reads.get("/v1/alerts") { _, _ in Self.response(.ok, await self.ingestor.alertsJSON(), type: "application/json") }
        reads.get("/v1/stream") { request, context in try self.stream(request, channel: context.channel) }
        reads.get("/metrics") { _, _ in
            Self.response(.ok, self.ingestor.metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        reads.get("/") { _, _ in Self.response(.ok, Array(DashboardPage.html.utf8), type: "text/html; charset=utf-8") }
        router.get("/healthz") { _, _ in Self.json(.ok, "{\"status\":\"ok\"}") }
        router.get("/readyz") { _, _ in
            self.readiness.isReady
                ? Self.json(.ok, "{\"status\":\"ready\"}") : Self.json(.serviceUnavailable, "{\"status\":\"starting\"}")
        }
        return router
    }

    // MARK: Webhooks

    /// `POST /v1/events`: one batch, as Standard Webhooks deliver it.
    private func events(_ request: Request) async throws -> Response {
        let response: Response
        do {
            response = try await self.webhook(request)
        } catch let error as APIError {
            response = error.response
        }
        self.ingestor.metrics.webhookRequests[Int(response.status.code)]?.increment()
        return response
    }

    /// Everything that can be checked without the body is checked first, and the body is read only
    /// once it can be verified: an unauthenticated client makes roas hold at most what the
    /// in-flight budget (`--max-inflight-bytes`) allows, for at most `--http-timeout`.
    private func webhook(_ request: Request) async throws -> Response {
        let run = self.settings.run
        // Saturated: tell the sender to come back rather than queueing without bound.
        if self.ingestor.gauges.queuedChunks.load(ordering: .relaxed) >= self.settings.maximumQueuedChunks {
            throw APIError.busy("the engine is saturated; retry later", retryAfter: "1")
        }
        guard let id = request.headers[Self.webhookID], let signature = request.headers[Self.webhookSignature],
            let timestampText = request.headers[Self.webhookTimestamp]
        else {
            throw APIError.refusal(.unauthorized, "webhook-id, webhook-timestamp and webhook-signature headers are required")
        }
        // The rules of framed input, so that a batch acknowledged here replays from the log.
        let timestamp: Int64
        switch BatchHeader.validate(id: id, timestampText: timestampText) {
        case .success(let value): timestamp = value
        case .failure(let invalid):
            throw APIError.refusal(.badRequest, (invalid == .timestamp ? "webhook-timestamp " : "webhook-id ") + invalid.rule)
        }
        guard !run.secrets.isEmpty else {
            throw APIError.refusal(
                .unauthorized, "no secret is configured, so no batch can be verified", reason: Reason.badSignature.rawValue)
        }
        if BatchVerifier.isStale(timestamp, now: run.now(), tolerance: run.tolerance) {
            throw APIError.refusal(
                .unauthorized, "webhook-timestamp \(timestamp) is more than --tolerance (\(run.tolerance) s) from now",
                reason: Reason.staleBatch.rawValue)
        }
        guard !WebhookSigner.candidates(in: signature).isEmpty else {
            throw APIError.refusal(
                .unauthorized, "webhook-signature holds no v1,<base64 of a 32-byte HMAC-SHA256>",
                reason: Reason.badSignature.rawValue)
        }
        let tooLarge = "the body is over --max-batch (\(run.maximumBatchBytes) bytes)"
        let declared = request.headers[.contentLength].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        if let declared, declared > run.maximumBatchBytes { throw APIError.refusal(.contentTooLarge, tooLarge) }
        let overBudget = "over --max-inflight-bytes (\(self.settings.maximumInflightBytes)) of bodies are in memory; retry later"
        // Bytes of the budget this request holds: its body, then also what it is parsed into.
        var held = 0
        defer { self.ingestor.inflight.release(held) }
        if let declared {
            guard self.ingestor.inflight.take(declared) else {
                throw APIError.busy(overBudget, retryAfter: "1")
            }
            held = declared
        }
        var body = ByteBuffer()
        body.reserveCapacity(declared ?? 0)
        for try await part in request.body {
            let size = body.readableBytes + part.readableBytes
            if size > run.maximumBatchBytes { throw APIError.refusal(.contentTooLarge, tooLarge) }
            if size > held {
                guard self.ingestor.inflight.take(size - held) else {
                    throw APIError.busy(overBudget, retryAfter: "1")
                }
                held = size
            }
            body.writeImmutableBuffer(part)
        }
        // A small start that grows as the batch is parsed: a forged batch, whose lines are only
        // counted, does not make roas reserve its size a second time.
        var parser = ChunkParser(
            settings: run, accepted: self.ingestor.accepted, capacity: min(body.readableBytes + 4096, 1 << 16),
            journals: self.settings.journals)
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: body.readableBytes)
        let (rejection, chunk) = body.withUnsafeReadableBytes { parser.batch(header, payload: $0) }
        self.ingestor.inflight.force(chunk.retainedBytes)
        held += chunk.retainedBytes
        self.ingestor.gauges.queuedChunks.add(1, ordering: .relaxed)
        defer { self.ingestor.gauges.queuedChunks.subtract(1, ordering: .relaxed) }
        let applied: Ingestor.Applied
        do {
            applied = try await self.ingestor.apply(chunk)
        } catch ServeError.finished {
            throw APIError.busy("the server is shutting down; retry elsewhere or later", retryAfter: "5")
        } catch ServeError.notDurable(let reason) {
            // Nothing of the batch was applied; its id is free again for the retry.
            throw APIError.busy("the batch could not be made durable (\(reason)); retry later", retryAfter: "1")
        }
        if let refused = applied.refused[id] {
            throw APIError(.contentTooLarge, refused, reason: "too_large")
        }
        guard let rejection else {
            return Self.json(.accepted, "{\"accepted\":\(applied.accepted),\"rejected\":\(applied.rejected)}")
        }
        switch rejection.reason {
        case .replayedBatch:
            // Already accepted: an at-least-once sender may treat it as delivered.
            return Self.json(.ok, "{\"duplicate\":true,\"accepted\":0,\"rejected\":0}")
        case .conflict:
            // Already accepted with another body: the new body is dead-lettered, never applied.
            throw APIError(.conflict, rejection.detail, reason: Reason.conflict.rawValue)
        default:
            throw APIError(.unauthorized, rejection.detail, reason: rejection.reason.rawValue)
        }
    }

    // MARK: Reading

    /// `GET /v1/roas?model=&creator=&campaign=&tier=&limit=&sort=roas|revenue|spend`.
    private func roas(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = LiveBoard.Query()
        let configuration = self.settings.run.configuration
        if configuration.labelsModels { query.model = configuration.models[0].rawValue }
        if let text = parameters["model"] {
            let names = configuration.models.map(\.rawValue)
            guard names.contains(String(text)) else {
                throw APIError(.badRequest, "model must be one of the served models: \(names.joined(separator: ", "))")
            }
            // Without --models the rows carry no model: the one served is the only one there is.
            if configuration.labelsModels { query.model = String(text) }
        }
        query.creator = parameters["creator"].map(String.init)
        query.campaign = parameters["campaign"].map(String.init)
        query.tier = try Self.tier(request)
        query.limit = try Self.limit(request) ?? query.limit
        if let text = parameters["sort"] {
            guard let order = LiveBoard.Order(rawValue: String(text)) else {
                throw APIError(.badRequest, "sort must be roas, revenue or spend")
            }
            query.order = order
        }
        return Self.response(.ok, await self.ingestor.snapshot(query), type: "application/json")
    }

    /// `GET /v1/spread?campaign=&tier=&limit=`: per key, the lowest and highest ROAS across the
    /// models of `--models`, widest spread first (no rows without `--models`).
    private func spread(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        let body = await self.ingestor.spreadJSON(
            campaign: parameters["campaign"].map(String.init), tier: try Self.tier(request),
            limit: try Self.limit(request) ?? 100)
        return Self.response(.ok, body, type: "application/json")
    }

    /// `?tier=`: a tier's name or "unknown" (creators without a profile), else a 400.
    private static func tier(_ request: Request) throws -> String? {
        guard let text = request.uri.queryParameters["tier"] else { return nil }
        guard CreatorTier(rawValue: String(text)) != nil || text == "unknown" else {
            throw APIError(.badRequest, "tier must be nano, micro, macro, mega or unknown")
        }
        return String(text)
    }

    /// `?limit=`: a count, else a 400.
    private static func limit(_ request: Request) throws -> Int? {
        guard let text = request.uri.queryParameters["limit"] else { return nil }
        guard let limit = Int(text), limit >= 0 else { throw APIError(.badRequest, "limit must be a count") }
        return limit
    }

    /// `GET /v1/stream`: Server-Sent Events, `row` for each row update and `stats` every second.
    /// A subscriber that falls more than `--stream-buffer` behind is dropped: its connection closed.
    private func stream(_ request: Request, channel: any Channel) throws -> Response {
        let subscription = self.ingestor.hub.subscribe()
        // Also ends a write waiting for a client that stopped reading.
        subscription.onDrop { channel.close(promise: nil) }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                // The stream ends when the engine finishes (shutdown), after its final rows.
                for await event in subscription.events {
                    try await writer.write(event)
                    subscription.written(event)
                }
                if subscription.isDropped { throw ChannelError.ioOnClosedChannel }
                try await writer.finish(nil)
            })
    }

    /// The token of `Authorization: Bearer TOKEN`; the scheme in any case (RFC 7235: schemes are
    /// case-insensitive), then one or more spaces.
    static func bearerToken(_ value: String) -> Substring? {
        guard let space = value.firstIndex(of: " "), value[..<space].lowercased() == "bearer" else { return nil }
        return value[space...].drop { $0 == " " }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    // MARK: Responses

    static func response(_ status: HTTPResponse.Status, _ body: [UInt8], type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Self.response(status, Array(text.utf8), type: "application/json")
    }
}

/// Every failure an HTTP route answers, as Hummingbird's `HTTPResponseError`: a status and
/// `{"error":"MESSAGE"}` (with `"reason"`, the dead-letter reason, when a batch was refused for
/// one), plus the headers the status needs. Routes throw it; the router turns it into the answer.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    var reason: String? = nil
    var headers = HTTPFields()

    init(_ status: HTTPResponse.Status, _ message: String, reason: String? = nil) {
        self.status = status
        self.message = message
        self.reason = reason
    }

    /// A webhook refused before its body was read (400, 401, 413): the connection is closed after
    /// the answer (`Connection: close`) rather than reading a body nobody will use to get to a
    /// next request.
    static func refusal(_ status: HTTPResponse.Status, _ message: String, reason: String? = nil) -> APIError {
        var error = APIError(status, message, reason: reason)
        error.headers[.connection] = "close"
        return error
    }

    /// 503 with Retry-After: the connection stays open for the retry (a body not read is read and
    /// discarded, within `--http-timeout`, not held).
    static func busy(_ message: String, retryAfter: String) -> APIError {
        var error = APIError(.serviceUnavailable, message)
        error.headers[.retryAfter] = retryAfter
        return error
    }

    var response: Response {
        var text = "{\"error\":\(JSONText.quoted(self.message))"
        if let reason = self.reason { text += ",\"reason\":\"\(reason)\"" }
        var response = HTTPRoutes.json(self.status, text + "}")
        for field in self.headers { response.headers.append(field) }
        return response
    }

    func response(from request: Request, context: some RequestContext) throws -> Response { self.response }
}

/// With `--api-token`, the read endpoints need `Authorization: Bearer TOKEN` (or `?access_token=`,
/// for the dashboard's EventSource, which cannot set headers); without it, they are open.
struct APITokenMiddleware: RouterMiddleware {
    typealias Context = RoasRequestContext
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = self.token else { return try await next(request, context) }
        if let value = request.headers[.authorization], let given = HTTPRoutes.bearerToken(value),
            HTTPRoutes.constantTimeEqual(String(given), token)
        {
            return try await next(request, context)
        }
        if let value = request.uri.queryParameters["access_token"], HTTPRoutes.constantTimeEqual(String(value), token) {
            return try await next(request, context)
        }
        var error = APIError(.unauthorized, "a valid bearer token is required")
        error.headers[.wwwAuthenticate] = "Bearer"
        throw error
    }
}
