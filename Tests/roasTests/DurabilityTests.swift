import Foundation
import RoasTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `roas serve --data-dir`, the binary: killed with SIGKILL at random moments under load from an
/// at-least-once sender (scripts/durable_sender.py), restarted each time, and at the end its
/// final rows are those of one uninterrupted `roas run`, row for row.
@Suite("roas serve --data-dir, crash recovery", .serialized, .ownThread)
struct DurabilityTests {
    static let secret = ServeBinaryTests.secret
    /// Short windows, so that many close (and final rows are written) between kills.
    static let engineOptions = ["--window", "5m"]

    /// A signed stream of `events` events in batches of `batchSize`, and what `roas run` makes of it.
    static func stream(events: Int, batchSize: Int, seed: Int) throws -> (path: String, rows: [String]) {
        let path = Tools.temporaryPath("durable-gen.ndjson")
        let gen = try Tools.roas([
            "gen", "--seed", "\(seed)", "--events", "\(events)", "--users", "4000", "--creators", "40",
            "--secret", Self.secret, "--batch-size", "\(batchSize)", "--start", "2026-01-01T00:00:00Z", "--output", path,
        ])
        try #require(gen.status == 0, "\(gen)")
        let run = try Tools.roas(
            ["run", "--secret", Self.secret, "--tolerance", "0", "--summary", "none", "--input", path] + Self.engineOptions)
        try #require(run.status == 0, "\(run)")
        return (path, run.stdoutLines)
    }

    /// `roas serve --data-dir` on a fixed TCP port (or HTTP port with `http`), started and ready;
    /// `prefix` runs it under another command (prlimit).
    static func serve(
        dataDir: String, port: Int, rows: String, http: Bool = false, extra: [String] = [], prefix: [String] = []
    ) throws -> ChildProcess {
        let listen = http ? ["--listen-http", "127.0.0.1:\(port)"] : ["--listen-tcp", "127.0.0.1:\(port)", "--no-http"]
        let arguments =
            ["serve", "--data-dir", dataDir] + listen
            + ["--secret", Self.secret, "--tolerance", "0", "--output", rows, "--summary", "json", "--log-level", "warning"]
            + Self.engineOptions + extra
        let child =
            prefix.isEmpty
            ? try ChildProcess(try Tools.roasBinary(), arguments)
            : try ChildProcess(URL(fileURLWithPath: prefix[0]), Array(prefix.dropFirst()) + [try Tools.roasBinary().path] + arguments)
        let ready = http ? "roas serve: http listening on" : "roas serve: tcp listening on"
        _ = try child.waitForStderr(timeout: 60) { $0.contains(ready) ? true : nil }
        return child
    }

    /// Restarts on the data folder with a short idle close, so every window closes, and returns the
    /// final rows once there are `count` (or after a minute).
    static func closeWindows(dataDir: String, port: Int, rows: String, count: Int, extra: [String] = []) throws -> [String] {
        let closing = try Self.serve(dataDir: dataDir, port: port, rows: rows, extra: ["--idle-close", "1s"] + extra)
        let written = Self.waitForRows(rows, count: count, timeout: 60)
        let closed = closing.terminate(timeout: 60)
        #expect(closed.status == 0, "\(closed)")
        return written
    }

