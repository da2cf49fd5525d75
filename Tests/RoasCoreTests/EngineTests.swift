import Testing

@testable import RoasCore

@Suite("Attribution models")
struct AttributionModelTests {
    /// u1 clicks c-a at 10:00, views c-b at 10:10, clicks c-c at 10:20, then buys 100 at 10:30.
    static let touches = [
        Line.click("e1", t0, user: "u1", creator: "c-a"),
        Line.view("e2", t0 + 10 * minute, user: "u1", creator: "c-b"),
        Line.click("e3", t0 + 20 * minute, user: "u1", creator: "c-c"),
        Line.purchase("p1", t0 + 30 * minute, user: "u1", order: "o1", amount: "100"),
    ]

    func revenue(_ model: AttributionModel, halfLife: Int64 = 7 * day) -> [String: Int64] {
        let result = PipelineHarness {
            $0.model = model
            $0.halfLife = halfLife
        }.run(Self.touches)
        var revenue: [String: Int64] = [:]
        for row in result.finalRows { revenue[row.creator ?? "null"] = row.figures.revenue }
        return revenue
    }

    @Test func lastTouchCreditsTheLatestClick() {
        #expect(self.revenue(.lastTouch) == ["c-a": 0, "c-b": 0, "c-c": micros("100")])
    }

    @Test func firstTouchCreditsTheEarliestClick() {
        #expect(self.revenue(.firstTouch) == ["c-a": micros("100"), "c-b": 0, "c-c": 0])
    }

    @Test func linearSplitsEquallyOverClicksAndViews() {
        // 100 / 3 = 33.333333 each; the one micro-unit left goes to the first touch (largest remainders tie).
        #expect(self.revenue(.linear) == ["c-a": 33_333_334, "c-b": 33_333_333, "c-c": 33_333_333])
    }

    @Test func positionGivesFortyTwentyForty() {
        #expect(self.revenue(.position) == ["c-a": micros("40"), "c-b": micros("20"), "c-c": micros("40")])
    }

    @Test func timeDecayHalvesPerHalfLife() {
        // Ages 30, 20 and 10 minutes with a 10-minute half-life: weights 1/8, 1/4, 1/2 of 7/8.
        let revenue = self.revenue(.timeDecay, halfLife: 10 * minute)
        #expect(revenue == ["c-a": 14_285_714, "c-b": 28_571_429, "c-c": 57_142_857])
        #expect(revenue.values.reduce(0, +) == micros("100"))
    }

    @Test func lastTouchFallsBackToTheLatestView() {
        let result = PipelineHarness().run([
            Line.view("v1", t0, user: "u1", creator: "c-a"),
            Line.view("v2", t0 + minute, user: "u1", creator: "c-b"),
            Line.purchase("p1", t0 + 2 * minute, user: "u1", order: "o1", amount: "10"),
        ])
        #expect(result.row("c-b", at: t0)?.figures.revenue == micros("10"))
        #expect(result.row("c-a", at: t0)?.figures.revenue == 0)
    }

    @Test func tiesOnTimeGoToTheGreatestIDForLastTouchAndTheSmallestForFirstTouch() {
        let lines = [
            Line.click("id-b", t0, user: "u1", creator: "c-b"),
            Line.click("id-a", t0, user: "u1", creator: "c-a"),
            Line.click("id-c-long-enough-to-have-a-tail-1", t0, user: "u1", creator: "c-c1"),
            Line.click("id-c-long-enough-to-have-a-tail-2", t0, user: "u1", creator: "c-c2"),
            Line.purchase("p1", t0 + minute, user: "u1", order: "o1", amount: "10"),
        ]
        let last = PipelineHarness { $0.model = .lastTouch }.run(lines)
        #expect(last.row("c-c2", at: t0)?.figures.conversions == Micros.one)
        let first = PipelineHarness { $0.model = .firstTouch }.run(lines)
        #expect(first.row("c-a", at: t0)?.figures.conversions == Micros.one)
    }

    @Test func lookbacksAreInclusiveAndClicksOutrankViews() {
        let lines = [
            Line.click("c-old", t0 - 7 * day - 1, user: "u1", creator: "too-old"),
            Line.click("c-edge", t0 - 7 * day, user: "u2", creator: "click-edge"),
            Line.view("v-old", t0 - day - 1, user: "u3", creator: "too-old"),
            Line.view("v-edge", t0 - day, user: "u3", creator: "view-edge"),
            Line.purchase("p1", t0, user: "u1", order: "o1", amount: "1"),
            Line.purchase("p2", t0, user: "u2", order: "o2", amount: "2"),
            Line.purchase("p3", t0, user: "u3", order: "o3", amount: "3"),
        ]
        let result = PipelineHarness().run(lines)
        #expect(result.row(nil, at: t0)?.figures.revenue == micros("1"))
        #expect(result.row("click-edge", at: t0)?.figures.revenue == micros("2"))
        #expect(result.row("view-edge", at: t0)?.figures.revenue == micros("3"))
    }

