import Foundation
import RoasCore
import RoasLog
import RoasTestSupport
import Testing

/// Scale-out on a real 3-node NATS JetStream cluster (R3) on loopback: an edge (`roas serve --nats`)
/// takes a `roas gen` stream over TCP and appends it in parts; 1, 2 and 4 workers together write
/// exactly the rows of `roas run` over the same file.
@Suite("Scale out on NATS JetStream", .serialized)
struct ScaleOutTests {
    static let secret = "whsec_c2NhbGUtb3V0LXRlc3RzLXNlY3JldC0zMmJ5dGVzIQ=="

    /// A `roas gen` stream: dirty lines, refunds, links to Amazon buyers, late events.
    static func stream(events: Int) throws -> Data {
        let result = try Tools.roas([
            "gen", "--seed", "13", "--events", String(events), "--users", "300", "--creators", "40",
            "--dirty-fraction", "0.02", "--late-fraction", "0.01", "--batch-size", "500", "--secret", Self.secret,
        ])
        try #require(result.status == 0, "\(result)")
        return result.stdout
    }

    /// The rows of the members `1/N` … `N/N`, each `roas worker` run until the stream is idle.
    static func workerRows(
        cluster: NATSCluster, stream: String, members: Int, options: [String], maxFuture: String = "0"
    ) throws -> [String] {
        var rows: [String] = []
        for member in 1...members {
            let result = try Tools.roas(
                [
                    "worker", "--nats", cluster.urls.joined(separator: ","), "--stream", stream, "--member", "\(member)/\(members)",
                    "--secret", Self.secret, "--tolerance", "0", "--max-future", maxFuture, "--idle-exit", "1500ms", "--summary", "json",
                ] + options, timeout: 120)
            try #require(result.status == 0, "worker \(member)/\(members): \(result)")
            rows += result.stdoutLines
        }
        return rows
    }

