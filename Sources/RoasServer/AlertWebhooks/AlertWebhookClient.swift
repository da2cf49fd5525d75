import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One POST of an alert to `--alert-webhook`: a new connection per attempt (TLS for https, with the
/// system's trust roots), SwiftNIO's HTTP/1 client codec, and one deadline for the whole attempt,
/// from connecting to the answer's head.
struct AlertWebhookClient: Sendable {
    let url: AlertWebhookURL
    /// Milliseconds one attempt may take.
    let timeout: Int64
    private let tls: NIOSSLContext?
    private let group: any EventLoopGroup

    /// Why an attempt got no answer.
    enum Failure: Error, CustomStringConvertible, Equatable {
        case timedOut(milliseconds: Int64)
        case closedWithoutAnswer
        case connection(String)

        var description: String {
            switch self {
            case .timedOut(let milliseconds): "no answer within \(milliseconds) ms"
            case .closedWithoutAnswer: "the connection closed before an answer"
            case .connection(let reason): reason
            }
        }
    }

    init(url: AlertWebhookURL, timeout: Int64, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.url = url
        self.timeout = timeout
        self.group = group
        self.tls = url.isTLS ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    }

    /// Posts `body` with `headers` (besides Host, Content-Type and Content-Length); returns the
    /// answer's status code. Throws `Failure` when there is none (or `CancellationError`).
    /// - Parameter timeout: milliseconds for this attempt instead of `self.timeout`.
    func post(body: [UInt8], headers: [(name: String, value: String)], timeout: Int64? = nil) async throws -> Int {
        let eventLoop = self.group.next()
        let promise = eventLoop.makePromise(of: Int.self)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: self.url.target)
        head.headers.add(name: "Host", value: self.url.hostHeader)
        head.headers.add(name: "User-Agent", value: "roas")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.count))
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let request = head
        let limit = max(1, timeout ?? self.timeout)
        let deadline = eventLoop.scheduleTask(in: .milliseconds(limit)) { promise.fail(Failure.timedOut(milliseconds: limit)) }
        let tls = self.tls
        // SNI takes host names only.
        let serverName: String? = Self.isIPAddress(self.url.host) ? nil : self.url.host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(limit))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AlertResponseHandler(head: request, body: body, promise: promise))
                }
            }
        let (host, port) = (self.url.host, self.url.port)
        return try await withTaskCancellationHandler {
            bootstrap.connect(host: host, port: port).whenComplete { result in
                switch result {
                case .success(let channel):
                    // However the attempt ends (answer, timeout, cancellation), its connection closes.
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    promise.fail(Failure.connection("cannot connect to \(host):\(port): \(error)"))
                }
            }
            defer { deadline.cancel() }
            return try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }
}

/// Writes the request once connected and completes the promise with the answer's status code
/// (at its head: the receiver has decided), or fails it when the connection ends or fails first.
private final class AlertResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead
    private let body: [UInt8]
    private let promise: EventLoopPromise<Int>

    init(head: HTTPRequestHead, body: [UInt8], promise: EventLoopPromise<Int>) {
        self.head = head
        self.body = body
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(.head(self.head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: self.body)))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let response):
            let status = Int(response.status.code)
            // 1xx (100 Continue) is not the answer.
            if status >= 200 {
                self.promise.succeed(status)
                context.close(promise: nil)
            }
        case .body, .end:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(AlertWebhookClient.Failure.closedWithoutAnswer)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(AlertWebhookClient.Failure.connection("\(error)"))
        context.close(promise: nil)
    }
}
