import Foundation
import RoasCoreTestSupport
import Testing

@testable import RoasCore
@testable import RoasRuntime

@Suite("Stream runner")
struct StreamRunnerTests {
    /// Runs `stream` from a file through `StreamRunner` and returns the rows, the dead letters and the result.
    static func run(_ stream: [UInt8], settings: RunSettings) throws -> (rows: String, deadLetters: String, result: RunResult) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roas-runner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.ndjson").path
        #expect(FileManager.default.createFile(atPath: input, contents: Data(stream)))
        let descriptor = open(input, O_RDONLY)
        defer { close(descriptor) }
        let rowsPath = folder.appendingPathComponent("rows.ndjson").path
        let deadPath = folder.appendingPathComponent("dead.ndjson").path
        let result: RunResult
        do {
            let runner = StreamRunner(settings: settings, rows: try ByteSink(path: rowsPath), deadLetters: try ByteSink(path: deadPath))
            result = try runner.run(input: descriptor)
        }
        let rows = try String(contentsOfFile: rowsPath, encoding: .utf8)
        let dead = try String(contentsOfFile: deadPath, encoding: .utf8)
        return (rows, dead, result)
    }

    static func stream(seed: UInt64, harness: PipelineHarness, shuffled: Bool = false) -> [UInt8] {
        var maker = StreamMaker(seed: seed)
        var random = SplitMix64(seed: seed)
        var text = ""
        for batch in 0..<20 {
            var lines = maker.events(count: 300, start: t0 + Int64(batch) * 20 * minute, span: 20 * minute).map(\.line)
            // Arrival order up to 20 minutes from event time: many events come after the watermark.
            if shuffled { lines.shuffle(using: &random) }
            lines[5] = "{not json"
            lines[9] = ""
            text +=
                batch % 7 == 6
                ? harness.batch(lines, id: "b\(batch)", secret: try! WebhookSecret("whsec_Zm9yZ2Vk")) : harness.batch(lines, id: "b\(batch)")
            if batch % 5 == 0 { text += "unsigned line\n" }
        }
        return Array(text.utf8)
    }

    @Test(arguments: [(UInt64(1), 97), (2, 4096), (3, 1 << 20)])
    func twoThreadsGiveExactlyTheRowsOfOne(seed: UInt64, chunkSize: Int) throws {
        // Seed 2 groups by campaign, so campaign names handed over by the reader appear in rows.
        var harness = PipelineHarness { $0.byCampaign = seed == 2 }
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let stream = Self.stream(seed: seed, harness: harness)
        var settings = RunSettings(configuration: harness.configuration)
        settings.secrets = harness.secrets
        settings.tolerance = 0
        settings.chunkSize = chunkSize
        settings.threads = 1
        let one = try Self.run(stream, settings: settings)
        settings.threads = 2
        let two = try Self.run(stream, settings: settings)
        #expect(!one.rows.isEmpty)
        #expect(one.rows.contains(#""campaign":"k"#) == (seed == 2))
        #expect(one.rows == two.rows)
        #expect(one.deadLetters == two.deadLetters)
        #expect(one.result.statistics == two.result.statistics)
        #expect(two.result.statistics.balances)
        #expect(two.result.statistics.rejectedBatches(.badSignature) == 2)
        #expect(two.result.statistics.deadLetters(.unsigned) == 4)

        // The same as the in-memory pipeline the other tests use.
        let reference = harness.run(bytes: stream)
        #expect(one.rows == reference.finalRows.map { $0.json + "\n" }.joined())
    }

    /// `roas run`'s own paths with partition workers: one thread and two, chunks small and large.
    @Test(arguments: [(UInt64(5), 1, 1000), (6, 2, 4096), (7, 2, 1 << 20)])
    func workersGiveExactlyTheRowsOfOnePartition(seed: UInt64, threads: Int, chunkSize: Int) throws {
        var harness = PipelineHarness {
            $0.byCampaign = seed == 6
            $0.partitions = 1
            $0.workers = 1
        }
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let stream = Self.stream(seed: seed, harness: harness, shuffled: seed == 7)
        var settings = RunSettings(configuration: harness.configuration)
        settings.secrets = harness.secrets
        settings.tolerance = 0
        settings.chunkSize = chunkSize
        settings.threads = threads
        let one = try Self.run(stream, settings: settings)
        #expect(one.result.statistics.accepted(.purchase) > 5)
        for (workers, partitions) in [(2, 2), (3, 16), (5, 64)] {
            settings.configuration.workers = workers
            settings.configuration.partitions = partitions
            let many = try Self.run(stream, settings: settings)
            #expect(many.rows == one.rows, "--workers \(workers) --partitions \(partitions)")
            #expect(many.deadLetters == one.deadLetters, "--workers \(workers) --partitions \(partitions)")
            #expect(many.result.statistics == one.result.statistics, "--workers \(workers) --partitions \(partitions)")
            #expect(many.result.state.touches == one.result.state.touches)
        }
    }

    @Test("two threads give the late and duplicate dead letters of one")
    func twoThreadsAgreeOnLateAndDuplicates() throws {
        var harness = PipelineHarness()
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let stream = Self.stream(seed: 4, harness: harness, shuffled: true)
        var settings = RunSettings(configuration: harness.configuration)
        settings.secrets = harness.secrets
        settings.tolerance = 0
        settings.chunkSize = 1000
        settings.threads = 1
        let one = try Self.run(stream, settings: settings)
        settings.threads = 2
        let two = try Self.run(stream, settings: settings)
        #expect(one.result.statistics.deadLetters(.late) > 100)
        #expect(one.result.statistics.deadLetters(.duplicate) > 10)
        #expect(one.rows == two.rows)
        #expect(one.deadLetters == two.deadLetters)
        #expect(one.result.statistics == two.result.statistics)
        #expect(one.result.state.dedupIDs == two.result.state.dedupIDs)
        #expect(two.result.statistics.balances)
    }

    @Test func anUnreadableInputIsAnErrorNotACrash() throws {
        var settings = RunSettings(configuration: PipelineHarness().configuration)
        for threads in [1, 2] {
            settings.threads = threads
            let runner = StreamRunner(settings: settings, rows: ByteSink(descriptor: -1), deadLetters: nil)
            #expect(throws: RoasError.self) { try runner.run(input: -1) }
        }
    }
}
