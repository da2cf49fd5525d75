import Foundation
import Testing

@testable import RoasCore

/// Every dead-letter reason, each between good lines; the good lines still count.
@Suite("Dead letters")
struct DeadLetterTests {
    static let good = [
        Line.spend("g1", t0, creator: "a", amount: "1"),
        Line.spend("g2", t0 + 2 * second, creator: "a", amount: "1"),
    ]

    /// Runs good, bad, good and checks the bad line's reason, the accounting and the good lines' effect.
    func expectRejected(_ bad: String, as reason: Reason, harness: PipelineHarness = PipelineHarness()) {
        let result = harness.run([Self.good[0], bad, Self.good[1]])
        #expect(result.reasons == [reason], "\(bad)")
        #expect(result.deadLetters.first?.line == 2)
        #expect(result.deadLetters.first?.raw == Array(bad.utf8.prefix(1024)))
        #expect(result.deadLetters.first?.batch == nil)
        #expect(result.row("a", at: t0)?.figures.spend == micros("2"))
        #expect(result.statistics.linesRead == 3)
        #expect(result.statistics.balances)
    }

    @Test(arguments: [
        #"{"type":"view","id":"x""#, "not json", #"{"type":"view"} trailing"#, #"{"a":01}"#, #"{"s":"\x"}"#,
        "{\"s\":\"tab\there\"}", #"{"s":"\ud800"}"#, #"[1,2"#,
    ])
    func malformed(_ line: String) {
        self.expectRejected(line, as: .malformed)
    }

    @Test(arguments: [
        #"{"type":"tip","id":"t","ts":1,"user":"u"}"#, #"{"type":"VIEW","id":"t","ts":1}"#,
        #"{"type":"","id":"t","ts":1}"#,
    ])
    func unknownType(_ line: String) {
        self.expectRejected(line, as: .unknownType)
    }

    @Test(arguments: [
        #"[1,2,3]"#, #"{"id":"x","ts":1795255201000}"#, #"{"type":5,"id":"x"}"#,
        #"{"type":"view","id":"","ts":1795255201000,"user":"u","creator":"c"}"#,
        #"{"type":"view","id":"x","ts":1795255201000.0,"user":"u","creator":"c"}"#,
        #"{"type":"view","id":"x","ts":"2026-11-21 10:00:01","user":"u","creator":"c"}"#,
        #"{"type":"view","id":"x","ts":1795255201000,"creator":"c"}"#,
        #"{"type":"view","id":"x","ts":1795255201000,"user":"u","creator":"c","campaign":7}"#,
        #"{"type":"spend","id":"x","ts":1795255201000,"creator":"c","amount":-1}"#,
        #"{"type":"spend","id":"x","ts":1795255201000,"creator":"c","amount":"5"}"#,
        #"{"type":"purchase","id":"x","ts":1795255201000,"user":"u","amount":5}"#,
        #"{"type":"refund","id":"x","ts":1795255201000,"order":"o"}"#,
        #"{"type":"link","id":"x","ts":1795255201000,"user":"u"}"#,
        #"{"type":"spend","id":"x","ts":1795255201000,"ts":1795255201000,"creator":"c","amount":1}"#,
        #"{"type":"spend","id":"x","ts":1795255201000,"creator":"c","amount":1,"currency":3}"#,
    ])
    func invalid(_ line: String) {
        self.expectRejected(line, as: .invalid)
    }

    @Test(arguments: ["JPY", "usd", "EURO"])
    func unknownCurrency(_ code: String) {
        self.expectRejected(Line.spend("x", t0 + second, creator: "c", amount: "1", currency: code), as: .unknownCurrency)
    }

    @Test func late() {
        let result = PipelineHarness().run([
            Line.spend("g1", t0 + hour, creator: "a", amount: "1"),
            Line.spend("bad", t0, creator: "a", amount: "1"),
            Line.spend("g2", t0 + hour, creator: "a", amount: "1"),
        ])
        #expect(result.reasons == [.late])
        #expect(result.deadLetters.first?.line == 2)
        #expect(result.statistics.balances)
    }

    @Test func duplicate() {
        self.expectRejected(Self.good[0], as: .duplicate)
    }

    @Test func tooLongLinesAreRejectedBeforeAnythingElse() {
        var harness = PipelineHarness()
        harness.maximumLineLength = 200
        let long = #"{"type":"spend","id":"long","ts":1795255201000,"creator":""# + String(repeating: "x", count: 300) + #"","amount":1}"#
        self.expectRejected(long, as: .tooLong, harness: harness)
        self.expectRejected("not json " + String(repeating: "x", count: 300), as: .tooLong, harness: harness)
    }

