import Testing

@testable import RoasCore

@Suite("Alert rules")
struct AlertRuleTests {
    @Test("rules of the issue parse: comparisons, and, for N windows")
    func validRules() throws {
        let a = try AlertRule("roas < 1.0 for 2 windows")
        #expect(a.conditions == [.init(field: .roas, comparison: .less, value: 1)] && a.windows == 2)
        let b = try AlertRule("  cpa > 40 ")
        #expect(b.text == "cpa > 40" && b.windows == 1)
        let c = try AlertRule("spend > 500 and conversions == 0")
        #expect(c.conditions.map(\.field) == [.spend, .conversions] && c.conditions.map(\.comparison) == [.greater, .equal])
        let d = try AlertRule("engagement_rate<=0.01 AND net_revenue != -2.5e1 for 1 window")
        #expect(
            d.conditions == [
                .init(field: .engagementRate, comparison: .lessOrEqual, value: 0.01), .init(field: .netRevenue, comparison: .notEqual, value: -25),
            ])
    }

    @Test("an invalid rule names the position of the mistake")
    func invalidRules() {
        let cases: [(String, Int, String)] = [
            ("", 1, "expected a row field"),
            ("roaz < 1", 1, "'roaz' is not a numeric row field"),
            ("roas = 1", 6, "expected a comparison"),
            ("roas <", 7, "expected a number"),
            ("roas < x", 8, "expected a number"),
            ("roas < 1 or cpa > 2", 10, "expected 'and'"),
            ("roas < 1 and", 13, "expected a row field"),
            ("roas < 1 for 0 windows", 14, "whole number of windows"),
            ("roas < 1 for 1.5 windows", 14, "whole number of windows"),
            ("roas < 1 for 2 hours", 16, "expected 'windows'"),
            ("roas < 1 for 2 windows now", 24, "unexpected text"),
            ("roas < 1e999", 8, "expected a number"),
        ]
        for (rule, position, message) in cases {
            do {
                _ = try AlertRule(rule)
                Issue.record("'\(rule)' parsed")
            } catch {
                #expect(error.position == position, "'\(rule)': \(error)")
                #expect(error.message.contains(message), "'\(rule)': \(error)")
            }
        }
    }

    @Test("a comparison with a null field is false; each comparison")
    func matching() throws {
        var figures = Aggregate()
        figures.views = 10
        figures.spend = 20_000_000
        let row = Row(windowStart: t0, windowEnd: t0 + hour, creator: "@a", campaign: nil, figures: figures, isFinal: true)
        #expect(try AlertRule("spend == 20").matches(row))
        #expect(try AlertRule("spend >= 20 and views > 9").matches(row))
        #expect(try !AlertRule("spend > 20").matches(row))
        #expect(try AlertRule("roas < 1").matches(row), "roas is 0: no revenue")
        #expect(try !AlertRule("cpa > 0").matches(row), "cpa is null without conversions")
        #expect(try !AlertRule("cpa <= 0").matches(row))
        #expect(try AlertRule("clicks != 1").matches(row))
    }
}

@Suite("Alert evaluation")
struct AlertEvaluatorTests {
    static func row(_ creator: String?, _ start: Int64, spend: Int64, revenue: Int64, tier: String? = nil) -> Row {
        var figures = Aggregate()
        figures.spend = spend * Micros.one
        figures.revenue = revenue * Micros.one
        return Row(windowStart: start, windowEnd: start + hour, creator: creator, campaign: nil, figures: figures, tier: tier, isFinal: true)
    }

    @Test("fires on the Nth consecutive matching window, resolves on the first that no longer matches")
    func firesAndResolves() throws {
        var evaluator = AlertEvaluator(rules: [try AlertRule("roas < 1 for 2 windows")], slide: hour)
        #expect(evaluator.observe(Self.row("@a", t0, spend: 10, revenue: 5)).isEmpty)
        #expect(evaluator.observe(Self.row("@b", t0, spend: 10, revenue: 5)).isEmpty)
        let fired = evaluator.observe(Self.row("@a", t0 + hour, spend: 10, revenue: 2))
        #expect(fired.map(\.state) == [.firing] && fired[0].firstWindowStart == t0 && fired[0].row.windowStart == t0 + hour)
        #expect(evaluator.firing.count == 1)
        // Still matching: no new alert.
        #expect(evaluator.observe(Self.row("@a", t0 + 2 * hour, spend: 10, revenue: 1)).isEmpty)
        let resolved = evaluator.observe(Self.row("@a", t0 + 3 * hour, spend: 10, revenue: 30))
        #expect(resolved.map(\.state) == [.resolved] && resolved[0].id == fired[0].id)
        #expect(evaluator.firing.isEmpty)
        // @b skipped a window: its count starts again.
        #expect(evaluator.observe(Self.row("@b", t0 + 2 * hour, spend: 10, revenue: 5)).isEmpty)
        #expect(evaluator.observe(Self.row("@b", t0 + 3 * hour, spend: 10, revenue: 5)).map(\.state) == [.firing])
        // A live row of a first matching window does not complete a count of 2: not even pending.
        var live = Self.row("@c", t0, spend: 10, revenue: 0)
        live.isFinal = false
        #expect(evaluator.observe(live).isEmpty)
    }

