import Foundation
import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the whole path over a file descriptor to its end, writing rows and dead letters as they come.
public struct StreamRunner {
    public let settings: RunSettings
    public let rows: ByteSink
    public let deadLetters: ByteSink?
    /// Alert rules evaluated on the final rows, and where their alerts go (`--alert`, `--alerts`).
    public let alerts: AlertOutput?

    public init(settings: RunSettings, rows: ByteSink, deadLetters: ByteSink?, alerts: AlertOutput? = nil) {
        self.settings = settings
        self.rows = rows
        self.deadLetters = deadLetters
        self.alerts = alerts
    }

    /// What a finished run reports.
    public typealias Result = RunResult

    /// The files rows, alerts and dead letters go to, as the engine host's sinks.
    private var outputs: [any EngineOutputSink] {
        var outputs: [any EngineOutputSink] = [
            RowFileOutput(rows: self.rows, writesUpdates: self.settings.emitEvery != nil, alerts: self.alerts)
        ]
        if let deadLetters = self.deadLetters { outputs.append(DeadLetterFileOutput(deadLetters: deadLetters, flushesEachStep: false)) }
        return outputs
    }

    /// Reads `input` to its end.
    public func run(input: Int32) throws -> Result {
        self.settings.threads >= 2 ? try self.runOnTwoThreads(input: input) : try self.runOnOneThread(input: input)
    }

    private func runOnOneThread(input: Int32) throws -> Result {
        let settings = self.settings
        let outputs = self.outputs
        var pipeline = Pipeline(
            configuration: settings.configuration, secrets: settings.secrets, tolerance: settings.tolerance,
            maximumLineLength: settings.maximumLineLength, maximumBatchBytes: settings.maximumBatchBytes,
            maximumFuture: settings.maximumFuture, now: settings.now)
        pipeline.trackUpdates(settings.emitEvery != nil)
        var updates = LiveUpdateSchedule(every: settings.emitEvery, now: SystemClock.monotonicMilliseconds())
        try StreamRunner.readAll(input, chunkSize: settings.chunkSize) { bytes in
            pipeline.consume(bytes)
            if updates.isDue(now: SystemClock.monotonicMilliseconds()) { pipeline.emitUpdates() }
            try EngineHost.write(&pipeline.output, to: outputs)
        }
        pipeline.finish()
        try EngineHost.write(&pipeline.output, to: outputs)
        for output in outputs { try output.flush() }
        return Result(statistics: pipeline.statistics, state: pipeline.engine.stateSizes)
    }

    /// What the reading thread hands the engine's thread.
    private enum ReaderItem: Sendable {
        case chunk(ParsedChunk)
        case end
        case failure(RoasError)
    }

    private func runOnTwoThreads(input: Int32) throws -> Result {
        let settings = self.settings
        let queue = BlockingQueue<ReaderItem>(capacity: 2)
        let reader = Thread {
            var parser = ChunkParser(settings: settings)
            do {
                try StreamRunner.readAll(input, chunkSize: settings.chunkSize) { bytes in
                    guard queue.put(.chunk(parser.consume(bytes))) else { throw CancellationError() }
                }
                _ = queue.put(.chunk(parser.finish()))
                _ = queue.put(.end)
            } catch let error as RoasError {
                _ = queue.put(.failure(error))
            } catch {
                // Cancelled: the engine's thread stopped taking chunks.
            }
        }
        reader.name = "roas-reader"
        reader.start()
        defer { queue.cancel() }

        // Rows and dead letters are written on a third thread (`OutputThread`), in the engine's order.
        let output = OutputThread(sinks: self.outputs)
        defer { output.close() }
        var host = EngineHost(configuration: settings.configuration, updatesEvery: settings.emitEvery, outputs: [output])
        reading: while true {
            switch queue.take() {
            case .chunk(let chunk):
                try host.apply(chunk)
                try host.tick(now: SystemClock.monotonicMilliseconds())
            case .end:
                break reading
            case .failure(let error):
                throw error
            }
        }
        return try host.finish()
    }

    /// Calls `body` with each chunk read from `input` until its end.
    static func readAll(_ input: Int32, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let count = read(input, chunk, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw RoasError(.input, "cannot read input: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(start: chunk, count: count))
        }
    }
}
