import Foundation
import RoasCoreTestSupport
import Testing

@testable import RoasCore
@testable import RoasRuntime

/// The one apply path of `roas run` and `roas serve`: what reaches its sinks, and the recovery rule
/// that final rows already in the rows file are not written again.
@Suite("Engine host")
struct EngineHostTests {
    /// Records every row and dead letter handed to it, in order.
    final class Recorder: EngineOutputSink {
        var rows: [Row] = []
        var deadLetters: [DeadLetter] = []
        var flushes = 0
        func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
            self.rows += output.rows
            self.deadLetters += output.deadLetters
        }
        func flush() throws { self.flushes += 1 }
    }

    static func chunks(_ bytes: [UInt8], settings: RunSettings, size: Int) -> [ParsedChunk] {
        var parser = ChunkParser(settings: settings)
        var chunks: [ParsedChunk] = []
        bytes.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                let end = min(all.count, start + size)
                chunks.append(parser.consume(UnsafeRawBufferPointer(rebasing: all[start..<end])))
                start = end
            }
        }
        chunks.append(parser.finish())
        return chunks
    }

    static func settings(_ harness: PipelineHarness) -> RunSettings {
        var settings = RunSettings(configuration: harness.configuration)
        settings.secrets = harness.secrets
        settings.tolerance = 0
        return settings
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func everySinkGetsExactlyThePipelinesOutputInOrder(seed: UInt64) throws {
        var harness = PipelineHarness { $0.byCampaign = seed == 2 }
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let stream = StreamRunnerTests.stream(seed: seed, harness: harness, shuffled: seed == 3)
        let expected = harness.run(bytes: stream)

        let first = Recorder()
        let second = Recorder()
        var host = EngineHost(configuration: harness.configuration, updatesEvery: nil, outputs: [first, second])
        for chunk in Self.chunks(stream, settings: Self.settings(harness), size: 4096) { try host.apply(chunk) }
        let result = try host.finish()

        #expect(!expected.rows.isEmpty && !expected.deadLetters.isEmpty)
        #expect(first.rows == expected.rows)
        #expect(first.deadLetters == expected.deadLetters)
        #expect(second.rows == expected.rows && second.deadLetters == expected.deadLetters)
        #expect(first.flushes == 1 && second.flushes == 1)
        #expect(result.statistics == expected.statistics)
    }

    @Test func recoveredFinalRowsAreNotWrittenAgainAndLiveRowsOnlyWithUpdates() throws {
        var harness = PipelineHarness()
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let stream = StreamRunnerTests.stream(seed: 4, harness: harness)
        let expected = harness.run(bytes: stream).rows.filter(\.isFinal)
        try #require(expected.count > 5)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roas-host-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("rows.ndjson").path
        let file = RowFileOutput(rows: try ByteSink(path: path), writesUpdates: false)
        var host = EngineHost(configuration: harness.configuration, updatesEvery: 1000, outputs: [file], now: 0)
        host.recovered = RecoveredRows(remaining: 3)
        var now: Int64 = 0
        for chunk in Self.chunks(stream, settings: Self.settings(harness), size: 1 << 16) {
            try host.apply(chunk)
            now += 1000
            try host.tick(now: now)
        }
        _ = try host.finish()

        let written = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let rest = expected.dropFirst(3).map { row -> String in
            var json: [UInt8] = []
            row.appendJSON(to: &json)
            return String(decoding: json, as: UTF8.self)
        }
        #expect(written == Array(rest))
        #expect(host.recovered.remaining == 0)
        #expect(file.unwrittenUpdates > 0)
        #expect(file.unwrittenUpdates == host.engine.statistics.updateRows)
    }

    @Test func liveUpdatesAreDueEveryIntervalFromTheLastOneAndNeverWithoutAnInterval() {
        var schedule = LiveUpdateSchedule(every: 1000, now: 500)
        // A late tick moves the next one to a full interval after it, not after the missed one.
        let ticks: [Int64] = [1499, 1500, 1500, 4000, 4999, 5000]
        let due = ticks.map { schedule.isDue(now: $0) }
        #expect(due == [false, true, false, true, false, true])
        var never = LiveUpdateSchedule(every: nil, now: 0)
        let neverDue = never.isDue(now: .max)
        #expect(neverDue == false)
    }
}
