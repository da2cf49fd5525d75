import RoasCore

/// Where what the engine produced goes: every sink sees every step's rows and dead letters, in the
/// engine's order, and is flushed at the end. `roas run` writes files; `roas serve` adds its live
/// views (board, event stream, database, alert webhooks) as one more sink.
public protocol EngineOutputSink: AnyObject {
    /// One step's output. Its first `replayedFinalRows` final rows are ones recovery replays that
    /// the rows file already holds (see `EngineHost.recovered`): not to be written again.
    func write(_ output: EngineOutput, replayedFinalRows: Int) throws
    func flush() throws
}

/// What a finished run (or a stopped server) reports.
public struct RunResult: Sendable {
    public var statistics: Statistics
    public var state: Engine.StateSizes

    public init(statistics: Statistics, state: Engine.StateSizes) {
        self.statistics = statistics
        self.state = state
    }
}

/// The one apply path of `roas run` and `roas serve`: the engine, and the sinks its output goes to.
/// It applies parsed chunks, emits live updates when asked, closes windows when idle, finishes, and
/// hands every step's output to the sinks in order. `roas run` drives it from its engine thread,
/// `roas serve` from its actor; neither writes rows any other way.
public struct EngineHost {
    public private(set) var sink: EngineSink
    public let outputs: [any EngineOutputSink]
    /// Recovery: final rows the rows file already holds past the checkpoint; each sink is told which
    /// of a step's rows they are.
    public var recovered = RecoveredRows()
    /// When `tick(now:)` writes live rows.
    public private(set) var updates: LiveUpdateSchedule

    /// - Parameters:
    ///   - updatesEvery: milliseconds between live updates (`tick(now:)`); the engine then keeps the
    ///     keys changed since the last one. nil: no live rows.
    ///   - now: monotonic milliseconds; the first live update is due `updatesEvery` after it.
    public init(
        configuration: EngineConfiguration, updatesEvery: Int64?, outputs: [any EngineOutputSink],
        now: Int64 = SystemClock.monotonicMilliseconds()
    ) {
        var engine = Engine(configuration: configuration)
        engine.trackUpdates(updatesEvery != nil)
        self.init(engine: engine, updatesEvery: updatesEvery, outputs: outputs, now: now)
    }

    /// A host of an engine restored from a snapshot (`roas serve --data-dir`).
    public init(
        engine: Engine, updatesEvery: Int64?, outputs: [any EngineOutputSink], now: Int64 = SystemClock.monotonicMilliseconds()
    ) {
        self.sink = EngineSink(engine: engine)
        self.outputs = outputs
        self.updates = LiveUpdateSchedule(every: updatesEvery, now: now)
    }

    public var engine: Engine { self.sink.engine }

    /// `Engine.setPagedState(_:)` on the engine.
    public mutating func setPagedState(_ paged: Bool) { self.sink.engine.setPagedState(paged) }

    /// Waits for the engine's workers (`--workers`) and counts what they looked up: call it before
    /// taking a copy of `engine` to keep (a checkpoint). A no-op without workers.
    public mutating func settle() { self.sink.engine.settle() }

    /// Applies a chunk parsed elsewhere (`ChunkParser`), then writes what came out.
    ///
    /// - Parameter updatesAfterClosedWindows: when the chunk closed a window, also write the live
    ///   rows of the keys it changed, right after the closed rows (`roas serve`'s board).
    public mutating func apply(_ chunk: ParsedChunk, updatesAfterClosedWindows: Bool = false) throws {
        self.sink.replay(chunk)
        if updatesAfterClosedWindows && self.sink.output.rows.contains(where: \.isFinal) { self.sink.emitUpdates() }
        try self.write()
    }

    /// The live clock: at `now` (monotonic milliseconds), writes the live rows of the keys changed
    /// since the last update when one is due. `roas run` calls it after each chunk, `roas serve`
    /// at each tick of its engine service.
    public mutating func tick(now: Int64) throws {
        if self.updates.isDue(now: now) { try self.emitUpdates() }
    }

    /// Live rows of the keys changed since the last update, now.
    public mutating func emitUpdates() throws {
        self.sink.emitUpdates()
        try self.write()
    }

