import FuzzSupport

// Fuzz target `engine`: event sequences with random options through the whole path (parser and
// `Engine.accept`), on one thread (`Pipeline`, whole input) and, when the input says so, also as
// `roas run --threads 2` does it (`ChunkParser` chunks replayed into an `EngineSink`, cut where the
// input says, optionally snapshotted and restored halfway). Checks:
// - both ways give the same rows, dead letters and counts, and a restored snapshot re-encodes to
//   the same bytes;
// - the summary's accounting: accepted + dead letters + blank = lines read, nothing left pending;
// - each line's outcome is possible for it (a well-formed event is never malformed, a junk line
//   gets its reason, a blank line is no dead letter, no line is dead-lettered twice);
// - rows: views, clicks, conversions, revenue, refunds and spend never negative, windows aligned
//   and of the configured length, final rows in window order without a repeated key;
// - conservation: over the final rows, views, clicks and spend add up to the accepted events'
//   (times window / slide, as hopping windows count each event in that many windows), each accepted
//   purchase brings exactly one conversion and its converted amount as revenue, each accepted
//   refund its converted amount as refunds (with `--models`, under each model);
// - with `--models all`: each model's rows, without the field, are those of a `--model` run of it,
//   with the same dead letters.
// ROAS_FUZZ_PRINT=FILE writes an input's stream to FILE and prints the matching roas run command.
@testable import RoasCore

#if canImport(Glibc)
import Glibc
#endif

let now: @Sendable () -> Int64 = { 1_795_255_200 }

struct Outcome {
    var rows: [Row] = []
    var updates: [Row] = []
    var deadLetters: [DeadLetter] = []
    var statistics = Statistics()
}

func runPipeline(_ program: EngineProgram) -> Outcome {
    var pipeline = Pipeline(configuration: program.configuration, secrets: [], tolerance: 0, now: now)
    pipeline.consume(program.stream)
    pipeline.finish()
    return Outcome(rows: pipeline.output.rows, deadLetters: pipeline.output.deadLetters, statistics: pipeline.statistics)
}

func runChunked(_ program: EngineProgram) -> Outcome {
    var parser = ChunkParser(
        configuration: program.configuration, secrets: [], tolerance: 0, maximumLineLength: 1 << 20,
        maximumBatchBytes: 16 << 20, capacity: 4096, now: now)
    var sink = EngineSink(engine: Engine(configuration: program.configuration))
    sink.engine.trackUpdates(program.emitsUpdates)
    var random = SplitMix(seed: program.chunkSeed)
    let length = program.stream.count
    let cuts = (0..<random.below(8)).map { _ in random.below(length + 1) }.sorted()
    let ranges = chunks(length: length, cuts: cuts)
    let snapshotAfter = ranges.count / 2
    program.stream.withUnsafeBytes { stream in
        for (index, range) in ranges.enumerated() {
            sink.replay(parser.consume(UnsafeRawBufferPointer(rebasing: stream[range])))
            if program.emitsUpdates { sink.emitUpdates() }
            if program.snapshotsMidway && index == snapshotAfter {
                let bytes = sink.engine.snapshot()
                let restored: Engine
                do {
                    restored = try Engine(snapshot: bytes, configuration: program.configuration)
                } catch {
                    fail("a snapshot of a running engine does not restore: \(error)")
                }
                let again = restored.snapshot()
                require(again == bytes, "a restored snapshot re-encodes differently (\(again.count) vs \(bytes.count) bytes)")
                sink.engine = restored
            }
        }
    }
    sink.replay(parser.finish())
    sink.finish()
    var outcome = Outcome(deadLetters: sink.output.deadLetters, statistics: sink.engine.statistics)
    for row in sink.output.rows {
        if row.isFinal { outcome.rows.append(row) } else { outcome.updates.append(row) }
    }
    return outcome
}

func checkRow(_ row: Row, _ configuration: EngineConfiguration) {
    let f = row.figures
    require(
        f.views >= 0 && f.clicks >= 0 && f.conversions >= 0 && f.revenue >= 0 && f.refunds >= 0 && f.spend >= 0
            && f.engagements >= 0 && f.leads >= 0,
        "a row has a negative figure: \(row.json)")
    // Exact up to 1,024 users: never more than the views and clicks that reached them.
    require(
        row.reach >= 0 && (row.reach <= f.views + f.clicks || row.reach > 1024),
        "reach is negative or above the views and clicks: \(row.json)")
    require(configuration.byTier ? row.creator == nil : true, "a creator on a --by tier row: \(row.json)")
    require(row.windowEnd - row.windowStart == configuration.window, "a window of the wrong length: \(row.json)")
    require(row.windowStart % configuration.slide == 0, "a window not aligned to the slide: \(row.json)")
    require(configuration.byCampaign || row.campaign == nil, "a campaign without --by creator,campaign: \(row.json)")
    if row.creator == nil && row.tier == nil {
        require(row.campaign == nil && f.views == 0 && f.clicks == 0 && f.spend == 0, "an odd unattributed row: \(row.json)")
    }
}

