import Testing

@testable import RoasCore

/// Regressions of "Trust under attack": input a hostile or careless sender can send, each of which
/// once trapped or lost data, now dead-lettered with a reason while the good input around it counts.
@Suite("Trust: arithmetic and time")
struct TrustTests {
    static let max = "1000000000000"  // 10^12, the largest amount a line may carry

    @Test func tenLargestSpendsFillARowAndTheRestAreOverflowNotATrap() {
        // 9.2 * 10^18 micro-units fit an Int64: nine spends of 10^12 do, the tenth does not.
        let lines =
            (0..<10).map { Line.spend("s\($0)", t0 + Int64($0), creator: "c-a", amount: Self.max) }
            + [Line.spend("ok", t0 + 20, creator: "c-b", amount: "5")]
        let result = PipelineHarness().run(lines)
        #expect(result.reasons == [.overflow])
        #expect(result.statistics.accepted(.spend) == 10)
        #expect(result.row("c-a", at: t0)?.figures.spend == 9 * 1_000_000_000_000 * Micros.one)
        #expect(result.row("c-b", at: t0)?.figures.spend == micros("5"))
        #expect(result.statistics.balances)
    }

    @Test func hoppingWindowsBoundEachPaneSoEveryWindowSumFits() {
        // 24 panes per window: a pane may hold at most Int64.max / 24.
        var configuration = EngineConfiguration()
        configuration.window = day
        configuration.slide = hour
        let engine = Engine(configuration: configuration)
        #expect(engine.paneLimit == Int64.max / 24)
        // 2 * 10^11 per spend: one fits a pane, two do not (4 * 10^17 micro-units > 3.8 * 10^17).
        let lines = (0..<24).flatMap { pane in
            (0..<2).map {
                Line.spend("s\(pane)-\($0)", t0 + Int64(pane) * hour + Int64($0), creator: "c", amount: "200000000000")
            }
        }
        let result = PipelineHarness {
            $0.window = day
            $0.slide = hour
        }.run(lines)
        #expect(result.reasons == Array(repeating: .overflow, count: 24))
        // The window holding all 24 panes sums them without overflow.
        #expect(result.finalRows.map(\.figures.spend).max() == 24 * 200_000_000_000 * Micros.one)
        #expect(result.statistics.balances)
    }

    @Test func purchasesAndRefundsThatWouldOverflowAreDeadLetteredWhole() {
        // Linear halves each purchase of 10^12 over two creators: 18 halves (9 * 10^18) fit a row, a 19th does not.
        var lines = [Line.click("k1", t0, user: "u1", creator: "c-a"), Line.click("k2", t0, user: "u1", creator: "c-b")]
        for window in 0..<2 {
            lines += (0..<20).map {
                Line.purchase(
                    "p\(window)-\($0)", t0 + Int64(window) * hour + 1000 + Int64($0), user: "u1", order: "o\(window)-\($0)", amount: Self.max)
            }
        }
        let linear = PipelineHarness { $0.model = .linear }.run(lines)
        #expect(linear.reasons == Array(repeating: .overflow, count: 4))
        for window in 0..<2 {
            for creator in ["c-a", "c-b"] {
                let figures = linear.row(creator, at: t0 + Int64(window) * hour)?.figures
                #expect(figures?.revenue == 18 * 500_000_000_000 * Micros.one)
                #expect(figures?.conversions == 9 * Micros.one)
            }
        }
        #expect(linear.statistics.balances)

        // Refunds of the 36 orders that applied, all in a third window: 18 halves fit there, the rest overflow.
        let refunds = (0..<2).flatMap { window in
            (0..<18).map { Line.refund("r\(window)-\($0)", t0 + 2 * hour + Int64(window * 100 + $0), order: "o\(window)-\($0)", amount: Self.max) }
        }
        let refunded = PipelineHarness { $0.model = .linear }.run(lines + refunds)
        #expect(refunded.reasons == Array(repeating: .overflow, count: 4 + 18))
        #expect(refunded.row("c-a", at: t0 + 2 * hour)?.figures.refunds == 18 * 500_000_000_000 * Micros.one)
        #expect(refunded.row("c-b", at: t0 + 2 * hour)?.figures.refunds == 18 * 500_000_000_000 * Micros.one)
        #expect(refunded.statistics.balances)
    }

    @Test func aRateThatMakesAnAmountTooLargeIsOverflow() {
        let result = PipelineHarness {
            $0.currencies = try! CurrencyTable(base: "USD", rates: ["EUR": 10])
        }.run([
            Line.spend("s1", t0, creator: "c-a", amount: Self.max, currency: "EUR"),
            Line.spend("s2", t0 + 1, creator: "c-a", amount: "2", currency: "EUR"),
        ])
        #expect(result.reasons == [.overflow])
        #expect(result.row("c-a", at: t0)?.figures.spend == micros("20"))
    }

