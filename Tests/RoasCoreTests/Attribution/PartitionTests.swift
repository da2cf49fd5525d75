import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// The partitions (`--partitions P`) and the workers that keep them (`--workers W`) change where
/// touches live and which thread appends and looks them up, never what roas computes: every W
/// from 1 to 8 and P in {1, 2, 16, 64} with W <= P must give the rows, dead letters and counts of
/// one partition on one thread, on streams built to cross partitions.
@Suite("Partitions and workers")
struct PartitionTests {
    /// A stream whose identities are linked across partitions: each person has a "tt:", an "amz:"
    /// and a "web:" id, linked in chains (tt-amz, then amz-web, some only later in the stream), and
    /// buys under any of them; with refunds (some in later windows, some of unknown orders or too
    /// large), duplicate orders and resent events, spend, engagements, sign-ups, creator profiles,
    /// malformed lines, ids of up to 70 bytes, ties on time, and arrival within the lateness or, for
    /// 2%, after it (late). `hugeAmounts`: purchases and spend up to 10^12, to reach the overflow
    /// limits of hopping windows.
    static func lines(seed: UInt64, count: Int, lateness: Int64, hugeAmounts: Bool) -> [String] {
        var random = SplitMix64(seed: seed)
        let start = t0
        var times = (0..<count).map { _ in start + Int64(random.int(0..<Int(6 * hour))) }
        times = times.map { random.chance(0.25) ? $0 - $0 % (10 * second) : $0 }
        times.sort()
        var events: [(time: Int64, line: String)] = []
        var orders = 0
        func alias(_ person: Int, _ random: inout SplitMix64) -> String {
            ["tt:", "amz:", "web:"][random.int(0..<3)] + "\(person)"
        }
        func amount(_ random: inout SplitMix64) -> String {
            if hugeAmounts && random.chance(0.3) { return "\(random.int(1...1_000_000))000000" }
            return "\(random.int(1..<300)).\(random.int(10..<100))"
        }
        for (index, time) in times.enumerated() {
            let id = random.chance(0.3) ? "partition-test-\(seed)-\(index)-" + String(repeating: "y", count: random.int(0...40)) : "e\(index)"
            let person = random.int(0..<40)
            let creator = "@c\(random.int(0..<9))"
            let campaign: String? = random.chance(0.5) ? "k\(random.int(0..<3))" : nil
            let line: String
            switch random.int(0..<100) {
            case 0..<40: line = Line.view(id, time, user: alias(person, &random), creator: creator, campaign: campaign)
            case 40..<62: line = Line.click(id, time, user: alias(person, &random), creator: creator, campaign: campaign)
            case 62..<72:
                orders += 1
                let order = random.chance(0.08) ? "o\(max(1, orders - 1))" : "o\(orders)"
                line = Line.purchase(
                    id, time, user: alias(person, &random), order: order, amount: amount(&random),
                    currency: random.pick(["USD", "EUR"]))
            case 72..<77:
                // Some refund orders of hours before (other windows), some unknown, some too large.
                let order = "o\(max(1, orders - random.int(0...30)))"
                line = Line.refund(id, time, order: random.chance(0.05) ? "nope\(index)" : order, amount: amount(&random))
            case 77..<83:
                // Chains: tt-amz early, amz-web any time, now and then a person to another.
                let other = random.chance(0.15) ? random.int(0..<40) : person
                line =
                    random.chance(0.5)
                    ? Line.link(id, time, user: "tt:\(person)", linked: "amz:\(other)")
                    : Line.link(id, time, user: "amz:\(person)", linked: "web:\(other)")
            case 83..<88: line = Line.spend(id, time, creator: creator, amount: amount(&random), campaign: campaign)
            case 88..<91: line = Line.engagement(id, time, user: alias(person, &random), creator: creator, campaign: campaign)
            case 91..<94: line = Line.signup(id, time, user: alias(person, &random))
            case 94..<96: line = Line.profile(id, time, creator: creator, followers: random.pick([500, 20_000, 2_000_000]))
            case 96..<97: line = "{\"type\":\"click\",broken"
            default:
                line = events.isEmpty ? Line.spend(id, time, creator: creator, amount: "1") : events[max(0, events.count - random.int(1...30))].line
            }
            events.append((time, line))
        }
        let arrivals = events.map { event -> Int64 in
            random.chance(0.02)
                ? event.time + 3 * lateness + 1000 : event.time + Int64(random.int(0..<Int(max(1, lateness))))
        }
        return arrivals.indices.sorted { arrivals[$0] != arrivals[$1] ? arrivals[$0] < arrivals[$1] : $0 < $1 }
            .map { events[$0].line }
    }

    /// What a run gives: rows (live updates included), dead letters and the statistics.
    struct Outcome {
        var rows: [String]
        var deadLetters: [String]
        var statistics: Statistics
    }