    @Test func unattributedRevenueGoesToTheNullCreatorWithAConversion() {
        let result = PipelineHarness().run([Line.purchase("p1", t0, user: "nobody", order: "o1", amount: "12.5")])
        let row = result.row(nil, at: t0)
        #expect(row?.figures.conversions == Micros.one)
        #expect(row?.figures.revenue == micros("12.5"))
        #expect(row?.campaign == nil)
    }
}

@Suite("Identity links")
struct IdentityLinkTests {
    @Test func aLinkCreditsTikTokTouchesForAmazonPurchasesFromItsTimeOn() {
        let result = PipelineHarness().run([
            Line.click("c1", t0, user: "tt:1", creator: "mia"),
            Line.purchase("p-before", t0 + minute, user: "amz:A", order: "o1", amount: "5"),
            Line.link("l1", t0 + 2 * minute, user: "tt:1", linked: "amz:A"),
            Line.purchase("p-at", t0 + 2 * minute, user: "amz:A", order: "o2", amount: "7"),
        ])
        #expect(result.row(nil, at: t0)?.figures.revenue == micros("5"))
        #expect(result.row("mia", at: t0)?.figures.revenue == micros("7"))
    }

    @Test func linksAreTransitiveAndApplyByEventTimeNotArrival() {
        // The link arrives after the purchase, but its time is earlier: it still applies.
        let result = PipelineHarness().run([
            Line.click("c1", t0, user: "tt:1", creator: "mia"),
            Line.link("l1", t0 + minute, user: "tt:1", linked: "ig:1"),
            Line.purchase("p1", t0 + 2 * minute + 2 * second, user: "amz:A", order: "o1", amount: "9"),
            Line.link("l2", t0 + 2 * minute, user: "amz:A", linked: "ig:1"),
        ])
        #expect(result.row("mia", at: t0)?.figures.revenue == micros("9"))
    }
}

@Suite("Refunds")
struct RefundTests {
    @Test func refundsFollowTheOrdersSharesInTheRefundsWindow() {
        let result = PipelineHarness { $0.model = .linear }.run([
            Line.click("c1", t0, user: "u1", creator: "a"),
            Line.click("c2", t0 + minute, user: "u1", creator: "b"),
            Line.purchase("p1", t0 + 2 * minute, user: "u1", order: "o1", amount: "30", currency: "EUR"),
            Line.refund("r1", t0 + hour + minute, order: "o1", amount: "10", currency: "EUR"),
            Line.refund("r2", t0 + hour + 2 * minute, order: "o1", amount: "23"),
        ])
        #expect(result.row("a", at: t0)?.figures.revenue == micros("16.5"))
        #expect(result.row("b", at: t0)?.figures.revenue == micros("16.5"))
        #expect(result.row("a", at: t0 + hour)?.figures.refunds == micros("5.5"))
        #expect(result.row("b", at: t0 + hour)?.figures.refunds == micros("5.5"))
        // 23 USD is 20.909091 EUR; with 10 EUR already refunded that exceeds the 30 EUR order.
        #expect(result.reasons == [.overRefund])
        #expect(result.deadLetters.first?.line == 5)
    }

    @Test func unknownOrdersAndUnattributedRefunds() {
        let result = PipelineHarness().run([
            Line.purchase("p1", t0, user: "u1", order: "o1", amount: "8"),
            Line.refund("r1", t0 + minute, order: "o1", amount: "3"),
            Line.refund("r2", t0 + minute, order: "o-none", amount: "3"),
        ])
        #expect(result.row(nil, at: t0)?.figures.refunds == micros("3"))
        #expect(result.reasons == [.unknownOrder])
    }

