import Foundation
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Testing

/// RoasCore's WebhookSigner against the reference Python implementation of Standard Webhooks
/// (`standardwebhooks` 1.1.0, through scripts/webhooks.py) and the spec's test vector.
@Suite("Standard Webhooks interoperability", .ownThread)
struct StandardWebhooksTests {
    /// A secret of 24 random-looking bytes, as Standard Webhooks providers issue them.
    static let secretText = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// A small batch payload: a view and a click of one creator, a purchase it earns, and spend;
    /// non-ASCII text checks that both sides sign the same UTF-8 bytes.
    static let payloadLines = [
        #"{"type":"spend","id":"s-1","ts":"2026-11-21T10:00:00Z","creator":"@café.lucía","amount":20}"#,
        #"{"type":"view","id":"v-1","ts":"2026-11-21T10:02:00Z","user":"tt:1","creator":"@café.lucía"}"#,
        #"{"type":"click","id":"c-1","ts":"2026-11-21T10:03:00Z","user":"tt:1","creator":"@café.lucía","note":"ü ✓"}"#,
        #"{"type":"purchase","id":"p-1","ts":"2026-11-21T10:20:00Z","user":"tt:1","order":"o-1","amount":30}"#,
    ]
    static var payload: Data { Data(payloadLines.map { $0 + "\n" }.joined().utf8) }

    static func signer(_ text: String = secretText) throws -> WebhookSigner {
        WebhookSigner(secrets: [try WebhookSecret(text)])
    }

    /// Signs with the Python package.
    static func pythonSignature(secret: String = secretText, id: String, timestamp: Int64, payload: Data) throws -> String {
        let path = try Tools.temporaryFile("payload", payload)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Tools.python(
            "webhooks.py", ["sign", "--secret", secret, "--id", id, "--timestamp", String(timestamp), "--payload", path])
        guard result.status == 0 else { throw ToolFailure("webhooks.py sign failed:\n\(result)") }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Verifies with the Python package: true when Webhook.verify accepts the headers.
    static func pythonVerifies(
        secret: String = secretText, id: String, timestamp: Int64, signature: String, payload: Data
    ) throws -> (Bool, ProcessResult) {
        let path = try Tools.temporaryFile("payload", payload)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Tools.python(
            "webhooks.py",
            [
                "verify", "--secret", secret, "--id", id, "--timestamp", String(timestamp), "--payload", path,
                "--signature", signature,
            ])
        guard result.status == 0 || result.status == 1 else { throw ToolFailure("webhooks.py verify failed:\n\(result)") }
        return (result.status == 0, result)
    }

    static func frame(id: String, timestamp: Int64, signature: String, payload: Data) -> Data {
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: payload.count)
        return Data((header.line + "\n").utf8) + payload
    }

