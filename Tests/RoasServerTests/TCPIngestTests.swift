import Foundation
import RoasCore
import Testing

@testable import RoasServer

/// The answer lines a TCP sender gets, one per batch, in order (schemas/ack.schema.json).
@Suite("TCP acknowledgements")
struct TCPIngestTests {
    static let outcomes: [BatchOutcome] = [
        BatchOutcome(id: "a", timestamp: 1, rejection: nil),
        BatchOutcome(id: "b", timestamp: 1, rejection: nil),
        BatchOutcome(id: "c", timestamp: 1, rejection: Rejection(.badSignature, "no secret matches")),
        BatchOutcome(id: "d", timestamp: 1, rejection: Rejection(.replayedBatch, "already accepted")),
    ]

    static func lines(_ text: [UInt8]) -> [String] {
        String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("a batch the log refused (--nats) is a too_large nack; the others keep their answers")
    func refusedBatchesAreNackedAlone() {
        let answers = Self.lines(TCPIngest.acknowledgements(Self.outcomes, failure: nil, refused: ["b": "line 3 is too large"]))
        #expect(
            answers == [
                #"{"ack":"a"}"#,
                #"{"nack":"b","reason":"too_large","detail":"line 3 is too large"}"#,
                #"{"nack":"c","reason":"bad_signature","detail":"no secret matches"}"#,
                #"{"ack":"d","duplicate":true}"#,
            ])
    }

    @Test("a failed log write makes every taken batch a not_durable nack")
    func aFailureMakesTakenBatchesNotDurable() {
        let answers = Self.lines(TCPIngest.acknowledgements(Self.outcomes, failure: "disk full", refused: ["b": "too large"]))
        #expect(answers[0] == #"{"nack":"a","reason":"not_durable","detail":"disk full"}"#)
        #expect(answers[1] == #"{"nack":"b","reason":"not_durable","detail":"disk full"}"#)
        #expect(answers[2].contains("bad_signature") && answers[3].contains("duplicate"))
    }
}
