import Foundation
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Synchronization
import Testing

@testable import RoasServer

/// `roas serve` end to end on loopback: real sockets, the real engine, graceful shutdown.
@Suite("roas serve", .serialized)
struct ServeTests {
    /// Splits a stream of signed frames into (id, whole frame, payload).
    static func frames(_ bytes: [UInt8]) throws
        -> [(id: String, timestamp: Int64, signature: String, frame: [UInt8], payload: [UInt8])]
    {
        var frames: [(String, Int64, String, [UInt8], [UInt8])] = []
        var index = 0
        while index < bytes.count {
            guard let newline = bytes[index...].firstIndex(of: 10) else { break }
            let line = try JSONSerialization.jsonObject(with: Data(bytes[index..<newline])) as! [String: Any]
            let header = line["batch"] as! [String: Any]
            let count = header["bytes"] as! Int
            let end = newline + 1 + count
            frames.append(
                (
                    header["id"] as! String, (header["timestamp"] as! NSNumber).int64Value, header["signature"] as! String,
                    Array(bytes[index..<end]), Array(bytes[(newline + 1)..<end])
                ))
            index = end
        }
        return frames
    }

    /// A signed `roas gen` stream for the harness's secret.
    static func generated(
        seed: UInt64, events: Int, users: Int, creators: Int, _ configure: (inout GeneratorConfiguration) -> Void = { _ in }
    ) throws -> [UInt8] {
        var generator = GeneratorConfiguration()
        generator.seed = seed
        generator.events = events
        generator.users = users
        generator.creators = creators
        generator.secret = ServerHarness.secret
        configure(&generator)
        var source = try EventGenerator(configuration: generator, now: { ServerHarness.now })
        return source.generateAll()
    }

    static func lineCount(_ bytes: [UInt8]) -> Int { bytes.reduce(0) { $1 == 10 ? $0 + 1 : $0 } }