    @Test func aHugeROASPrintsInsteadOfTrapping() {
        let result = PipelineHarness().run([
            Line.click("k1", t0, user: "u1", creator: "c-a"),
            Line.purchase("p1", t0 + 1, user: "u1", order: "o1", amount: Self.max),
            Line.spend("s1", t0 + 2, creator: "c-a", amount: "0.000001"),
        ])
        let row = result.row("c-a", at: t0)
        #expect(row?.roas == 1e18)
        #expect(row.map { Row.roasText($0.roas) } == "1000000000000000000")
        #expect(Row.roasText(1.25) == "1.25")
        #expect(Row.roasText(-Double(Int64.max)) == "-9223372036854775808")
    }

    @Test func ratesOutsideTheRangeAreRefusedAtStart() {
        for rate in [1e308, 1e13, 1e-13, 0, -1, .infinity, .nan] {
            #expect(throws: RoasError.self) { try CurrencyTable(base: "USD", rates: ["EUR": rate]) }
        }
        #expect((try? CurrencyTable(base: "USD", rates: ["EUR": 1e12, "JPY": 1e-12])) != nil)
    }

    @Test func timeDecayNeverDropsRevenueWhenAbsoluteWeightsWouldUnderflow() {
        // A 1 ms half-life and touches days old: 2^(-age/half-life) is 0 for every touch.
        let result = PipelineHarness {
            $0.model = .timeDecay
            $0.halfLife = 1
        }.run([
            Line.click("k1", t0, user: "u1", creator: "c-a"),
            Line.click("k2", t0 + minute, user: "u1", creator: "c-b"),
            Line.purchase("p1", t0 + 3 * day, user: "u1", order: "o1", amount: "100"),
        ])
        // The minute-older touch weighs 2^-60000 of the latest: nothing.
        #expect(result.row("c-a", at: t0 + 3 * day)?.figures.revenue == 0)
        let credited = result.finalRows.filter { $0.figures.revenue > 0 }
        #expect(credited.map(\.creator) == ["c-b"])
        #expect(credited.first?.figures.revenue == micros("100"))
        #expect(credited.first?.figures.conversions == Micros.one)
    }

