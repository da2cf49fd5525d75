import Testing

@testable import RoasCore

@Suite("--models: every model side by side in one pass")
struct ModelsTests {
    /// The options a case varies, from its seed.
    static func configuration(seed: UInt64) -> EngineConfiguration {
        var configuration = EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1, "GBP": 1.25]))
        configuration.halfLife = 90 * minute
        configuration.byCampaign = seed % 2 == 0
        configuration.byTier = seed % 4 == 1
        configuration.window = [hour, 2 * hour, 30 * minute][Int(seed % 3)]
        configuration.slide = seed % 5 == 2 ? configuration.window / 2 : configuration.window
        configuration.lateness = [20 * second, minute, 2 * minute][Int(seed % 3)]
        if seed % 3 == 1 {
            configuration.clickLookback = 30 * minute
            configuration.viewLookback = 10 * minute
        }
        return configuration
    }

    /// The models of a case: all five, or a shuffled subset (the order of `--models` is the order of rows).
    static func models(seed: UInt64) -> [AttributionModel] {
        if seed % 3 == 0 { return AttributionModel.allCases }
        var random = SplitMix64(seed: seed, case: 9)
        var models = AttributionModel.allCases.shuffled(using: &random)
        models.removeLast(random.int(0..<4))
        return models
    }

    /// One engine with `--models` against one engine per model, fed the same lines with the same live
    /// updates and idle closes: each model's rows (final and live), with the `model` field removed,
    /// are those of its own run, in the same order; dead letters and event counts are the same.
    @Test(arguments: 0..<18 as Range<UInt64>)
    func eachModelGivesTheRowsOfItsOwnRun(seed: UInt64) throws {
        let models = Self.models(seed: seed)
        var configuration = Self.configuration(seed: seed)
        configuration.models = models
        configuration.labelsModels = true
        try configuration.validate()
        let items = SnapshotStream.make(seed: seed + 100, count: 1500, start: t0, span: 4 * hour, lateness: configuration.lateness)
        var together = EngineDriver(configuration: configuration)
        var alone = models.map { model in
            var single = configuration
            single.model = model
            return EngineDriver(configuration: single)
        }
        together.engine.trackUpdates(true)
        for index in alone.indices { alone[index].engine.trackUpdates(true) }
        for (index, item) in items.enumerated() {
            together.feed(item.line, number: index + 1, batch: item.batch)
            for driver in alone.indices { alone[driver].feed(item.line, number: index + 1, batch: item.batch) }
            if index % 89 == 88 {
                together.emitUpdates()
                for driver in alone.indices { alone[driver].emitUpdates() }
            }
            if index % 601 == 600 {
                let time = together.engine.watermark + 1
                together.advanceIdle(to: time)
                for driver in alone.indices { alone[driver].advanceIdle(to: time) }
            }
        }
        together.finish()
        for driver in alone.indices { alone[driver].finish() }

        for (position, model) in models.enumerated() {
            let own = together.rows.filter { $0.model == model.rawValue }.map { row -> Row in
                var row = row
                row.model = nil
                return row
            }
            let expected = alone[position].rows
            #expect(own.count == expected.count, "seed \(seed) \(model.rawValue): \(own.count) rows, \(expected.count) alone")
            if let first = zip(own, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
                Issue.record("seed \(seed) \(model.rawValue): row \(first.offset) differs:\n\(first.element.0.json)\n\(first.element.1.json)")
            }
            #expect(together.deadLetterText == alone[position].deadLetterText, "seed \(seed) \(model.rawValue)")
            #expect(together.engine.statistics.acceptedEvents == alone[position].engine.statistics.acceptedEvents)
            #expect(together.engine.statistics.deadLetters == alone[position].engine.statistics.deadLetters)
        }
        #expect(together.rows.allSatisfy { $0.model != nil })
        #expect(together.rows.contains { !$0.isFinal }, "seed \(seed): no live update")
        #expect(together.rows.contains { $0.figures.refunds > 0 && $0.isFinal })
        // Row order: window, then model in the order listed, then as a single model orders them.
        let keys = together.rows.filter(\.isFinal).map {
            ($0.windowStart, models.firstIndex(of: AttributionModel(rawValue: $0.model!)!)!)
        }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 <= $1 }, "seed \(seed): final rows out of order")
        if models.count > 1 && models.contains(.lastTouch) && models.contains(.linear) {
            // The models do disagree somewhere, or the comparison above proves little.
            let last = together.rows.filter { $0.model == "last-touch" && $0.isFinal }.map(\.figures)
            let linear = together.rows.filter { $0.model == "linear" && $0.isFinal }.map(\.figures)
            #expect(last != linear, "seed \(seed): last-touch and linear gave the same rows")
        }
    }

    /// Every model credits each purchase once: revenue, refunds and conversions add up to the same
    /// totals under every model, and views, clicks, spend and reach are the same row for row where a
    /// key has a row under both.
    @Test func sharedFiguresAreTheSameUnderEveryModel() throws {
        var configuration = Self.configuration(seed: 3)
        configuration.models = AttributionModel.allCases
        configuration.labelsModels = true
        let items = SnapshotStream.make(seed: 42, count: 3000, start: t0, span: 5 * hour, lateness: configuration.lateness)
        var driver = EngineDriver(configuration: configuration)
        for (index, item) in items.enumerated() { driver.feed(item.line, number: index + 1, batch: item.batch) }
        driver.finish()
        var totals: [String: (revenue: Int64, refunds: Int64, conversions: Int64)] = [:]
        var shared: [String: [String: String]] = [:]
        for row in driver.rows {
            let model = row.model!
            var total = totals[model] ?? (0, 0, 0)
            total.revenue += row.figures.revenue
            total.refunds += row.figures.refunds
            total.conversions += row.figures.conversions
            totals[model] = total
            let f = row.figures
            shared[model, default: [:]]["\(row.windowStart) \(row.creator ?? "-") \(row.campaign ?? "-")"] =
                "views \(f.views) clicks \(f.clicks) spend \(f.spend) engagements \(f.engagements) reach \(row.reach)"
        }
        #expect(totals.count == 5)
        #expect(Set(totals.values.map(\.revenue)).count == 1, "\(totals)")
        #expect(Set(totals.values.map(\.refunds)).count == 1, "\(totals)")
        #expect(Set(totals.values.map(\.conversions)).count == 1, "\(totals)")
        let reference = shared["last-touch"]!
        let zero = "views 0 clicks 0 spend 0 engagements 0 reach 0"
        var compared = 0
        for (model, rows) in shared {
            for (key, figures) in rows {
                // A key credited under one model only has a row there with no shared figures.
                guard let other = reference[key], figures != zero, other != zero else { continue }
                #expect(figures == other, "\(model) \(key)")
                compared += 1
            }
        }
        #expect(compared > 100)
    }

    @Test func optionsAreChecked() {
        var configuration = EngineConfiguration()
        configuration.models = [.linear, .linear]
        configuration.labelsModels = true
        #expect(throws: RoasError.self) { try configuration.validate() }
        configuration.models = []
        #expect(throws: RoasError.self) { try configuration.validate() }
        configuration.models = [.linear, .position]
        configuration.labelsModels = false
        #expect(throws: RoasError.self) { try configuration.validate() }
        configuration.labelsModels = true
        #expect(throws: Never.self) { try configuration.validate() }
        // Setting one model is `--model`: unlabelled rows.
        configuration.model = .firstTouch
        #expect(configuration.models == [.firstTouch] && !configuration.labelsModels)
    }

    /// A checkpoint records the models; restoring it under other models names both.
    @Test func snapshotsRecordTheModels() throws {
        var configuration = EngineConfiguration()
        configuration.models = [.linear, .lastTouch]
        configuration.labelsModels = true
        var driver = EngineDriver(configuration: configuration)
        let items = SnapshotStream.make(seed: 5, count: 300, start: t0, span: hour, lateness: configuration.lateness)
        for (index, item) in items.enumerated() { driver.feed(item.line, number: index + 1, batch: item.batch) }
        let bytes = driver.engine.snapshot()
        #expect(try Engine(snapshot: bytes, configuration: configuration).snapshot() == bytes)
        var other = configuration
        other.models = [.lastTouch, .linear]
        do {
            _ = try Engine(snapshot: bytes, configuration: other)
            Issue.record("restored under other models")
        } catch SnapshotError.configurationMismatch(let message) {
            #expect(message.contains("--models linear,last-touch in the snapshot, --models last-touch,linear now"), "\(message)")
        }
        other.model = .linear
        do {
            _ = try Engine(snapshot: bytes, configuration: other)
            Issue.record("restored under --model")
        } catch SnapshotError.configurationMismatch(let message) {
            #expect(message.contains("--models linear,last-touch in the snapshot, --model linear now"), "\(message)")
        }
    }
}
