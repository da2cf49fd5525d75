import Testing

@testable import RoasCore

/// Issue 14's row fields (reach, engagements, engagement rate, leads, cost per lead, tier) and
/// `--by tier`, on hand-computed streams.
@Suite("Scoreboard: reach, engagement, leads and tiers")
struct ScoreboardTests {
    /// The members from `reach` to `tier` of a row's JSON.
    static func scoreboardJSON(_ row: Row) -> String {
        let json = row.json
        let start = json.range(of: ",\"reach\":")!.lowerBound
        let end = json.range(of: ",\"final\":")!.lowerBound
        return String(json[start..<end])
    }

    @Test("3 users over 4 views and a click, 2 engagements, 1 sign-up, 10 spend, a micro creator")
    func everyFieldByHand() {
        let result = PipelineHarness().run([
            Line.profile("p1", t0, creator: "c1", followers: 12_000),
            Line.spend("s1", t0 + 1, creator: "c1", amount: "10"),
            Line.view("v1", t0 + 2, user: "u1", creator: "c1"),
            Line.view("v2", t0 + 3, user: "u2", creator: "c1"),
            Line.view("v3", t0 + 4, user: "u1", creator: "c1"),
            Line.view("v4", t0 + 5, user: "u3", creator: "c1"),
            Line.click("k1", t0 + 6, user: "u2", creator: "c1"),
            Line.engagement("e1", t0 + 7, user: "u9", creator: "c1", action: "comment"),
            Line.engagement("e2", t0 + 8, user: "u1", creator: "c1", action: "follow"),
            Line.signup("g1", t0 + 9, user: "u2", value: "250"),
        ])
        let row = result.row("c1", at: t0)!
        #expect(row.reach == 3, "u1, u2, u3; u9 only engaged")
        #expect(row.figures.engagements == 2)
        #expect(row.figures.leads == Micros.one)
        #expect(row.figures.revenue == 0, "a lead's value is not revenue")
        #expect(row.engagementRate == 0.5)
        #expect(row.cpl == 10)
        #expect(row.tier == "micro")
        #expect(
            Self.scoreboardJSON(row)
                == #","reach":3,"engagements":2,"engagement_rate":0.5,"leads":1,"cpl":10,"tier":"micro""#)
        #expect(result.statistics.accepted(.engagement) == 2)
        #expect(result.statistics.accepted(.signup) == 1)
        #expect(result.statistics.accepted(.creator) == 1)
        #expect(result.statistics.balances)
    }

    @Test("null rules: no views, no leads, no profile")
    func nullRules() {
        let result = PipelineHarness().run([
            Line.engagement("e1", t0, user: "u1", creator: "c1"),
            Line.spend("s1", t0 + 1, creator: "c1", amount: "5"),
        ])
        let row = result.row("c1", at: t0)!
        #expect(row.engagementRate == nil && row.cpl == nil && row.tier == nil)
        #expect(
            Self.scoreboardJSON(row) == #","reach":0,"engagements":1,"engagement_rate":null,"leads":0,"cpl":null,"tier":null"#)
    }

    @Test("a sign-up is credited like a purchase: linear split, identity links, unattributed")
    func signupsAreAttributed() {
        let result = PipelineHarness { $0.model = .linear }.run([
            Line.click("k1", t0, user: "tt:1", creator: "a"),
            Line.view("v1", t0 + 1, user: "tt:1", creator: "b"),
            Line.link("l1", t0 + 2, user: "tt:1", linked: "amz:1"),
            Line.signup("g1", t0 + 3, user: "amz:1"),
            Line.signup("g2", t0 + 4, user: "tt:404"),
            Line.spend("s1", t0 + 5, creator: "a", amount: "3"),
        ])
        #expect(result.row("a", at: t0)!.figures.leads == 500_000)
        #expect(result.row("b", at: t0)!.figures.leads == 500_000)
        #expect(result.row("a", at: t0)!.cpl == 6)
        #expect(result.row(nil, at: t0)!.figures.leads == Micros.one)
        #expect(result.row(nil, at: t0)!.figures.conversions == 0)
        #expect(result.finalRows.allSatisfy { $0.figures.conversions == 0 && $0.figures.revenue == 0 })
    }