    static func live(_ creator: String, _ start: Int64, spend: Int64, revenue: Int64) -> Row {
        var row = Self.row(creator, start, spend: spend, revenue: revenue)
        row.isFinal = false
        return row
    }

    @Test("a live row that would complete the count is pending, once per window, with the id it then fires with")
    func pendingOnLiveRows() throws {
        var evaluator = AlertEvaluator(rules: [try AlertRule("roas < 1 for 2 windows")], slide: hour)
        #expect(evaluator.observe(Self.row("@a", t0, spend: 10, revenue: 5)).isEmpty)
        // The next window, still open, matches: pending (once, however many live updates).
        let pending = evaluator.observe(Self.live("@a", t0 + hour, spend: 10, revenue: 2))
        #expect(pending.map(\.state) == [.pending] && pending[0].firstWindowStart == t0)
        #expect(evaluator.observe(Self.live("@a", t0 + hour, spend: 10, revenue: 3)).isEmpty)
        #expect(evaluator.pending.values.map(\.row.figures.revenue) == [3 * Micros.one])
        // It stops matching: no longer pending (silently), then matches again: pending again.
        #expect(evaluator.observe(Self.live("@a", t0 + hour, spend: 10, revenue: 20)).isEmpty)
        #expect(evaluator.pending.isEmpty)
        #expect(evaluator.observe(Self.live("@a", t0 + hour, spend: 20, revenue: 2)).map(\.state) == [.pending])
        // The window closes matching: it fires with the pending id, and is no longer pending.
        let fired = evaluator.observe(Self.row("@a", t0 + hour, spend: 20, revenue: 2))
        #expect(fired.map(\.state) == [.firing] && fired[0].id == pending[0].id)
        #expect(evaluator.pending.isEmpty)
        // Firing: live rows of later windows are not pending.
        #expect(evaluator.observe(Self.live("@a", t0 + 2 * hour, spend: 10, revenue: 1)).isEmpty)
        // A window two slides after the last final one does not continue the run.
        var other = AlertEvaluator(rules: [try AlertRule("roas < 1 for 2 windows"), try AlertRule("spend > 5")], slide: hour)
        #expect(other.observe(Self.row("@b", t0, spend: 4, revenue: 1)).isEmpty)
        #expect(other.observe(Self.live("@b", t0 + 2 * hour, spend: 4, revenue: 1)).isEmpty)
        // A one-window rule is pending on any matching live row; the window closing without a match ends it.
        #expect(other.observe(Self.live("@b", t0 + 2 * hour, spend: 6, revenue: 1)).map(\.rule) == ["spend > 5"])
        #expect(other.observe(Self.row("@b", t0 + 2 * hour, spend: 4, revenue: 1)).isEmpty)
        #expect(other.pending.isEmpty)
    }

    @Test("ids are stable for rule, key and first window, and differ otherwise")
    func ids() throws {
        func run() throws -> [String] {
            var evaluator = AlertEvaluator(rules: [try AlertRule("spend > 5"), try AlertRule("spend > 6")], slide: hour)
            var ids: [String] = []
            for row in [
                Self.row("@a", t0, spend: 10, revenue: 0), Self.row("@a", t0 + hour, spend: 1, revenue: 0),
                Self.row("@a", t0 + 2 * hour, spend: 10, revenue: 0), Self.row(nil, t0, spend: 10, revenue: 0, tier: "micro"),
                Self.row(nil, t0, spend: 10, revenue: 0, tier: "mega"),
            ] {
                ids += evaluator.observe(row).map { "\($0.id) \($0.state)" }
            }
            return ids
        }
        let first = try run()
        #expect(first == (try run()))
        let firing = first.filter { $0.hasSuffix("firing") }.map { $0.prefix(18) }
        #expect(firing.count == 8 && Set(firing).count == 8, "\(first)")
        #expect(first.allSatisfy { $0.range(of: #"^a-[0-9a-f]{16} "#, options: .regularExpression) != nil })
    }
}