    @Test func aRefundOfExactlyTheOrderAmountIsAccepted() {
        let result = PipelineHarness().run([
            Line.purchase("p1", t0, user: "u1", order: "o1", amount: "19.99"),
            Line.refund("r1", t0 + minute, order: "o1", amount: "9.99"),
            Line.refund("r2", t0 + minute, order: "o1", amount: "10"),
            Line.refund("r3", t0 + minute, order: "o1", amount: "0.01"),
        ])
        #expect(result.row(nil, at: t0)?.figures.refunds == micros("19.99"))
        #expect(result.reasons == [.overRefund])
        #expect(result.deadLetters.first?.raw == Array(Line.refund("r3", t0 + minute, order: "o1", amount: "0.01").utf8))
    }
}

@Suite("Windows and rows")
struct WindowTests {
    @Test func hoppingWindowsCountAnEventInEveryWindowHoldingIt() {
        let result = PipelineHarness {
            $0.window = 2 * hour
            $0.slide = hour
        }.run([
            Line.spend("s1", t0 + 90 * minute, creator: "a", amount: "10"),
            Line.spend("s2", t0 + 150 * minute, creator: "a", amount: "5"),
        ])
        let spends = result.finalRows.map { ($0.windowStart, $0.windowEnd, $0.figures.spend) }
        #expect(spends.map(\.0) == [t0, t0 + hour, t0 + 2 * hour])
        #expect(spends.map(\.1) == [t0 + 2 * hour, t0 + 3 * hour, t0 + 4 * hour])
        #expect(spends.map(\.2) == [micros("10"), micros("15"), micros("5")])
    }

    @Test func campaignGroupingCreditsTheCampaignOfTheCreditedTouch() {
        let result = PipelineHarness { $0.byCampaign = true }.run([
            Line.spend("s1", t0, creator: "a", amount: "4", campaign: "winter"),
            Line.spend("s2", t0, creator: "a", amount: "6"),
            Line.click("c1", t0 + minute, user: "u1", creator: "a", campaign: "winter"),
            Line.purchase("p1", t0 + 2 * minute, user: "u1", order: "o1", amount: "12"),
        ])
        #expect(result.row("a", at: t0, campaign: "winter")?.figures.revenue == micros("12"))
        #expect(result.row("a", at: t0, campaign: "winter")?.roas == 3)
        #expect(result.row("a", at: t0, campaign: nil)?.figures.spend == micros("6"))
        #expect(result.finalRows.map(\.campaign) == ["winter", nil])
    }

    @Test func rowsAreOrderedByWindowThenCreatorBytewiseWithNullLast() {
        let result = PipelineHarness().run([
            Line.spend("s4", t0 - hour, creator: "z", amount: "1"),
            Line.purchase("p1", t0, user: "nobody", order: "o1", amount: "1"),
            Line.spend("s1", t0, creator: "b", amount: "1"),
            Line.spend("s2", t0, creator: "B", amount: "1"),
            Line.spend("s3", t0, creator: "a", amount: "1"),
        ])
        #expect(result.finalRows.map(\.creator) == ["z", "B", "a", "b", nil])
    }

    @Test func theRowFormatIsExact() {
        let result = PipelineHarness().run([
            Line.view("v1", t0, user: "u1", creator: "c1"),
            Line.click("c1", t0 + 1, user: "u1", creator: "c1"),
            Line.spend("s1", t0 + 2, creator: "c1", amount: "10"),
            Line.purchase("p1", t0 + 3, user: "u1", order: "o1", amount: "12.5"),
        ])
        #expect(
            result.finalRows.map(\.json) == [
                #"{"window_start":"2026-11-21T10:00:00Z","window_end":"2026-11-21T11:00:00Z","creator":"c1","campaign":null,"views":1,"clicks":1,"conversions":1,"revenue":12.5,"refunds":0,"spend":10,"roas":1.25,"ctr":1,"cvr":1,"aov":12.5,"cpa":10,"net_revenue":12.5,"roi":0.25,"reach":1,"engagements":0,"engagement_rate":0,"leads":0,"cpl":null,"tier":null,"final":true}"#
            ])
    }

    @Test func windowsCloseAsTheWatermarkPassesTheirEnd() {
        let now = t0 + hour
        var pipeline = Pipeline(configuration: PipelineHarness().configuration, now: { now / 1000 })
        pipeline.consume(Array((Line.spend("s1", t0, creator: "a", amount: "1") + "\n").utf8))
        pipeline.consume(Array((Line.spend("s2", t0 + hour + 4 * second, creator: "a", amount: "1") + "\n").utf8))
        #expect(pipeline.output.rows.isEmpty, "the watermark is 10:59:59, one second short of the end")
        pipeline.consume(Array((Line.spend("s3", t0 + hour + 5 * second, creator: "a", amount: "1") + "\n").utf8))
        #expect(pipeline.output.rows.map(\.windowStart) == [t0])
        #expect(pipeline.output.rows.allSatisfy { $0.isFinal })
    }

    @Test func liveUpdatesEmitChangedOpenWindowsAsNotFinal() {
        var pipeline = Pipeline(configuration: PipelineHarness().configuration, now: { 0 })
        pipeline.trackUpdates(true)
        pipeline.consume(Array((Line.spend("s1", t0, creator: "a", amount: "1") + "\n").utf8))
        pipeline.emitUpdates()
        #expect(pipeline.output.rows.map(\.isFinal) == [false])
        #expect(pipeline.output.rows.first?.figures.spend == micros("1"))
        pipeline.output.removeAll()
        pipeline.emitUpdates()
        #expect(pipeline.output.rows.isEmpty, "nothing changed since the last update")
        pipeline.consume(Array((Line.spend("s2", t0 + minute, creator: "b", amount: "2") + "\n").utf8))
        pipeline.emitUpdates()
        #expect(pipeline.output.rows.map(\.creator) == ["b"])
    }
}