    @Test func unsignedEventsAreRejectedWhenSecretsAreConfigured() {
        var harness = PipelineHarness()
        harness.secrets = [try! WebhookSecret("whsec_dGVzdC1zZWNyZXQ=")]
        let text =
            harness.batch([Self.good[0]], id: "b-1") + "not even json\n" + Self.good[1] + "\n"
            + harness.batch([Line.spend("g3", t0 + 3 * second, creator: "a", amount: "1")], id: "b-2")
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.reasons == [.unsigned, .unsigned])
        #expect(result.deadLetters.map(\.line) == [3, 4])
        #expect(result.row("a", at: t0)?.figures.spend == micros("2"))
        #expect(result.statistics.balances)
    }

    @Test func everyReasonAtOnceKeepsTheAccountingBalanced() {
        var harness = PipelineHarness()
        harness.maximumLineLength = 300
        let lines = [
            Line.purchase("p1", t0, user: "u1", order: "o1", amount: "5"),
            "",
            "garbage",
            #"{"type":"tip","id":"t","ts":1}"#,
            #"{"type":"view"}"#,
            Line.spend("s1", t0, creator: "a", amount: "1", currency: "XXX"),
            String(repeating: "y", count: 400),
            Line.spend("s2", t0 + hour, creator: "a", amount: "1"),
            Line.spend("s3", t0, creator: "a", amount: "1"),
            Line.spend("s2", t0 + hour, creator: "a", amount: "1"),
            Line.purchase("p2", t0 + hour, user: "u1", order: "o1", amount: "5"),
            Line.refund("r1", t0 + hour, order: "o9", amount: "5"),
            Line.refund("r2", t0 + hour, order: "o1", amount: "6"),
            "   ",
        ]
        let result = harness.run(lines)
        #expect(
            result.reasons.sorted() == [
                .tooLong, .malformed, .unknownType, .invalid, .unknownCurrency, .late, .duplicate, .duplicateOrder,
                .unknownOrder, .overRefund,
            ])
        #expect(result.statistics.blankLines == 2)
        #expect(result.statistics.acceptedLines == 2)
        #expect(result.statistics.linesRead == lines.count)
        #expect(result.statistics.balances)
    }
}

@Suite("Signed batches")
struct SignedBatchTests {
    static let secret = try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    static let rotated = try! WebhookSecret("whsec_b3RoZXIta2V5LWZvci1yb3RhdGlvbg==")

    var harness: PipelineHarness {
        var harness = PipelineHarness()
        harness.secrets = [Self.secret, Self.rotated]
        harness.tolerance = 300
        return harness
    }

    let events = [
        Line.spend("s1", t0, creator: "a", amount: "1"),
        Line.spend("s2", t0 + second, creator: "a", amount: "2"),
    ]