    @Test("the Standard Webhooks spec test vector matches WebhookSigner exactly")
    func specTestVector() throws {
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
        let timestamp: Int64 = 1_614_265_330
        let signer = try Self.signer()
        let signature = body.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        #expect(signature == expected)
        #expect(body.withUnsafeBytes { signer.verify(signatures: expected, id: id, timestamp: timestamp, body: $0) })
        // Among other signatures and versions, as in a webhook-signature header during key rotation.
        let rotated = "v1a,\(expected.dropFirst(3)) v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \(expected)"
        #expect(body.withUnsafeBytes { signer.verify(signatures: rotated, id: id, timestamp: timestamp, body: $0) })
        // A test that could not fail is worthless: any change to the message breaks the signature.
        #expect(!body.withUnsafeBytes { signer.verify(signatures: expected, id: id, timestamp: timestamp + 1, body: $0) })
        #expect(!body.withUnsafeBytes { signer.verify(signatures: expected, id: id + "x", timestamp: timestamp, body: $0) })
        let changed = Array(#"{"test": 2432232315}"#.utf8)
        #expect(!changed.withUnsafeBytes { signer.verify(signatures: expected, id: id, timestamp: timestamp, body: $0) })
        #expect(!body.withUnsafeBytes { signer.verify(signatures: "v2," + expected.dropFirst(3), id: id, timestamp: timestamp, body: $0) })
        // The secret prints back as it was given.
        #expect(try WebhookSecret(Self.secretText).text == Self.secretText)

        // The Python reference gives the same signature.
        #expect(try Self.pythonSignature(id: id, timestamp: timestamp, payload: Data(body)) == expected)
    }

    @Test("a batch signed by Python's standardwebhooks verifies in RoasCore and is accepted by roas run")
    func pythonSignedBatchIsAccepted() throws {
        let id = "py-batch-1"
        let timestamp: Int64 = 1_614_265_330  // long ago: --tolerance 0 turns the staleness check off
        let payload = Self.payload
        let signature = try Self.pythonSignature(id: id, timestamp: timestamp, payload: payload)
        #expect(signature.hasPrefix("v1,"))
        let signer = try Self.signer()
        #expect(payload.withUnsafeBytes { signer.verify(signatures: signature, id: id, timestamp: timestamp, body: $0) })

        let frame = Self.frame(id: id, timestamp: timestamp, signature: signature, payload: payload)
        let run = try Tools.roas(
            ["run", "--secret", Self.secretText, "--tolerance", "0", "--summary", "json"], stdin: frame)
        try #require(run.status == 0, "\(run)")
        let summary = try Tools.object(run.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(summary["accepted_batches"] as? Int == 1, "\(run)")
        #expect((summary["rejected_batches"] as? [String: Int]) == [:], "\(run)")
        #expect(summary["dead_letter_count"] as? Int == 0, "\(run)")
        #expect(summary["lines_read"] as? Int == 1 + Self.payloadLines.count, "\(run)")
        #expect(summary["accepted_lines"] as? Int == 1 + Self.payloadLines.count, "\(run)")
        let accepted = summary["accepted_events"] as? [String: Int]
        #expect(
            accepted == ["view": 1, "click": 1, "purchase": 1, "refund": 0, "link": 0, "spend": 1, "engagement": 0, "signup": 0, "creator": 0],
            "\(run)")
        #expect(summary["balanced"] as? Bool == true)

        // The row: the purchase is credited to the creator whose content was clicked.
        let rows = run.stdoutLines
        try #require(rows.count == 1, "\(run)")
        let row = try Tools.object(rows[0])
        #expect(row["creator"] as? String == "@café.lucía")
        #expect(Tools.number(row["revenue"]) == 30, "\(rows[0])")
        #expect(Tools.number(row["spend"]) == 20, "\(rows[0])")
        #expect(Tools.number(row["roas"]) == 1.5, "\(rows[0])")

        // Negative controls: one changed payload byte, or another secret, and the batch is rejected.
        var tampered = payload
        tampered[tampered.firstIndex(of: UInt8(ascii: "3"))!] = UInt8(ascii: "9")
        let forged = try Tools.roas(
            ["run", "--secret", Self.secretText, "--tolerance", "0", "--summary", "json"],
            stdin: Self.frame(id: id, timestamp: timestamp, signature: signature, payload: tampered))
        try #require(forged.status == 0, "\(forged)")
        let forgedSummary = try Tools.object(forged.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(forgedSummary["accepted_batches"] as? Int == 0, "\(forged)")
        #expect((forgedSummary["rejected_batches"] as? [String: Int]) == ["bad_signature": 1], "\(forged)")
        #expect(forged.stdoutLines.isEmpty, "\(forged)")

        let otherKey = try Tools.roas(
            ["run", "--secret", "whsec_" + Data("another key".utf8).base64EncodedString(), "--tolerance", "0", "--summary", "json"],
            stdin: frame)
        let otherSummary = try Tools.object(otherKey.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect((otherSummary["rejected_batches"] as? [String: Int]) == ["bad_signature": 1], "\(otherKey)")

        // With the default tolerance (300 s) the same old batch is stale, which shows --tolerance 0 mattered.
        let stale = try Tools.roas(["run", "--secret", Self.secretText, "--summary", "json"], stdin: frame)
        let staleSummary = try Tools.object(stale.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect((staleSummary["rejected_batches"] as? [String: Int]) == ["stale_batch": 1], "\(stale)")
    }

    @Test("a signature made by WebhookSigner verifies with Python's Webhook.verify")
    func roasSignatureVerifiesInPython() throws {
        let id = "roas-batch-7"
        let now = Int64(Date().timeIntervalSince1970)  // Webhook.verify allows 5 minutes either way
        let payload = Self.payload
        let signer = try Self.signer()
        let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: now, body: $0) }

        let (verified, result) = try Self.pythonVerifies(id: id, timestamp: now, signature: signature, payload: payload)
        #expect(verified, "\(result)")

        // Key rotation: a header with the signatures of an old and a new key verifies with either.
        let rotation = WebhookSigner(secrets: [WebhookSecret(key: Array("old key".utf8)), try WebhookSecret(Self.secretText)])
        let both = payload.withUnsafeBytes {
            rotation.signature(secret: 0, id: id, timestamp: now, body: $0) + " " + rotation.signature(secret: 1, id: id, timestamp: now, body: $0)
        }
        let (rotated, rotatedResult) = try Self.pythonVerifies(id: id, timestamp: now, signature: both, payload: payload)
        #expect(rotated, "\(rotatedResult)")

        // Negative controls: Python rejects a signature under another key, or of another message.
        let other = WebhookSigner(secrets: [WebhookSecret(key: Array("not the key".utf8))])
        let wrong = payload.withUnsafeBytes { other.signature(id: id, timestamp: now, body: $0) }
        let (wrongVerified, wrongResult) = try Self.pythonVerifies(id: id, timestamp: now, signature: wrong, payload: payload)
        #expect(!wrongVerified, "\(wrongResult)")
        let (shiftedVerified, shiftedResult) = try Self.pythonVerifies(
            id: id, timestamp: now - 1, signature: signature, payload: payload)
        #expect(!shiftedVerified, "\(shiftedResult)")
    }

    @Test("the sample stream's batches verify with Python's Webhook.verify (and the forged one does not)")
    func sampleStreamVerifiesInPython() throws {
        let now = Int64(Date().timeIntervalSince1970)
        let stream = Sample.stream(now: now)
        // Split the stream into frames by reading each header's byte count.
        var frames: [(header: [String: Any], payload: Data)] = []
        var offset = 0
        while offset < stream.count {
            let newline = stream[offset...].firstIndex(of: 0x0A)!
            let line = String(decoding: stream[offset..<newline], as: UTF8.self)
            let header = try #require(try Tools.object(line)["batch"] as? [String: Any], "not a header: \(line)")
            let bytes = try #require(header["bytes"] as? Int)
            frames.append((header, Data(stream[(newline + 1)..<(newline + 1 + bytes)])))
            offset = newline + 1 + bytes
        }
        try #require(frames.count == 3)
        var verdicts: [Bool] = []
        for (header, payload) in frames {
            let (verified, _) = try Self.pythonVerifies(
                secret: Sample.secret.text, id: header["id"] as! String, timestamp: Int64(header["timestamp"] as! Int),
                signature: header["signature"] as! String, payload: payload)
            verdicts.append(verified)
        }
        #expect(verdicts == [true, false, true], "sample-2 is the forged batch")
    }
}
