import NIOCore
import NIOHTTP1
import NIOPosix
import RoasCore
import RoasRuntime

/// `roas gen --http`: POSTs batches as a Standard Webhooks sender does, on keep-alive HTTP/1.1
/// connections (SwiftNIO's HTTP/1 codec), retrying a 503 after its Retry-After.
public final class WebhookSender {
    public struct Answers: Sendable {
        /// Replies by status code.
        public var statuses: [Int: Int] = [:]
        /// 503 answers that were retried.
        public var retries = 0
    }

    let host: String
    let port: Int
    let path: String
    public private(set) var answers = Answers()

    /// Parses `http://HOST:PORT/PATH`.
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let address = ListenAddress(String(authority)) else { return nil }
        self.host = address.host
        self.port = address.port
        self.path = path.isEmpty ? "/v1/events" : String(path)
    }

    /// Sends `batches` on `connections` keep-alive connections at once, batch i on connection
    /// i mod connections; returns when all were answered.
    public func send(_ batches: [WebhookBatch], connections: Int) async throws {
        let (host, port, path) = (self.host, self.port, self.path)
        let count = max(1, min(connections, batches.count))
        let results = try await withThrowingTaskGroup(of: Answers.self) { group in
            for index in 0..<count {
                let mine = stride(from: index, to: batches.count, by: count).map { batches[$0] }
                group.addTask { try await Self.send(mine, host: host, port: port, path: path) }
            }
            var all: [Answers] = []
            for try await answers in group { all.append(answers) }
            return all
        }
        for answers in results {
            self.answers.retries += answers.retries
            for (status, count) in answers.statuses { self.answers.statuses[status, default: 0] += count }
        }
    }

    /// One connection at a time: posts each batch in turn, retrying 503s; a new connection after an
    /// answer with `Connection: close` (roas serve ends the connection when it refuses a request
    /// before reading its body).
    private static func send(_ batches: [WebhookBatch], host: String, port: Int, path: String) async throws -> Answers {
        var answers = Answers()
        var next = 0
        while next < batches.count {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
            try await channel.executeThenClose { inbound, outbound in
                var responses = inbound.makeAsyncIterator()
                while next < batches.count {
                    let (status, retryAfter, closes) = try await Self.post(
                        batches[next], host: host, path: path, outbound: outbound, responses: &responses)
                    if status == 503 {
                        answers.retries += 1
                        try await Task.sleep(for: .seconds(max(1, retryAfter ?? 1)))
                    } else {
                        answers.statuses[status, default: 0] += 1
                        next += 1
                    }
                    if closes { return }
                }
            }
        }
        return answers
    }

    private static func post(
        _ batch: WebhookBatch, host: String, path: String, outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        responses: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    ) async throws -> (status: Int, retryAfter: Int?, closes: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Type", value: "application/x-ndjson")
        headers.add(name: "Content-Length", value: String(batch.payload.count))
        headers.add(name: "webhook-id", value: batch.id)
        headers.add(name: "webhook-timestamp", value: String(batch.timestamp))
        headers.add(name: "webhook-signature", value: batch.signature)
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        try await outbound.write(contentsOf: [
            .head(head), .body(.byteBuffer(ByteBuffer(bytes: batch.payload))), .end(nil),
        ])
        var status = 0
        var retryAfter: Int?
        var closes = false
        while let part = try await responses.next() {
            switch part {
            case .head(let response):
                status = Int(response.status.code)
                retryAfter = response.headers.first(name: "retry-after").flatMap { Int($0) }
                closes = response.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
            case .body:
                break
            case .end:
                return (status, retryAfter, closes)
            }
        }
        throw SenderError("the server closed the connection before answering")
    }
}

public struct SenderError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