    @Test("a row's tier is the latest profile before its window's end; equal times: the greatest id")
    func tierFollowsProfiles() {
        let result = PipelineHarness().run([
            Line.profile("p1", t0 + 30 * minute, creator: "c", followers: 9_999),
            Line.view("v1", t0 + 40 * minute, user: "u", creator: "c"),
            // At the end of the first window: not before it, so the first row stays nano.
            Line.profile("p2", t0 + hour, creator: "c", followers: 10_000),
            Line.view("v2", t0 + hour + 1, user: "u", creator: "c"),
            // Two profiles at one time: the greater id ("p4") wins, whatever the arrival order.
            Line.profile("p4", t0 + 2 * hour + 5, creator: "c", followers: 999_999),
            Line.profile("p3", t0 + 2 * hour + 5, creator: "c", followers: 1_000_000),
            Line.view("v3", t0 + 2 * hour + 10, user: "u", creator: "c"),
            Line.profile("p5", t0 + 3 * hour + 5, creator: "c", followers: 1_000_000),
            Line.view("v4", t0 + 3 * hour + 10, user: "u", creator: "c"),
        ])
        #expect(result.row("c", at: t0)!.tier == "nano")
        #expect(result.row("c", at: t0 + hour)!.tier == "micro")
        #expect(result.row("c", at: t0 + 2 * hour)!.tier == "macro")
        #expect(result.row("c", at: t0 + 3 * hour)!.tier == "mega")
    }

    @Test("--by tier: figures summed, each user reached once across the tier, unknown and unattributed")
    func rollUpByTier() {
        let lines = [
            Line.profile("p1", t0, creator: "a", followers: 20_000),
            Line.profile("p2", t0, creator: "b", followers: 50_000),
            Line.profile("p3", t0, creator: "m", followers: 2_000_000),
            Line.view("v1", t0 + 1, user: "u1", creator: "a", campaign: "x"),
            Line.view("v2", t0 + 2, user: "u1", creator: "b"),
            Line.view("v3", t0 + 3, user: "u2", creator: "b", campaign: "x"),
            Line.view("v4", t0 + 4, user: "u3", creator: "m"),
            Line.view("v5", t0 + 5, user: "u4", creator: "n"),
            Line.spend("s1", t0 + 6, creator: "a", amount: "4"),
            Line.spend("s2", t0 + 6, creator: "b", amount: "6"),
            Line.engagement("e1", t0 + 7, user: "u1", creator: "a"),
            Line.purchase("o1", t0 + 8, user: "u9", order: "o1", amount: "7"),
        ]
        let byTier = PipelineHarness { $0.byTier = true }.run(lines)
        let rows = byTier.finalRows
        #expect(rows.map(\.tier) == ["micro", "mega", "unknown", nil])
        #expect(rows.allSatisfy { $0.creator == nil && $0.campaign == nil })
        #expect(rows[0].figures.views == 3)
        #expect(rows[0].reach == 2, "u1 viewed both micro creators: counted once")
        #expect(rows[0].figures.spend == micros("10"))
        #expect(rows[0].figures.engagements == 1)
        #expect(rows[3].figures.conversions == Micros.one && rows[3].reach == 0)
        let byTierCampaign = PipelineHarness {
            $0.byTier = true
            $0.byCampaign = true
        }.run(lines)
        #expect(byTierCampaign.finalRows.map { "\($0.tier ?? "-")/\($0.campaign ?? "-")" } == ["micro/x", "micro/-", "mega/-", "unknown/-", "-/-"])
        #expect(byTierCampaign.finalRows[0].reach == 2 && byTierCampaign.finalRows[1].reach == 1)
        // The per-creator rows add up to the roll-up.
        let byCreator = PipelineHarness().run(lines).finalRows
        #expect(byCreator.reduce(0) { $0 + $1.figures.views } == rows.reduce(0) { $0 + $1.figures.views })
        #expect(byCreator.reduce(0) { $0 + $1.figures.spend } == rows.reduce(0) { $0 + $1.figures.spend })
    }

    @Test("bad input is invalid with a detail naming the field; the rest of the batch counts")
    func badInput() {
        let result = PipelineHarness().run([
            #"{"type":"creator","id":"p1","ts":\#(t0),"creator":"c","followers":-1}"#,
            #"{"type":"creator","id":"p2","ts":\#(t0),"creator":"c","followers":1.5}"#,
            #"{"type":"creator","id":"p3","ts":\#(t0),"creator":"c","followers":1000000000001}"#,
            #"{"type":"creator","id":"p4","ts":\#(t0),"creator":"c","followers":"12000"}"#,
            #"{"type":"creator","id":"p5","ts":\#(t0),"creator":"c","followers":12000,"platform":""}"#,
            #"{"type":"signup","id":"g1","ts":\#(t0),"user":"u","value":-1}"#,
            #"{"type":"signup","id":"g2","ts":\#(t0)}"#,
            #"{"type":"signup","id":"g3","ts":\#(t0),"user":"u","value":5,"currency":"XXX"}"#,
            #"{"type":"engagement","id":"e1","ts":\#(t0),"user":"u","creator":"c","action":"poke"}"#,
            #"{"type":"engagement","id":"e2","ts":\#(t0),"user":"u","creator":"c"}"#,
            Line.profile("p6", t0, creator: "c", followers: 1_000_000_000_000),
            Line.view("v1", t0 + 1, user: "u", creator: "c"),
            Line.engagement("e3", t0 + 2, user: "u", creator: "c", action: "save"),
        ])
        let details = result.deadLetters.map(\.detail)
        #expect(result.reasons == [.invalid, .invalid, .invalid, .invalid, .invalid, .invalid, .invalid, .unknownCurrency, .invalid, .invalid])
        for (index, field) in ["followers", "followers", "followers", "followers", "platform", "value", "user"].enumerated() {
            #expect(details[index].contains(field), "\(details[index]) names \(field)")
        }
        #expect(details[8].contains("action") && details[9].contains("action"))
        let row = result.row("c", at: t0)!
        #expect(row.tier == "mega" && row.figures.views == 1 && row.figures.engagements == 1)
        #expect(result.statistics.balances)
    }

