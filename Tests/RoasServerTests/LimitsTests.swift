import Foundation
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Synchronization
import Testing

@testable import RoasServer

#if canImport(Glibc)
import Glibc
#endif

/// Bounded resources against unauthenticated clients (issue 16): webhook headers checked before
/// the body, `--max-http-connections`, `--http-timeout`, `--max-inflight-bytes`, `/v1/stream`
/// buffers, the bearer scheme's case and `--idle-timeout 0`. Each test fails when its limit is
/// taken out (a client is then served, held or buffered past it).
@Suite("roas serve limits", .serialized)
struct LimitsTests {
    static let wellFormedSignature = "v1," + Data(repeating: 1, count: 32).base64EncodedString()

    init() {
        // The clients here write to connections the server has closed: EPIPE, not a signal.
        signal(SIGPIPE, SIG_IGN)
    }

    // MARK: Webhook headers before the body

    @Test("webhook headers are refused before the body: bad id, timestamp, signature, stale, too large; nothing read or logged")
    func headersBeforeBody() async throws {
        let server = try await ServerHarness.start { $0.run.tolerance = 300 }
        let now = ServerHarness.now
        let cases: [(headers: [String: String], length: Int, status: Int, reason: String?)] = [
            (["webhook-id": String(repeating: "i", count: 257), "webhook-timestamp": "\(now)"], 1000, 400, nil),
            (["webhook-id": "a.b", "webhook-timestamp": "\(now)"], 1000, 400, nil),
            (["webhook-id": "b", "webhook-timestamp": "1000000000000000000"], 1000, 400, nil),
            (["webhook-id": "b", "webhook-timestamp": "-9223372036854775808"], 1000, 400, nil),
            (["webhook-id": "b", "webhook-timestamp": "\(now)", "webhook-signature": "v1,AAAA"], 16 << 20, 401, "bad_signature"),
            (["webhook-id": "b", "webhook-timestamp": "\(now - 3600)"], 16 << 20, 401, "stale_batch"),
            (["webhook-id": "b", "webhook-timestamp": "-999999999999999999"], 16 << 20, 401, "stale_batch"),
            (["webhook-id": "b", "webhook-timestamp": "\(now)", "webhook-signature": ""], 1000, 401, nil),
            (["webhook-id": "b", "webhook-timestamp": "\(now)"], 1 << 30, 413, nil),
        ]
        for (headers, length, status, reason) in cases {
            var headers = headers
            if headers["webhook-signature"] == nil { headers["webhook-signature"] = Self.wellFormedSignature }
            if headers["webhook-signature"] == "" { headers["webhook-signature"] = nil }
            // The body is never sent: an answer proves the server did not wait for it.
            let (reply, closed) = try await Self.headOnly(port: server.httpPort, headers: headers, contentLength: length)
            #expect(reply?.status == status, "\(headers): \(reply.map { "\($0.status) \($0.text)" } ?? "no answer")")
            if let reason { #expect(try reply?.json()["reason"] as? String == reason) }
            #expect(reply?.headers["connection"] == "close")
            #expect(closed, "the connection stayed open after the refusal of \(headers)")
        }
        // Nothing was read, applied or dead-lettered; the answers are counted.
        let statistics = await server.server.statistics
        #expect(statistics.linesRead == 0 && statistics.bytesRead == 0 && statistics.deadLetterCount == 0)
        let metrics = await server.server.ingestor.metrics.text()
        let text = String(decoding: metrics, as: UTF8.self)
        #expect(text.contains(#"roas_webhook_requests_total{status="400"} 4"#), "\(text)")
        #expect(text.contains(#"roas_webhook_requests_total{status="401"} 4"#), "\(text)")
        #expect(text.contains(#"roas_webhook_requests_total{status="413"} 1"#), "\(text)")
        // A valid batch on the same server is still taken.
        let lines = [Events.view("ok", ServerHarness.t0, user: "tt:a", creator: "c")]
        #expect(try await server.post(Events.payload(lines), id: "fine").status == 202)
        let (result, _) = try await server.stop()
        #expect(server.deadLetters.isEmpty)
        #expect(result.statistics.accepted(.view) == 1 && result.statistics.balances)
    }

    @Test("roas gen --http's sender goes on after a refusal that ends its connection")
    func senderReconnects() async throws {
        let server = try await ServerHarness.start()
        var batches: [WebhookBatch] = []
        for index in 0..<6 {
            let payload = Events.payload([Events.view("k\(index)", ServerHarness.t0, user: "tt:a", creator: "c")])
            let id = index == 3 ? String(repeating: "i", count: 257) : "k\(index)"
            var signature = payload.withUnsafeBytes {
                WebhookSigner(secrets: [ServerHarness.secret]).signature(id: id, timestamp: ServerHarness.now, body: $0)
            }
            if index == 1 { signature = "v1,AAAA" }
            batches.append(WebhookBatch(id: id, timestamp: ServerHarness.now, signature: signature, payload: payload))
        }
        let sender = try #require(WebhookSender(url: "http://127.0.0.1:\(server.httpPort)/v1/events"))
        try await sender.send(batches, connections: 1)
        #expect(sender.answers.statuses == [202: 4, 401: 1, 400: 1])
        let (result, _) = try await server.stop()
        #expect(result.statistics.accepted(.view) == 4)
    }

    @Test("the staleness check holds for any two 64-bit timestamps")
    func overflowSafeStaleness() {
        let now: Int64 = 1_795_300_000
        #expect(BatchVerifier.isStale(.min, now: now, tolerance: 300))
        #expect(BatchVerifier.isStale(.max, now: now, tolerance: 300))
        #expect(BatchVerifier.isStale(.max, now: .min, tolerance: .max))
        #expect(!BatchVerifier.isStale(now - 300, now: now, tolerance: 300))
        #expect(BatchVerifier.isStale(now + 301, now: now, tolerance: 300))
    }

    // MARK: --max-inflight-bytes

    @Test("--max-inflight-bytes: a webhook beyond it gets 503, and TCP connections stop reading until bytes are released")
    func inflightBudget() async throws {
        let lines = (0..<20_000).map { Events.view("h\($0)", ServerHarness.t0 + Int64($0), user: "tt:u\($0 % 50)", creator: "c\($0 % 9)") }
        let payload = Events.payload(lines)
        let server = try await ServerHarness.start {
            $0.maximumInflightBytes = payload.count
            $0.run.maximumBatchBytes = payload.count
            $0.httpTimeout = 300_000
        }
        let stream = try ServeTests.generated(seed: 5, events: 200_000, users: 5000, creators: 20)
        // A webhook declares the whole budget and sends half its body: it holds the budget.
        let port = server.httpPort
        let signature = payload.withUnsafeBytes {
            WebhookSigner(secrets: [ServerHarness.secret]).signature(id: "big", timestamp: ServerHarness.now, body: $0)
        }
        let holder = try await offThread {
            let holder = try RawSocket(port: port)
            try holder.send(
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nwebhook-id: big\r\nwebhook-timestamp: \(ServerHarness.now)\r\n"
                    + "webhook-signature: \(signature)\r\nContent-Length: \(payload.count)\r\n\r\n")
            try holder.send(Array(payload.prefix(payload.count / 2)))
            return holder
        }
        #expect(try await server.eventually { await server.server.ingestor.inflight.used >= payload.count })

        // Another webhook: 503 with Retry-After, its body not read.
        let small = Events.payload([Events.view("s1", ServerHarness.t0, user: "tt:a", creator: "c")])
        let busy = try await server.post(small, id: "small")
        #expect(busy.status == 503 && busy.headers["retry-after"] == "1", "\(busy.status) \(busy.text)")

        // A TCP sender: reading stops after what was read first.
        let (sending, progress) = server.sendTCPCounting(stream)
        let stalled = try await progress.stall()
        let read = await server.server.statistics.bytesRead
        print("in-flight budget: TCP sender stalled at \(stalled) of \(stream.count) bytes, \(read) read")
        #expect(stalled < stream.count, "the whole stream went in although the budget was spent")
        #expect(read < stream.count / 2)

        // The webhook's body completes: it is applied, the budget is free, TCP reads everything.
        let answer = try await offThread {
            try holder.send(Array(payload.suffix(from: payload.count / 2)))
            return try HTTPReply(parsing: holder.receive(timeout: 10) { Self.complete($0) })
        }
        #expect(answer.status == 202, "\(answer.status) \(answer.text)")
        try await sending.value
        #expect(try await server.eventually(timeout: 30) { await server.server.statistics.bytesRead == stream.count + payload.count })
        #expect(await server.server.ingestor.inflight.used == 0)
        #expect(try await server.post(small, id: "small").status == 202)
        let (result, _) = try await server.stop()
        #expect(result.statistics.linesRead == ServeTests.lineCount(stream) + lines.count + 1 + 2)
        #expect(result.statistics.balances)
    }

    @Test("TCP connections holding parts of frames that fill --max-inflight-bytes are cut off after --idle-timeout, not left waiting on each other")
    func inflightBudgetDeadlock() async throws {
        let frameBytes = 600_000
        let server = try await ServerHarness.start {
            $0.maximumInflightBytes = 1_000_000
            $0.run.maximumBatchBytes = frameBytes
            $0.connectionIdleTimeout = 1000
        }
        let header = Array(
            (#"{"batch":{"id":"ID","timestamp":1,"signature":"\#(Self.wellFormedSignature)","bytes":\#(frameBytes)}}"# + "\n").utf8)
        let port = server.tcpPort
        let stop = Stop()
        // Two senders each send 550 kB of a 600 kB frame (their buffers together are over the
        // budget), then keep trickling a byte every 100 ms, so neither is silent and neither
        // frame completes: each waits for room the other holds.
        let senders = (0..<2).map { _ in
            Task {
                try await offThread {
                    let socket = try RawSocket(port: port)
                    try socket.send(header + [UInt8](repeating: UInt8(ascii: "x"), count: 550_000))
                    let started = Date()
                    while !stop.flag.load(ordering: .relaxed) && Date().timeIntervalSince(started) < 30 {
                        guard (try? socket.send([UInt8(ascii: "x")])) != nil else { break }
                        Thread.sleep(forTimeInterval: 0.1)
                    }
                }
            }
        }
        // One is cut off (its part frame dead-lettered), so the budget has room again.
        let cut = try await server.eventually(timeout: 20) {
            await server.server.ingestor.inflight.used < 1_000_000
                && server.deadLetters.contains { $0["reason"] as? String == "bad_frame" }
        }
        let stillHeld = await server.server.ingestor.inflight.used
        #expect(cut, "budget still spent: \(stillHeld) bytes held, no connection cut off")
        // A new connection is read as usual while the other still trickles.
        _ = try await server.sendTCP(Events.frame([Events.view("after", ServerHarness.t0, user: "tt:a", creator: "c")], id: "after"))
        #expect(try await server.eventually { await server.server.statistics.accepted(.view) == 1 })
        stop.flag.store(true, ordering: .relaxed)
        for sender in senders { _ = try? await sender.value }
        let (result, _) = try await server.stop()
        #expect(result.statistics.accepted(.view) == 1)
        #expect(await server.server.ingestor.inflight.used == 0)
    }

    // MARK: --max-http-connections

    @Test("--max-http-connections: connections over it get 503 at once and are closed; open ones are still served")
    func connectionCap() async throws {
        let server = try await ServerHarness.start {
            $0.maximumHTTPConnections = 3
            // Long enough for the refusals below to happen while the idle connections are open, also
            // on a loaded machine (at 8 s the checker's connection was once closed before them).
            $0.httpTimeout = 30_000
        }
        let port = server.httpPort
        // A health checker's keep-alive connection, then two idle connections: the cap is reached.
        let checker = try RawSocket(port: port)
        #expect(try await Self.exchange(checker, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?.status == 200)
        let idle = try [RawSocket(port: port), RawSocket(port: port)]
        #expect(
            try await server.eventually(timeout: 25) {
                let metrics = try await Self.exchange(checker, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?.text ?? ""
                return metrics.contains("roas_http_connections 3")
            })
        // Ten more: each answered 503 and closed promptly, without sending anything.
        let refusals = try await withThrowingTaskGroup(of: (Int?, Bool, Double).self) { group in
            for _ in 0..<10 {
                group.addTask {
                    try await offThread {
                        let socket = try RawSocket(port: port)
                        let started = Date()
                        let (bytes, closed) = Self.readUntilClosed(socket, timeout: 20)
                        return ((try? HTTPReply(parsing: bytes))?.status, closed, Date().timeIntervalSince(started))
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (status, closed, seconds) in refusals {
            // Well before --http-timeout: refused at once, not timed out.
            #expect(status == 503 && closed && seconds < 15, "\(String(describing: status)) closed \(closed) after \(seconds) s")
        }
        // The open connection is served as before.
        #expect(try await Self.exchange(checker, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?.status == 200)
        let metrics = try await Self.exchange(checker, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?.text ?? ""
        #expect(metrics.contains("roas_http_connections_refused_total 10"), "\(metrics)")
        // The idle ones are closed at --http-timeout, which frees room for new clients.
        for socket in idle { #expect(try await offThread { Self.readUntilClosed(socket, timeout: 60).closed }) }
        #expect(try await server.eventually { (try? await server.get("/healthz"))?.status == 200 })
        _ = try await server.stop()
    }

    // MARK: --http-timeout

    @Test("--http-timeout cuts off a client trickling its head, one trickling its body, and an idle keep-alive connection")
    func slowClients() async throws {
        let server = try await ServerHarness.start { $0.httpTimeout = 1500 }
        let port = server.httpPort
        let body = Events.payload([Events.view("t", ServerHarness.t0, user: "tt:a", creator: "c")])
        let signature = body.withUnsafeBytes {
            WebhookSigner(secrets: [ServerHarness.secret]).signature(id: "slow", timestamp: ServerHarness.now, body: $0)
        }
        let postHead =
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nwebhook-id: slow\r\nwebhook-timestamp: \(ServerHarness.now)\r\n"
            + "webhook-signature: \(signature)\r\nContent-Length: \(body.count + 10_000)\r\n\r\n"
        // A byte every 100 ms (Hummingbird's idle timeout alone only limits pauses): head, then body.
        let trickles: [(String, [UInt8])] = [
            ("head", Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "a", count: 1000))".utf8)),
            ("body", Array(postHead.utf8) + body + [UInt8](repeating: 10, count: 10_000)),
        ]
        for (what, bytes) in trickles {
            let (sent, seconds) = try await offThread {
                let socket = try RawSocket(port: port)
                let started = Date()
                var sent = 0
                // The head of the body case goes at once; then a byte at a time.
                if what == "body" {
                    try socket.send(postHead)
                    sent = postHead.utf8.count
                }
                while sent < bytes.count && Date().timeIntervalSince(started) < 20 {
                    guard (try? socket.send([bytes[sent]])) != nil, !Self.isClosed(socket) else { break }
                    sent += 1
                    Thread.sleep(forTimeInterval: 0.1)
                }
                return (sent, Date().timeIntervalSince(started))
            }
            #expect(sent < bytes.count && seconds < 10, "the \(what) trickled for \(seconds) s, \(sent) of \(bytes.count) bytes")
        }
        // Idle after a response: closed.
        let idle = try await offThread {
            let socket = try RawSocket(port: port)
            let reply = try Self.exchange(socket, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let started = Date()
            let closed = Self.readUntilClosed(socket, timeout: 15).closed
            return (reply?.status, closed, Date().timeIntervalSince(started))
        }
        #expect(idle.0 == 200 && idle.1 && idle.2 < 10, "\(idle)")
        let (result, _) = try await server.stop()
        #expect(result.statistics.linesRead == 0)
    }

    // MARK: /v1/stream

    @Test("a /v1/stream subscriber over --stream-buffer behind for a tick is dropped; a burst reaches one that keeps up")
    func hubDropsSlowSubscriber() async throws {
        let metrics = ServeMetrics()
        let hub = StreamHub(bufferedBytes: 10_000, metrics: metrics)
        let slow = hub.subscribe()
        let fast = hub.subscribe()
        let closed = Atomic<Int>(0)
        slow.onDrop { closed.add(1, ordering: .relaxed) }
        let data = [UInt8](repeating: UInt8(ascii: "x"), count: 900)
        var fastIterator = fast.events.makeAsyncIterator()
        // Ticks with a burst of 50 events (about 50 kB, five times the buffer) between them; the
        // fast subscriber writes everything out, the slow one nothing.
        for _ in 0..<3 {
            hub.dropLagging()
            hub.publish((0..<50).map { _ in (name: "row", data: data) })
            for _ in 0..<50 {
                if let event = await fastIterator.next() { fast.written(event) }
            }
        }
        hub.dropLagging()
        #expect(slow.isDropped && !fast.isDropped)
        #expect(closed.load(ordering: .relaxed) == 1)
        #expect(hub.subscriberCount == 1)
        #expect(String(decoding: metrics.text(), as: UTF8.self).contains("roas_stream_subscribers_dropped_total 1"))
        // Its stream ends after what it had (at most the buffer and two ticks' bursts).
        var count = 0
        for await _ in slow.events { count += 1 }
        #expect(count <= 150, "the dropped subscriber kept \(count) events")
        hub.publish(event: "stats", data: data)
        #expect(slow.pending <= 150 * 1000)
    }

    @Test("a /v1/stream client that stops reading is dropped and its connection closed; others keep streaming")
    func slowStreamClient() async throws {
        let server = try await ServerHarness.start { $0.streamBufferBytes = 32 * 1024 }
        let port = server.httpPort
        // A tiny receive buffer that is never read.
        let slow = try await offThread {
            let socket = try RawSocket(port: port, receiveBuffer: 2048)
            try socket.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            return socket
        }
        #expect(try await server.eventually { await server.server.ingestor.hub.subscriberCount == 1 })
        // Batches of rows with long creator names, each some 300 kB of row events at the next
        // live tick, until the socket buffers on the way (a few MB) are full and the subscriber
        // is more than --stream-buffer behind.
        let name = String(repeating: "n", count: 400)
        var batch = 0
        let dropped = try await server.eventually(timeout: 60) {
            batch += 1
            let lines = (0..<500).map { Events.view("r\(batch)-\($0)", ServerHarness.t0, user: "tt:u", creator: "\(name)\($0)") }
            let status = try await server.post(Events.payload(lines), id: "rows\(batch)").status
            guard status == 202 else { throw SocketError("a batch of rows was answered \(status)") }
            return String(decoding: await server.server.ingestor.metrics.text(), as: UTF8.self)
                .contains("roas_stream_subscribers_dropped_total 1")
        }
        print("slow /v1/stream client dropped after \(batch) batches of 500 rows")
        #expect(dropped)
        #expect(await server.server.ingestor.hub.subscriberCount == 0)
        // The server closed the connection: reading what it had sent ends.
        let closed = try await offThread { Self.readUntilClosed(slow, timeout: 20).closed }
        #expect(closed)
        // A new subscriber streams as usual.
        let fresh = try await offThread {
            let socket = try RawSocket(port: port)
            try socket.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            return String(decoding: socket.receive(timeout: 10) { String(decoding: $0, as: UTF8.self).contains("event: stats") }, as: UTF8.self)
        }
        #expect(fresh.contains("event: stats"))
        _ = try await server.stop()
    }

    // MARK: Small ones

    @Test("Authorization: the Bearer scheme in any case")
    func bearerAnyCase() async throws {
        let server = try await ServerHarness.start { $0.apiToken = "s3cret" }
        for value in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR  s3cret"] {
            #expect(try await server.get("/v1/roas", headers: ["Authorization": value]).status == 200, "\(value)")
        }
        for value in ["Bearer nope", "Basic s3cret", "Bearers3cret", "s3cret", "Bearer"] {
            #expect(try await server.get("/v1/roas", headers: ["Authorization": value]).status == 401, "\(value)")
        }
        _ = try await server.stop()
    }

    @Test("--idle-timeout 0 never closes a TCP connection for silence")
    func idleTimeoutZero() async throws {
        let server = try await ServerHarness.start { $0.connectionIdleTimeout = 0 }
        let port = server.tcpPort
        try await offThread {
            let socket = try RawSocket(port: port)
            try socket.send(Events.frame([Events.view("z1", ServerHarness.t0, user: "tt:a", creator: "c")], id: "z1"))
            Thread.sleep(forTimeInterval: 1.5)
            try socket.send(Events.frame([Events.view("z2", ServerHarness.t0, user: "tt:a", creator: "c")], id: "z2"))
            socket.finishSending()
            _ = socket.receive(timeout: 10)
        }
        let (result, _) = try await server.stop()
        #expect(result.statistics.accepted(.view) == 2)
        #expect(result.statistics.deadLetterCount == 0)
    }

    // MARK: Helpers

    final class Stop: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// Sends a webhook request's head with `Content-Length` and no body; the answer, and whether the
    /// server then closed (its side of) the connection.
    static func headOnly(port: Int, headers: [String: String], contentLength: Int) async throws -> (HTTPReply?, closed: Bool) {
        try await offThread {
            let socket = try RawSocket(port: port)
            var head = "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "Content-Length: \(contentLength)\r\n\r\n"
            try socket.send(head)
            let (bytes, closed) = Self.readUntilClosed(socket, timeout: 10)
            return (try? HTTPReply(parsing: bytes), closed)
        }
    }

    /// Reads until the peer closes (true) or `timeout` seconds pass (false).
    static func readUntilClosed(_ socket: RawSocket, timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 50) <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(socket.descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { return (received, true) }
            received.append(contentsOf: buffer[0..<count])
        }
        return (received, false)
    }

    /// Whether the peer has closed (a read would see the end, or the connection was reset).
    static func isClosed(_ socket: RawSocket) -> Bool {
        var poller = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(socket.descriptor, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) <= 0
    }

    /// Whether `bytes` hold a whole response with a `content-length` body.
    static func complete(_ bytes: [UInt8]) -> Bool {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).lowercased()
        guard let line = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return bytes.count - end.upperBound >= length
    }

    /// One request on a kept-alive connection and its response.
    static func exchange(_ socket: RawSocket, _ request: String) throws -> HTTPReply? {
        try socket.send(request)
        let bytes = socket.receive(timeout: 10) { Self.complete($0) }
        return try? HTTPReply(parsing: bytes)
    }

    static func exchange(_ socket: RawSocket, _ request: String) async throws -> HTTPReply? {
        try await offThread { try Self.exchange(socket, request) }
    }
}
