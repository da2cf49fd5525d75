import Testing

@testable import RoasCore

@Suite("Arrival order within the lateness does not change the rows")
struct ShuffleWithinLatenessTests {
    /// Delays every event by less than the lateness and sorts by arrival; the watermark then stays
    /// strictly below every event's time when it arrives, so the final rows must be identical.
    static func disordered(_ events: [(time: Int64, line: String)], lateness: Int64, random: inout SplitMix64) -> [String] {
        events.map { ($0.time + Int64.random(in: 0..<lateness, using: &random), $0.line) }
            .enumerated().sorted { a, b in a.element.0 != b.element.0 ? a.element.0 < b.element.0 : a.offset < b.offset }
            .map(\.element.1)
    }

    @Test(arguments: 0..<60 as Range<UInt64>)
    func sameFinalRows(seed: UInt64) {
        var maker = StreamMaker(seed: seed)
        let lateness = [1, 50, 5 * second, 10 * minute][Int(seed % 4)]
        let events = maker.events(count: 600, start: t0, span: 8 * hour)
        let model = AttributionModel.allCases[Int(seed % 5)]
        let harness = PipelineHarness {
            $0.model = model
            $0.lateness = lateness
            $0.halfLife = 2 * hour
            $0.byCampaign = seed % 2 == 0
            $0.byTier = seed % 4 == 1
            $0.window = seed % 3 == 0 ? 2 * hour : hour
            $0.slide = hour
            if seed % 3 == 1 {
                // Short lookbacks, so walks along an identity's touches stop early and the logs evict.
                $0.clickLookback = 30 * minute
                $0.viewLookback = 10 * minute
            }
        }
        let inOrder = harness.run(events.map(\.line))
        #expect(inOrder.statistics.balances)
        #expect(!inOrder.reasons.contains(.late))
        var random = SplitMix64(seed: seed ^ 0xDEAD_BEEF)
        for round in 0..<3 {
            let shuffled = harness.run(Self.disordered(events, lateness: lateness, random: &random))
            #expect(shuffled.finalRows == inOrder.finalRows, "seed \(seed), round \(round), model \(model)")
            #expect(shuffled.reasons.sorted() == inOrder.reasons.sorted(), "seed \(seed), round \(round)")
            #expect(shuffled.statistics.balances)
        }
    }

    @Test(arguments: 0..<20 as Range<UInt64>)
    func revenueIsConservedAcrossModels(seed: UInt64) {
        var maker = StreamMaker(seed: seed)
        let lines = maker.events(count: 400, start: t0, span: 4 * hour).map(\.line)
        var totals: [Int64] = []
        for model in AttributionModel.allCases {
            let result = PipelineHarness { $0.model = model }.run(lines)
            totals.append(result.finalRows.reduce(0) { $0 + $1.figures.revenue - $1.figures.refunds })
            let conversions = result.finalRows.reduce(0) { $0 + $1.figures.conversions }
            #expect(conversions % Micros.one == 0, "shares of each purchase add up to one conversion")
        }
        #expect(Set(totals).count == 1, "seed \(seed): \(totals)")
    }
}

@Suite("Line accounting at scale")
struct LineAccountingTests {
    /// One million lines in signed batches of 1000, with bad lines and bad batches mixed in:
    /// every line is accepted, dead-lettered or blank, and each injected fault is counted once.
    @Test func oneMillionEventsAreAllAccountedFor() {
        let secret = try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        var harness = PipelineHarness()
        harness.secrets = [secret]
        harness.tolerance = 0
        var maker = StreamMaker(seed: 42)
        maker.users = 5000
        maker.creators = 50
        var stream: [UInt8] = []
        stream.reserveCapacity(160_000_000)
        var injected: [Reason: Int] = [:]
        var events = 0
        var batch = 0
        var start = t0
        while events < 1_000_000 {
            var lines = maker.events(count: 1000, start: start, span: 10 * minute).map(\.line)
            start += 10 * minute
            if batch % 10 == 3 {
                lines[7] = "{broken"
                injected[.malformed, default: 0] += 1
                lines[8] = ""
            }
            events += lines.count
            if batch % 50 == 49 {
                let forged = try! WebhookSecret("whsec_bm90LXRoZS1zZWNyZXQ=")
                stream += Array(harness.batch(lines, id: "b\(batch)", secret: forged).utf8)
                injected[.badSignature, default: 0] += lines.filter { !$0.isEmpty }.count + 1
            } else {
                stream += Array(harness.batch(lines, id: "b\(batch)").utf8)
            }
            batch += 1
        }
        let result = harness.run(bytes: stream, chunkSize: 1 << 20)
        let statistics = result.statistics
        #expect(statistics.linesRead == events + batch)
        #expect(statistics.balances)
        #expect(statistics.acceptedLines + statistics.deadLetterCount + statistics.blankLines == statistics.linesRead)
        #expect(statistics.deadLetters(.badSignature) == injected[.badSignature])
        #expect(statistics.rejectedBatches(.badSignature) == batch / 50)
        #expect(statistics.deadLetters(.malformed) == injected[.malformed])
        #expect(statistics.blankLines == batch / 10)
        #expect(statistics.deadLetters(.late) == 0)
        #expect(statistics.finalRows == result.finalRows.count)
    }
}