@Suite("Event time")
struct EventTimeTests {
    @Test func bothTimestampFormatsAreTheSameInstant() {
        let result = PipelineHarness().run([
            #"{"type":"spend","id":"s1","ts":"2026-11-21T11:30:00+01:00","creator":"a","amount":1}"#,
            #"{"type":"spend","id":"s2","ts":"2026-11-21T10:59:59.999Z","creator":"a","amount":2}"#,
            #"{"type":"spend","id":"s3","ts":1795258800000,"creator":"a","amount":4}"#,
        ])
        #expect(result.row("a", at: t0)?.figures.spend == micros("3"))
        #expect(result.row("a", at: t0 + hour)?.figures.spend == micros("4"))
    }

    @Test func lateEventsAreRejectedAgainstTheWatermarkBeforeTheEvent() {
        let result = PipelineHarness().run([
            Line.spend("s1", t0 + 10 * second, creator: "a", amount: "1"),
            Line.spend("s2", t0 + 5 * second, creator: "a", amount: "1"),
            Line.spend("s3", t0 + 5 * second - 1, creator: "a", amount: "1"),
            Line.spend("s4", t0 + 100 * second, creator: "a", amount: "1"),
        ])
        #expect(result.reasons == [.late])
        #expect(result.deadLetters.first?.line == 3)
        #expect(result.row("a", at: t0)?.figures.spend == micros("3"))
    }

    @Test func pendingEventsApplyInEventTimeOrderWithLinksFirst() {
        // Same time: the link applies before the purchase, so the purchase is attributed.
        let result = PipelineHarness().run([
            Line.click("c1", t0, user: "tt:1", creator: "mia"),
            Line.purchase("p1", t0 + minute, user: "amz:1", order: "o1", amount: "3"),
            Line.refund("r1", t0 + minute, order: "o1", amount: "1"),
            Line.link("l1", t0 + minute, user: "amz:1", linked: "tt:1"),
        ])
        #expect(result.row("mia", at: t0)?.figures.revenue == micros("3"))
        #expect(result.row("mia", at: t0)?.figures.refunds == micros("1"))
        #expect(result.deadLetters.isEmpty)
    }

    @Test func duplicatesAreDetectedWithinTheHorizonOnly() {
        let result = PipelineHarness {
            $0.dedupHorizon = hour
            $0.lateness = 2 * hour
        }.run([
            Line.spend("s1", t0, creator: "a", amount: "1"),
            Line.spend("s1", t0, creator: "a", amount: "1"),
            Line.spend("s2", t0 + 4 * hour, creator: "a", amount: "1"),
            // The watermark is now t0 + 2h; s1 at t0 is older than the horizon: forgotten, and late.
            Line.spend("s1", t0 + 3 * hour, creator: "a", amount: "1"),
        ])
        #expect(result.reasons == [.duplicate])
        #expect(result.finalRows.map(\.figures.spend).reduce(0, +) == micros("3"))
    }

    @Test func duplicateOrdersAreRejectedWhenApplied() {
        let result = PipelineHarness().run([
            Line.purchase("p1", t0, user: "u1", order: "o1", amount: "5"),
            Line.purchase("p2", t0 + minute, user: "u2", order: "o1", amount: "5"),
        ])
        #expect(result.reasons == [.duplicateOrder])
        #expect(result.deadLetters.first?.line == 2)
        #expect(result.statistics.balances)
    }
}