/// The engine's conversion (`Micros.convert`), written out here so that its signature may change.
func convert(_ micros: Int64, _ rate: Double) -> Int128 {
    rate == 1 ? Int128(micros) : Int128((Double(micros) * rate).rounded(.toNearestOrEven))
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    guard let program = EngineProgram(&input) else { return 0 }
    let configuration = program.configuration
    if let path = getenv("ROAS_FUZZ_PRINT") {
        // Triage: the input as an NDJSON file and the roas run options that give the same engine.
        TemporaryDirectory.write(program.stream, to: String(cString: path))
        let c = configuration
        let rates = zip(c.currencies.codes, c.currencies.rates).dropFirst().map { "\"\($0)\":\($1)" }.joined(separator: ",")
        printError(
            "roas run \(c.labelsModels ? "--models all" : "--model " + c.model.rawValue) --window \(c.window)ms --slide \(c.slide)ms"
                + " --by \(c.byTier ? "tier" : "creator")\(c.byCampaign ? ",campaign" : "") --lateness \(c.lateness)ms"
                + " --dedup-horizon \(c.dedupHorizon)ms --click-lookback \(c.clickLookback)ms"
                + " --view-lookback \(c.viewLookback)ms --half-life \(c.halfLife)ms --rates RATES"
                + " --input \(String(cString: path))   # RATES: {\(rates)}")
    }
    let whole = runPipeline(program)
    if configuration.labelsModels {
        for model in configuration.models {
            var alone = program
            alone.configuration.model = model
            let own = runPipeline(alone)
            let rows = whole.rows.filter { $0.model == model.rawValue }.map { row -> Row in
                var row = row
                row.model = nil
                return row
            }
            require(rows == own.rows, "--models: the \(model.rawValue) rows differ from its own run (\(rows.count) vs \(own.rows.count))")
            require(whole.deadLetters == own.deadLetters, "--models: the dead letters differ from a \(model.rawValue) run")
            require(whole.statistics.acceptedEvents == own.statistics.acceptedEvents, "--models: accepted events differ")
        }
    }
    if program.comparesPaths {
        // One thread or two, whole or in chunks, with or without a snapshot: the same result.
        let chunked = runChunked(program)
        var statistics = chunked.statistics
        statistics.updateRows = whole.statistics.updateRows
        require(statistics == whole.statistics, "the counts differ:\n \(whole.statistics)\n \(chunked.statistics)")
        require(chunked.rows == whole.rows, "the final rows differ (\(whole.rows.count) vs \(chunked.rows.count))")
        require(chunked.deadLetters == whole.deadLetters, "the dead letters differ")
        require(chunked.statistics.updateRows == chunked.updates.count, "live update rows miscounted")
        for row in chunked.updates { checkRow(row, configuration) }
    }

    // The summary's accounting.
    let s = whole.statistics
    require(s.linesRead == program.lines.count, "\(s.linesRead) lines read of \(program.lines.count)")
    require(s.bytesRead == program.stream.count, "\(s.bytesRead) bytes read of \(program.stream.count)")
    require(s.pendingEvents == 0, "\(s.pendingEvents) events still pending after the end")
    require(
        s.acceptedLines + s.deadLetterCount + s.blankLines == s.linesRead,
        "accepted \(s.acceptedLines) + dead letters \(s.deadLetterCount) + blank \(s.blankLines) != \(s.linesRead) lines read")
    require(s.balances, "the statistics do not balance")
    require(s.acceptedBatches == 0 && s.rejectedBatches.allSatisfy { $0 == 0 }, "batches in a stream without any")
    require(s.finalRows == whole.rows.count, "\(s.finalRows) final rows counted, \(whole.rows.count) emitted")

    // Rows.
    var seen = Set<String>()
    var previousStart = Int64.min
    for row in whole.rows {
        checkRow(row, configuration)
        require(row.isFinal, "a live update among the final rows")
        require(row.windowStart >= previousStart, "final rows out of window order")
        previousStart = row.windowStart
        let key = "\(row.model ?? "") \(row.windowStart) \(row.creator ?? "\u{0}") \(row.campaign ?? "\u{0}") \(row.tier ?? "\u{0}")"
        require(seen.insert(key).inserted, "two final rows for one window and key: \(row.json)")
    }

    // Each line's outcome, and conservation (needs the dead letters, which name their lines).
    guard configuration.keepsDeadLetters else { return 0 }
    require(whole.deadLetters.count == s.deadLetterCount, "\(whole.deadLetters.count) dead letters, \(s.deadLetterCount) counted")
    var rejected = [Reason?](repeating: nil, count: program.lines.count + 1)
    for letter in whole.deadLetters {
        require(letter.line >= 1 && letter.line <= program.lines.count, "a dead letter for line \(letter.line)")
        require(rejected[letter.line] == nil, "line \(letter.line) dead-lettered twice")
        rejected[letter.line] = letter.reason
    }
    let beforeEngine: Set<Reason> = [.tooLong, .badFrame, .malformed, .unknownType, .invalid, .unknownCurrency, .unsigned]
    // Every event counts in window / slide windows, and with `--models` once under each model.
    let k = Int128(configuration.window / configuration.slide) * Int128(configuration.labelsModels ? configuration.models.count : 1)
    let rates = configuration.currencies.rates
    var accepted = [Int](repeating: 0, count: EventKind.allCases.count)
    var revenue: Int128 = 0
    var refunds: Int128 = 0
    var spend: Int128 = 0
    for (index, line) in program.lines.enumerated() {
        let reason = rejected[index + 1]
        switch line {
        case .blank:
            require(reason == nil, "blank line \(index + 1) dead-lettered \(reason!)")
        case .junk(let expected):
            require(reason == expected, "line \(index + 1): \(reason.map { "\($0)" } ?? "accepted"), expected \(expected)")
        case .event(let kind, let micros, let currency):
            guard let currency else {
                require(reason == .unknownCurrency, "line \(index + 1) in an unknown currency: \(reason.map { "\($0)" } ?? "accepted")")
                continue
            }
            if let reason {
                require(!beforeEngine.contains(reason), "well-formed line \(index + 1) dead-lettered \(reason)")
                continue
            }
            accepted[Int(kind.rawValue)] += 1
            switch kind {
            case .purchase: revenue += convert(micros, rates[currency])
            case .refund: refunds += convert(micros, rates[currency])
            case .spend: spend += convert(micros, rates[currency])
            default: break
            }
        }
    }
    require(accepted == s.acceptedEvents, "accepted events by kind: \(s.acceptedEvents) counted, \(accepted) by the lines")
    var totals = (views: Int128(0), clicks: Int128(0), conversions: Int128(0), revenue: Int128(0), refunds: Int128(0), spend: Int128(0))
    var engagements = Int128(0)
    var leads = Int128(0)
    for row in whole.rows {
        engagements += Int128(row.figures.engagements)
        leads += Int128(row.figures.leads)
        totals.views += Int128(row.figures.views)
        totals.clicks += Int128(row.figures.clicks)
        totals.conversions += Int128(row.figures.conversions)
        totals.revenue += Int128(row.figures.revenue)
        totals.refunds += Int128(row.figures.refunds)
        totals.spend += Int128(row.figures.spend)
    }
    require(totals.views == k * Int128(accepted[0]), "rows hold \(totals.views) views for \(accepted[0]) accepted (x\(k))")
    require(totals.clicks == k * Int128(accepted[1]), "rows hold \(totals.clicks) clicks for \(accepted[1]) accepted (x\(k))")
    require(
        totals.conversions == k * Int128(accepted[2]) * Int128(Micros.one),
        "rows hold \(totals.conversions) micro-conversions for \(accepted[2]) accepted purchases (x\(k))")
    require(totals.revenue == k * revenue, "rows hold revenue \(totals.revenue), accepted purchases \(revenue) (x\(k))")
    require(totals.refunds == k * refunds, "rows hold refunds \(totals.refunds), accepted refunds \(refunds) (x\(k))")
    require(totals.spend == k * spend, "rows hold spend \(totals.spend), accepted spend \(spend) (x\(k))")
    let acceptedEngagements = Int128(accepted[Int(EventKind.engagement.rawValue)])
    let acceptedSignups = Int128(accepted[Int(EventKind.signup.rawValue)])
    require(engagements == k * acceptedEngagements, "rows hold \(engagements) engagements for \(acceptedEngagements) (x\(k))")
    require(leads == k * acceptedSignups * Int128(Micros.one), "rows hold \(leads) micro-leads for \(acceptedSignups) sign-ups (x\(k))")
    return 0
}

fuzzMain(fuzzOne)