    /// Found by the engine fuzz target: a purchase of 10^12 split by time decay (half-life 1 ms) over
    /// touches some of weight 0. The split's rounding gave those touches -1 micro-unit each, and the
    /// overflow guard of the row sums then trapped on the negative figure (exit 132). Now every part
    /// is at least 0 and the parts add up to the purchase (see `MicrosAllocateTests`).
    @Test func aTimeDecaySplitOfAHugePurchaseNeverGoesNegative() {
        let stream = """
            {"type":"spend","id":"p2","ts":221842800243999,"creator":"@c0","campaign":"k3","amount":0.01}
            {"type":"purchase","id":"p2","ts":221842800244161,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221842800244323,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221842800244485,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221842800244647,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221842800244809,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p4","ts":221842800244983,"user":"u5","order":"o6","amount":1000,"currency":"JPY"}
            {"type":"spend","id":"e7","ts":221845391999999,"creator":"@c2","campaign":null,"amount":0.000001}
            {"type":"click","id":"e8","ts":221845391999999,"user":"u4","creator":"@c2","campaign":null}
            {"type":"view","id":"e9","ts":221845391999999,"user":"u0","creator":"@c2","campaign":null}
            {"type":"view","id":"e10","ts":221845391999900,"user":"u0","creator":"@c0","campaign":null}
            {"type":"spend","id":"p5","ts":221845391999999,"creator":"@c2","campaign":"desk-setup","amount":1000}
            {"type":"spend","id":"p5","ts":221845391999999,"creator":"@c0","campaign":"k3","amount":0.01}
            {"type":"purchase","id":"p2","ts":221845391999999,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221845391999999,"user":"u0","order":"o5","amount":0.01}
            {"type":"purchase","id":"p2","ts":221845391999999,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221845391999999,"user":"u2","order":"o4","amount":0.01}
            {"type":"purchase","id":"p2","ts":221845391999999,"user":"u2","order":"o4","amount":0.01}
            {"type":"click","id":"e18","ts":221845391999999,"user":"u7","creator":"@c0"}
            {"type":"purchase","id":"e19","ts":221845391999999,"user":"u0","order":"o0","amount":1000000000000}
            {"type":"view","id":"e20","ts":221845391999999,"user":"u3","creator":"@c0"}
            {"type":"click","id":"e21","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"view","id":"p10","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"view","id":"e23","ts":221845391999999,"user":"u1","creator":"@c2","campaign":null}
            {"type":"click","id":"e24","ts":221845391999999,"user":"u4","creator":"@c2","campaign":null}
            {"type":"view","id":"e25","ts":221845391999999,"user":"u4","creator":"@c3","campaign":"desk-setup"}
            {"type":"view","id":"e26","ts":221845391999999,"user":"u3","creator":"@c0","campaign":"k1"}
            {"type":"view","id":"e27","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"view","id":"e28","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"refund","id":"e29","ts":221845391999999,"order":"o0","amount":0}
            {"type":"view","id":"e30","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"purchase","id":"e31","ts":221845391999999,"user":"u6","order":"o3","amount":39.99}
            {"type":"click","id":"e32","ts":221845391999999,"user":"u0","creator":"@c3","campaign":"k1"}
            {"type":"click","id":"e33","ts":221845391999999,"user":"u0","creator":"@c1","campaign":"winter-glow"}
            {"type":"click","id":"e34","ts":221845391999999,"user":"u4","creator":"@c0","campaign":"k1"}
            {"type":"purchase","id":"e35","ts":221845391999999,"user":"u2","order":"o7","amount":39.99}
              	 
            {"type":"view","id":"e37","ts":221845391999999,"user":"u1","creator":"@c1"}
            {"type":"view","id":"e38","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"view","id":"e39","ts":221845391999999,"user":"u0","creator":"@c0"}
            {"type":"view","id":"e40","ts":221845391999999,"user":"u0","creator":"@c0"}

            """
        let result = PipelineHarness {
            $0.model = .timeDecay
            $0.window = 10 * second
            $0.slide = 10 * second
            $0.lateness = day
            $0.dedupHorizon = 0
            $0.clickLookback = 1
            $0.viewLookback = day
            $0.halfLife = 1
        }.run(bytes: Array(stream.utf8))
        for row in result.rows {
            let figures = row.figures
            #expect(figures.conversions >= 0 && figures.revenue >= 0 && figures.refunds >= 0 && figures.spend >= 0, "\(row)")
        }
        // Each accepted purchase brings one conversion: the split adds up exactly.
        let conversions = result.finalRows.reduce(Int64(0)) { $0 + $1.figures.conversions }
        #expect(conversions == Int64(result.statistics.accepted(.purchase)) * Micros.one)
        #expect(result.finalRows.contains { $0.figures.revenue > 700_000_000_000 * Micros.one })
    }

    @Test func timeDecaySharesAreThoseOfTheAbsoluteWeights() {
        // Ages 30, 20, 10 minutes, half-life 10 minutes: 1/8 : 1/4 : 1/2 either way.
        let result = PipelineHarness {
            $0.model = .timeDecay
            $0.halfLife = 10 * minute
        }.run([
            Line.click("e1", t0, user: "u1", creator: "c-a"),
            Line.click("e2", t0 + 10 * minute, user: "u1", creator: "c-b"),
            Line.click("e3", t0 + 20 * minute, user: "u1", creator: "c-c"),
            Line.purchase("p1", t0 + 30 * minute, user: "u1", order: "o1", amount: "100"),
        ])
        #expect(result.row("c-a", at: t0)?.figures.revenue == 14_285_714)
        #expect(result.row("c-c", at: t0)?.figures.revenue == 57_142_857)
    }

    @Test func stalenessComparesExtremeTimestampsWithoutOverflow() {
        #expect(BatchVerifier.isStale(.min, now: 1_795_255_200, tolerance: 300))
        #expect(BatchVerifier.isStale(.max, now: 1_795_255_200, tolerance: 300))
        #expect(BatchVerifier.isStale(.max, now: -5, tolerance: 300))
        #expect(!BatchVerifier.isStale(.min, now: 0, tolerance: 0))
        #expect(!BatchVerifier.isStale(1_795_255_200 - 300, now: 1_795_255_200, tolerance: 300))
        #expect(BatchVerifier.isStale(1_795_255_200 - 301, now: 1_795_255_200, tolerance: 300))
    }