    @Test("reach is exact up to 1,024 users, then within 2%, and hopping windows merge their panes")
    func reachAgainstExactCounts() {
        for (users, exact) in [(1_000, true), (30_000, false)] {
            var lines: [String] = []
            // Each user views twice, in random order, over the hour.
            for index in 0..<(2 * users) {
                let user = "tt:\(index % users)-\(users)"
                lines.append(Line.view("v\(index)", t0 + Int64(index) * hour / Int64(2 * users), user: user, creator: "c"))
            }
            let row = PipelineHarness().run(lines).row("c", at: t0)!
            if exact {
                #expect(row.reach == Int64(users))
            } else {
                let error = abs(Double(row.reach) - Double(users)) / Double(users)
                #expect(error < 0.02, "reach \(row.reach) of \(users)")
            }
        }
        // Two-hour windows sliding by an hour: u1 in both hours is reached once in the window covering both.
        let hopping = PipelineHarness {
            $0.window = 2 * hour
            $0.slide = hour
        }.run([
            Line.view("v1", t0 + 1, user: "u1", creator: "c"),
            Line.view("v2", t0 + 2, user: "u2", creator: "c"),
            Line.click("k1", t0 + hour + 1, user: "u1", creator: "c"),
            Line.view("v3", t0 + hour + 2, user: "u3", creator: "c"),
        ])
        #expect(hopping.row("c", at: t0 - hour)!.reach == 2)
        #expect(hopping.row("c", at: t0)!.reach == 3)
        #expect(hopping.row("c", at: t0 + hour)!.reach == 2)
    }

    @Test("a snapshot keeps profiles, reach and the new figures")
    func snapshotRoundTrip() throws {
        var engine = Engine(configuration: PipelineHarness().configuration)
        var output = EngineOutput()
        let parser = EventParser.forTests()
        func feed(_ line: String) {
            let bytes = Array(line.utf8)
            bytes.withUnsafeBytes { raw in
                _ = parser.parse(raw) { event in engine.accept(event, origin: Origin(line: 1, batch: nil, raw: raw), into: &output) }
            }
        }
        for line in [
            Line.profile("p1", t0, creator: "c", followers: 500),
            Line.view("v1", t0 + 1, user: "u1", creator: "c"),
            Line.engagement("e1", t0 + 2, user: "u1", creator: "c"),
            Line.signup("g1", t0 + 3, user: "u1"),
        ] { feed(line) }
        let bytes = engine.snapshot()
        var restored = try Engine(snapshot: bytes, configuration: engine.configuration)
        #expect(restored.snapshot() == bytes)
        var a = EngineOutput()
        var b = EngineOutput()
        engine.finish(into: &a)
        restored.finish(into: &b)
        #expect(a.rows == b.rows)
        #expect(a.rows.first?.tier == "nano" && a.rows.first?.figures.leads == Micros.one && a.rows.first?.reach == 1)
    }
}

@Suite("The built-in sample shows every KPI")
struct SampleScoreboardTests {
    @Test func everyKPIHasAValueInSomeRow() {
        var harness = PipelineHarness()
        harness.secrets = [Sample.secret]
        let result = harness.run(bytes: Sample.stream(now: harness.now))
        let rows = result.finalRows
        #expect(rows.contains { $0.reach > 0 && $0.figures.engagements > 0 && $0.engagementRate != nil })
        #expect(rows.contains { $0.figures.leads > 0 && $0.cpl != nil })
        #expect(rows.contains { $0.ctr != nil && $0.cvr != nil && $0.aov != nil && $0.cpa != nil && $0.roi != nil })
        #expect(Set(rows.compactMap(\.tier)) == ["nano", "micro", "macro"])
        // @glowwithmia crosses into macro at 11:00: micro in the first hour, macro in the second.
        #expect(result.row("@glowwithmia", at: t0)?.tier == "micro")
        #expect(result.row("@glowwithmia", at: t0 + hour)?.tier == "macro")
        #expect(result.statistics.balances)
    }
}
