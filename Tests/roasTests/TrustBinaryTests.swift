import Foundation
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The binary against input a hostile or careless sender can send ("Trust under attack"): each of
/// these once crashed roas for good, silently lost acknowledged data or destroyed a file.
@Suite("Trust: the binary under bad input", .serialized, .ownThread)
struct TrustBinaryTests {
    static let secret = ServeBinaryTests.secret

    /// A signed batch frame of `lines`.
    static func frame(_ lines: [String], id: String, timestamp: Int64 = 1_795_255_200) throws -> String {
        let payload = Array(lines.map { $0 + "\n" }.joined().utf8)
        let signer = WebhookSigner(secrets: [try WebhookSecret(Self.secret)])
        let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: payload.count)
        return header.line + "\n" + String(decoding: payload, as: UTF8.self)
    }

    static func spend(_ id: String, _ ts: Int64, creator: String, amount: String) -> String {
        #"{"type":"spend","id":"\#(id)","ts":\#(ts),"creator":"\#(creator)","amount":\#(amount)}"#
    }

    static func click(_ id: String, _ ts: Int64, user: String, creator: String) -> String {
        #"{"type":"click","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)"}"#
    }

    static func folder(_ name: String) throws -> String {
        let folder = Tools.temporaryPath(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The flags of a server that takes signed batches of any age and writes its rows and dead
    /// letters into `folder`.
    static func signed(in folder: String) -> [String] {
        ["--secret", Self.secret, "--tolerance", "0", "--output", folder + "/rows.ndjson", "--dead-letter", folder + "/dead.ndjson"]
    }

    static func serve(_ arguments: [String], port: Int) throws -> ChildProcess {
        let child = try ChildProcess(
            try Tools.roasBinary(),
            ["serve", "--listen-tcp", "127.0.0.1:\(port)", "--no-http", "--log-level", "warning", "--summary", "json"] + arguments)
        _ = try child.waitForStderr(timeout: 60) { $0.contains("roas serve: tcp listening on") ? true : nil }
        return child
    }

    /// Ten spends of 10^12 (each within the documented limit) overflowed an Int64 sum and trapped.
    static let tenSpends = (0..<10).map { Self.spend("s\($0)", 1_795_255_200_000 + Int64($0), creator: "@big", amount: "1000000000000") }

    @Test("roas run: ten spends of 10^12 give one overflow dead letter, the rest counts, exit 0")
    func tenLinesDoNotKillRun() throws {
        let folder = try Self.folder("trust-run")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = Self.tenSpends + [Self.spend("ok", 1_795_255_200_100, creator: "@small", amount: "5")]
        let result = try Tools.roas(
            ["run", "--summary", "json", "--dead-letter", folder + "/dead.ndjson"],
            stdin: Data(input.map { $0 + "\n" }.joined().utf8))
        #expect(result.status == 0, "\(result)")
        let rows = try result.stdoutLines.map { try Tools.object($0) }
        #expect(rows.first { $0["creator"] as? String == "@big" }?["spend"] as? Int == 9_000_000_000_000, "\(result)")
        #expect(rows.first { $0["creator"] as? String == "@small" }?["spend"] as? Int == 5, "\(result)")
        let dead = try String(contentsOfFile: folder + "/dead.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(dead.count == 1 && dead[0].contains("\"reason\":\"overflow\""), "\(dead)")
        let valid = try Tools.validate(file: folder + "/dead.ndjson", against: "dead-letter.schema.json")
        #expect(valid.status == 0, "\(valid)")
        let summary = try ServeBinaryTests.summary(result)
        #expect(summary["balanced"] as? Bool == true, "\(result)")
    }

    @Test("roas serve --data-dir: the ten lines, SIGKILL, restart: no crash loop, the rows count what fits")
    func poisonDoesNotLoopARestart() throws {
        let folder = try Self.folder("trust-poison")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Two hours old, so the restart's idle close (wall clock minus the lateness) closes the window.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let start = now - now % 3_600_000 - 2 * 3_600_000
        let lines = (0..<10).map { Self.spend("s\($0)", start + Int64($0), creator: "@big", amount: "1000000000000") }
        let port = try freeLoopbackPort()
        let arguments = ["--data-dir", folder + "/data", "--output", folder + "/rows.ndjson", "--idle-close", "1h"]
        let first = try Self.serve(arguments, port: port)
        try ServeBinaryTests.sendOverTCP(Data(lines.map { $0 + "\n" }.joined().utf8), port: port)
        first.kill()

        for attempt in 1...2 {
            let again = try Self.serve(arguments, port: port)
            again.kill()
            #expect(again.stderrText.contains("recovered from checkpoint"), "attempt \(attempt): \(again.stderrText)")
        }
        let inspect = try Tools.roas(["inspect", "--data-dir", folder + "/data"])
        #expect(inspect.status == 0, "\(inspect)")
        let closing = try Self.serve(
            ["--data-dir", folder + "/data", "--output", folder + "/rows.ndjson", "--idle-close", "1s"], port: port)
        let rows = DurabilityTests.waitForRows(folder + "/rows.ndjson", count: 1, timeout: 60)
        let stopped = closing.terminate(timeout: 60)
        #expect(stopped.status == 0, "\(stopped)")
        #expect(rows.count == 1 && rows[0].contains("\"spend\":9000000000000"), "\(rows)")
        let summary = try ServeBinaryTests.summary(stopped)
        #expect((summary["dead_letters"] as? [String: Any])?["overflow"] as? Int == 1, "\(stopped)")
    }

    @Test("a byte flipped in an acknowledged record stops the start with file and offset; inspect exits 1; the flag drops it")
    func aFlippedByteIsDamageNotATornTail() throws {
        let folder = try Self.folder("trust-flip")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()
        let arguments = ["--data-dir", folder + "/data", "--idle-close", "1h"] + Self.signed(in: folder)
        let server = try Self.serve(arguments, port: port)
        // One connection per batch: each is its own log record.
        for batch in 0..<20 {
            let lines = (0..<100).map {
                Self.click("b\(batch)-\($0)", 1_795_255_200_000 + Int64(batch * 100 + $0), user: "u\($0)", creator: "@c\($0 % 7)")
            }
            let answer = try ServeBinaryTests.sendOverTCP(Data(try Self.frame(lines, id: "batch-\(batch)").utf8), port: port)
            #expect(String(decoding: answer, as: UTF8.self) == "{\"ack\":\"batch-\(batch)\"}\n")
        }
        server.kill()

        // The third record of the only segment: 16-byte segment header, then length-prefixed records.
        let segments = try FileManager.default.contentsOfDirectory(atPath: folder + "/data/wal").filter { $0.hasSuffix(".log") }
        try #require(segments.count == 1, "\(segments)")
        let path = folder + "/data/wal/" + segments[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var offset = 16
        for _ in 0..<2 {
            let length = bytes[offset..<offset + 4].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            offset += 17 + length
        }
        try #require(offset + 100 < bytes.count)
        bytes[offset + 60] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let refused = try Tools.run(
            try Tools.roasBinary(),
            ["serve", "--listen-tcp", "127.0.0.1:\(port)", "--no-http"] + arguments, timeout: 60)
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderrText.contains(path) && refused.stderrText.contains("offset \(offset)"), "\(refused)")
        #expect(refused.stderrText.contains("--truncate-damaged-log"), "\(refused)")
        let inspect = try Tools.roas(["inspect", "--data-dir", folder + "/data"])
        #expect(inspect.status == 1, "\(inspect)")
        #expect(inspect.stdoutText.contains("offset \(offset)"), "\(inspect)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes), "the damaged log is left as it was")

        let accepting = try Self.serve(arguments + ["--truncate-damaged-log"], port: port)
        let stopped = accepting.terminate(timeout: 60)
        #expect(stopped.status == 0, "\(stopped)")
        #expect(stopped.stderrText.contains("acknowledged input is lost"), "\(stopped)")
    }

    @Test("a batch id resent with another body: TCP nack conflict, dead-lettered, never applied")
    func aChangedResendIsAConflict() throws {
        let folder = try Self.folder("trust-conflict")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()
        let server = try Self.serve(["--data-dir", folder + "/data"] + Self.signed(in: folder), port: port)
        let original = try Self.frame([Self.click("k1", 1_795_255_200_000, user: "u1", creator: "@a")], id: "b-1")
        let changed = try Self.frame([Self.click("k2", 1_795_255_200_000, user: "u1", creator: "@b")], id: "b-1")
        let first = String(decoding: try ServeBinaryTests.sendOverTCP(Data((original + original + changed).utf8), port: port), as: UTF8.self)
        let answers = try first.split(separator: "\n").map { try Tools.object(String($0)) }
        try #require(answers.count == 3, "\(first)")
        #expect(answers[0]["ack"] as? String == "b-1" && answers[0]["duplicate"] == nil, "\(first)")
        #expect(answers[1]["duplicate"] as? Bool == true, "\(first)")
        #expect(answers[2]["nack"] as? String == "b-1" && answers[2]["reason"] as? String == "conflict", "\(first)")
        let valid = try Tools.validate(first.split(separator: "\n").map(String.init), against: "ack.schema.json")
        #expect(valid.status == 0, "\(valid)")
        let stopped = server.terminate(timeout: 60)
        let summary = try ServeBinaryTests.summary(stopped)
        // The original's click counts once; the changed body's never.
        #expect((summary["accepted_events"] as? [String: Any])?["click"] as? Int == 1, "\(stopped)")
        #expect((summary["dead_letters"] as? [String: Any])?["conflict"] as? Int == 2, "\(stopped)")
        let dead = try String(contentsOfFile: folder + "/dead.ndjson", encoding: .utf8)
        #expect(dead.components(separatedBy: "\"reason\":\"conflict\"").count == 3, "header and line: \(dead)")
    }

    @Test("an event far ahead of its batch is future; it does not move the watermark")
    func aFarFutureEventIsFuture() throws {
        let folder = try Self.folder("trust-future")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try freeLoopbackPort()
        let server = try Self.serve(Self.signed(in: folder), port: port)
        let far = #"{"type":"click","id":"far","ts":"8999-12-31T23:59:59Z","user":"u1","creator":"@a"}"#
        var stream = try Self.frame([far, Self.click("k1", 1_795_255_200_000, user: "u1", creator: "@a")], id: "b-1")
        stream += try Self.frame([Self.click("k2", 1_795_255_260_000, user: "u2", creator: "@a")], id: "b-2")
        try ServeBinaryTests.sendOverTCP(Data(stream.utf8), port: port)
        let stopped = server.terminate(timeout: 60)
        let summary = try ServeBinaryTests.summary(stopped)
        let dead = summary["dead_letters"] as? [String: Any]
        #expect(dead?["future"] as? Int == 1 && dead?["late"] == nil, "\(stopped)")
        let rows = try String(contentsOfFile: folder + "/rows.ndjson", encoding: .utf8)
        #expect(rows.contains("\"clicks\":2"), "both clicks count: \(rows)")
    }

    @Test("flags that trapped or destroyed files are clear errors")
    func flagMistakes() throws {
        let folder = try Self.folder("trust-flags")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/events.ndjson"
        let content = Data((Self.tenSpends.joined(separator: "\n") + "\n").utf8)
        try content.write(to: URL(fileURLWithPath: input))
        for (arguments, message) in [
            (["run", "--lateness", "-1"], "--lateness must be a duration"),
            (["run", "--max-line", "9223372036854775807"], "--max-line must be from 1"),
            (["run", "--max-batch", "0"], "--max-batch must be from 1"),
            (["run", "--dedup-horizon", "999999999d"], "--dedup-horizon must be at most"),
            (["run", "--tolerance", "9223372036854775807"], "--tolerance must be"),
            (["run", "--max-keys", "0"], "--max-keys must be"),
            (["run", "--input", input, "--output", input], "name the same file"),
            (["run", "--input", input, "--dead-letter", folder + "/./events.ndjson"], "name the same file"),
            (["serve", "--max-future", "-5s"], "--max-future must be"),
        ] {
            let result = try Tools.roas(arguments)
            #expect(result.status != 0 && result.status < 128, "\(arguments): \(result)")
            #expect(result.stderrText.contains(message), "\(arguments): \(result)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == content, "the input is intact")
        let rates = folder + "/rates.json"
        try Data(#"{"EUR":1e308}"#.utf8).write(to: URL(fileURLWithPath: rates))
        let result = try Tools.roas(["run", "--rates", rates], stdin: content)
        #expect(result.status == 2 && result.stderrText.contains("from 1e-12 to 1e12"), "\(result)")
    }
}
