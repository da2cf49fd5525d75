import Foundation
import Logging
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Synchronization

@testable import RoasServer

/// A real `RoasService` on loopback ports chosen by the system, writing rows and dead letters to
/// temporary files, stopped by a graceful shutdown as SIGTERM would.
final class ServerHarness: Sendable {
    static let secret = try! WebhookSecret("whsec_c2VydmVyLXRlc3RzLXNlY3JldC1rZXktMzJieXRlcyE=")
    static let now: Int64 = 1_795_300_000
    static let t0: Int64 = 1_795_219_200_000  // 2026-11-21T00:00:00Z

    let server: RoasService
    let tcpPort: Int
    let httpPort: Int
    let rowsPath: String
    let deadLettersPath: String
    let task: Task<RunResult, any Error>

    /// Defaults: the sample secret above, tolerance 0, dead letters kept, idle close off (1 h).
    /// - Parameter rowsDescriptor: write rows there (closing it at the end) instead of to a file.
    /// - Parameter postgres: a database sink for the server to run and write rows to.
    static func start(
        rowsDescriptor: Int32? = nil, postgres: PostgresRowSink? = nil, _ configure: (inout ServeSettings) -> Void = { _ in }
    ) async throws
        -> ServerHarness
    {
        var engine = EngineConfiguration(currencies: try CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27]))
        engine.keepsDeadLetters = true
        var run = RunSettings(configuration: engine)
        run.secrets = [Self.secret]
        run.tolerance = 0
        run.now = { ServerHarness.now }
        var settings = ServeSettings(run: run)
        settings.tcp = ListenAddress(host: "127.0.0.1", port: 0)
        settings.http = ListenAddress(host: "127.0.0.1", port: 0)
        settings.idleClose = 3_600_000
        settings.liveEvery = 100
        configure(&settings)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roas-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let rowsPath = directory.appendingPathComponent("rows.ndjson").path
        let deadLettersPath = directory.appendingPathComponent("dead.ndjson").path
        var logger = Logger(label: "roas-test")
        logger.logLevel = .warning
        let server = RoasService(
            settings: settings,
            rows: try rowsDescriptor.map { ByteSink(descriptor: $0, closesDescriptor: true) } ?? ByteSink(path: rowsPath),
            deadLetters: try ByteSink(path: deadLettersPath), postgres: postgres, logger: logger)
        let (bound, continuation) = AsyncStream.makeStream(of: RoasService.Bound.self)
        let task = Task {
            try await server.run(handlesSignals: false) { continuation.yield($0) }
        }
        var iterator = bound.makeAsyncIterator()
        guard let addresses = await iterator.next() else { throw SocketError("the server did not start") }
        return ServerHarness(
            server: server, tcpPort: addresses.tcp?.port ?? 0, httpPort: addresses.http?.port ?? 0,
            rowsPath: rowsPath, deadLettersPath: deadLettersPath, task: task)
    }

    private init(
        server: RoasService, tcpPort: Int, httpPort: Int, rowsPath: String, deadLettersPath: String,
        task: Task<RunResult, any Error>
    ) {
        self.server = server
        self.tcpPort = tcpPort
        self.httpPort = httpPort
        self.rowsPath = rowsPath
        self.deadLettersPath = deadLettersPath
        self.task = task
    }

    /// Graceful shutdown; returns the result and the final rows written.
    func stop() async throws -> (result: RunResult, rows: [String]) {
        await self.server.shutdown()
        let result = try await self.task.value
        return (result, Self.lines(self.rowsPath))
    }

    var rowsSoFar: [String] { Self.lines(self.rowsPath) }

    /// Dead letters written so far, as JSON objects.
    var deadLetters: [[String: Any]] {
        Self.lines(self.deadLettersPath).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func lines(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> HTTPReply {
        let port = self.httpPort
        return try await offThread { try HTTPReply.request(port: port, "GET", path, headers: headers) }
    }

    func request(
        _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [], timeout: Double = 10
    ) async throws -> HTTPReply {
        let port = self.httpPort
        return try await offThread {
            try HTTPReply.request(port: port, method, path, headers: headers, body: body, timeout: timeout)
        }
    }

    /// POSTs a webhook the way Standard Webhooks senders do.
    func post(
        _ payload: [UInt8], id: String, timestamp: Int64 = ServerHarness.now, secret: WebhookSecret? = nil,
        signature given: String? = nil, timeout: Double = 10
    ) async throws -> HTTPReply {
        let signer = WebhookSigner(secrets: [secret ?? Self.secret])
        let signature = given ?? payload.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        return try await self.request(
            "POST", "/v1/events",
            headers: [
                "webhook-id": id, "webhook-timestamp": "\(timestamp)", "webhook-signature": signature,
                "content-type": "application/x-ndjson",
            ],
            body: payload, timeout: timeout)
    }

    /// Sends `bytes` on a new TCP connection, half-closes it and waits for the server to close it.
    /// Sends `bytes` on a new connection, half-closes, and returns what the server answered once it
    /// closed the connection, which it does after reading and applying everything. `timeout` bounds
    /// that wait only: on a loaded machine (the PostgreSQL sink behind, both cores busy) it took
    /// over 30 s, and a `stop()` before the end stops reading what the sender had sent.
    func sendTCP(_ bytes: [UInt8], pieces: Int = 7919, timeout: Double = 300) async throws -> [UInt8] {
        let port = self.tcpPort
        return try await offThread {
            let socket = try RawSocket(port: port)
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + pieces)
                try socket.send(Array(bytes[offset..<end]))
                offset = end
            }
            socket.finishSending()
            return socket.receive(timeout: timeout)
        }
    }

    /// Sends `bytes` in 64 KiB writes on a new connection, counting in `progress` what has gone out,
    /// then half-closes and waits (up to `timeout` seconds) for the server to close.
    func sendTCPCounting(_ bytes: [UInt8], timeout: Double = 60) -> (task: Task<Void, any Error>, progress: SendProgress) {
        let port = self.tcpPort
        let progress = SendProgress()
        let task = Task {
            try await offThread {
                let socket = try RawSocket(port: port)
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + 65536)
                    try socket.send(Array(bytes[offset..<end]))
                    offset = end
                    progress.sent.store(offset, ordering: .relaxed)
                }
                socket.finishSending()
                _ = socket.receive(timeout: timeout)
            }
        }
        return (task, progress)
    }

    /// Polls until `condition` holds (the engine applies asynchronously).
    func eventually(timeout: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

/// Bytes a sender has written so far.
final class SendProgress: Sendable {
    let sent = Atomic<Int>(0)

    /// Waits until no byte has gone out for `quiet` seconds in a row (or `timeout` seconds pass); the
    /// bytes sent then. Call it once the server is known to be blocked: before that, a sender or
    /// server starved of CPU on a loaded machine can pause for a second and look stalled.
    func stall(quiet: Int = 3, timeout: Int = 120) async throws -> Int {
        var last = self.sent.load(ordering: .relaxed)
        var unchanged = 0
        for _ in 0..<timeout where unchanged < quiet {
            try await Task.sleep(for: .seconds(1))
            let now = self.sent.load(ordering: .relaxed)
            unchanged = now == last ? unchanged + 1 : 0
            last = now
        }
        return last
    }
}

/// Event lines and signed batch frames for the tests.
enum Events {
    static func view(_ id: String, _ ts: Int64, user: String, creator: String) -> String {
        #"{"type":"view","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)"}"#
    }

    static func click(_ id: String, _ ts: Int64, user: String, creator: String) -> String {
        #"{"type":"click","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)"}"#
    }

    static func purchase(_ id: String, _ ts: Int64, user: String, order: String, amount: String) -> String {
        #"{"type":"purchase","id":"\#(id)","ts":\#(ts),"user":"\#(user)","order":"\#(order)","amount":\#(amount),"currency":"USD"}"#
    }

    static func spend(_ id: String, _ ts: Int64, creator: String, amount: String) -> String {
        #"{"type":"spend","id":"\#(id)","ts":\#(ts),"creator":"\#(creator)","amount":\#(amount),"currency":"USD"}"#
    }

    static func payload(_ lines: [String]) -> [UInt8] {
        Array(lines.map { $0 + "\n" }.joined().utf8)
    }

    /// A signed batch frame: header line, then the payload.
    static func frame(_ lines: [String], id: String, timestamp: Int64 = ServerHarness.now, secret: WebhookSecret? = nil)
        -> [UInt8]
    {
        let payload = Self.payload(lines)
        let signer = WebhookSigner(secrets: [secret ?? ServerHarness.secret])
        let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        let header = #"{"batch":{"id":"\#(id)","timestamp":\#(timestamp),"signature":"\#(signature)","bytes":\#(payload.count)}}"#
        return Array((header + "\n").utf8) + payload
    }

    /// One creator's day: views, clicks, purchases and spend, in event-time order.
    static func campaign(creator: String, prefix: String, start: Int64, purchases: Int, amount: String, spend: String)
        -> [String]
    {
        var lines = [Self.spend("\(prefix)-s", start, creator: creator, amount: spend)]
        for index in 0..<purchases {
            let time = start + Int64(index) * 60_000 + 1000
            let user = "tt:\(prefix)-u\(index)"
            lines.append(Self.view("\(prefix)-v\(index)", time, user: user, creator: creator))
            lines.append(Self.click("\(prefix)-c\(index)", time + 1000, user: user, creator: creator))
            lines.append(Self.purchase("\(prefix)-p\(index)", time + 2000, user: user, order: "\(prefix)-o\(index)", amount: amount))
        }
        return lines
    }
}
