import Foundation
import Testing

@testable import RoasCore

/// The rules a batch id and timestamp share between framed input and webhooks.
@Suite("Batch limits")
struct BatchLimitsTests {
    static let secret = try! WebhookSecret("whsec_c2VydmVyLXRlc3RzLXNlY3JldC1rZXktMzJieXRlcyE=")

    // MARK: BatchHeader.validate

    @Test(arguments: [
        ("b", "0", 0), ("b", "1795255200", 1_795_255_200), ("b", "-5", -5), ("b", "-0", 0),
        ("b", "999999999999999999", 999_999_999_999_999_999), ("b", "-999999999999999999", -999_999_999_999_999_999),
        (String(repeating: "x", count: 256), "1", 1),
    ] as [(String, String, Int64)])
    func validIDsAndTimestamps(_ id: String, _ text: String, _ expected: Int64) {
        #expect(BatchHeader.validate(id: id, timestampText: text) == .success(expected))
    }

    @Test(arguments: [
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
}