    /// The idle close: the watermark moves to `time` without input.
    public mutating func advanceIdle(to time: Int64) throws {
        self.sink.advanceIdle(to: time)
        try self.write()
    }

    /// End of input: every window closes and is written, and every sink is flushed.
    public mutating func finish() throws -> RunResult {
        self.sink.finish()
        try self.write()
        try self.flush()
        return RunResult(statistics: self.sink.engine.statistics, state: self.sink.engine.stateSizes)
    }

    public func flush() throws {
        for output in self.outputs { try output.flush() }
    }

    /// Hands what the engine produced to every sink, then clears it.
    public mutating func write() throws {
        guard !self.sink.output.isEmpty else { return }
        let replayed = self.recovered.take(from: self.sink.output.rows)
        for output in self.outputs { try output.write(self.sink.output, replayedFinalRows: replayed) }
        self.sink.output.removeAll()
    }

    /// The same for an engine driven some other way (`Pipeline`, on one thread), with nothing to recover.
    public static func write(_ output: inout EngineOutput, to outputs: [any EngineOutputSink]) throws {
        guard !output.isEmpty else { return }
        for sink in outputs { try sink.write(output, replayedFinalRows: 0) }
        output.removeAll()
    }
}

/// Counts down the final rows that recovery replays but the rows file already holds (`roas serve
/// --data-dir` after a crash: same log, same rows).
public struct RecoveredRows: Sendable {
    public var remaining = 0

    public init(remaining: Int = 0) {
        self.remaining = remaining
    }

    /// How many of the final rows in `rows` are replayed ones (always the first of them), counted off.
    public mutating func take(from rows: [Row]) -> Int {
        guard self.remaining > 0 else { return 0 }
        var count = 0
        for row in rows where row.isFinal && count < self.remaining { count += 1 }
        self.remaining -= count
        return count
    }
}

/// Rows as NDJSON to the rows file (or stdout): final rows, and live rows too with `writesUpdates`
/// (`--emit-every`); with `alerts`, each row written also goes through the alert rules
/// (`roas run --alert`). Rows are flushed after each step that wrote one: they are what people watch.
public final class RowFileOutput: EngineOutputSink {
    public let rows: ByteSink
    public let writesUpdates: Bool
    public let alerts: AlertOutput?
    /// The rows this process writes, when it writes some only (`roas worker`: those of the
    /// creators its member owns); nil: every row.
    public let owns: (@Sendable (Row) -> Bool)?
    /// Live rows produced and not written (without `writesUpdates`), for the summary's count.
    public private(set) var unwrittenUpdates = 0

    public init(rows: ByteSink, writesUpdates: Bool, alerts: AlertOutput? = nil, owns: (@Sendable (Row) -> Bool)? = nil) {
        self.rows = rows
        self.writesUpdates = writesUpdates
        self.alerts = alerts
        self.owns = owns
    }

    public func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
        var wrote = false
        var replayed = replayedFinalRows
        for row in output.rows {
            if row.isFinal && replayed > 0 {
                replayed -= 1
                continue
            }
            guard row.isFinal || self.writesUpdates else {
                self.unwrittenUpdates += 1
                continue
            }
            if let owns = self.owns, !owns(row) { continue }
            try self.rows.writeLine { row.appendJSON(to: &$0) }
            try self.alerts?.observe(row)
            wrote = true
        }
        if wrote {
            try self.alerts?.sink.flush()
            try self.rows.flush()
        }
    }

    public func flush() throws {
        try self.rows.flush()
        try self.alerts?.sink.flush()
    }
}

/// Dead letters as NDJSON (`--dead-letter`). `flushesEachStep`: hand them on after each step
/// (`roas serve`); otherwise they are flushed when the buffer fills and at the end.
public final class DeadLetterFileOutput: EngineOutputSink {
    public let deadLetters: ByteSink
    public let flushesEachStep: Bool

    public init(deadLetters: ByteSink, flushesEachStep: Bool) {
        self.deadLetters = deadLetters
        self.flushesEachStep = flushesEachStep
    }

    public func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
        for letter in output.deadLetters {
            try self.deadLetters.writeLine { letter.appendJSON(to: &$0) }
        }
        if self.flushesEachStep && !output.deadLetters.isEmpty { try self.deadLetters.flush() }
    }

    public func flush() throws {
        try self.deadLetters.flush()
    }
}