    /// Runs `lines` through an engine, handing the partitions their work every `flushEvery` lines
    /// (as `roas run` does at each chunk's end) and asking for live updates every 400 lines.
    /// After the lines at which `restoresAfter` is true, the engine is settled, snapshotted and
    /// replaced by one decoded from the snapshot. `adjust` is called with the engine after each line.
    static func run(
        _ lines: [String], configuration: EngineConfiguration, flushEvery: Int, restoresAfter: (Int) -> Bool = { _ in false },
        adjust: (Int, inout Engine) -> Void = { _, _ in }
    ) throws -> Outcome {
        var driver = EngineDriver(configuration: configuration)
        for (index, line) in lines.enumerated() {
            driver.feed(Array(line.utf8), number: index + 1, batch: index % 3 == 0 ? "b\(index / 50)" : nil)
            if index % flushEvery == flushEvery - 1 { driver.engine.flushPartitions() }
            if index % 400 == 399 { driver.emitUpdates() }
            if restoresAfter(index) {
                driver.engine.settle()
                driver.engine = try Engine(snapshot: driver.engine.snapshot(), configuration: configuration)
            }
            adjust(index, &driver.engine)
        }
        driver.finish()
        return Outcome(rows: driver.rowText, deadLetters: driver.deadLetterText, statistics: driver.engine.statistics)
    }

    /// Runs `lines` under each layout (`base` with its workers and partitions replaced) and
    /// expects the outcome of `expected`.
    static func expectSame(
        _ lines: [String], base: EngineConfiguration, layouts: [(workers: Int, partitions: Int)], flushEvery: Int,
        as expected: Outcome, _ label: String
    ) throws {
        for (workers, partitions) in layouts {
            var configuration = base
            configuration.partitions = partitions
            configuration.workers = workers
            Self.expectSame(
                try Self.run(lines, configuration: configuration, flushEvery: flushEvery), expected,
                "\(label)--workers \(workers) --partitions \(partitions), flushed every \(flushEvery)")
        }
    }

