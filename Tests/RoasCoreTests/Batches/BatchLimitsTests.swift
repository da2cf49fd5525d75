import Foundation
import RoasTestSupport
import Testing

@testable import RoasCore

/// The rules a batch id and timestamp share between framed input and webhooks, and the dead letters
/// of a rejected batch with a large payload (a prefix, the length and the SHA-256, not every line).
@Suite("Batch limits")
struct BatchLimitsTests {
    static let secret = try! WebhookSecret("whsec_c2VydmVyLXRlc3RzLXNlY3JldC1rZXktMzJieXRlcyE=")

    // MARK: BatchHeader.validate

    @Test(
        arguments: [
            ("b", "0", 0), ("b", "1795255200", 1_795_255_200), ("b", "-5", -5), ("b", "-0", 0),
            ("b", "999999999999999999", 999_999_999_999_999_999), ("b", "-999999999999999999", -999_999_999_999_999_999),
            (String(repeating: "x", count: 256), "1", 1),
        ] as [(String, String, Int64)])
    func validIDsAndTimestamps(_ id: String, _ text: String, _ expected: Int64) {
        #expect(BatchHeader.validate(id: id, timestampText: text) == .success(expected))
    }

    @Test(
        arguments: [
            ("", "1", BatchHeader.Invalid.idLength), (String(repeating: "x", count: 257), "1", .idLength),
            (String(repeating: "é", count: 129), "1", .idLength), ("a.b", "1", .idDot), (".", "1", .idDot),
            ("b", "", .timestamp), ("b", "-", .timestamp), ("b", "1000000000000000000", .timestamp),
            ("b", "-9223372036854775808", .timestamp), ("b", "9223372036854775807", .timestamp), ("b", "007", .timestamp),
            ("b", "+5", .timestamp), ("b", " 5", .timestamp), ("b", "5 ", .timestamp), ("b", "1.5", .timestamp),
            ("b", "1e3", .timestamp), ("b", "soon", .timestamp), ("b", "--1", .timestamp),
        ] as [(String, String, BatchHeader.Invalid)])
    func invalidIDsAndTimestamps(_ id: String, _ text: String, _ expected: BatchHeader.Invalid) {
        #expect(BatchHeader.validate(id: id, timestampText: text) == .failure(expected))
    }

    /// A frame header is read by the same rules: what a webhook may carry, a frame may, and the
    /// write-ahead log (frames) replays every webhook that was acknowledged.
    @Test(arguments: [
        ("b", "1"), ("b", "-999999999999999999"), ("b", "1000000000000000000"), ("b", "-9223372036854775808"),
        (String(repeating: "x", count: 256), "1"), (String(repeating: "x", count: 257), "1"), ("a.b", "1"), ("", "1"),
    ])
    func framesFollowTheSameRules(_ id: String, _ text: String) {
        let line = #"{"batch":{"id":"\#(id)","timestamp":\#(text),"signature":"v1,AAAA","bytes":2}}"#
        let parsed = Array(line.utf8).withUnsafeBytes { BatchHeader.parse($0) }
        switch (parsed, BatchHeader.validate(id: id, timestampText: text)) {
        case (.header(let header), .success(let timestamp)):
            #expect(header.timestamp == timestamp && header.id == id)
        case (.invalid(_, _, let detail), .failure(let invalid)):
            #expect(detail.hasSuffix(invalid.rule), "\(detail)")
        default:
            Issue.record("frame: \(parsed), webhook: \(BatchHeader.validate(id: id, timestampText: text))")
        }
    }

    @Test func signatureCandidates() {
        let tag = Data(repeating: 7, count: 32).base64EncodedString()
        #expect(WebhookSigner.candidates(in: "v1,AAAA").isEmpty)
        #expect(WebhookSigner.candidates(in: "v2,\(tag)").isEmpty)
        #expect(WebhookSigner.candidates(in: "").isEmpty)
        #expect(WebhookSigner.candidates(in: "v1,AAAA v1,\(tag)") == [[UInt8](repeating: 7, count: 32)])
        #expect(WebhookSigner.candidates(in: "v1,\(tag.replacingOccurrences(of: "=", with: ""))").count == 1)
    }

    // MARK: Truncated dead letters

    func harness() -> PipelineHarness {
        var harness = PipelineHarness()
        harness.secrets = [Self.secret]
        return harness
    }

    /// `count` view lines of about 100 bytes, with a blank line and a too-long line among them.
    func lines(_ count: Int) -> [String] {
        var lines = (0..<count).map { Line.view("v\($0)", t0 + Int64($0), user: "tt:user-\($0)", creator: "creator-\($0 % 7)") }
        lines.insert("", at: 3)
        lines.insert(String(repeating: "x", count: 300), at: 5)
        return lines
    }

