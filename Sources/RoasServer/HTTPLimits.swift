import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The request context of `roas serve`'s routes: Hummingbird's basic one plus the connection, so a
/// route can close it (a `/v1/stream` subscriber that fell behind).
struct RoasRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

/// HTTP connections open now, against `--max-http-connections`.
final class HTTPConnectionGate: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)
    let metrics: ServeMetrics
    let logger: Logger

    init(limit: Int, metrics: ServeMetrics, logger: Logger) {
        self.limit = limit
        self.metrics = metrics
        self.logger = logger
    }

    var count: Int { self.open.load(ordering: .relaxed) }

    /// Counts a new connection in; false (and nothing counted) when the limit is reached.
    func enter() -> Bool {
        let now = self.open.add(1, ordering: .relaxed).newValue
        guard now <= self.limit else {
            self.open.subtract(1, ordering: .relaxed)
            return false
        }
        self.metrics.httpConnections.record(now)
        return true
    }

    func leave() {
        let now = self.open.subtract(1, ordering: .relaxed).newValue
        self.metrics.httpConnections.record(now)
    }
}

/// Hummingbird's HTTP/1.1 child channel with `--max-http-connections` and `--http-timeout`.
///
/// Hummingbird's own `availableConnectionsDelegate` stops accepting at the limit, which leaves new
/// clients (a load balancer's health check among them) waiting in the kernel's backlog until some
/// connection closes. Here a connection over the limit is accepted and answered at once
/// (`503`, `Connection: close`) and closed, so clients learn promptly and the connections within
/// the limit (kept short by `--http-timeout`) are served as usual.
struct LimitedHTTP1Channel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// nil for a connection refused over the limit.
        let http: HTTP1Channel.Value?
    }

    let http: HTTP1Channel
    let gate: HTTPConnectionGate

    /// - Parameter timeout: `--http-timeout`: Hummingbird's idle timeout (no request head within it
    ///   of the connection's start or the last response, or a pause that long in a body) and
    ///   `RequestBodyDeadline` (the whole body within it of the head).
    init(responder: @escaping HTTPChannelHandler.Responder, timeout: TimeAmount, gate: HTTPConnectionGate) {
        self.http = HTTP1Channel(
            responder: responder,
            configuration: .init(
                additionalChannelHandlers: [RequestBodyDeadline(timeout: timeout), CloseAfterResponse()],
                idleTimeout: timeout))
        self.gate = gate
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard self.gate.enter() else {
            self.gate.metrics.httpConnectionsRefused.increment()
            self.gate.logger.warning(
                "refused an HTTP connection: --max-http-connections \(self.gate.limit) reached")
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RefuseConnection())
                return Value(channel: channel, http: nil)
            }
        }
        let gate = self.gate
        channel.closeFuture.whenComplete { _ in gate.leave() }
        return self.http.setup(channel: channel, logger: logger).map { Value(channel: channel, http: $0) }
    }

    func handle(value: Value, logger: Logger) async {
        if let http = value.http { await self.http.handle(value: http, logger: logger) }
    }
}

/// A connection over `--max-http-connections`: answered 503 as soon as it is active, without
/// reading the request; its output is then closed, and the connection once the client closes its
/// side or after a second, so the client can read the answer before the connection goes.
final class RefuseConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var answered = false

    static let answer: String = {
        let body = #"{"error":"too many HTTP connections (--max-http-connections); retry later"}"#
        return "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
            + "connection: close\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body
    }()

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.answer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.answer(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The request is not read.
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func answer(context: ChannelHandlerContext) {
        guard !self.answered else { return }
        self.answered = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: Self.answer))).whenComplete { _ in
            bound.value.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { bound.value.close(promise: nil) }
    }
}

/// `--http-timeout` for a request's body: the connection is closed when the body has not ended
/// `timeout` after the request's head, however steadily it trickles in (Hummingbird's idle timeout
/// only limits the pauses between its parts). The time to the head is Hummingbird's idle timeout.
final class RequestBodyDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head:
            self.deadline?.cancel()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            self.deadline = context.eventLoop.scheduleTask(in: self.timeout) { bound.value.close(promise: nil) }
        case .body:
            break
        case .end:
            self.deadline?.cancel()
            self.deadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
    }
}

/// A response with `Connection: close` (a webhook refused before its body was read) ends the
/// connection: Hummingbird would otherwise go on reading the unread body, up to 16 MiB, to get to
/// a next request. Once the response is written, the output is closed (the client sees the answer
/// and the end) and the connection as soon as the request's end arrives; the rest of the body is
/// discarded as it comes, for at most `--http-timeout` (`RequestBodyDeadline`).
final class CloseAfterResponse: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var requestEnded = true
    private var closing = false
    private var responded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head:
            self.requestEnded = false
        case .body:
            break
        case .end:
            self.requestEnded = true
            if self.responded {
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let head):
            if head.status.code >= 200, head.headerFields[.connection]?.lowercased() == "close" { self.closing = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard self.closing else { return context.write(data, promise: promise) }
            self.closing = false
            self.responded = true
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.writeAndFlush(data).whenComplete { result in
                let (handler, context) = bound.value
                if handler.requestEnded {
                    context.close(promise: nil)
                } else {
                    context.close(mode: .output, promise: nil)
                }
                promise?.completeWith(result)
            }
        }
    }
}