    /// The option sets the streams run under: every model, hopping windows, `--by creator,campaign`
    /// and `--by tier`, short lookbacks, several models at once.
    static func configuration(_ variant: Int) -> EngineConfiguration {
        var configuration = EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1]))
        configuration.lateness = [0, 2 * second, 30 * second, minute][variant % 4]
        switch variant % 7 {
        case 0: configuration.model = .lastTouch
        case 1:
            configuration.model = .linear
            configuration.byCampaign = true
        case 2:
            configuration.model = .firstTouch
            configuration.window = 2 * hour
            configuration.slide = 30 * minute
        case 3:
            configuration.model = .timeDecay
            configuration.halfLife = 20 * minute
            configuration.clickLookback = 40 * minute
        case 4:
            configuration.model = .position
            configuration.byTier = true
        case 5:
            configuration.models = AttributionModel.allCases
            configuration.labelsModels = true
            configuration.byCampaign = true
            configuration.viewLookback = 15 * minute
        default:
            configuration.models = [.lastTouch, .linear]
            configuration.labelsModels = true
            configuration.window = 90 * minute
            configuration.slide = 15 * minute
        }
        return configuration
    }

    static let layouts: [(workers: Int, partitions: Int)] = {
        var layouts: [(Int, Int)] = []
        for partitions in [1, 2, 16, 64] {
            for workers in 1...8 where workers <= partitions { layouts.append((workers, partitions)) }
        }
        return layouts
    }()

    static func expectSame(_ outcome: Outcome, _ expected: Outcome, _ label: String) {
        #expect(outcome.rows.count == expected.rows.count, "\(label): row count")
        if let first = zip(outcome.rows, expected.rows).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("\(label): row \(first.offset) differs:\n\(first.element.0)\n\(first.element.1)")
        }
        #expect(outcome.deadLetters == expected.deadLetters, "\(label): dead letters")
        #expect(outcome.statistics == expected.statistics, "\(label): counts")
    }

    @Test(arguments: 0..<14 as Range<Int>)
    func everyLayoutGivesTheRowsOfOnePartitionOnOneThread(variant: Int) throws {
        var base = Self.configuration(variant)
        let lines = Self.lines(seed: UInt64(variant) &* 7919 &+ 3, count: 2500, lateness: base.lateness, hugeAmounts: false)
        base.partitions = 1
        base.workers = 1
        let expected = try Self.run(lines, configuration: base, flushEvery: 1)
        // The stream exercises what it is built for.
        #expect(expected.statistics.acceptedEvents[Int(EventKind.purchase.rawValue)] > 100)
        #expect(expected.statistics.acceptedEvents[Int(EventKind.link.rawValue)] > 50)
        #expect(expected.statistics.deadLetters(.late) > 0 && expected.statistics.deadLetters(.duplicate) > 0)
        // Purchases credited to creators (or their tiers), not only to the unattributed row.
        #expect(
            expected.rows.contains { row in
                !row.contains("\"conversions\":0,")
                    && (!row.contains("\"creator\":null") || ["nano", "micro", "macro", "mega"].contains { row.contains("\"tier\":\"\($0)\"") })
            })
        for layout in Self.layouts {
            try Self.expectSame(
                lines, base: base, layouts: [layout], flushEvery: [1, 7, 64, 1000][(layout.workers + layout.partitions) % 4],
                as: expected, "variant \(variant), ")
        }
    }

    /// Amounts near the limits of hopping windows (a pane holds at most Int64.max / 600 micro-units
    /// here): purchases that surely fit are credited later on workers, the others after waiting
    /// for the workers, and the overflows rejected must be the same ones.
    @Test(arguments: 0..<4 as Range<Int>)
    func overflowsAreTheSameOnEveryLayout(variant: Int) throws {
        var base = Self.configuration(variant * 2)
        base.window = 600 * minute
        base.slide = minute
        let lines = Self.lines(seed: UInt64(variant) &+ 101, count: 2000, lateness: base.lateness, hugeAmounts: true)
        base.partitions = 1
        base.workers = 1
        let expected = try Self.run(lines, configuration: base, flushEvery: 1)
        #expect(expected.statistics.deadLetters(.overflow) > 0, "variant \(variant): no overflow to compare")
        try Self.expectSame(
            lines, base: base, layouts: [(2, 2), (3, 16), (8, 64), (1, 16)], flushEvery: 50, as: expected,
            "variant \(variant), ")
    }

    /// Purchases of 6 * 10^9 in the same minute panes, a pane holding at most about 1.5 * 10^10
    /// (600 panes a window): the third in a pane overflows. With workers, a purchase is accepted
    /// ahead of its credits only when it fits its pane's total, which a restored engine must
    /// rebuild from its windows: restored every 7 lines, the same purchases must overflow.
    @Test func overflowBoundsSurviveSnapshots() throws {
        var configuration = EngineConfiguration()
        configuration.window = 600 * minute
        configuration.slide = minute
        var lines: [String] = []
        for index in 0..<240 {
            let time = t0 + Int64(index / 8) * minute + Int64(index % 8) * second
            let user = "u\(index % 5)"
            if index % 2 == 0 {
                lines.append(Line.click("k\(index)", time, user: user, creator: "@c"))
            } else {
                lines.append(Line.purchase("p\(index)", time, user: user, order: "o\(index)", amount: "6000000000"))
            }
        }
        configuration.partitions = 1
        let expected = try Self.run(lines, configuration: configuration, flushEvery: 1)
        #expect(expected.statistics.deadLetters(.overflow) > 10)
        #expect(expected.statistics.accepted(.purchase) > 10)
        configuration.partitions = 16
        configuration.workers = 3
        let restored = try Self.run(lines, configuration: configuration, flushEvery: 1_000_000) { $0 % 7 == 6 }
        #expect(restored.rows == expected.rows)
        #expect(restored.deadLetters == expected.deadLetters)
        #expect(restored.statistics == expected.statistics)
    }

    /// `--max-keys` counts the same keys whatever the layout.
    @Test func theKeyLimitIsTheSameOnEveryLayout() throws {
        var base = Self.configuration(0)
        base.maximumKeys = 60
        let lines = Self.lines(seed: 77, count: 1500, lateness: base.lateness, hugeAmounts: false)
        base.partitions = 1
        let expected = try Self.run(lines, configuration: base, flushEvery: 1)
        #expect(expected.statistics.deadLetters(.tooManyKeys) > 0)
        try Self.expectSame(lines, base: base, layouts: [(2, 16), (4, 4), (7, 64)], flushEvery: 20, as: expected, "")
    }

    /// Paged tables (`roas serve --data-dir`) give the rows, dead letters and counts of tables in one
    /// array, through snapshots restored into either, and write the same snapshot bytes.
    @Test(arguments: 0..<14 as Range<Int>)
    func pagedStateGivesTheSameOutputAndSnapshots(variant: Int) throws {
        let base = Self.configuration(variant)
        let lines = Self.lines(seed: UInt64(variant) &* 104_729 &+ 11, count: 2000, lateness: base.lateness, hugeAmounts: false)
        var paged = base
        paged.pagedState = true
        let expected = try Self.run(lines, configuration: base, flushEvery: 64)
        Self.expectSame(try Self.run(lines, configuration: paged, flushEvery: 64), expected, "variant \(variant), paged")
        Self.expectSame(
            try Self.run(lines, configuration: paged, flushEvery: 64) { $0 % 700 == 350 }, expected,
            "variant \(variant), paged, restored every 700 lines")
        var flat = EngineDriver(configuration: base)
        var pages = EngineDriver(configuration: paged)
        for (index, line) in lines.prefix(1200).enumerated() {
            flat.feed(Array(line.utf8), number: index + 1)
            pages.feed(Array(line.utf8), number: index + 1)
        }
        flat.engine.settle()
        pages.engine.settle()
        let snapshot = flat.engine.snapshot()
        #expect(pages.engine.snapshot() == snapshot, "variant \(variant): the same snapshot bytes")
        #expect(pages.engine.admission.dedupIsPaged && !flat.engine.admission.dedupIsPaged)
        #expect(pages.engine.users.isPaged && !flat.engine.users.isPaged)
        // Paged midway (as `roas serve --data-dir` after its replay), and back.
        var pagedAtEnd = false
        let switched = try Self.run(
            lines, configuration: base, flushEvery: 64,
            adjust: { index, engine in
                if index == 700 || index == 1700 { engine.setPagedState(true) }
                if index == 1500 { engine.setPagedState(false) }
                pagedAtEnd = engine.admission.dedupIsPaged && engine.configuration.pagedState
            })
        #expect(pagedAtEnd)
        Self.expectSame(switched, expected, "variant \(variant), paged midway")
        // A copy held from line 400 to 1,400, as a checkpoint being written holds one: ids go beside
        // the dedup pages it shares, then into them once it is gone. The same output; the copy unchanged.
        var held: (engine: Engine, snapshot: [UInt8])? = nil
        var mostBeside = 0
        var besideAtEnd = -1
        var userPagesCopied = 0
        let withCopy = try Self.run(
            lines, configuration: paged, flushEvery: 64,
            adjust: { index, engine in
                if index == 400 {
                    engine.settle()
                    held = (engine, engine.snapshot())
                }
                mostBeside = max(mostBeside, engine.admission.dedupOverlayCount)
                if index == 1400, let copy = held {
                    #expect(copy.engine.snapshot() == copy.snapshot, "variant \(variant): the copy did not change")
                    held = nil
                }
                besideAtEnd = engine.admission.dedupOverlayCount
                userPagesCopied = engine.users.pagesCopied
            })
        // New users while the copy was held copied the user interner's pages they wrote to.
        #expect(userPagesCopied > 0)
        #expect(mostBeside > 100 && besideAtEnd == 0, "variant \(variant): \(mostBeside) ids beside, \(besideAtEnd) at the end")
        Self.expectSame(withCopy, expected, "variant \(variant), paged, a copy held")
        let restored = try Engine(snapshot: snapshot, configuration: paged)
        #expect(restored.admission.dedupIsPaged && restored.users.isPaged)
        #expect(restored.snapshot() == snapshot, "read into pages")
    }

    /// A snapshot of an engine with workers, taken mid-stream, continues to the same rows; one
    /// taken with other partitions is refused, naming the flag.
    @Test func snapshotsKeepThePartitions() throws {
        var configuration = Self.configuration(5)
        let lines = Self.lines(seed: 5, count: 1500, lateness: configuration.lateness, hugeAmounts: false)
        configuration.partitions = 16
        configuration.workers = 3
        let expected = try Self.run(lines, configuration: configuration, flushEvery: 10)
        let restored = try Self.run(lines, configuration: configuration, flushEvery: 10) { $0 % 500 == 250 }
        #expect(restored.rows == expected.rows)
        #expect(restored.deadLetters == expected.deadLetters)

        var driver = EngineDriver(configuration: configuration)
        for (index, line) in lines.prefix(300).enumerated() { driver.feed(Array(line.utf8), number: index + 1) }
        driver.engine.settle()
        let snapshot = driver.engine.snapshot()
        var other = configuration
        other.partitions = 4
        other.workers = 1
        #expect(throws: SnapshotError.configurationMismatch("--partitions 16 in the snapshot, 4 now")) {
            try Engine(snapshot: snapshot, configuration: other)
        }
    }

    @Test func badLayoutsAreRefusedNamingTheFlag() {
        for (workers, partitions, message) in [
            (1, 0, "--partitions must be a power of two from 1 to 1024, not 0"),
            (1, 12, "--partitions must be a power of two from 1 to 1024, not 12"),
            (1, 2048, "--partitions must be a power of two from 1 to 1024, not 2048"),
            (0, 16, "--workers must be at least 1, not 0"),
            (5, 4, "--workers 5 is more than --partitions 4: each worker needs a partition"),
        ] {
            var configuration = EngineConfiguration()
            configuration.workers = workers
            configuration.partitions = partitions
            #expect { try configuration.validate() } throws: { ($0 as? RoasError)?.message == message }
        }
    }
}