    @Test("a forged batch over 4 KiB: one record with its prefix, length and SHA-256; the counts are those of a record per line")
    func largeForgedBatch() throws {
        var harness = self.harness()
        harness.maximumLineLength = 200
        let forger = try WebhookSecret("whsec_d3Jvbmctc2VjcmV0LWZvci10aGUtdGVzdHMtMTIzNDU=")
        let lines = self.lines(200)
        let frame = harness.batch(lines, id: "forged", secret: forger)
        let payload = Array(lines.map { $0 + "\n" }.joined().utf8)
        #expect(payload.count > TruncatedPayload.prefixBytes)
        // The frame ends in its payload's newline; the harness adds one after each line.
        let result = harness.run([String(frame.dropLast()), Line.spend("s", t0, creator: "a", amount: "1")])

        // The batch's one record, and the unsigned spend after it.
        #expect(result.deadLetters.map(\.reason) == [.badSignature, .unsigned])
        let letter = try #require(result.deadLetters.first)
        #expect(letter.reason == .badSignature && letter.line == 1 && letter.batch == "forged")
        let kept = try #require(letter.payload)
        #expect(kept.bytes == payload.count)
        #expect(kept.prefix == Array(payload.prefix(4096)))
        #expect(kept.omittedLines == lines.count)
        let digest = payload.withUnsafeBytes { TruncatedPayload.sha256($0) }
        #expect(digest.map { String(format: "%02x", $0) }.joined() == Self.sha256Hex(payload))
        #expect(kept.sha256 == digest)

        // The summary counts every line as a record per line would: the header and 200 views
        // bad_signature, the long line too_long, the blank line blank; the spend after it (unsigned).
        #expect(result.statistics.deadLetters(.badSignature) == 201)
        #expect(result.statistics.deadLetters(.tooLong) == 1)
        #expect(result.statistics.deadLetters(.unsigned) == 1)
        #expect(result.statistics.blankLines == 1)
        #expect(result.statistics.rejectedBatches(.badSignature) == 1)
        #expect(result.statistics.linesRead == lines.count + 2)
        #expect(result.statistics.balances)

        let json = try JSONSerialization.jsonObject(with: Data(letter.json.utf8)) as! [String: Any]
        #expect(json["truncated"] as? Bool == true)
        #expect(json["payload_bytes"] as? Int == payload.count)
        #expect(json["payload_sha256"] as? String == Self.sha256Hex(payload))
        #expect(json["omitted_lines"] as? Int == lines.count)
        #expect((json["payload_prefix"] as? String)?.utf8.count == 4096)
        #expect(letter.json.utf8.count < 6000)
    }

    @Test("a forged batch up to 4 KiB keeps a record per line, as before")
    func smallForgedBatch() throws {
        let harness = self.harness()
        let forger = try WebhookSecret("whsec_d3Jvbmctc2VjcmV0LWZvci10aGUtdGVzdHMtMTIzNDU=")
        let lines = (0..<3).map { Line.view("v\($0)", t0, user: "u", creator: "c") }
        let result = harness.run([harness.batch(lines, id: "small", secret: forger)])
        #expect(result.deadLetters.map(\.line) == [1, 2, 3, 4])
        #expect(result.deadLetters.allSatisfy { $0.payload == nil && $0.reason == .badSignature })
        #expect(!result.deadLetters[0].json.contains("truncated"))
        #expect(result.deadLetters[1].raw == Array(lines[0].utf8))
    }

    @Test("a webhook's forged batch (ChunkParser, as roas serve reads one) is kept the same way")
    func webhookBatch() throws {
        let payload = Array(self.lines(100).map { $0 + "\n" }.joined().utf8)
        var configuration = EngineConfiguration(currencies: try CurrencyTable(base: "USD", rates: [:]))
        configuration.keepsDeadLetters = true
        var parser = ChunkParser(
            configuration: configuration, secrets: [Self.secret], tolerance: 0, maximumLineLength: 1 << 20,
            maximumBatchBytes: 16 << 20, now: { 0 })
        let header = BatchHeader(id: "hook", timestamp: 1, signature: "v1," + Data(count: 32).base64EncodedString(), bytes: payload.count)
        let (rejection, chunk) = payload.withUnsafeBytes { parser.batch(header, payload: $0) }
        #expect(rejection?.reason == .badSignature)
        var sink = EngineSink(engine: Engine(configuration: configuration))
        sink.replay(chunk)
        #expect(sink.output.deadLetters.count == 1)
        #expect(sink.output.deadLetters.first?.payload?.bytes == payload.count)
        #expect(sink.engine.statistics.deadLetters(.badSignature) == 1 + 101)
        #expect(sink.engine.statistics.blankLines == 1)
        #expect(sink.engine.statistics.balances)
        // A chunk holding such a batch stays small whatever the payload's size.
        #expect(chunk.rejectedCount == 1 + 101)
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: input.path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [input.path]
        let output = Pipe()
        process.standardOutput = output
        try? childProcessLaunch.withLock { try process.run() }
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return String(text.prefix(64))
    }
}