    @Test func aValidBatchIsAcceptedUnderAnyConfiguredSecret() {
        let harness = self.harness
        let text =
            harness.batch(self.events, id: "b-1")
            + harness.batch([Line.spend("s3", t0 + 2 * second, creator: "a", amount: "4")], id: "b-2", secret: Self.rotated)
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.deadLetters.isEmpty)
        #expect(result.statistics.acceptedBatches == 2)
        #expect(result.statistics.acceptedLines == 5)
        #expect(result.row("a", at: t0)?.figures.spend == micros("7"))
    }

    @Test func severalSignaturesMayBeGivenAndAnyMatchingOneAccepts() {
        let harness = self.harness
        var text = harness.batch(self.events, id: "b-1")
        text = text.replacingOccurrences(of: #""signature":"v1,"#, with: #""signature":"v1,AAAA v2,zzz v1,"#)
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.deadLetters.isEmpty)
        #expect(result.statistics.acceptedBatches == 1)
    }

    @Test func aBadSignatureRejectsTheWholeBatchAndTheStreamGoesOn() {
        let harness = self.harness
        let forger = try! WebhookSecret("whsec_bm90LXRoZS1zZWNyZXQ=")
        let text =
            harness.batch(self.events, id: "b-1", secret: forger)
            + harness.batch([Line.spend("s3", t0 + 2 * second, creator: "a", amount: "4")], id: "b-2")
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.reasons == [.badSignature, .badSignature, .badSignature])
        #expect(result.deadLetters.map(\.line) == [1, 2, 3])
        #expect(result.deadLetters.allSatisfy { $0.batch == "b-1" })
        #expect(result.row("a", at: t0)?.figures.spend == micros("4"))
        #expect(result.statistics.rejectedBatches(.badSignature) == 1)
        #expect(result.statistics.balances)
    }

    @Test func aTamperedPayloadFailsItsSignature() {
        let harness = self.harness
        let text = harness.batch(self.events, id: "b-1").replacingOccurrences(of: #""amount":2"#, with: #""amount":9"#)
        #expect(harness.run(bytes: Array(text.utf8)).reasons == [.badSignature, .badSignature, .badSignature])
    }

    @Test func staleAndReplayedBatches() {
        let harness = self.harness
        let stale = harness.batch(self.events, id: "b-old", timestamp: harness.now - 301)
        let fresh = harness.batch(self.events, id: "b-1", timestamp: harness.now + 300)
        // A retry: the same body under a new timestamp (and so another signature).
        let replay = harness.batch(self.events, id: "b-1", timestamp: harness.now - 5)
        // The same id with another body: a conflict, never applied.
        let changed = harness.batch([Line.spend("s9", t0 + 3 * second, creator: "a", amount: "1")], id: "b-1")
        let result = harness.run(bytes: Array((stale + fresh + replay + changed).utf8))
        #expect(
            result.reasons == [
                .staleBatch, .staleBatch, .staleBatch, .replayedBatch, .replayedBatch, .replayedBatch, .conflict, .conflict,
            ])
        #expect(result.row("a", at: t0)?.figures.spend == micros("3"))

        var archive = self.harness
        archive.tolerance = 0
        #expect(archive.run(bytes: Array(stale.utf8)).deadLetters.isEmpty, "tolerance 0 disables the check")
    }

    @Test func rejectedBatchIDsDoNotCountForReplay() {
        let harness = self.harness
        let forger = try! WebhookSecret("whsec_bm90LXRoZS1zZWNyZXQ=")
        let text = harness.batch(self.events, id: "b-1", secret: forger) + harness.batch(self.events, id: "b-1")
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.reasons == [.badSignature, .badSignature, .badSignature])
        #expect(result.statistics.acceptedBatches == 1)
    }

    @Test func badFramesAreRejectedAndTheStreamResumesAfterThem() {
        let harness = self.harness
        let good = harness.batch([Line.spend("s3", t0 + 2 * second, creator: "a", amount: "4")], id: "b-2")
        let payload = self.events.map { $0 + "\n" }.joined()
        let dotted = #"{"batch":{"id":"b.1","timestamp":1795255200,"signature":"v1,AAAA","bytes":\#(payload.utf8.count)}}"# + "\n" + payload
        let unreadable = #"{"batch":{"id":"b-3","timestamp":"# + "\n"
        let oversized = #"{"batch":{"id":"b-4","timestamp":1795255200,"signature":"v1,AAAA","bytes":99999999}}"# + "\n"
        let result = harness.run(bytes: Array((dotted + unreadable + good + oversized + payload).utf8))
        #expect(result.reasons == [.badFrame, .badFrame, .badFrame, .badFrame, .badFrame, .badFrame, .badFrame])
        #expect(result.deadLetters.map(\.batch) == ["b.1", "b.1", "b.1", nil, "b-4", "b-4", "b-4"])
        #expect(result.row("a", at: t0)?.figures.spend == micros("4"))
        #expect(result.statistics.balances)
    }

    @Test func withoutSecretsBareEventsCountAndBatchesAreBadSignature() {
        let signed = self.harness.batch(self.events, id: "b-1")
        let result = PipelineHarness().run(bytes: Array((signed + Line.spend("s9", t0, creator: "a", amount: "8") + "\n").utf8))
        #expect(result.reasons == [.badSignature, .badSignature, .badSignature])
        #expect(result.row("a", at: t0)?.figures.spend == micros("8"))
    }

    @Test func linesInsideABatchAreCheckedOneByOne() {
        let harness = self.harness
        let text = harness.batch(["garbage", "", Line.spend("s1", t0, creator: "a", amount: "1")], id: "b-1")
        let result = harness.run(bytes: Array(text.utf8))
        #expect(result.reasons == [.malformed])
        #expect(result.deadLetters.first?.batch == "b-1")
        #expect(result.deadLetters.first?.line == 2)
        #expect(result.statistics.blankLines == 1)
        #expect(result.statistics.balances)
    }
}