    static func expectSameRows(_ written: [String], _ expected: [String], _ context: String) {
        #expect(written.count == expected.count, "final rows: \(written.count), roas run: \(expected.count); \(context)")
        #expect(Set(written).count == written.count, "no final row is written twice: \(context)")
        if written != expected {
            let firstDifference =
                zip(written, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(written.count, expected.count)
            Issue.record(
                "row \(firstDifference) differs:\n served: \(firstDifference < written.count ? written[firstDifference] : "-")\n run:    \(firstDifference < expected.count ? expected[firstDifference] : "-")\n\(context)"
            )
        }
    }

    static func finalRows(_ path: String) -> [String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { $0.contains("\"final\":true") }
    }

    /// Waits until the rows file holds `count` final rows (or `timeout` seconds pass).
    static func waitForRows(_ path: String, count: Int, timeout: TimeInterval) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var rows = Self.finalRows(path)
        while rows.count < count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            rows = Self.finalRows(path)
        }
        return rows
    }

    /// Appends a partial record (random bytes) to the newest log segment, as a write cut by a crash leaves it.
    /// Not to a segment whose 16-byte header was never written (killed while creating it): roas writes
    /// and syncs the header before any record, so no crash leaves a record after a missing header.
    static func tearLogTail(_ dataDir: String, using generator: inout SystemRandomNumberGenerator) throws {
        let folder = dataDir + "/wal"
        guard let newest = try FileManager.default.contentsOfDirectory(atPath: folder).filter({ $0.hasSuffix(".log") }).max()
        else { return }
        let size = (try FileManager.default.attributesOfItem(atPath: folder + "/" + newest)[.size] as? Int) ?? 0
        guard size >= 16 else { return }
        let handle = try #require(FileHandle(forWritingAtPath: folder + "/" + newest))
        defer { try? handle.close() }
        try handle.seekToEnd()
        let count = Int.random(in: 1...64, using: &generator)
        try handle.write(contentsOf: Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }))
    }

    /// Flips one byte of the newest checkpoint file, when there is one before it to fall back to
    /// (one fault at a time: a second corrupt checkpoint before the next one is written is a double fault).
    static func corruptNewestCheckpoint(_ dataDir: String, using generator: inout SystemRandomNumberGenerator) throws {
        let folder = dataDir + "/checkpoints"
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".ckpt") }
        guard checkpoints.count >= 2, let newest = checkpoints.max() else { return }
        let path = folder + "/" + newest
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let index = Int.random(in: 0..<data.count, using: &generator)
        data[index] ^= 0x5A
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test("SIGKILLed at random moments under load, restarted each time: the final rows equal one roas run's")
    func killedUnderLoad() throws {
        let cycles = Int(ProcessInfo.processInfo.environment["ROAS_KILL_CYCLES"] ?? "") ?? 20
        let (written, expected, context) = try Self.killCycles(cycles, name: "durable-kill")
        Self.expectSameRows(written, expected, context)
        print("kill test: \(context)")
    }

    @Test("the same with --workers 3 --partitions 8: checkpoints of partitioned state, the rows of one roas run")
    func killedUnderLoadWithWorkers() throws {
        let cycles = max(4, (Int(ProcessInfo.processInfo.environment["ROAS_KILL_CYCLES"] ?? "") ?? 20) / 2)
        let (written, expected, context) = try Self.killCycles(
            cycles, name: "durable-kill-workers", extra: ["--workers", "3", "--partitions", "8"])
        Self.expectSameRows(written, expected, context)
        print("kill test with workers: \(context)")
    }

    @Test("a data folder checkpointed with other --partitions is refused at start, naming the folder and the flag")
    func partitionsOfAFolderAreKept() throws {
        let folder = Tools.temporaryPath("partitions-folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let dataDir = folder + "/data"
        let rows = folder + "/rows.ndjson"
        let port = try freeLoopbackPort()
        // Some batches in, then SIGTERM: a checkpoint, partitions recorded.
        let (stream, _) = try Self.stream(events: 3000, batchSize: 150, seed: 5)
        defer { try? FileManager.default.removeItem(atPath: stream) }
        let first = try Self.serve(dataDir: dataDir, port: port, rows: rows, extra: ["--partitions", "16"])
        let sent = try Tools.run(
            try Tools.python3(),
            [Tools.pythonScript("durable_sender.py"), "--port", "\(port)", "--input", stream, "--deadline", "120"],
            timeout: 180)
        try #require(sent.status == 0, "\(sent)")
        let stopped = first.terminate(timeout: 60)
        try #require(stopped.status == 0, "\(stopped)")
        let arguments =
            ["serve", "--data-dir", dataDir, "--listen-tcp", "127.0.0.1:\(port)", "--no-http", "--secret", Self.secret]
            + Self.engineOptions + ["--partitions", "4", "--workers", "2"]
        let refused = try Tools.roas(arguments, timeout: 60)
        #expect(refused.status != 0, "\(refused)")
        #expect(
            refused.stderrText.contains("the data folder \(dataDir) was written with other engine options")
                && refused.stderrText.contains("--partitions 16 in the snapshot, 4 now"),
            "\(refused)")
        // The same partitions start (any --workers).
        let again = try Self.serve(dataDir: dataDir, port: port, rows: rows, extra: ["--partitions", "16", "--workers", "1"])
        #expect(again.terminate(timeout: 60).status == 0)
    }

    @Test("the same with --sink postgres:// and a PostgreSQL outage meanwhile: the table equals one roas run")
    func killedUnderLoadWithPostgres() throws {
        let cycles = Int(ProcessInfo.processInfo.environment["ROAS_KILL_CYCLES"] ?? "") ?? 20
        let database = try PostgresServer()
        defer { database.destroy() }
        // A small queue, so that the outage stops ingest (back-pressure) rather than filling memory.
        let sink = ["--sink", database.url, "--sink-queue", "500"]
        let outage = cycles / 3..<(cycles / 3 + 3)
        let (written, expected, context) = try Self.killCycles(cycles, name: "durable-kill-pg", extra: sink) { cycle in
            if cycle == outage.lowerBound { try database.stop() }
            if cycle == outage.upperBound - 1 { try database.start() }
        }
        Self.expectSameRows(written, expected, context)
        let table = try database.rowsAsJSON()
        #expect(table.count == expected.count, "rows in roas_rows: \(table.count), roas run: \(expected.count)")
        #expect(table == expected.sorted(), "roas_rows should hold exactly the rows of roas run: \(context)")
        print("kill test with PostgreSQL: \(context)")
    }

    /// Kills `roas serve --data-dir` (with `extra` options) `cycles` times under load from the
    /// retrying sender, running `afterKill(cycle)` after each kill, then lets it finish and close
    /// every window. Returns the final rows written, those of `roas run`, and what happened.
    static func killCycles(
        _ cycles: Int, name: String, extra: [String] = [], afterKill: (Int) throws -> Void = { _ in }
    ) throws -> (written: [String], expected: [String], context: String) {
        let (stream, expected) = try Self.stream(events: 150_000, batchSize: 150, seed: 11)
        defer { try? FileManager.default.removeItem(atPath: stream) }
        try #require(expected.count > 100, "the reference run should give rows")
        let folder = Tools.temporaryPath(name)
        let dataDir = folder + "/data"
        let rows = folder + "/rows.ndjson"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()

        // The sender paces itself so that the load lasts through every kill cycle.
        let batches = 150_000 / 150
        let sender = try ChildProcess(
            try Tools.python3(),
            [
                Tools.pythonScript("durable_sender.py"), "--port", "\(port)", "--input", stream, "--window", "32",
                "--rate", "\(max(5, batches / max(cycles, 1)))", "--deadline", "600",
            ])
        var generator = SystemRandomNumberGenerator()
        var killedUnderLoad = 0
        var recoveries: [String] = []
        for cycle in 0..<cycles {
            // Every fsync mode takes its turn; a SIGKILL loses nothing written, whatever the mode.
            let fsync = ["batch", "always", "interval:50ms"].randomElement(using: &generator)!
            let server = try Self.serve(
                dataDir: dataDir, port: port, rows: rows,
                extra: ["--checkpoint-every", "300ms", "--idle-close", "1h", "--fsync", fsync] + extra)
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...2.0, using: &generator))
            if sender.isRunning { killedUnderLoad += 1 }
            server.send(SIGKILL)
            let killed = server.wait(timeout: 30)
            #expect(killed.status != 0, "the server should have been killed:\n\(killed)")
            if let line = killed.stderrText.split(separator: "\n").first(where: { $0.hasPrefix("roas serve: recovered") }) {
                recoveries.append(String(line))
            }
            // What a crash can leave besides: a torn last record (never acknowledged), and a checkpoint
            // that does not read back (the previous one and the log after it take over).
            if generator.next() % 4 == 0 { try Self.tearLogTail(dataDir, using: &generator) }
            if generator.next() % 6 == 0 { try Self.corruptNewestCheckpoint(dataDir, using: &generator) }
            try afterKill(cycle)
        }
        // Let the sender finish against a server that stays up, then stop it gracefully (a checkpoint).
        let last = try Self.serve(dataDir: dataDir, port: port, rows: rows, extra: ["--idle-close", "1h"] + extra)
        let sent = sender.wait(timeout: 600)
        try #require(sent.status == 0, "the sender should get every batch acknowledged:\n\(sent)\n\(last.stderrText)")
        let stopped = last.terminate(timeout: 60)
        try #require(stopped.status == 0, "SIGTERM with a data folder should exit 0:\n\(stopped)")

        // A last start with a short idle close: the watermark follows the wall clock and every window closes.
        let written = try Self.closeWindows(dataDir: dataDir, port: port, rows: rows, count: expected.count, extra: extra)
        let answers = String(decoding: sent.stdout, as: UTF8.self)
        let context =
            "\(cycles) kills, \(killedUnderLoad) under load; sender: \(answers)\nrecoveries:\n"
            + recoveries.joined(separator: "\n")
        #expect(killedUnderLoad >= cycles / 2, "most kills should hit a server under load: \(context)")
        #expect(recoveries.contains { !$0.contains("replayed 0 log records") }, "some recovery should replay the log: \(context)")
        return (written, expected, context)
    }

    @Test("webhooks: 202 once durable; after SIGKILL and a restart, a resent batch answers 200 duplicate")
    func webhooksAcrossRestart() throws {
        let (stream, expected) = try Self.stream(events: 20_000, batchSize: 500, seed: 5)
        defer { try? FileManager.default.removeItem(atPath: stream) }
        let folder = Tools.temporaryPath("durable-http")
        let dataDir = folder + "/data"
        let rows = folder + "/rows.ndjson"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()
        let url = "http://127.0.0.1:\(port)/v1/events"

        let first = try Self.serve(dataDir: dataDir, port: port, rows: rows, http: true, extra: ["--idle-close", "1h"])
        let sent = try Tools.python("webhook_sender.py", [url, "--secret", Self.secret, "--input", stream, "--timeout", "30"], timeout: 180)
        #expect(sent.stdoutText.contains("\"status_counts\": {\"202\": 40}"), "\(sent)")
        first.kill()

        // The at-least-once sender did not see some answers and resends: nothing is applied twice.
        let second = try Self.serve(dataDir: dataDir, port: port, rows: rows, http: true, extra: ["--idle-close", "1h"])
        let again = try Tools.python(
            "webhook_sender.py", [url, "--secret", Self.secret, "--input", stream, "--only", "3,40", "--print-responses"],
            timeout: 60)
        #expect(again.stdoutText.contains("\"status_counts\": {\"200\": 2}"), "\(again)\n\(second.stderrText)")
        #expect(again.stdoutText.components(separatedBy: "\"duplicate\": true").count == 3, "\(again)")
        let stopped = second.terminate(timeout: 60)
        #expect(stopped.status == 0, "\(stopped)")

        let written = try Self.closeWindows(dataDir: dataDir, port: try freeLoopbackPort(), rows: rows, count: expected.count)
        Self.expectSameRows(written, expected, "webhooks across a restart")
    }

    @Test("a log that cannot be written (a file-size limit): nacks and no partial record, then it takes input again")
    func logWriteFailure() throws {
        let (stream, expected) = try Self.stream(events: 30_000, batchSize: 150, seed: 8)
        defer { try? FileManager.default.removeItem(atPath: stream) }
        let folder = Tools.temporaryPath("durable-full")
        let dataDir = folder + "/data"
        let rows = folder + "/rows.ndjson"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()

        // RLIMIT_FSIZE makes every write past 400 kB fail with EFBIG, as a full disk fails with ENOSPC.
        let server = try Self.serve(
            dataDir: dataDir, port: port, rows: rows, extra: ["--idle-close", "1h", "--log-level", "notice"],
            prefix: ["/usr/bin/prlimit", "--fsize=400000:unlimited"])
        let sender = try ChildProcess(
            try Tools.python3(),
            [Tools.pythonScript("durable_sender.py"), "--port", "\(port)", "--input", stream, "--window", "16", "--deadline", "300"])
        _ = try server.waitForStderr(timeout: 60) { $0.contains("cannot write the write-ahead log") ? true : nil }
        Thread.sleep(forTimeInterval: 1)
        #expect(sender.isRunning, "the sender cannot be done while the log refuses input")
        // Space returns.
        let raised = try Tools.run(
            URL(fileURLWithPath: "/usr/bin/prlimit"), ["--pid", "\(server.processIdentifier)", "--fsize=unlimited"])
        try #require(raised.status == 0, "\(raised)")
        let sent = sender.wait(timeout: 300)
        try #require(sent.status == 0, "every batch should be acknowledged once the log can be written:\n\(sent)\n\(server.stderrText)")
        #expect(sent.stdoutText.contains("\"not_durable\""), "some batches should have been refused: \(sent)")
        _ = try server.waitForStderr(timeout: 30) { $0.contains("the write-ahead log takes input again") ? true : nil }
        server.kill()

        // The log holds no half record: recovery reads it whole.
        let written = try Self.closeWindows(dataDir: dataDir, port: port, rows: rows, count: expected.count)
        Self.expectSameRows(written, expected, "log write failures")
    }

    @Test("TCP answers one line per batch (schemas/ack.schema.json): ack, nack with the reason, ack duplicate on a resend")
    func acknowledgementLines() throws {
        let secret = try ServeBinaryTests.sampleSecret()
        let stream = try ServeBinaryTests.sampleStream()
        let folder = Tools.temporaryPath("durable-acks")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()
        let server = try ChildProcess(
            try Tools.roasBinary(),
            [
                "serve", "--data-dir", folder + "/data", "--listen-tcp", "127.0.0.1:\(port)", "--no-http", "--secret", secret,
                "--tolerance", "0", "--output", folder + "/rows.ndjson", "--log-level", "warning",
            ])
        _ = try server.waitForStderr(timeout: 60) { $0.contains("roas serve: tcp listening on") ? true : nil }

        // The sample: three signed batches, one of them forged.
        let first = String(decoding: try ServeBinaryTests.sendOverTCP(stream, port: port), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        let again = String(decoding: try ServeBinaryTests.sendOverTCP(stream, port: port), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        try #require(first.count == 3 && again.count == 3, "one answer per batch frame:\n\(first)\n\(again)")
        for lines in [first, again] {
            let valid = try Tools.validate(lines, against: "ack.schema.json")
            #expect(valid.status == 0, "\(valid)")
        }
        let answers = try first.map { try Tools.object($0) }
        #expect(answers.filter { $0["ack"] != nil }.count == 2, "\(first)")
        let forged = try #require(answers.first { $0["nack"] != nil }, "\(first)")
        #expect(forged["reason"] as? String == "bad_signature", "\(first)")
        let resent = try again.map { try Tools.object($0) }
        #expect(resent.filter { $0["duplicate"] as? Bool == true }.count == 2, "a resend is acknowledged as a duplicate: \(again)")
        #expect(resent.first { $0["nack"] != nil }?["reason"] as? String == "bad_signature", "\(again)")
        let stopped = server.terminate(timeout: 60)
        #expect(stopped.status == 0, "\(stopped)")
    }
}
