import Foundation
import Logging
import RoasCore
import RoasRuntime
import RoasTestSupport
import XCTest

@testable import RoasServer

/// Two copies of one batch arrive at once (a sender's retry on a second connection): the second is
/// a `duplicate` of the first when parsed, before the first has reached the log. If the log then
/// refuses the first, answering the second `duplicate` would acknowledge a batch that is nowhere.
///
/// XCTest rather than Swift Testing: it lowers RLIMIT_FSIZE, which is process-wide, and XCTest runs
/// its tests one at a time before the Swift Testing ones.
final class RefusedBatchResendTests: XCTestCase {
    func testACopyOfABatchTheLogRefusedIsAnsweredNotDurableAndItsResendCountsOnce() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roas-refused-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var run = RunSettings(configuration: EngineConfiguration())
        run.secrets = [ServerHarness.secret]
        run.tolerance = 0
        run.now = { ServerHarness.now }
        var settings = ServeSettings(run: run)
        settings.durability = DurabilitySettings(directory: folder + "/data")
        var logger = Logger(label: "roas-test")
        logger.logLevel = .critical
        let ingestor = Ingestor(
            settings: settings, rows: try ByteSink(path: folder + "/rows.ndjson"), deadLetters: nil, postgres: nil)
        _ = try await ingestor.recover(DurabilitySettings(directory: folder + "/data"), logger: logger)
        async let following: Void = ingestor.followLog()

        let line = #"{"type":"view","id":"v1","ts":\#(ServerHarness.t0),"user":"tt:a","creator":"@c"}"# + "\n"
        let payload = Array(line.utf8)
        let signature = payload.withUnsafeBytes {
            WebhookSigner(secrets: [ServerHarness.secret]).signature(id: "b-1", timestamp: ServerHarness.now, body: $0)
        }
        let header = BatchHeader(id: "b-1", timestamp: ServerHarness.now, signature: signature, bytes: payload.count)
        let accepted = await ingestor.accepted
        func parse() -> (Rejection?, ParsedChunk) {
            var parser = ChunkParser(settings: run, accepted: accepted, capacity: 4096, journals: true)
            return payload.withUnsafeBytes { parser.batch(header, payload: $0) }
        }
        // Both copies are parsed before either is logged.
        let (firstRejection, first) = parse()
        let (copyRejection, copy) = parse()
        XCTAssertNil(firstRejection)
        XCTAssertEqual(copyRejection?.reason, .replayedBatch)

        // The log cannot take the first copy's record (50 bytes of room, a record of about 150).
        let segment = try XCTUnwrap(try WriteAheadLog.segments(in: folder + "/data").last).path
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int)
        let limit = try FileSizeLimit(bytes: size + 50)
        defer { limit.restore() }
        let submittedFirst = try await ingestor.submit(first)
        let submittedCopy = try await ingestor.submit(copy)
        do {
            _ = try await ingestor.completion(of: submittedFirst)
            XCTFail("the first copy cannot be durable past the size limit")
        } catch ServeError.notDurable {}
        do {
            let applied = try await ingestor.completion(of: submittedCopy)
            XCTFail("the copy was acknowledged as a duplicate of a batch the log refused: \(applied)")
        } catch ServeError.notDurable(let reason) {
            XCTAssertTrue(reason.contains("b-1"), reason)
        }
        limit.restore()

        // The sender resends: taken now, and counted once.
        let (resendRejection, resend) = parse()
        XCTAssertNil(resendRejection)
        let applied = try await ingestor.apply(resend)
        XCTAssertEqual(applied.accepted, 1)
        let result = try await ingestor.finish()
        await following
        XCTAssertEqual(result.statistics.accepted(.view), 1)
    }
}