    /// The rows `roas run` gives for `bytes` with the harness's settings, changed by `configure`.
    static func runRows(_ bytes: [UInt8], _ configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> [String] {
        var configuration = EngineConfiguration(currencies: try CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27]))
        configure(&configuration)
        var pipeline = Pipeline(
            configuration: configuration, secrets: [ServerHarness.secret], tolerance: 0, now: { ServerHarness.now })
        pipeline.consume(bytes)
        pipeline.finish()
        return pipeline.output.rows.map(\.json)
    }

    @Test("TCP connections and webhooks at once give the rows of roas run")
    func concurrentSendersMatchRoasRun() async throws {
        let stream = try Self.generated(seed: 7, events: 30_000, users: 5000, creators: 40) {
            $0.batchSize = 250
            $0.dirtyFraction = 0.01
            $0.badBatchFraction = 0.05
            $0.currencies = GeneratorConfiguration.defaultCurrencyMix
        }
        let frames = try Self.frames(stream)
        #expect(frames.count > 100)
        // Nothing is late whatever the interleaving: the result cannot depend on arrival order.
        let lateness: Int64 = 30 * 86_400_000
        let expected = try Self.runRows(stream) { $0.lateness = lateness }
        #expect(expected.count >= 40)

        let server = try await ServerHarness.start { $0.run.configuration.lateness = lateness }
        let senders = 6
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<senders {
                let mine = frames.enumerated().filter { $0.offset % senders == sender }.map(\.element)
                group.addTask {
                    if sender < 3 {
                        // TCP, in pieces of odd sizes so frames are cut anywhere.
                        _ = try await server.sendTCP(mine.flatMap(\.frame), pieces: 7919)
                    } else {
                        for frame in mine {
                            let reply = try await server.post(
                                frame.payload, id: frame.id, timestamp: frame.timestamp, signature: frame.signature)
                            #expect([202, 401].contains(reply.status), "\(reply.status) \(reply.text)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Every line sent is read before the shutdown.
        let lines = Self.lineCount(stream)
        #expect(try await server.eventually { await server.server.statistics.linesRead == lines })
        let (result, rows) = try await server.stop()
        #expect(result.statistics.balances)
        #expect(result.statistics.rejectedBatches(.badSignature) > 0)
        #expect(rows.sorted() == expected.sorted())
        #expect(rows == expected)
    }

    @Test("a sender that writes a large stream at once and half-closes loses nothing")
    func halfCloseAfterLargeStream() async throws {
        // Regression: without remote half-closure NIO closed the connection at EOF and dropped what
        // back-pressure had left unread (14 of 2,002 batches in a 2M-event run).
        let stream = try Self.generated(seed: 11, events: 150_000, users: 20_000, creators: 50)
        let expected = try Self.runRows(stream)
        let server = try await ServerHarness.start()
        _ = try await server.sendTCP(stream, pieces: 1 << 22)
        let (result, rows) = try await server.stop()
        #expect(result.statistics.linesRead == Self.lineCount(stream))
        #expect(result.statistics.bytesRead == stream.count)
        #expect(result.statistics.deadLetterCount == 0)
        #expect(rows == expected)
    }

    @Test("when the engine cannot hand rows on, TCP reading stops (back-pressure) and resumes without loss, past --idle-timeout")
    func backPressure() async throws {
        // Rows go to a pipe nobody reads yet: once its 64 KiB are full the engine waits on it, so
        // connections wait on the engine and stop reading; the sender's socket then stalls.
        let stream = try Self.generated(seed: 13, events: 300_000, users: 20_000, creators: 50)
        let oneMinute: Int64 = 60_000
        let expected = try Self.runRows(stream) {
            $0.window = oneMinute
            $0.slide = oneMinute
        }
        #expect(expected.count > 2000)

        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let server = try await ServerHarness.start(rowsDescriptor: descriptors[1]) {
            $0.run.configuration.window = oneMinute
            $0.run.configuration.slide = oneMinute
            // Shorter than the pause below: time in which the server holds reading back is not idle.
            $0.connectionIdleTimeout = 1000
            // The kernel would otherwise hold up to 32 MiB here (tcp_rmem's maximum on this
            // machine): more than the whole stream, which then goes out although nobody reads.
            $0.tcpReceiveBuffer = 256 << 10
        }
        let (sending, progress) = server.sendTCPCounting(stream, timeout: 300)
        // Once the pipe is full the engine is blocked for good; let the buffers on the way fill up,
        // then check that sending has stopped.
        // (A writer blocks with up to a page of the pipe's 64 KiB still free, and the page it last
        // wrote may be part full: 61,076 bytes were once all it held while the engine was blocked.)
        let reader = descriptors[0]
        let inPipe = Atomic<Int32>(0)
        let pipeFull = try await server.eventually(timeout: 120) {
            var queued: Int32 = 0
            guard ioctl(reader, UInt(FIONREAD), &queued) == 0 else { return false }
            inPipe.store(queued, ordering: .relaxed)
            return queued >= 65536 - 2 * 4096
        }
        #expect(pipeFull, "the rows never filled the pipe (\(inPipe.load(ordering: .relaxed)) bytes in it)")
        let early = try await progress.stall()
        try await Task.sleep(for: .seconds(3))
        let later = progress.sent.load(ordering: .relaxed)
        print("back-pressure: sent \(early) then \(later) of \(stream.count) bytes")
        #expect(later < stream.count, "the whole stream went out although nobody read the rows")
        #expect(later == early, "the sender kept going (\(early) then \(later) bytes) while the engine was blocked")

        // Start reading the rows: everything flows again and nothing is lost.
        let stopped = Mutex(false)
        let drained = Task {
            try await offThread {
                // Until the server has stopped and the pipe is empty (the server keeps its end open).
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    var poller = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
                    if poll(&poller, 1, 100) > 0 {
                        let count = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                        if count <= 0 { break }
                        bytes.append(contentsOf: buffer[0..<count])
                    } else if stopped.withLock({ $0 }) {
                        break
                    }
                }
                close(reader)
                return bytes
            }
        }
        try await sending.value
        let (result, _) = try await server.stop()
        stopped.withLock { $0 = true }
        let rows = String(decoding: try await drained.value, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(result.statistics.linesRead == Self.lineCount(stream))
        #expect(rows == expected)
    }

    @Test("roas gen --tcp's sender half-closes: it returns once the server has read everything, not at the idle timeout")
    func senderHalfCloses() async throws {
        let stream = try Self.generated(seed: 17, events: 20_000, users: 2000, creators: 20)
        let server = try await ServerHarness.start()  // --idle-timeout 60 s
        let started = ContinuousClock.now
        _ = try await TCPSender.withConnection(host: "127.0.0.1", port: server.tcpPort) { write in
            try await write(stream)
        }
        let took = started.duration(to: .now)
        #expect(took < .seconds(20), "the sender took \(took): the server only closed at its idle timeout")
        let (result, _) = try await server.stop()
        #expect(result.statistics.linesRead == Self.lineCount(stream))
    }

    @Test("a bad frame on one connection leaves another untouched")
    func badFrameIsolation() async throws {
        let server = try await ServerHarness.start()
        let good = Events.campaign(creator: "good", prefix: "g", start: ServerHarness.t0, purchases: 3, amount: "10", spend: "10")
        // A payload that does not end where its header says: bad_frame, on this connection only.
        let broken = Array((#"{"batch":{"id":"broken","timestamp":1,"signature":"v1,AAAA","bytes":5}}"# + "\nabcdefgh\n").utf8)
        async let bad = server.sendTCP(broken)
        async let other = server.sendTCP(Events.frame(good, id: "fine"))
        _ = try await (bad, other)
        #expect(
            try await server.eventually {
                let statistics = await server.server.statistics
                return statistics.acceptedBatches == 1 && statistics.deadLetters(.badFrame) >= 1
            })
        let (result, rows) = try await server.stop()
        #expect(result.statistics.deadLetters(.badFrame) >= 1)
        #expect(result.statistics.acceptedBatches == 1)
        #expect(rows.count == 1 && rows[0].contains(#""creator":"good""#) && rows[0].contains(#""roas":3"#))
    }

    @Test("a connection that sends half a frame and hangs is closed; the half frame is dead-lettered")
    func halfFrameAndHang() async throws {
        let server = try await ServerHarness.start { $0.connectionIdleTimeout = 300 }
        let frame = Events.frame([Events.view("v1", ServerHarness.t0, user: "tt:a", creator: "c")], id: "half")
        let port = server.tcpPort
        // The server closes the connection after the idle timeout: the read sees the end.
        let waited = try await offThread {
            let socket = try RawSocket(port: port)
            try socket.send(Array(frame.prefix(frame.count - 10)))
            let started = Date()
            _ = socket.receive(timeout: 10)
            return Date().timeIntervalSince(started)
        }
        #expect(waited < 5)
        #expect(try await server.eventually { server.deadLetters.contains { $0["reason"] as? String == "bad_frame" } })
        // The server still takes other connections.
        _ = try await server.sendTCP(Events.frame([Events.view("v2", ServerHarness.t0, user: "tt:a", creator: "c")], id: "whole"))
        let (result, _) = try await server.stop()
        #expect(result.statistics.accepted(.view) == 1)
        #expect(result.statistics.balances)
    }

    @Test("connections over --max-connections are refused with an error line")
    func maximumConnections() async throws {
        let server = try await ServerHarness.start { $0.maximumConnections = 2 }
        let first = try RawSocket(port: server.tcpPort)
        let second = try RawSocket(port: server.tcpPort)
        #expect(try await server.eventually { server.server.connectionCount == 2 })
        let port = server.tcpPort
        let reply = try await offThread { String(decoding: try RawSocket(port: port).receive(timeout: 5), as: UTF8.self) }
        #expect(reply.contains("too many connections"))
        first.finishSending()
        second.finishSending()
        _ = try await server.stop()
    }

    @Test("webhooks: 202 with counts, 401, 400, 413, 200 for a replay, 503 when saturated")
    func webhookAnswers() async throws {
        let server = try await ServerHarness.start {
            $0.run.tolerance = 300
            $0.run.maximumBatchBytes = 4096
        }
        let lines = [
            Events.view("w1", ServerHarness.t0, user: "tt:a", creator: "c"),
            "{not json", Events.click("w2", ServerHarness.t0 + 1, user: "tt:a", creator: "c"),
        ]
        let accepted = try await server.post(Events.payload(lines), id: "b1")
        #expect(accepted.status == 202)
        #expect(try accepted.json()["accepted"] as? Int == 2)
        #expect(try accepted.json()["rejected"] as? Int == 1)

        let replay = try await server.post(Events.payload(lines), id: "b1")
        #expect(replay.status == 200)
        #expect(try replay.json()["duplicate"] as? Bool == true)

        let forged = try await server.post(
            Events.payload(lines), id: "b2", secret: try WebhookSecret("whsec_d3Jvbmctc2VjcmV0LWZvci10aGUtdGVzdHMtMTIzNDU="))
        #expect(forged.status == 401)
        #expect(try forged.json()["reason"] as? String == "bad_signature")

        let stale = try await server.post(Events.payload(lines), id: "b3", timestamp: ServerHarness.now - 3600)
        #expect(stale.status == 401)
        #expect(try stale.json()["reason"] as? String == "stale_batch")

        let unsigned = try await server.request("POST", "/v1/events", body: Events.payload(lines))
        #expect(unsigned.status == 401)

        let badTimestamp = try await server.request(
            "POST", "/v1/events",
            headers: ["webhook-id": "b4", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"], body: [10])
        #expect(badTimestamp.status == 400)

        let large = try await server.post(Array(repeating: UInt8(ascii: " "), count: 5000) + [10], id: "b5")
        #expect(large.status == 413)

        let (result, _) = try await server.stop()
        #expect(result.statistics.accepted(.view) == 1 && result.statistics.accepted(.click) == 1)
        #expect(result.statistics.rejectedBatches(.replayedBatch) == 1)
        #expect(result.statistics.rejectedBatches(.badSignature) == 1)
        // A stale timestamp is refused before the body is read: nothing of it reaches the engine.
        #expect(result.statistics.rejectedBatches(.staleBatch) == 0)

        let saturated = try await ServerHarness.start { $0.maximumQueuedChunks = 0 }
        let busy = try await saturated.post(Events.payload(lines), id: "b6")
        #expect(busy.status == 503)
        #expect(busy.headers["retry-after"] == "1")
        let (nothing, _) = try await saturated.stop()
        #expect(nothing.statistics.linesRead == 0)
    }

    @Test("read endpoints: /v1/roas with filters and sort, metrics, health, the dashboard, the token")
    func readEndpoints() async throws {
        let server = try await ServerHarness.start { $0.apiToken = "s3cret" }
        let winner = Events.campaign(creator: "winner", prefix: "w", start: ServerHarness.t0, purchases: 4, amount: "25", spend: "20")
        let loser = Events.campaign(
            creator: "loser", prefix: "l", start: ServerHarness.t0 + 600_000, purchases: 1, amount: "5", spend: "50")
        let profile = #"{"type":"creator","id":"cp-w","ts":\#(ServerHarness.t0),"creator":"winner","followers":50000}"#
        #expect(try await server.post(Events.payload([profile] + winner + loser), id: "r1").status == 202)
        let auth = ["Authorization": "Bearer s3cret"]
        #expect(
            try await server.eventually {
                let reply = try await server.get("/v1/roas", headers: auth)
                return (try reply.json()["rows"] as? [Any])?.count == 2
            })
        let roas = try await server.get("/v1/roas", headers: auth).json()
        let rows = roas["rows"] as! [[String: Any]]
        #expect(rows.map { $0["creator"] as? String } == ["winner", "loser"])
        let open = rows[0]["open"] as! [String: Any]
        #expect(open["roas"] as? Double == 5 && open["final"] as? Bool == false)
        #expect(roas["model"] as? String == "last-touch" && roas["window"] as? String == "1h")

        let bySpend = try await server.get("/v1/roas?sort=spend&limit=1", headers: auth).json()["rows"] as! [[String: Any]]
        #expect(bySpend.map { $0["creator"] as? String } == ["loser"])
        let filtered = try await server.get("/v1/roas?creator=winner", headers: auth).json()["rows"] as! [[String: Any]]
        #expect(filtered.count == 1)
        #expect(try await server.get("/v1/roas?sort=clicks", headers: auth).status == 400)
        // Tiers: winner has a micro profile, loser none ("unknown"); every row says its tier.
        #expect(rows.map { $0["tier"] as? String } == ["micro", nil])
        let micro = try await server.get("/v1/roas?tier=micro", headers: auth).json()["rows"] as! [[String: Any]]
        #expect(micro.map { $0["creator"] as? String } == ["winner"])
        let unknown = try await server.get("/v1/roas?tier=unknown", headers: auth).json()["rows"] as! [[String: Any]]
        #expect(unknown.map { $0["creator"] as? String } == ["loser"])
        #expect((try await server.get("/v1/roas?tier=mega", headers: auth).json()["rows"] as? [Any])?.isEmpty == true)
        #expect(try await server.get("/v1/roas?tier=giga", headers: auth).status == 400)

        #expect(try await server.get("/v1/roas").status == 401)
        #expect(try await server.get("/v1/roas", headers: ["Authorization": "Bearer nope"]).status == 401)
        #expect(try await server.get("/v1/roas?access_token=s3cret").status == 200)
        #expect(try await server.get("/metrics").status == 401)
        let metrics = try await server.get("/metrics", headers: auth).text
        #expect(metrics.contains(#"roas_events_accepted_total{type="view"} 5"#))
        #expect(metrics.contains("roas_batches_accepted_total 1"))
        #expect(metrics.contains("roas_watermark_lag_seconds"))
        #expect(try await server.get("/healthz").status == 200)
        #expect(try await server.get("/readyz").status == 200)
        let page = try await server.get("/?access_token=s3cret")
        #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
        #expect(page.text.contains("/v1/stream"))
        _ = try await server.stop()
    }

    @Test("--models in serve: /v1/roas per model (?model=), /v1/spread ranks keys by how much the models disagree")
    func modelsSideBySide() async throws {
        let server = try await ServerHarness.start {
            $0.run.configuration.models = [.lastTouch, .firstTouch, .linear]
            $0.run.configuration.labelsModels = true
        }
        let t0 = ServerHarness.t0
        // u1 clicks first then second, then buys for 40: last-touch credits second, first-touch first,
        // linear half each. Each creator cost 10; third (20 spent, no sale) has no ROAS spread.
        let lines = [
            #"{"type":"spend","id":"s1","ts":\#(t0),"creator":"first","amount":10}"#,
            #"{"type":"spend","id":"s2","ts":\#(t0),"creator":"second","amount":10}"#,
            #"{"type":"spend","id":"s3","ts":\#(t0),"creator":"third","amount":20}"#,
            #"{"type":"click","id":"c1","ts":\#(t0),"user":"u1","creator":"first"}"#,
            #"{"type":"click","id":"c2","ts":\#(t0 + 60_000),"user":"u1","creator":"second"}"#,
            #"{"type":"purchase","id":"p1","ts":\#(t0 + 120_000),"user":"u1","order":"o1","amount":40}"#,
            #"{"type":"view","id":"v9","ts":\#(t0 + 200_000),"user":"u9","creator":"third"}"#,
        ]
        #expect(try await server.post(Events.payload(lines), id: "m1").status == 202)
        func roas(_ query: String) async throws -> [String: Double?] {
            let rows = try await server.get("/v1/roas" + query).json()["rows"] as! [[String: Any]]
            var result: [String: Double?] = [:]
            for row in rows { result[row["creator"] as! String] = (row["open"] as? [String: Any])?["roas"] as? Double }
            return result
        }
        let arrived = try await server.eventually { try await roas("")["second"] == 4 }
        let board = try await server.get("/v1/roas").text
        #expect(arrived, "\(board)")
        #expect(try await roas("") == ["first": 0, "second": 4, "third": 0])
        #expect(try await roas("?model=first-touch") == ["first": 4, "second": 0, "third": 0])
        #expect(try await roas("?model=linear") == ["first": 2, "second": 2, "third": 0])
        let reply = try await server.get("/v1/roas?model=linear").json()
        #expect(reply["model"] as? String == "linear")
        #expect(reply["models"] as? [String] == ["last-touch", "first-touch", "linear"])
        #expect(try await server.get("/v1/roas?model=position").status == 400)

        let spread = try await server.get("/v1/spread").json()
        let rows = spread["rows"] as! [[String: Any]]
        // first and second each range from 0 to 4; third has the same ROAS under every model.
        #expect(rows.map { $0["creator"] as? String } == ["first", "second", "third"])
        #expect(rows.map { $0["spread"] as? Double } == [4, 4, 0])
        try #require(rows.count == 3)
        #expect((rows[0]["lowest"] as? [String: Any])?["model"] as? String == "last-touch")
        #expect((rows[0]["highest"] as? [String: Any])?["model"] as? String == "first-touch")
        #expect((rows[1]["roas"] as? [String: Double]) == ["last-touch": 4, "first-touch": 0, "linear": 2])
        #expect(try await server.get("/v1/spread?limit=-1").status == 400)
        let (result, _) = try await server.stop()
        // Each model's final rows: three creators, three models.
        #expect(result.statistics.finalRows == 9)
    }

    @Test("with no events for --idle-close the watermark follows the wall clock and windows close")
    func idleClose() async throws {
        let server = try await ServerHarness.start { $0.idleClose = 300 }
        let lines = Events.campaign(creator: "quiet", prefix: "q", start: ServerHarness.t0, purchases: 2, amount: "30", spend: "20")
        #expect(try await server.post(Events.payload(lines), id: "i1").status == 202)
        // The events are from 2026-11-21, long before the wall clock: once idle, their window closes.
        #expect(try await server.eventually { server.rowsSoFar.contains { $0.contains(#""creator":"quiet""#) } })
        #expect(server.rowsSoFar.first?.contains(#""final":true"#) == true)
        let (_, rows) = try await server.stop()
        #expect(rows.count == 1)
    }

    @Test("--alert in serve: /v1/alerts firing then resolved, the roas_alerts_firing gauge, alert events on /v1/stream")
    func alerts() async throws {
        let rule = try AlertRule("roas < 1")
        let server = try await ServerHarness.start { $0.alertRules = [rule] }
        let port = server.httpPort
        let socket = try await Self.subscribe(port: port)
        let t0 = ServerHarness.t0
        let hour: Int64 = 3_600_000
        // "loser" spends 50 for 5 in the first hour (ROAS 0.1), then 10 for 45 in the second (4.5);
        // a spend two hours on closes both windows.
        let first = Events.campaign(creator: "loser", prefix: "a", start: t0, purchases: 1, amount: "5", spend: "50")
        #expect(
            try await server.post(Events.payload(first + [Events.spend("x1", t0 + hour + 10_000, creator: "other", amount: "1")]), id: "a1").status
                == 202)
        #expect(try await server.eventually { (try await server.get("/v1/alerts").json()["firing"] as? [Any])?.count == 1 })
        let firing = try await server.get("/v1/alerts").json()
        #expect(firing["rules"] as? [String] == ["roas < 1"])
        let alert = (firing["firing"] as? [[String: Any]])?.first
        #expect(alert?["creator"] as? String == "loser" && alert?["state"] as? String == "firing")
        // The gauge follows at the next live tick.
        #expect(try await server.eventually { try await server.get("/metrics").text.contains(#"roas_alerts_firing{rule="roas < 1"} 1"#) })

        let second = Events.campaign(creator: "loser", prefix: "b", start: t0 + hour + 20_000, purchases: 1, amount: "45", spend: "10")
        #expect(
            try await server.post(Events.payload(second + [Events.spend("x2", t0 + 2 * hour + 10_000, creator: "third", amount: "1")]), id: "a2")
                .status == 202)
        #expect(try await server.eventually { (try await server.get("/v1/alerts").json()["resolved"] as? [Any])?.count == 1 })
        let resolved = try await server.get("/v1/alerts").json()
        // "other" spent 1 without revenue in the second hour: it fires now, and "loser" no longer does.
        #expect((resolved["firing"] as? [[String: Any]])?.map { $0["creator"] as? String } == ["other"])
        let done = (resolved["resolved"] as? [[String: Any]])?.first
        #expect(done?["id"] as? String == alert?["id"] as? String && done?["state"] as? String == "resolved")
        // The third hour is open; "third"'s live row there has no revenue for a spend of 1: pending, not firing.
        #expect(
            try await server.eventually {
                let pending = try await server.get("/v1/alerts").json()["pending"] as? [[String: Any]]
                return pending?.map { "\($0["creator"] as? String ?? "-") \($0["state"] as? String ?? "-")" } == ["third pending"]
            })
        let received = try await offThread {
            String(
                decoding: socket.receive(timeout: 5) { String(decoding: $0, as: UTF8.self).contains(#""state":"resolved""#) },
                as: UTF8.self)
        }
        #expect(received.contains("event: alert\ndata: {") && received.contains(#""state":"firing""#))
        _ = try await server.stop()
    }

    /// A raw `/v1/stream` subscriber, once its first `stats` event came.
    static func subscribe(port: Int) async throws -> RawSocket {
        try await offThread {
            let socket = try RawSocket(port: port)
            try socket.send("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            _ = socket.receive(timeout: 5) { String(decoding: $0, as: UTF8.self).contains("event: stats") }
            return socket
        }
    }

    @Test("/v1/stream sends row updates and stats as Server-Sent Events")
    func eventStream() async throws {
        let server = try await ServerHarness.start()
        let port = server.httpPort
        let socket = try await Self.subscribe(port: port)
        let lines = Events.campaign(creator: "live", prefix: "s", start: ServerHarness.t0, purchases: 1, amount: "9", spend: "3")
        #expect(try await server.post(Events.payload(lines), id: "s1").status == 202)
        let received = try await offThread {
            String(
                decoding: socket.receive(timeout: 5) { String(decoding: $0, as: UTF8.self).contains(#""creator":"live""#) },
                as: UTF8.self)
        }
        #expect(received.contains("event: row\ndata: {"))
        #expect(received.contains(#""creator":"live""#) && received.contains(#""final":false"#))
        // Shutdown ends the stream with the final row.
        async let rest = offThread { String(decoding: socket.receive(timeout: 10), as: UTF8.self) }
        _ = try await server.stop()
        #expect(try await rest.contains(#""final":true"#))
    }
}