    @Test func aSignedBatchWithTheSmallestTimestampIsStaleNotATrap() {
        var harness = PipelineHarness()
        harness.secrets = [try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        harness.tolerance = 300
        let frame = harness.batch([Line.click("k1", t0, user: "u1", creator: "c-a")], id: "b1", timestamp: -999_999_999_999_999_999)
        let result = harness.run([frame])
        #expect(result.reasons == [.staleBatch, .staleBatch])
    }

    @Test func eventsTooFarAheadOfTheirBatchAreFutureAndTheWatermarkStays() {
        var harness = PipelineHarness()
        harness.secrets = [try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let now = t0 / 1000
        let frame = harness.batch(
            [
                Line.click("k1", t0, user: "u1", creator: "c-a"),
                #"{"type":"click","id":"far","ts":"8999-12-31T23:59:59Z","user":"u1","creator":"c-a"}"#,
                Line.purchase("p1", t0 + minute, user: "u1", order: "o1", amount: "10"),
            ], id: "b1", timestamp: now)
        var parser = ChunkParser(
            configuration: harness.configuration, secrets: harness.secrets, tolerance: 0,
            maximumLineLength: 1 << 20, maximumBatchBytes: 1 << 24, maximumFuture: hour, now: { now })
        var sink = EngineSink(engine: Engine(configuration: harness.configuration))
        Array((frame + "\n").utf8).withUnsafeBytes { sink.replay(parser.consume($0)) }
        sink.replay(parser.finish())
        sink.finish()
        #expect(sink.output.deadLetters.map(\.reason) == [.future])
        #expect(sink.output.rows.first { $0.creator == "c-a" }?.figures.revenue == micros("10"))
        #expect(sink.engine.statistics.balances)
    }

    @Test func theKeyCapDeadLettersNewKeysOnlyAndCountsThem() {
        let result = PipelineHarness { $0.maximumKeys = 16 }.run(
            (0..<20).map { Line.click("k\($0)", t0 + Int64($0), user: "u\($0)", creator: "c-a") }
                + [Line.click("again", t0 + 30, user: "u1", creator: "c-a")])
        // c-a and 15 users fit; the others are too_many_keys, while a known user still counts.
        #expect(result.reasons == Array(repeating: .tooManyKeys, count: 5))
        #expect(result.row("c-a", at: t0)?.figures.clicks == 16)
        #expect(result.statistics.balances)
    }

    @Test func optionsOutOfRangeAreErrorsNamingTheFlag() {
        for (change, flag) in [
            ({ (c: inout EngineConfiguration) in c.lateness = EngineConfiguration.maximumDuration + 1 }, "--lateness"),
            ({ (c: inout EngineConfiguration) in c.clickLookback = Int64.max }, "--click-lookback"),
            ({ (c: inout EngineConfiguration) in c.dedupHorizon = Int64.max }, "--dedup-horizon"),
            ({ (c: inout EngineConfiguration) in c.maximumKeys = 0 }, "--max-keys"),
        ] {
            var configuration = EngineConfiguration()
            change(&configuration)
            #expect(throws: RoasError.self) { try configuration.validate() }
            #expect(((try? configuration.validate()) == nil))
            do { try configuration.validate() } catch let error as RoasError { #expect(error.message.contains(flag)) } catch {}
        }
    }

    /// Fuzz finding (snapshot target): a snapshot whose touch log was near the largest position a
    /// snapshot holds read fine, took more views, and then wrote a snapshot that did not read back.
    /// A view or click past that position is now `overflow`; the engine's next snapshot reads back.
    @Test func touchesPastThePositionLimitAreOverflowAndTheSnapshotReadsBack() throws {
        let configuration = EngineConfiguration()
        var driver = EngineDriver(configuration: configuration)
        // "u1" is the first user: handle 0, partition 0. The engine counts what it appended, and
        // looks at a partition only once that count could pass a limit.
        driver.engine.store.base[0].views = TouchLog(
            lateness: configuration.lateness, startingAt: SnapshotReader.counterLimit - 1)
        driver.engine.appendedTouches = SnapshotReader.counterLimit - 1
        let lines = [
            Line.view("v1", t0, user: "u1", creator: "c-a"),
            Line.view("v2", t0 + 1, user: "u1", creator: "c-a"),
            Line.click("k1", t0 + 2, user: "u1", creator: "c-a"),
        ]
        for (index, line) in lines.enumerated() { driver.feed(Array(line.utf8), number: index + 1) }
        #expect(driver.deadLetters.map(\.reason) == [.overflow])
        #expect(driver.deadLetters.first?.line == 2)
        #expect(driver.engine.statistics.accepted(.view) == 1 && driver.engine.statistics.accepted(.click) == 1)
        let decoded = try Engine(snapshot: driver.engine.snapshot(), configuration: configuration)
        #expect(decoded.store.base[0].views.end == SnapshotReader.counterLimit)
    }
}