    /// How many of the stream's messages of parts are plain (a JSON header line first), Zstandard
    /// frames, or neither, and how many hold the parts of several batches.
    static func partForms(cluster: NATSCluster, stream: String) throws -> (plain: Int, zstd: Int, other: Int, grouped: Int) {
        let log = try JetStreamLog(urls: cluster.urls, stream: stream, subjects: [stream + ".>"], replicas: nil)
        let reader = try log.reader(filter: stream + ".in.>", from: 1)
        defer { reader.close() }
        var forms = (plain: 0, zstd: 0, other: 0, grouped: 0)
        while true {
            let messages = try reader.next(max: 512, timeout: .milliseconds(500))
            if messages.isEmpty { return forms }
            for message in messages {
                if message.bytes.starts(with: Array("{\"part\":".utf8)) {
                    forms.plain += 1
                } else if message.bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) {
                    forms.zstd += 1
                } else {
                    forms.other += 1
                }
                let parts = try LogCompression.decode(message.bytes).withUnsafeBytes { try LogPart.parts(decoding: $0) }
                if parts.count > 1 { forms.grouped += 1 }
            }
        }
    }

    @Test(arguments: [["--model", "linear", "--by", "creator,campaign"], ["--model", "last-touch"]])
    func workersWriteTheRowsOfOneRun(options: [String]) async throws {
        let data = try Self.stream(events: 20_000)
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"] + options, stdin: data)
        try #require(run.status == 0, "\(run)")
        let expected = run.stdoutLines
        try #require(expected.count > 100)
        try await NATSCluster.with { cluster in
            try await offThread {
                let stream = "t\(options.count)\(options[1].count)"
                // The first half through an edge writing plain parts, the rest through one writing
                // zstd frames (the default): workers read a stream holding both.
                let text = [UInt8](data)
                let marker = Array("\n{\"batch\":".utf8)
                var cut = text.count / 2
                while cut < text.count && !text[cut...].starts(with: marker) { cut += 1 }
                try #require(cut < text.count)
                for (half, compression) in [(text[...cut], "none"), (text[(cut + 1)...], "zstd")] {
                    let server = try ServeBinaryTests.Server(
                        [
                            "--nats", cluster.urls.joined(separator: ","), "--stream", stream, "--secret", Self.secret,
                            "--tolerance", "0", "--max-future", "0", "--log-compression", compression,
                        ] + options)
                    let acks = try ServeBinaryTests.sendOverTCP(Data(half), port: server.tcpPort, timeout: 60)
                    let answers = String(decoding: acks, as: UTF8.self).split(separator: "\n")
                    #expect(!answers.isEmpty && answers.allSatisfy { $0.contains("\"ack\"") }, "\(answers.prefix(3))")
                    _ = server.stop()
                }
                let forms = try Self.partForms(cluster: cluster, stream: stream)
                #expect(forms.plain > 0 && forms.zstd > 0 && forms.other == 0, "\(forms)")
                // TCP chunks hold several batches: their parts for one partition go as one message.
                #expect(forms.grouped > 0, "\(forms)")
                for members in [1, 2, 4] {
                    let rows = try Self.workerRows(cluster: cluster, stream: stream, members: members, options: options)
                    #expect(rows.count == expected.count, "\(members) members wrote \(rows.count) rows, roas run \(expected.count)")
                    #expect(rows.sorted() == expected.sorted(), "\(members) members")
                }
            }
        }
    }

    @Test
    func workersWithOtherOptionsAreRefused() async throws {
        let data = try Self.stream(events: 2_000)
        try await NATSCluster.with { cluster in
            try await offThread {
                let server = try ServeBinaryTests.Server(
                    ["--nats", cluster.urls.joined(separator: ","), "--stream", "opts", "--secret", Self.secret, "--tolerance", "0"])
                try ServeBinaryTests.sendOverTCP(data, port: server.tcpPort, timeout: 60)
                let result = try Tools.roas(
                    [
                        "worker", "--nats", cluster.urls.joined(separator: ","), "--stream", "opts", "--window", "30m",
                        "--partitions", "4", "--idle-exit", "1s",
                    ], timeout: 60)
                #expect(result.status != 0)
                #expect(result.stderrText.contains("--window 1h there, 30m now"), "\(result)")
                #expect(result.stderrText.contains("--partitions 16 there, 4 now"), "\(result)")
                _ = server.stop()
            }
        }
    }

    /// The acknowledgement lines of a TCP send, by kind.
    static func answers(_ data: Data) -> (acks: Int, notDurable: Int, other: [String]) {
        var acks = 0
        var notDurable = 0
        var other: [String] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if line.contains("\"ack\"") {
                acks += 1
            } else if line.contains("not_durable") {
                notDurable += 1
            } else {
                other.append(String(line))
            }
        }
        return (acks, notDurable, other)
    }

    /// Without a quorum the edge acknowledges nothing (`not_durable`), and takes the resend once
    /// the cluster is back; a second edge taking every batch again adds nothing: the workers' rows
    /// are those of one `roas run` over the stream.
    @Test
    func nothingIsAcknowledgedThatTheStreamDoesNotHold() async throws {
        let first = try Self.stream(events: 3_000)
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"], stdin: first)
        try #require(run.status == 0, "\(run)")
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let arguments = ["--nats", urls, "--stream", "quorum", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0"]
                var server = try ServeBinaryTests.Server(arguments)
                // Two of three nodes down: no quorum, so no part can be held.
                cluster.kill(node: 1)
                cluster.kill(node: 2)
                let refused = Self.answers(try ServeBinaryTests.sendOverTCP(first, port: server.tcpPort, timeout: 60))
                #expect(refused.acks == 0, "acknowledged without a quorum: \(refused)")
                #expect(refused.notDurable > 0, "\(refused)")
                try cluster.restart(node: 1)
                try cluster.restart(node: 2)
                // The stream elects a leader again within seconds: resend until every batch is acknowledged.
                var taken = (acks: 0, notDurable: 0, other: [String]())
                for _ in 0..<20 {
                    taken = Self.answers(try ServeBinaryTests.sendOverTCP(first, port: server.tcpPort, timeout: 60))
                    if taken.acks == 6 && taken.notDurable == 0 { break }
                    Thread.sleep(forTimeInterval: 1)
                }
                #expect(taken.acks == 6 && taken.notDurable == 0 && taken.other.isEmpty, "\(taken)")
                // A new edge (which remembers no batch id) takes everything again: the stream keeps one copy.
                _ = server.stop()
                server = try ServeBinaryTests.Server(arguments)
                let again = Self.answers(try ServeBinaryTests.sendOverTCP(first, port: server.tcpPort, timeout: 60))
                #expect(again.acks == 6 && again.notDurable == 0, "\(again)")
                _ = server.stop()
                let rows = try Self.workerRows(cluster: cluster, stream: "quorum", members: 2, options: [])
                #expect(rows.sorted() == run.stdoutLines.sorted(), "\(rows.count) rows, roas run \(run.stdoutLines.count)")
            }
        }
    }

    /// A signed batch frame of `lines` (TCP framing).
    static func frame(_ lines: [String], id: String, timestamp: Int64 = 1_795_255_200) throws -> Data {
        let payload = Array(lines.map { $0 + "\n" }.joined().utf8)
        let signer = WebhookSigner(secrets: [try WebhookSecret(Self.secret)])
        let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: payload.count)
        return Data((header.line + "\n").utf8) + Data(payload)
    }

    /// With NATS's default `max_payload` (1 MiB), a batch whose events all go to one partition (one
    /// creator's spend, 3.3 MB) is larger than a message even with `--log-compression none`: it goes
    /// as pieces, and the workers count it as `roas run` does. A batch with a line that fits no
    /// message is answered `too_large`, alone: the batches around it and the connection go on.
    @Test
    func aBatchLargerThanAMessageGoesAsPieces() async throws {
        let generated = try Self.stream(events: 2_000)
        // The generated stream's first event time, so the bulk lands among its windows.
        let firstEvent = try #require(
            String(decoding: generated, as: UTF8.self).split(separator: "\n").dropFirst().first.flatMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            })
        let time = try #require(firstEvent["ts"] as? Int)
        let bulk = try Self.frame(
            (0..<36_000).map { #"{"type":"spend","id":"bulk-\#($0)","ts":\#(time + $0),"creator":"c-bulk","amount":0.01}"# },
            id: "bulk-spend")
        try #require(bulk.count > 3_000_000)
        let input = bulk + generated
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"], stdin: input)
        try #require(run.status == 0, "\(run)")
        #expect(run.stdoutLines.contains { $0.contains("\"c-bulk\"") }, "the bulk's creator has a row")
        try await NATSCluster.with(maxPayload: "1MB") { cluster in
            try await offThread {
                let server = try ServeBinaryTests.Server([
                    "--nats", cluster.urls.joined(separator: ","), "--stream", "bulk", "--secret", Self.secret,
                    "--tolerance", "0", "--max-future", "0", "--log-compression", "none",
                ])
                let taken = Self.answers(try ServeBinaryTests.sendOverTCP(input, port: server.tcpPort, timeout: 60))
                #expect(taken.acks == 5 && taken.notDurable == 0 && taken.other.isEmpty, "\(taken)")

                // One line of 1,048,000 bytes (within --max-line) fits no message of 1 MiB: refused,
                // every time, with the reason; the next batch on the connection is taken.
                let long = try Self.frame([String(repeating: "x", count: 1_048_000)], id: "long-line")
                let tail = try Self.frame([#"{"type":"spend","id":"tail-1","ts":\#(time),"creator":"c-tail","amount":1}"#], id: "tail")
                let answers = String(decoding: try ServeBinaryTests.sendOverTCP(long, port: server.tcpPort, timeout: 60), as: UTF8.self)
                #expect(answers.contains(#"{"nack":"long-line","reason":"too_large""#), "\(answers.prefix(400))")
                #expect(answers.contains("max_payload"), "\(answers.prefix(400))")
                // Only that batch: one beside it in the same read is taken, and a resend of it is a duplicate.
                let both = String(decoding: try ServeBinaryTests.sendOverTCP(long + tail, port: server.tcpPort, timeout: 60), as: UTF8.self)
                #expect(both.split(separator: "\n").count == 2, "\(both.prefix(600))")
                #expect(both.contains(#"{"nack":"long-line","reason":"too_large""#), "\(both.prefix(600))")
                #expect(both.contains(#"{"ack":"tail"}"#), "\(both.prefix(600))")
                let again = String(decoding: try ServeBinaryTests.sendOverTCP(tail, port: server.tcpPort, timeout: 60), as: UTF8.self)
                #expect(again.contains(#"{"ack":"tail","duplicate":true}"#), "\(again)")
                // The same as a webhook: 413 too_large.
                let file = Tools.temporaryPath("long-line.ndjson")
                defer { try? FileManager.default.removeItem(atPath: file) }
                try long.write(to: URL(fileURLWithPath: file))
                let posted = try ServeBinaryTests.sender(
                    ["http://127.0.0.1:\(server.httpPort)/v1/events", "--secret", Self.secret, "--input", file], server: server)
                #expect(posted.summary["status_counts"] as? [String: Int] == ["413": 1], "\(posted.result)")
                let body = posted.responses.first?["body"] as? [String: Any]
                #expect(body?["reason"] as? String == "too_large", "\(posted.result)")
                _ = server.stop()

                let rows = try Self.workerRows(cluster: cluster, stream: "bulk", members: 1, options: [])
                let expected = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"], stdin: input + tail)
                #expect(rows.sorted() == expected.stdoutLines.sorted(), "\(rows.count) rows, roas run \(expected.stdoutLines.count)")
                // The stream holds the bulk as pieces.
                let log = try JetStreamLog(urls: cluster.urls, stream: "bulk", subjects: ["bulk.>"], replicas: nil)
                let reader = try log.reader(filter: "bulk.in.>", from: 1)
                defer { reader.close() }
                var pieces = 0
                while case let messages = try reader.next(max: 512, timeout: .milliseconds(500)), !messages.isEmpty {
                    for message in messages {
                        #expect(message.bytes.count < 1 << 20)
                        let parts = try LogCompression.decode(message.bytes).withUnsafeBytes { try LogPart.parts(decoding: $0) }
                        pieces += parts.filter { $0.pieces > 1 }.count
                    }
                }
                #expect(pieces >= 6, "\(pieces) pieces")
            }
        }
    }

    @Test
    func anUnreachableClusterIsAClearError() throws {
        let result = try Tools.roas(
            ["serve", "--nats", "nats://127.0.0.1:1", "--secret", Self.secret, "--listen-http", "127.0.0.1:0"], timeout: 60)
        #expect(result.status != 0)
        #expect(result.stderrText.contains("nats://127.0.0.1:1"), "\(result)")
        let worker = try Tools.roas(["worker", "--nats", "nats://127.0.0.1:1", "--secret", Self.secret], timeout: 60)
        #expect(worker.status != 0)
        #expect(worker.stderrText.contains("nats://127.0.0.1:1"), "\(worker)")
    }

    @Test(
        arguments: [
            (["serve", "--nats", "nats://127.0.0.1:1", "--data-dir", "/tmp/x"], "--nats and --data-dir"),
            (["serve", "--nats", "nats://127.0.0.1:1", "--stream", "a.b"], "--stream must be"),
            (["serve", "--nats", "nats://127.0.0.1:1", "--replicas", "7"], "--replicas must be 1 to 5"),
            (["serve", "--replicas", "3"], "--replicas needs --nats"),
            (["serve", "--nats", "nats://127.0.0.1:1"], "--nats needs --secret"),
            (["worker", "--nats", "nats://127.0.0.1:1", "--member", "3/2"], "--member must be I/N"),
            (["worker", "--nats", "nats://127.0.0.1:1", "--member", "0/2"], "--member must be I/N"),
            (["worker", "--nats", "nats://127.0.0.1:1", "--partitions", "0"], "--partitions"),
            (["worker", "--nats", "nats://127.0.0.1:1", "--checkpoint-every", "1s"], "--checkpoint-every needs --data-dir"),
            (["serve", "--follow"], "--follow needs --nats"),
            (["serve", "--log-compression", "none"], "--log-compression needs --nats"),
            (["serve", "--nats", "nats://127.0.0.1:1", "--log-compression", "lz4"], "--log-compression"),
        ] as [([String], String)])
    func badScaleOutOptionsAreRefused(_ arguments: [String], _ message: String) throws {
        let result = try Tools.roas(arguments, timeout: 60)
        #expect(result.status != 0)
        #expect(result.stderrText.contains(message), "\(result)")
    }

    /// The stream's leader SIGKILLed while `roas gen` sends webhooks one at a time (retrying 503s),
    /// then restarted: every batch gets its 202 in the end, none twice, and the workers' rows are
    /// those of `roas run` over the same stream. Then a worker SIGKILLed mid-stream and started
    /// again writes the same rows.
    @Test
    func aKilledLeaderOrWorkerLosesNothing() async throws {
        let generator = [
            "--seed", "21", "--events", "20000", "--users", "300", "--creators", "40", "--batch-size", "200",
            "--secret", Self.secret,
        ]
        let file = try Tools.roas(["gen"] + generator)
        try #require(file.status == 0, "\(file)")
        let run = try Tools.roas(["run", "--secret", Self.secret, "--max-future", "1h"], stdin: file.stdout)
        try #require(run.status == 0, "\(run)")
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let server = try ServeBinaryTests.Server(["--nats", urls, "--stream", "failover", "--secret", Self.secret])
                let log = try JetStreamLog(
                    urls: cluster.urls, stream: "failover", subjects: ["failover.>"], replicas: nil)
                let leader = try #require(try log.status().leader.flatMap { cluster.node(named: $0) })
                log.close()
                let sender = try ChildProcess(
                    try Tools.roasBinary(),
                    ["gen"] + generator + [
                        "--rate", "4000", "--connections", "1", "--http", "http://127.0.0.1:\(server.httpPort)/v1/events",
                    ])
                Thread.sleep(forTimeInterval: 1.5)
                cluster.kill(node: leader)
                Thread.sleep(forTimeInterval: 2)
                try cluster.restart(node: leader)
                let sent = sender.wait(timeout: 120)
                #expect(sent.status == 0, "\(sent)")
                #expect(sent.stderrText.contains("100 × 202"), "\(sent)")
                print("leader failover: \(sent.stderrText.split(separator: "\n").last ?? "")")
                _ = server.stop()
                let rows = try Self.workerRows(
                    cluster: cluster, stream: "failover", members: 2, options: [], maxFuture: "1h")
                #expect(rows.sorted() == run.stdoutLines.sorted(), "\(rows.count) rows, roas run \(run.stdoutLines.count)")

                // A worker killed mid-stream, then started again, writes its rows anew.
                let path = Tools.temporaryPath("killed-worker.ndjson")
                let arguments = [
                    "worker", "--nats", urls, "--stream", "failover", "--member", "1/1", "--secret", Self.secret,
                    "--output", path, "--idle-exit", "1500ms",
                ]
                let killed = try ChildProcess(try Tools.roasBinary(), arguments)
                Thread.sleep(forTimeInterval: 0.3)
                killed.kill()
                let again = try Tools.roas(arguments, timeout: 120)
                #expect(again.status == 0, "\(again)")
                let written = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
                #expect(written.sorted() == run.stdoutLines.sorted())
            }
        }
    }

    /// A worker with --data-dir SIGKILLed after its first checkpoint goes on from it when started
    /// again (it says from which stream sequence): its rows and dead-letter files (with half a line
    /// added after the kill) end byte for byte as an uninterrupted worker's, and its summary counts
    /// are the same; with its newest checkpoint damaged, it sets it aside, goes on from the one
    /// before and ends the same again. Its folder is its own: a worker of another member, or a
    /// second one at once, is refused, and so are files emptied since.
    @Test
    func aWorkerGoesOnFromItsCheckpoint() async throws {
        let generated = try Tools.roas([
            "gen", "--seed", "21", "--events", "100000", "--users", "3000", "--creators", "40", "--batch-size", "200",
            "--dirty-fraction", "0.02", "--secret", Self.secret,
        ])
        try #require(generated.status == 0, "\(generated)")
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let server = try ServeBinaryTests.Server(
                    ["--nats", urls, "--stream", "resume", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0"])
                let answers = Self.answers(try ServeBinaryTests.sendOverTCP(generated.stdout, port: server.tcpPort, timeout: 120))
                #expect(answers.acks == 500 && answers.notDurable == 0, "\(answers.acks) acks, \(answers.notDurable) not durable")
                _ = server.stop()

                let base = Tools.temporaryPath("resume")
                try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: base) }
                func worker(_ name: String, member: String = "1/1", _ extra: [String] = []) -> [String] {
                    [
                        "worker", "--nats", urls, "--stream", "resume", "--member", member, "--secret", Self.secret,
                        "--tolerance", "0", "--max-future", "0", "--idle-exit", "1500ms", "--summary", "json",
                        "--output", "\(base)/\(name).ndjson", "--dead-letter", "\(base)/\(name)-dead.ndjson",
                    ] + extra
                }
                func files(_ name: String) throws -> (Data, Data) {
                    (
                        try Data(contentsOf: URL(fileURLWithPath: "\(base)/\(name).ndjson")),
                        try Data(contentsOf: URL(fileURLWithPath: "\(base)/\(name)-dead.ndjson"))
                    )
                }
                /// The summary without its timings.
                func counts(_ result: ProcessResult) -> String {
                    let last = result.stderrText.split(separator: "\n").last.map(String.init) ?? ""
                    return last.replacing(/"seconds":[^,]*,"lines_per_second":[^,]*,/, with: "")
                }
                let whole = try Tools.roas(worker("whole"), timeout: 120)
                try #require(whole.status == 0, "\(whole)")
                let expected = try files("whole")
                #expect(!expected.0.isEmpty && !expected.1.isEmpty)

                let folder = base + "/data"
                let resumed = worker("resumed", ["--data-dir", folder, "--checkpoint-every", "100ms"])
                let killed = try ChildProcess(try Tools.roasBinary(), resumed)
                let checkpoints = folder + "/checkpoints"
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline,
                    !((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []).contains(where: { $0.hasSuffix(".ckpt") })
                {
                    Thread.sleep(forTimeInterval: 0.01)
                }
                Thread.sleep(forTimeInterval: 0.2)
                killed.kill()
                // What a crash can leave after the checkpoint's lengths besides whole rows: half a line.
                for path in ["\(base)/resumed.ndjson", "\(base)/resumed-dead.ndjson"] {
                    let handle = try #require(FileHandle(forWritingAtPath: path))
                    handle.seekToEndOfFile()
                    handle.write(Data("{\"creator\":\"@cut".utf8))
                    try handle.close()
                }

                // The folder is this member's, and one worker's at a time.
                let other = try Tools.roas(worker("other", member: "1/2", ["--data-dir", folder]), timeout: 60)
                #expect(other.status != 0 && other.stderrText.contains("belongs to stream resume, member 1/1"), "\(other)")
                let running = try ChildProcess(try Tools.roasBinary(), resumed)
                Thread.sleep(forTimeInterval: 0.2)
                let second = try Tools.roas(worker("second", ["--data-dir", folder]), timeout: 60)
                #expect(second.status != 0 && second.stderrText.contains("is in use by another roas process"), "\(second)")

                let again = running.wait(timeout: 120)
                #expect(again.status == 0, "\(again)")
                let from = again.stderrText.firstMatch(of: /going on from the checkpoint at stream sequence (\d+)/).flatMap { Int($0.1) }
                #expect((from ?? 0) > 1, "\(again.stderrText)")
                print("worker resumed from stream sequence \(from ?? 0) of about 8,000")
                let written = try files("resumed")
                #expect(written.0 == expected.0, "rows differ from an uninterrupted worker's")
                #expect(written.1 == expected.1, "dead letters differ from an uninterrupted worker's")
                #expect(counts(again) == counts(whole))

                // A damaged newest checkpoint is set aside and the one before it taken: the files
                // are cut back to its lengths and end as before.
                // Named by sequence, zero-padded: in name order, oldest first.
                let kept = try FileManager.default.contentsOfDirectory(atPath: checkpoints).filter { $0.hasSuffix(".ckpt") }.sorted()
                try #require(kept.count == 2, "\(kept)")
                let older = try #require(UInt64(kept[0].dropLast(5)))
                let newest = "\(checkpoints)/\(kept[1])"
                var damaged = try Data(contentsOf: URL(fileURLWithPath: newest))
                damaged[damaged.count / 2] ^= 0xFF
                try damaged.write(to: URL(fileURLWithPath: newest))
                let fallback = try Tools.roas(resumed, timeout: 120)
                #expect(fallback.status == 0, "\(fallback)")
                #expect(fallback.stderrText.contains("skipping an unreadable checkpoint"), "\(fallback.stderrText)")
                #expect(
                    fallback.stderrText.contains("going on from the checkpoint at stream sequence \(older) "),
                    "\(fallback.stderrText)")
                #expect(FileManager.default.fileExists(atPath: newest + ".corrupt"))
                let rewritten = try files("resumed")
                #expect(rewritten.0 == expected.0, "rows differ after going on from the older checkpoint")
                #expect(rewritten.1 == expected.1, "dead letters differ after going on from the older checkpoint")
                #expect(counts(fallback) == counts(whole))

                // Files shorter than the checkpoint counts were changed behind the worker's back: refused.
                for path in ["\(base)/resumed.ndjson", "\(base)/resumed-dead.ndjson"] { try Data().write(to: URL(fileURLWithPath: path)) }
                let shortened = try Tools.roas(resumed, timeout: 60)
                #expect(shortened.status != 0 && shortened.stderrText.contains("fewer than the"), "\(shortened)")
            }
        }
    }

    /// A worker's checkpoint says where in the stream it goes on from. When the stream was deleted
    /// and made again (here shorter, by an edge with another input), a worker started with that
    /// data folder refuses to go on, naming the folder, rather than apply a stream its state did not come from.
    @Test
    func aWorkerRefusesAStreamMadeAgain() async throws {
        let first = try Self.stream(events: 20_000)
        let second = try Self.stream(events: 1_000)
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let base = Tools.temporaryPath("remade")
                try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: base) }
                func publish(_ stream: Data, batches: Int) throws {
                    let server = try ServeBinaryTests.Server(
                        ["--nats", urls, "--stream", "remade", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0"])
                    let answers = Self.answers(try ServeBinaryTests.sendOverTCP(stream, port: server.tcpPort, timeout: 60))
                    #expect(answers.acks == batches, "\(answers)")
                    _ = server.stop()
                }
                try publish(first, batches: 40)
                let folder = base + "/data"
                let worker = [
                    "worker", "--nats", urls, "--stream", "remade", "--secret", Self.secret, "--tolerance", "0",
                    "--max-future", "0", "--idle-exit", "1500ms", "--output", base + "/rows.ndjson", "--data-dir", folder,
                    "--checkpoint-every", "1ms",
                ]
                let once = try Tools.roas(worker, timeout: 120)
                try #require(once.status == 0, "\(once)")
                let checkpoints = try FileManager.default.contentsOfDirectory(atPath: folder + "/checkpoints").filter { $0.hasSuffix(".ckpt") }
                try #require(!checkpoints.isEmpty, "no checkpoint was written")

                let log = try JetStreamLog(urls: cluster.urls, stream: "remade", subjects: ["remade.>"], replicas: nil)
                try log.deleteStream()
                log.close()
                try publish(second, batches: 2)
                let again = try Tools.roas(worker, timeout: 60)
                #expect(again.status != 0, "\(again)")
                #expect(
                    again.stderrText.contains("the checkpoint in \(folder) goes on from sequence")
                        && again.stderrText.contains("the stream was made again; start with a new --data-dir"),
                    "\(again.stderrText)")
            }
        }
    }

    /// The edge's `--idle-close` goes on the stream: after the pause every worker's watermark
    /// follows the wall clock at the same point, so batches sent afterwards with event times after
    /// the first stream's but before the wall clock are late for each of them (as for plain `roas
    /// serve`; without the advance they would count), and what came before gives `roas run`'s rows. The edge keeps appending advances while it is idle; `--idle-exit` still ends workers.
    @Test
    func theEdgesIdleCloseReachesEveryWorker() async throws {
        let first = try Self.stream(events: 3_000)
        let later = try Tools.roas([
            "gen", "--seed", "14", "--events", "1000", "--users", "300", "--creators", "40", "--batch-size", "500",
            "--start", "2026-11-22T00:00:00Z", "--secret", Self.secret,
        ])
        try #require(later.status == 0, "\(later)")
        let run = try Tools.roas(
            ["run", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0", "--summary", "json"], stdin: first)
        try #require(run.status == 0, "\(run)")
        @Sendable func lateCount(_ result: ProcessResult) throws -> Double {
            let summary = try Tools.object(String(result.stderrText.split(separator: "\n").last ?? ""))
            return Tools.number((summary["dead_letters"] as? [String: Any])?["late"]) ?? 0
        }
        let lateBefore = try lateCount(run)
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let server = try ServeBinaryTests.Server(
                    [
                        "--nats", urls, "--stream", "idle", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0",
                        "--idle-close", "1s",
                    ])
                #expect(Self.answers(try ServeBinaryTests.sendOverTCP(first, port: server.tcpPort, timeout: 60)).acks == 6)
                Thread.sleep(forTimeInterval: 3)
                #expect(Self.answers(try ServeBinaryTests.sendOverTCP(later.stdout, port: server.tcpPort, timeout: 60)).acks == 2)
                Thread.sleep(forTimeInterval: 2)
                let rows = try Self.workerRows(cluster: cluster, stream: "idle", members: 2, options: [])
                #expect(rows.sorted() == run.stdoutLines.sorted(), "\(rows.count) rows, roas run \(run.stdoutLines.count)")
                let whole = try Tools.roas(
                    [
                        "worker", "--nats", urls, "--stream", "idle", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0",
                        "--idle-exit", "1500ms", "--summary", "json",
                    ], timeout: 120)
                #expect(whole.status == 0, "\(whole)")
                // The first stream's own late events (--late-fraction) are late for roas run too.
                let late = try lateCount(whole) - lateBefore
                #expect(late >= 900 && late <= 1000, "\(late) late of the 1,000 events sent after the pause")
                // One advance per idle spell (two here), not one per tick: a third only if the wall
                // clock passed an hour (the slide) meanwhile.
                let log = try JetStreamLog(urls: cluster.urls, stream: "idle", subjects: ["idle.>"], replicas: nil)
                let reader = try log.reader(filter: "idle.in.advance", from: 1)
                let advances = try reader.next(max: 100, timeout: .seconds(2))
                reader.close()
                log.close()
                #expect((2...3).contains(advances.count), "\(advances.count) idle advances on the stream")
                _ = server.stop()
            }
        }
    }

    /// `roas serve --nats --follow` reads the stream back into an engine of its own: `/v1/roas`
    /// shows the cluster's rows while it runs, and at SIGTERM, once its last appends are read back,
    /// its `--output` holds `roas run`'s final rows and its summary counts every line.
    @Test
    func anEdgeThatFollowsTheStreamShowsTheRows() async throws {
        let data = try Self.stream(events: 3_000)
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0", "--summary", "json"], stdin: data)
        try #require(run.status == 0, "\(run)")
        try await NATSCluster.with { cluster in
            try await offThread {
                let output = Tools.temporaryPath("followed.ndjson")
                let server = try ServeBinaryTests.Server(
                    [
                        "--nats", cluster.urls.joined(separator: ","), "--stream", "follow", "--follow", "--secret", Self.secret,
                        "--tolerance", "0", "--max-future", "0", "--output", output, "--summary", "json",
                    ])
                #expect(Self.answers(try ServeBinaryTests.sendOverTCP(data, port: server.tcpPort, timeout: 60)).acks == 6)
                // The rows reach the dashboard's API once the engine has read the parts back.
                var shown = 0
                let deadline = Date().addingTimeInterval(30)
                while shown == 0 && Date() < deadline {
                    let (status, body) = try ServeBinaryTests.get("http://127.0.0.1:\(server.httpPort)/v1/roas")
                    #expect(status == 200)
                    shown = ((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["rows"] as? [Any])?.count ?? 0
                    if shown == 0 { Thread.sleep(forTimeInterval: 0.2) }
                }
                #expect(shown > 0, "/v1/roas shows no row")
                let stopped = server.stop()
                #expect(stopped.status == 0, "\(stopped)")
                let finals = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
                    .filter { $0.contains("\"final\":true") }
                #expect(finals.sorted() == run.stdoutLines.sorted(), "\(finals.count) final rows, roas run \(run.stdoutLines.count)")
                let summary = try Tools.object(String(stopped.stderrText.split(separator: "\n").last ?? ""))
                let expected = try Tools.object(String(run.stderrText.split(separator: "\n").last ?? ""))
                for key in ["lines_read", "accepted_lines", "dead_letter_count", "final_rows"] {
                    #expect(Tools.number(summary[key]) == Tools.number(expected[key]), "\(key)")
                }
            }
        }
    }

    /// Two workers with `--sink postgres://` upsert the rows they own into one database: the table
    /// holds exactly `roas run`'s rows; a member run again (with a checkpoint folder) changes nothing.
    @Test
    func workersUpsertTheirRowsIntoPostgres() async throws {
        let data = try Self.stream(events: 3_000)
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"], stdin: data)
        try #require(run.status == 0, "\(run)")
        let database = try PostgresServer()
        defer { database.destroy() }
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let server = try ServeBinaryTests.Server(
                    ["--nats", urls, "--stream", "sink", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0"])
                #expect(Self.answers(try ServeBinaryTests.sendOverTCP(data, port: server.tcpPort, timeout: 60)).acks == 6)
                _ = server.stop()
                let folder = Tools.temporaryPath("sink-worker")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                for (member, extra) in [("1/2", []), ("2/2", ["--data-dir", folder]), ("2/2", ["--data-dir", folder])] {
                    let result = try Tools.roas(
                        [
                            "worker", "--nats", urls, "--stream", "sink", "--member", member, "--secret", Self.secret,
                            "--tolerance", "0", "--max-future", "0", "--idle-exit", "1500ms", "--sink", database.url,
                        ] + extra, timeout: 120)
                    #expect(result.status == 0, "\(result)")
                }
                let table = try database.rowsAsJSON()
                #expect(table == run.stdoutLines.sorted(), "\(table.count) rows in roas_rows, roas run \(run.stdoutLines.count)")
            }
        }
    }

    /// A worker without --idle-exit runs until SIGTERM, which finishes it as the idle exit does:
    /// every window closes and its rows are written.
    @Test
    func sigtermFinishesAWorker() async throws {
        let data = try Self.stream(events: 2_000)
        let run = try Tools.roas(["run", "--secret", Self.secret, "--tolerance", "0"], stdin: data)
        try #require(run.status == 0, "\(run)")
        try await NATSCluster.with { cluster in
            try await offThread {
                let urls = cluster.urls.joined(separator: ",")
                let server = try ServeBinaryTests.Server(
                    ["--nats", urls, "--stream", "term", "--secret", Self.secret, "--tolerance", "0", "--max-future", "0"])
                let answers = Self.answers(try ServeBinaryTests.sendOverTCP(data, port: server.tcpPort, timeout: 60))
                #expect(answers.acks == 4 && answers.notDurable == 0, "\(answers)")
                _ = server.stop()
                let worker = try ChildProcess(
                    try Tools.roasBinary(),
                    ["worker", "--nats", urls, "--stream", "term", "--secret", Self.secret, "--max-future", "0", "--summary", "json"])
                Thread.sleep(forTimeInterval: 5)
                let result = worker.terminate(timeout: 60)
                #expect(result.status == 0, "\(result)")
                #expect(
                    result.stdoutLines.sorted() == run.stdoutLines.sorted(), "\(result.stdoutLines.count) rows, roas run \(run.stdoutLines.count)")
            }
        }
    }
}
