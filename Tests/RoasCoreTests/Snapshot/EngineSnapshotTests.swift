import RoasGen
import Testing

@testable import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Engine snapshots")
struct EngineSnapshotTests {
    /// One round-trip case: a seed and the options that shape the state.
    struct Case: Sendable, CustomStringConvertible {
        var seed: UInt64
        var model: AttributionModel
        var byCampaign: Bool
        var window: Int64
        var slide: Int64
        var lateness: Int64
        var keepsDeadLetters: Bool
        var tracksUpdates: Bool
        var shortLookbacks: Bool
        /// `--models` (with `model` unused), or nil for `--model`.
        var models: [AttributionModel]? = nil

        var description: String {
            let window = "\(DurationText.text(self.window))/\(DurationText.text(self.slide))"
            let model = self.models.map { "models " + $0.map(\.rawValue).joined(separator: ",") } ?? self.model.rawValue
            return "seed \(self.seed) \(model) byCampaign \(self.byCampaign) window \(window)"
                + " lateness \(DurationText.text(self.lateness)) deadLetters \(self.keepsDeadLetters)"
                + " updates \(self.tracksUpdates) shortLookbacks \(self.shortLookbacks)"
        }

        var configuration: EngineConfiguration {
            var configuration = EngineConfiguration(
                currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1, "GBP": 1.25]))
            configuration.model = self.model
            if let models = self.models {
                configuration.models = models
                configuration.labelsModels = true
            }
            configuration.halfLife = 2 * hour
            configuration.byCampaign = self.byCampaign
            // --by tier on a few cases: rolled-up rows and live updates across a snapshot.
            configuration.byTier = self.seed % 3 == 0
            configuration.window = self.window
            configuration.slide = self.slide
            configuration.lateness = self.lateness
            configuration.keepsDeadLetters = self.keepsDeadLetters
            if self.shortLookbacks {
                // Touches and id chunks are evicted while the stream runs; the dedup table forgets too.
                configuration.clickLookback = 30 * minute
                configuration.viewLookback = 10 * minute
                configuration.dedupHorizon = 20 * minute
            }
            return configuration
        }
    }

    static let cases: [Case] = [
        Case(
            seed: 1, model: .lastTouch, byCampaign: false, window: hour, slide: hour, lateness: 30 * second,
            keepsDeadLetters: true, tracksUpdates: false, shortLookbacks: false),
        Case(
            seed: 2, model: .firstTouch, byCampaign: true, window: 2 * hour, slide: 30 * minute, lateness: 20 * second,
            keepsDeadLetters: true, tracksUpdates: true, shortLookbacks: false),
        Case(
            seed: 3, model: .linear, byCampaign: true, window: 30 * minute, slide: 30 * minute, lateness: minute,
            keepsDeadLetters: false, tracksUpdates: false, shortLookbacks: true),
        Case(
            seed: 4, model: .timeDecay, byCampaign: false, window: hour, slide: 20 * minute, lateness: 45 * second,
            keepsDeadLetters: true, tracksUpdates: true, shortLookbacks: true),
        Case(
            seed: 5, model: .position, byCampaign: true, window: hour, slide: hour, lateness: 10 * second,
            keepsDeadLetters: true, tracksUpdates: false, shortLookbacks: false),
        Case(
            seed: 6, model: .lastTouch, byCampaign: true, window: 3 * hour, slide: hour, lateness: 2 * minute,
            keepsDeadLetters: false, tracksUpdates: true, shortLookbacks: true),
        Case(
            seed: 7, model: .linear, byCampaign: false, window: hour, slide: 15 * minute, lateness: 30 * second,
            keepsDeadLetters: true, tracksUpdates: true, shortLookbacks: false),
        Case(
            seed: 8, model: .position, byCampaign: false, window: 30 * minute, slide: 10 * minute, lateness: 5 * second,
            keepsDeadLetters: true, tracksUpdates: false, shortLookbacks: true),
        Case(
            seed: 9, model: .timeDecay, byCampaign: true, window: 2 * hour, slide: 2 * hour, lateness: minute,
            keepsDeadLetters: false, tracksUpdates: false, shortLookbacks: false),
        Case(
            seed: 10, model: .firstTouch, byCampaign: false, window: hour, slide: 30 * minute, lateness: 90 * second,
            keepsDeadLetters: true, tracksUpdates: true, shortLookbacks: true),
        Case(
            seed: 11, model: .lastTouch, byCampaign: true, window: hour, slide: 20 * minute, lateness: 30 * second,
            keepsDeadLetters: true, tracksUpdates: true, shortLookbacks: false, models: AttributionModel.allCases),
        Case(
            seed: 12, model: .lastTouch, byCampaign: false, window: hour, slide: hour, lateness: minute,
            keepsDeadLetters: false, tracksUpdates: true, shortLookbacks: true, models: [.position, .lastTouch]),
    ]

    // MARK: Round trips

    /// Engine A reads the stream uninterrupted; engine B is snapshotted at four or more points (each
    /// while events are pending and windows are open), decoded into a new engine that reads on.
    /// Rows, dead letters, statistics and the final state must be identical.
    @Test(arguments: Self.cases)
    func continuingFromSnapshotsGivesTheSameOutput(_ testCase: Case) throws {
        let configuration = testCase.configuration
        let items = SnapshotStream.make(
            seed: testCase.seed, count: 2000, start: t0, span: 5 * hour, lateness: testCase.lateness)
        var a = EngineDriver(configuration: configuration)
        var b = EngineDriver(configuration: configuration)
        a.engine.trackUpdates(testCase.tracksUpdates)
        b.engine.trackUpdates(testCase.tracksUpdates)
        var random = SplitMix64(seed: testCase.seed, case: 1)
        let cuts = Set((0..<5).map { _ in random.int(100..<(items.count - 100)) })
        var wantsCut = false
        var taken = 0
        var changedAtCut = 0
        for (index, item) in items.enumerated() {
            a.feed(item.line, number: index + 1, batch: item.batch)
            b.feed(item.line, number: index + 1, batch: item.batch)
            if testCase.tracksUpdates && index % 97 == 96 {
                a.emitUpdates()
                b.emitUpdates()
            }
            if index % 701 == 700 {
                // An idle close a little past the watermark, as `roas serve --idle-close` does.
                let time = a.engine.watermark + 1
                a.advanceIdle(to: time)
                b.advanceIdle(to: time)
            }
            if cuts.contains(index) { wantsCut = true }
            if wantsCut && b.engine.pending.count > 0 && b.engine.windows.paneCount > 0 {
                let bytes = b.engine.snapshot()
                let decoded = try Engine(snapshot: bytes, configuration: configuration)
                Self.expectSameBytes(decoded.snapshot(), bytes, "\(testCase): a decoded engine")
                if !b.engine.windows.changed.isEmpty { changedAtCut += 1 }
                b.engine = decoded
                taken += 1
                wantsCut = false
            }
        }
        #expect(taken >= 4, "\(testCase): only \(taken) cuts found pending events and open windows")
        if testCase.tracksUpdates { #expect(changedAtCut > 0, "\(testCase): no cut had changes to emit") }
        Self.expectSameBytes(a.engine.snapshot(), b.engine.snapshot(), "\(testCase): before the end")
        a.finish()
        b.finish()
        Self.expectSameOutput(a, b, "\(testCase)")
        Self.expectSameBytes(a.engine.snapshot(), b.engine.snapshot(), "\(testCase): at the end")

        // The stream reaches what the snapshot must carry.
        let statistics = a.engine.statistics
        #expect(statistics.balances)
        for reason in [Reason.late, .duplicate, .unknownOrder, .malformed, .unknownCurrency] {
            #expect(statistics.deadLetters(reason) > 0, "\(testCase): no \(reason.rawValue) dead letter")
        }
        for kind in EventKind.allCases { #expect(statistics.accepted(kind) > 0, "\(testCase): no \(kind.name)") }
        #expect(a.rows.contains { $0.figures.refunds > 0 })
    }

    /// Equal bytes, or an issue naming the first offset that differs (not both arrays).
    static func expectSameBytes(_ actual: [UInt8], _ expected: [UInt8], _ context: String) {
        guard actual != expected else { return }
        let offset =
            zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(actual.count, expected.count)
        Issue.record("\(context): snapshots differ at byte \(offset) (\(actual.count) and \(expected.count) bytes)")
    }

    static func expectSameOutput(_ a: EngineDriver, _ b: EngineDriver, _ context: String) {
        let rowsA = a.rowText
        let rowsB = b.rowText
        #expect(
            rowsA.count == rowsB.count, "\(context): \(rowsA.count) rows uninterrupted, \(rowsB.count) with snapshots")
        if let index = zip(rowsA, rowsB).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("\(context): row \(index) differs:\n\(rowsA[index])\n\(rowsB[index])")
        }
        #expect(a.deadLetterText == b.deadLetterText, "\(context): dead letters differ")
        #expect(a.engine.statistics == b.engine.statistics, "\(context): statistics differ")
        #expect(!rowsA.isEmpty)
    }

    /// Ids long enough to fill several 1 MiB id chunks, with lookbacks short enough to free some:
    /// snapshots taken while the arenas hold several chunks, the first freed, still continue exactly.
    @Test func snapshotsCarryIDArenasOfSeveralChunks() throws {
        var testCase = Self.cases[7]
        testCase.model = .lastTouch
        var configuration = testCase.configuration
        // One partition, so that its arenas fill several chunks.
        configuration.partitions = 1
        let items = SnapshotStream.make(
            seed: 77, count: 24_000, start: t0, span: 4 * hour, lateness: testCase.lateness, longIDs: 1,
            padding: 190...220)
        var a = EngineDriver(configuration: configuration)
        var b = EngineDriver(configuration: configuration)
        var cuts = 0
        for (index, item) in items.enumerated() {
            a.feed(item.line, number: index + 1, batch: item.batch)
            b.feed(item.line, number: index + 1, batch: item.batch)
            let clicks = b.engine.store.base[0].clickIDs.chunkSpan
            let views = b.engine.store.base[0].viewIDs.chunkSpan
            if index % 1000 == 999 && (clicks.count > 1 || views.count > 1 || clicks.base > 0 || views.base > 0) {
                let bytes = b.engine.snapshot()
                b.engine = try Engine(snapshot: bytes, configuration: configuration)
                Self.expectSameBytes(b.engine.snapshot(), bytes, "chunks \(clicks) \(views)")
                cuts += 1
            }
        }
        #expect(cuts >= 3)
        #expect(b.engine.store.base[0].viewIDs.chunkSpan.base > 0, "no view id chunk was freed")
        #expect(b.engine.store.base[0].clickIDs.chunkSpan.count > 1 || b.engine.store.base[0].viewIDs.chunkSpan.count > 1)
        a.finish()
        b.finish()
        Self.expectSameOutput(a, b, "several chunks")
    }

    /// Snapshots every 150 lines, including at the very start, and once more after the end.
    @Test func snapshotsAtManyPointsIncludingEmptyAndFinishedEngines() throws {
        let testCase = Self.cases[3]
        let configuration = testCase.configuration
        let items = SnapshotStream.make(seed: 99, count: 1500, start: t0, span: 4 * hour, lateness: testCase.lateness)
        var a = EngineDriver(configuration: configuration)
        var b = EngineDriver(configuration: configuration)
        b.engine = try Engine(snapshot: b.engine.snapshot(), configuration: configuration)
        for (index, item) in items.enumerated() {
            a.feed(item.line, number: index + 1, batch: item.batch)
            b.feed(item.line, number: index + 1, batch: item.batch)
            if index % 150 == 149 { b.engine = try Engine(snapshot: b.engine.snapshot(), configuration: configuration) }
        }
        a.finish()
        b.finish()
        Self.expectSameOutput(a, b, "every 150 lines")
        let finished = b.engine.snapshot()
        var c = EngineDriver(configuration: configuration)
        c.engine = try Engine(snapshot: finished, configuration: configuration)
        #expect(c.engine.watermark == .max)
        Self.expectSameBytes(c.engine.snapshot(), finished, "a finished engine")
        // A finished engine dead-letters everything after the end as late, as before.
        c.feed(items[0].line, number: 1)
        #expect(c.deadLetters.map(\.reason) == [.late])
    }

    // MARK: Determinism and size

    @Test func aDecodedEngineWritesTheSameBytes() throws {
        let configuration = Self.cases[1].configuration
        var driver = EngineDriver(configuration: configuration)
        driver.engine.trackUpdates(true)
        for (index, item) in SnapshotStream.make(seed: 3, count: 1200, start: t0, span: 3 * hour, lateness: 20 * second)
            .enumerated()
        {
            driver.feed(item.line, number: index + 1, batch: item.batch)
        }
        let bytes = driver.engine.snapshot()
        Self.expectSameBytes(driver.engine.snapshot(), bytes, "two snapshots of one engine")
        let decoded = try Engine(snapshot: bytes, configuration: configuration)
        Self.expectSameBytes(decoded.snapshot(), bytes, "a decoded engine")
        let again = try Engine(snapshot: decoded.snapshot(), configuration: configuration)
        Self.expectSameBytes(again.snapshot(), bytes, "an engine decoded twice")
        #expect(bytes.starts(with: Array("ROASSNP1".utf8)))
        let estimate = driver.engine.snapshotByteEstimate
        #expect(
            estimate >= bytes.count && estimate <= bytes.count + bytes.count / 10 + 8192,
            "estimate \(estimate), size \(bytes.count)")
    }

    /// A fuzz finding: a snapshot with a counter at the reader's limit (2^62) was read, the engine ran
    /// on and wrote one with the counter past it, which did not read back. Counters now saturate.
    @Test func countersSaturateSoEverySnapshotReadsBack() throws {
        let configuration = Self.cases[0].configuration
        var engine = Engine(configuration: configuration)
        engine.statistics.finalRows = Int(SnapshotReader.counterLimit) + 7
        engine.statistics.linesRead = Int(SnapshotReader.counterLimit) + 1
        engine.statistics.deadLetters[0] = Int.max
        let decoded = try Engine(snapshot: engine.snapshot(), configuration: configuration)
        #expect(decoded.statistics.finalRows == Int(SnapshotReader.counterLimit))
        #expect(decoded.statistics.linesRead == Int(SnapshotReader.counterLimit))
        #expect(decoded.statistics.deadLetters[0] == Int(SnapshotReader.counterLimit))
    }

    /// A snapshot of an earlier layout (an upgrade) is told apart from damage, so a server can say so.
    @Test func anEarlierLayoutVersionIsUnsupportedNotInvalid() throws {
        let configuration = Self.cases[0].configuration
        var bytes = Engine(configuration: configuration).snapshot()
        // The version follows the 8-byte magic, little-endian.
        bytes[8] = 1
        #expect(throws: SnapshotError.unsupportedVersion(1)) { try Engine(snapshot: bytes, configuration: configuration) }
        bytes[8] = 9
        #expect(throws: SnapshotError.invalid("layout version 9; this build reads \(Engine.snapshotVersion)")) {
            try Engine(snapshot: bytes, configuration: configuration)
        }
    }

    /// Touches are copied as raw memory: their layout must have no padding (8 + 4 + 4 + 4 + 4 bytes).
    @Test func rawCopiedTypesHaveNoPadding() {
        #expect(MemoryLayout<Touch>.size == 24 && MemoryLayout<Touch>.stride == 24)
        #expect(MemoryLayout<Aggregate>.size == 64 && MemoryLayout<Aggregate>.stride == 64)
        #expect(MemoryLayout<RowKey>.size == 8)
    }

    // MARK: Configuration

    @Test func aSnapshotNamesEveryOptionThatDiffers() throws {
        let configuration = Self.cases[0].configuration
        var driver = EngineDriver(configuration: configuration)
        for (index, item) in SnapshotStream.make(seed: 5, count: 300, start: t0, span: hour, lateness: 30 * second)
            .enumerated()
        {
            driver.feed(item.line, number: index + 1, batch: item.batch)
        }
        let bytes = driver.engine.snapshot()
        func mismatch(_ change: (inout EngineConfiguration) -> Void) -> String? {
            var changed = configuration
            change(&changed)
            do {
                _ = try Engine(snapshot: bytes, configuration: changed)
                return nil
            } catch SnapshotError.configurationMismatch(let difference) {
                return difference
            } catch {
                Issue.record("unexpected \(error)")
                return nil
            }
        }
        #expect(
            mismatch {
                $0.window = 30 * minute
                $0.slide = 30 * minute
            } == "--window 1h in the snapshot, 30m now; --slide 1h in the snapshot, 30m now")
        #expect(mismatch { $0.lateness = 5 * second } == "--lateness 30s in the snapshot, 5s now")
        #expect(mismatch { $0.model = .linear } == "--model last-touch in the snapshot, linear now")
        #expect(mismatch { $0.byCampaign = true } == "--by creator in the snapshot, creator,campaign now")
        #expect(mismatch { $0.clickLookback = day } == "--click-lookback 7d in the snapshot, 1d now")
        #expect(mismatch { $0.viewLookback = hour } == "--view-lookback 1d in the snapshot, 1h now")
        #expect(mismatch { $0.dedupHorizon = hour } == "--dedup-horizon 1d in the snapshot, 1h now")
        // Writing dead letters or not may change between runs (`roas serve --dead-letter`).
        #expect(mismatch { $0.keepsDeadLetters = false } == nil)
        #expect(
            mismatch { $0.currencies = try! CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.25]) }
                == "rates EUR=1.1 GBP=1.25 in the snapshot, EUR=1.08 GBP=1.25 now")
        #expect(
            mismatch { $0.currencies = try! CurrencyTable(base: "EUR", rates: ["USD": 0.9]) }
                == "--base-currency USD in the snapshot, EUR now")
        #expect(
            mismatch {
                $0.model = .timeDecay
                $0.halfLife = hour
            }?.contains("--half-life 2h in the snapshot, 1h now") == true)
        // The half-life only matters to time-decay.
        #expect(mismatch { $0.halfLife = day } == nil)
        #expect(throws: SnapshotError.self) {
            try Engine(
                snapshot: bytes,
                configuration: {
                    var c = configuration
                    c.window = 0
                    return c
                }())
        }
    }

    // MARK: Malformed input

    static func user(_ person: Int) -> String {
        person % 7 == 0 ? "tt:long-user-identity-\(person)" : "tt:\(person)"
    }

    /// A small engine with everything a snapshot holds: pending events, open hopping windows with
    /// changes to emit, linked identities, orders, long ids, and touches of one user at one time
    /// (ordered by their ids' tails). Linear attribution, so that a purchase reads every touch.
    static func smallEngine() -> (EngineConfiguration, Engine) {
        var testCase = Self.cases[1]
        testCase.model = .linear
        testCase.lateness = 10 * minute
        let configuration = testCase.configuration
        var driver = EngineDriver(configuration: configuration)
        driver.engine.trackUpdates(true)
        var lines = SnapshotStream.make(seed: 11, count: 70, start: t0, span: 30 * minute, lateness: 2 * minute).map(
            \.line)
        for person in 0..<8 {
            for k in 0..<3 {
                let id = "snapshot-test-id-tie-\(person)-\(k)-" + String(repeating: "y", count: 3 - k)
                lines.append(Array(Line.click(id, t0 + 25 * minute, user: Self.user(person), creator: "c\(k)").utf8))
            }
        }
        for (index, line) in lines.enumerated() {
            driver.feed(line, number: index + 1, batch: index % 3 == 0 ? nil : "b")
        }
        return (configuration, driver.engine)
    }

    /// Lines that reach what a decoded engine holds: a purchase by every user of the small stream,
    /// refunds of its orders, links, and touches tied in time with those already there.
    static let exerciseLines: [[UInt8]] = {
        var lines: [String] = []
        let time = t0 + 31 * minute
        for person in 0..<60 {
            let user = Self.user(person)
            if person < 8 {
                lines.append(
                    Line.click(
                        "snapshot-test-id-tie-\(person)-9", t0 + 25 * minute, user: user, creator: "c1", campaign: "k1")
                )
                lines.append(Line.view("snapshot-test-id-exercise-\(person)-b", time, user: user, creator: "c2"))
                lines.append(
                    Line.link("l\(person)", time, user: user, linked: user.replacingPrefix("tt:", with: "amz:")))
                lines.append(Line.refund("r\(person)", time + 2 * second, order: "o\(person)", amount: "1"))
            }
            lines.append(
                Line.purchase(
                    "p\(person)", time + second, user: user, order: "x\(person)", amount: "12.5", currency: "EUR"))
        }
        lines.append(Line.spend("s1", time, creator: "c1", amount: "3", campaign: "k1"))
        lines.append(Line.click("late", t0 - day, user: "tt:1", creator: "c1"))
        return lines.map { Array($0.utf8) }
    }()

    /// Runs a decoded engine on more events, re-encodes it, emits updates and closes everything.
    static func exercise(_ engine: Engine, _ configuration: EngineConfiguration) -> Bool {
        var driver = EngineDriver(engine: engine)
        driver.collects = false
        let again = engine.snapshot()
        guard (try? Engine(snapshot: again, configuration: configuration)) != nil else { return false }
        for (index, line) in Self.exerciseLines.enumerated() { driver.feed(line, number: index + 1, batch: nil) }
        driver.emitUpdates()
        driver.advanceIdle(to: t0 + 2 * hour)
        driver.finish()
        return true
    }

    @Test func everyTruncationThrowsTruncated() throws {
        let (configuration, engine) = Self.smallEngine()
        let bytes = engine.snapshot()
        #expect(engine.pending.count > 0 && engine.windows.paneCount > 0 && !engine.windows.changed.isEmpty)
        print("small snapshot: \(bytes.count) bytes")
        var wrong: [Int] = []
        bytes.withUnsafeBytes { buffer in
            for length in 0..<bytes.count {
                do {
                    _ = try Engine(
                        snapshot: UnsafeRawBufferPointer(rebasing: buffer[0..<length]), configuration: configuration)
                    wrong.append(length)
                } catch SnapshotError.truncated {
                } catch {
                    wrong.append(length)
                }
            }
        }
        #expect(wrong.isEmpty, "prefixes of these lengths did not throw truncated: \(wrong.prefix(20))")
        #expect(throws: SnapshotError.invalid("1 bytes follow the end of the snapshot")) {
            try Engine(snapshot: bytes + [0], configuration: configuration)
        }
    }

    /// What `SnapshotReader` and each state type reject: values that would trap, hang or allocate
    /// without bound if used, each built by hand (random corruption reaches few of them).
    @Test func eachCheckRejectsWhatWouldTrapOrHang() {
        func error<T>(_ write: (inout SnapshotWriter) -> Void, _ read: (inout SnapshotReader) throws -> T)
            -> SnapshotError?
        {
            var writer = SnapshotWriter()
            write(&writer)
            return writer.bytes.withUnsafeBytes { buffer in
                var reader = SnapshotReader(buffer)
                do {
                    _ = try read(&reader)
                    return nil
                } catch let error as SnapshotError {
                    return error
                } catch {
                    return .invalid("unexpected \(error)")
                }
            }
        }
        func isInvalid(_ error: SnapshotError?) -> Bool {
            if case .invalid = error { return true }
            return false
        }
        let handles = SnapshotHandles(users: 4, creators: 2, campaigns: 1, currencies: 3)
        // Reader basics.
        #expect(error({ $0.write(UInt64.max) }, { try $0.readCount(elementSize: 1) }) == .truncated)
        #expect(error({ $0.write(UInt64(3)) }, { try $0.readBytes() }) == .truncated)
        #expect(isInvalid(error({ $0.write(UInt8(2)) }, { try $0.readBool() })))
        #expect(isInvalid(error({ $0.write(bytes: [0xC3, 0x28]) }, { try $0.readString() })))
        #expect(isInvalid(error({ $0.write(Int64.max - 1) }, { try $0.readTime("t") })))
        #expect(
            isInvalid(
                error(
                    {
                        $0.write(UInt16(7))
                        $0.write(count: 0)
                    }, { try $0.readRaw(Int64.self) })))
        #expect(
            isInvalid(
                error(
                    {
                        $0.write(UInt8(1))
                        $0.write(UInt64(1) << 40)
                        $0.write(count: 0)
                        $0.write(UInt16(8))
                    },
                    { try $0.readTable(empty: Int64(0), isEmpty: { $0 == 0 }, check: { _ in }) })))
        // Identity graph: a cycle, a chain deeper than merging by size makes, a parent out of range.
        #expect(
            isInvalid(
                error(
                    {
                        $0.write(raw: [Int32(1), 0])
                        $0.write(count: 0)
                    }, { try IdentityGraph(from: &$0, identities: 4) })))
        let chain = (0..<40).map { Int32(min($0 + 1, 39)) }
        #expect(
            isInvalid(
                error(
                    {
                        $0.write(raw: chain)
                        $0.write(count: 0)
                    }, { try IdentityGraph(from: &$0, identities: 40) })))
        #expect(
            isInvalid(
                error(
                    {
                        $0.write(raw: [Int32(5)])
                        $0.write(count: 0)
                    }, { try IdentityGraph(from: &$0, identities: 4) })))
        // Touch logs: id or time bases that do not match the pages the touches span, a head past
        // the end (a chain link is a distance back, so no chain can go forwards), whole times for
        // touches not marked far, a touch marked far without one.
        func touchLog(
            idBases: [Int64], timeBases: [Int64]? = nil, offsets: [Int32] = [0, 0], far: [Int64] = [], heads: [Int64]
        ) -> (inout SnapshotWriter) -> Void {
            {
                $0.write(Int64(TouchLog.pageSize - 1))
                $0.write(
                    raw: offsets.map { PagedTouch(offset: $0, creator: 0, campaign: -1, previous: 1, id: 0) })
                $0.write(raw: idBases)
                $0.write(raw: timeBases ?? idBases.map { _ in t0 })
                $0.write(raw: far)
                $0.write(raw: heads)
            }
        }
        let readTouchLog = { (reader: inout SnapshotReader) in _ = try TouchLog(from: &reader, lateness: 0) }
        let last = Int64(TouchLog.pageSize - 1)
        #expect(error(touchLog(idBases: [0, 7], heads: [Int64(TouchLog.pageSize)]), readTouchLog) == nil)
        #expect(isInvalid(error(touchLog(idBases: [0], heads: []), readTouchLog)))
        #expect(isInvalid(error(touchLog(idBases: [0, -1], heads: []), readTouchLog)))
        #expect(isInvalid(error(touchLog(idBases: [0, 7], heads: [Int64(TouchLog.pageSize) + 1]), readTouchLog)))
        #expect(isInvalid(error(touchLog(idBases: [0, 7], timeBases: [t0], heads: []), readTouchLog)))
        #expect(
            isInvalid(error(touchLog(idBases: [0, 7], timeBases: [t0, SnapshotReader.timeLimit + 1], heads: []), readTouchLog)))
        let farOffsets = [PagedTouch.far, PagedTouch.far]
        #expect(
            error(touchLog(idBases: [0, 7], offsets: farOffsets, far: [0, last, t0 << 1, 1, 0, 5], heads: []), readTouchLog)
                == nil)
        #expect(
            isInvalid(error(touchLog(idBases: [0, 7], offsets: farOffsets, far: [0, last, 5], heads: []), readTouchLog)),
            "a touch marked far without its time")
        #expect(
            isInvalid(error(touchLog(idBases: [0, 7], far: [0, last, 5, 1, 0, 5], heads: []), readTouchLog)),
            "times for touches not marked far")
        #expect(
            isInvalid(
                error(touchLog(idBases: [0, 7], offsets: farOffsets, far: [0, last, 5, 2, 0, 5], heads: []), readTouchLog)),
            "a time for a page past the log's")
        #expect(
            isInvalid(
                error(touchLog(idBases: [0, 7], offsets: farOffsets, far: [0, 3, 5, 1, 0, 5], heads: []), readTouchLog)),
            "a time for a position before the log's start")
        // Pending events: a view, a refund with an identity, an unknown currency.
        func pending(kind: EventKind, user: Int32, currency: Int) -> (inout SnapshotWriter) -> Void {
            {
                PendingEvent(
                    time: t0, kind: kind, id: [1], user: user, linked: -1, order: [2], amount: 5, currency: currency,
                    line: 1, batch: nil, raw: []
                ).write(to: &$0)
            }
        }
        let readPending = { (reader: inout SnapshotReader) in
            try PendingEvent(from: &reader, handles: handles, watermark: t0)
        }
        #expect(error(pending(kind: .purchase, user: 3, currency: 2), readPending) == nil)
        #expect(isInvalid(error(pending(kind: .view, user: 3, currency: 2), readPending)))
        #expect(isInvalid(error(pending(kind: .refund, user: 3, currency: 0), readPending)))
        #expect(isInvalid(error(pending(kind: .purchase, user: 4, currency: 0), readPending)))
        #expect(isInvalid(error(pending(kind: .purchase, user: 0, currency: 3), readPending)))
        // Orders: shares that do not make one conversion, a creator handle out of range.
        func order(_ credits: [(key: RowKey, share: Int64)]) -> (inout SnapshotWriter) -> Void {
            { Order(amount: 10, currency: 0, refunded: 0, credits: credits).write(to: &$0) }
        }
        let readOrder = { (reader: inout SnapshotReader) in try Order(from: &reader, handles: handles) }
        #expect(error(order([(RowKey(creator: 1, campaign: 0), Micros.one)]), readOrder) == nil)
        #expect(isInvalid(error(order([(RowKey(creator: 1, campaign: 0), Micros.one - 1)]), readOrder)))
        #expect(isInvalid(error(order([(RowKey(creator: 2, campaign: -1), Micros.one)]), readOrder)))
        #expect(isInvalid(error(order([]), readOrder)))
        // Pane tables: too few slots for the keys, too many (an allocation the bytes do not back),
        // a key twice (a window's rows are made from each pane's keys as they are).
        let distinctKeys = [-1, 0, 1].flatMap { creator in [-1, 0].map { RowKey(creator: Int32(creator), campaign: Int32($0)) } }
        func pane(keys: Int, slots: Int, twice: Bool = false) -> (inout SnapshotWriter) -> Void {
            { writer in
                writer.write(raw: (0..<keys).map { distinctKeys[twice && $0 == keys - 1 ? 0 : $0] })
                writer.write(raw: (0..<keys).map { _ in Aggregate() })
                for _ in 0..<keys { ReachSketch().write(to: &writer) }
                writer.write(count: slots)
            }
        }
        let readPane = { (reader: inout SnapshotReader) in try PaneTable(from: &reader, handles: handles, limit: 1000) }
        #expect(error(pane(keys: 6, slots: 16), readPane) == nil)
        #expect(isInvalid(error(pane(keys: 6, slots: 8), readPane)))
        #expect(isInvalid(error(pane(keys: 6, slots: 16, twice: true), readPane)))
        #expect(isInvalid(error(pane(keys: 1, slots: 1 << 30), readPane)))
        // A figure over the pane limit (which keeps window sums within Int64), or negative.
        func figure(_ value: Int64) -> (inout SnapshotWriter) -> Void {
            { writer in
                writer.write(raw: [RowKey(creator: 0, campaign: -1)])
                var figures = Aggregate()
                figures.spend = value
                writer.write(raw: [figures])
                ReachSketch().write(to: &writer)
                writer.write(count: 16)
            }
        }
        #expect(error(figure(1000), readPane) == nil)
        #expect(isInvalid(error(figure(1001), readPane)))
        #expect(isInvalid(error(figure(-1), readPane)))
        // Reach sketches: hashes out of order or too many, registers of the wrong count or rank, an unknown kind.
        func sketch(_ body: @escaping (inout SnapshotWriter) -> Void) -> (inout SnapshotWriter) -> Void { body }
        let readSketch = { (reader: inout SnapshotReader) in _ = try ReachSketch(from: &reader) }
        var full = ReachSketch()
        for user in 0..<5000 { full.insert(user: "u\(user)") }
        #expect(error(sketch { full.write(to: &$0) }, readSketch) == nil)
        #expect(
            error(
                sketch {
                    $0.write(UInt8(0))
                    $0.write(raw: [UInt64(1), 2, 3])
                }, readSketch) == nil)
        #expect(
            isInvalid(
                error(
                    sketch {
                        $0.write(UInt8(0))
                        $0.write(raw: [UInt64(1), 3, 2])
                    }, readSketch)))
        #expect(
            isInvalid(
                error(
                    sketch {
                        $0.write(UInt8(0))
                        $0.write(raw: (0..<1025).map { UInt64($0) })
                    }, readSketch)))
        #expect(
            isInvalid(
                error(
                    sketch {
                        $0.write(UInt8(1))
                        $0.write(raw: [UInt8](repeating: 1, count: 100))
                    }, readSketch)))
        #expect(
            isInvalid(
                error(
                    sketch {
                        $0.write(UInt8(1))
                        $0.write(raw: [UInt8](repeating: 52, count: ReachSketch.registerCount))
                    }, readSketch)))
        #expect(isInvalid(error(sketch { $0.write(UInt8(2)) }, readSketch)))
        // Creator profiles: out of order, followers out of range, more lists than creators.
        func profiles(_ lists: [[CreatorProfile]]) -> (inout SnapshotWriter) -> Void {
            { writer in
                writer.write(count: lists.count)
                for list in lists {
                    writer.write(count: list.count)
                    for profile in list {
                        writer.write(profile.time)
                        writer.write(bytes: profile.id)
                        writer.write(profile.followers)
                    }
                }
            }
        }
        let readProfiles = { (reader: inout SnapshotReader) in _ = try Engine.readProfiles(from: &reader, creators: 2) }
        let early = CreatorProfile(time: t0, id: [1], followers: 5)
        let late = CreatorProfile(time: t0, id: [2], followers: 50_000)
        #expect(error(profiles([[early, late], []]), readProfiles) == nil)
        #expect(isInvalid(error(profiles([[late, early]]), readProfiles)))
        #expect(isInvalid(error(profiles([[early, early]]), readProfiles)))
        #expect(isInvalid(error(profiles([[CreatorProfile(time: t0, id: [1], followers: -1)]]), readProfiles)))
        #expect(isInvalid(error(profiles([[CreatorProfile(time: t0, id: [1], followers: 1_000_000_000_001)]]), readProfiles)))
        #expect(isInvalid(error(profiles([[], [], []]), readProfiles)))
    }

    /// Random byte changes, 64-bit words set to edge values, and garbage (with and without a valid
    /// header) either throw or decode to an engine that runs on, re-encodes and finishes.
    /// `ROAS_SNAPSHOT_FUZZ=rounds[,seed]` runs `rounds` times as many inputs from another seed.
    @Test func corruptSnapshotsThrowOrDecodeToAWorkingEngine() throws {
        let (configuration, engine) = Self.smallEngine()
        let bytes = engine.snapshot()
        var rounds = 1
        var seed: UInt64 = 2024
        if let text = getenv("ROAS_SNAPSHOT_FUZZ") {
            let parts = String(cString: text).split(separator: ",")
            rounds = parts.first.flatMap { Int($0) } ?? 1
            if parts.count > 1, let value = UInt64(parts[1]) { seed = value }
        }
        var random = SplitMix64(seed: seed)
        var outcomes: [String: Int] = [:]
        func attempt(_ input: [UInt8]) {
            do {
                let decoded = try Engine(snapshot: input, configuration: configuration)
                let works = Self.exercise(decoded, configuration)
                #expect(works, "a decoded engine's own snapshot does not decode")
                outcomes["decoded", default: 0] += 1
            } catch SnapshotError.truncated {
                outcomes["truncated", default: 0] += 1
            } catch SnapshotError.invalid {
                outcomes["invalid", default: 0] += 1
            } catch SnapshotError.configurationMismatch {
                outcomes["configuration", default: 0] += 1
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        #expect(Self.exercise(try Engine(snapshot: bytes, configuration: configuration), configuration))
        for _ in 0..<(1000 * rounds) {
            var input = bytes
            for _ in 0..<random.int(1...3) {
                let position = random.int(0..<input.count)
                input[position] = random.chance(0.5) ? input[position] ^ (1 << UInt8(random.int(0..<8))) : random.byte()
            }
            attempt(input)
        }
        let edges: [Int64] = [0, 1, -1, 2, 15, 16, 17, 255, 1 << 31, 1 << 40, 1 << 61, 1 << 62, .max, .min, -2]
        for _ in 0..<(800 * rounds) {
            var input = bytes
            let position = random.int(0..<(input.count - 8))
            let value = random.pick(edges) &+ (random.chance(0.2) ? Int64(random.int(-3...3)) : 0)
            withUnsafeBytes(of: value.littleEndian) { input.replaceSubrange(position..<(position + 8), with: $0) }
            attempt(input)
        }
        let header = Array(bytes.prefix(200))
        for round in 0..<(1200 * rounds) {
            let garbage = (0..<random.int(0..<600)).map { _ in random.byte() }
            attempt(round % 2 == 0 ? garbage : header + garbage)
        }
        let counts = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        print("corrupt snapshots: \(counts.joined(separator: ", "))")
        #expect(outcomes["decoded", default: 0] > 0 && outcomes["invalid", default: 0] > 0)
    }

    // MARK: Measurement

    /// Prints the size of a snapshot of an engine that read a large generated stream, and how long
    /// encoding and decoding took (not asserted: the machine is shared). 2M events in release builds,
    /// 200k in debug builds (`ROAS_SNAPSHOT_EVENTS` overrides).
    @Test func measureEncodeAndDecode() throws {
        #if DEBUG
        var events = 200_000
        let mode = "debug"
        #else
        var events = 2_000_000
        let mode = "release"
        #endif
        if let text = getenv("ROAS_SNAPSHOT_EVENTS"), let value = Int(String(cString: text)) { events = value }
        var generatorConfiguration = GeneratorConfiguration()
        generatorConfiguration.events = events
        generatorConfiguration.seed = 7
        generatorConfiguration.currencies = GeneratorConfiguration.defaultCurrencyMix
        var generator = try EventGenerator(configuration: generatorConfiguration, now: { 1_795_255_200 })
        var configuration = EngineConfiguration(
            currencies: try CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27]))
        configuration.keepsDeadLetters = true
        var driver = EngineDriver(configuration: configuration)
        driver.collects = false
        var buffer: [UInt8] = []
        var number = 0
        var more = true
        while more {
            buffer.removeAll(keepingCapacity: true)
            more = generator.fill(&buffer, bytes: 1 << 20)
            buffer.withUnsafeBytes { bytes in
                var start = 0
                for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\n") {
                    number += 1
                    driver.feed(UnsafeRawBufferPointer(rebasing: bytes[start..<index]), number: number, batch: nil)
                    start = index + 1
                }
            }
        }
        // Three rounds each: the first pays for fresh pages, the machine is shared.
        let clock = ContinuousClock()
        var bytes: [UInt8] = []
        var encodes: [Duration] = []
        var decodes: [Duration] = []
        for _ in 0..<3 {
            encodes.append(clock.measure { bytes = driver.engine.snapshot() })
            var decoded: Engine? = nil
            decodes.append(try clock.measure { decoded = try Engine(snapshot: bytes, configuration: configuration) })
            Self.expectSameBytes(decoded?.snapshot() ?? [], bytes, "a large engine")
        }
        // Streamed a few MiB at a time (as a checkpoint file is written), the bytes are the same.
        final class Collected: SnapshotOutput, @unchecked Sendable {
            var bytes: [UInt8] = []
            var parts = 0
            func take(_ bytes: UnsafeRawBufferPointer) {
                self.bytes.append(contentsOf: bytes)
                self.parts += 1
            }
        }
        let collected = Collected()
        var streamed = SnapshotWriter(output: collected)
        driver.engine.writeSnapshot(into: &streamed)
        streamed.flush()
        #expect(streamed.bytes.isEmpty)
        #expect(collected.parts >= bytes.count / SnapshotWriter.flushBytes && collected.parts > 1)
        Self.expectSameBytes(collected.bytes, bytes, "a large engine, streamed")
        let megabytes = Double(bytes.count) / 1_000_000
        func rounds(_ durations: [Duration]) -> String {
            let seconds = durations.map { Double($0.components.seconds) + Double($0.components.attoseconds) * 1e-18 }
            let best = Int(megabytes / seconds.min()!)
            return seconds.map { "\(Int($0 * 1000))" }.joined(separator: "/") + " ms (best \(best) MB/s)"
        }
        let engine = driver.engine
        let sizes = engine.stateSizes
        func mb(_ bytes: Int) -> String { "\(bytes / 1_000_000) MB" }
        let touchBytes = engine.store.partitions.reduce(0) { total, partition in
            total + partition.clicks.snapshotByteEstimate + partition.views.snapshotByteEstimate
        }
        print(
            "snapshot (\(mode)) of \(number) events: \(bytes.count) bytes (estimate \(engine.snapshotByteEstimate));"
                + " dedup \(mb(engine.admission.snapshotByteEstimate)) for \(sizes.dedupIDs) ids,"
                + " touches \(mb(touchBytes))"
                + " for \(sizes.touches), users \(mb(engine.users.snapshotByteEstimate)) for \(sizes.identities),"
                + " pending \(sizes.pending), orders \(sizes.orders), panes \(sizes.openPanes);"
                + " encode \(rounds(encodes)), decode \(rounds(decodes))")
    }
}
