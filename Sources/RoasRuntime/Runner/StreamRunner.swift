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
    public struct Result: Sendable {
        public var statistics: Statistics
        public var state: Engine.StateSizes

        public init(statistics: Statistics, state: Engine.StateSizes) {
            self.statistics = statistics
            self.state = state
        }
    }

    /// Reads `input` to its end.
    public func run(input: Int32) throws -> Result {
        self.settings.threads >= 2 ? try self.runOnTwoThreads(input: input) : try self.runOnOneThread(input: input)
    }

    private func runOnOneThread(input: Int32) throws -> Result {
        let settings = self.settings
        var pipeline = Pipeline(
            configuration: settings.configuration, secrets: settings.secrets, tolerance: settings.tolerance,
            maximumLineLength: settings.maximumLineLength, maximumBatchBytes: settings.maximumBatchBytes,
            maximumFuture: settings.maximumFuture, now: settings.now)
        pipeline.trackUpdates(settings.emitEvery != nil)
        var clock = UpdateClock(everyMilliseconds: settings.emitEvery)
        try StreamRunner.readAll(input, chunkSize: settings.chunkSize) { bytes in
            pipeline.consume(bytes)
            if clock.isDue() { pipeline.emitUpdates() }
            try self.write(&pipeline.output)
        }
        pipeline.finish()
        try self.write(&pipeline.output)
        try self.flush()
        return Result(statistics: pipeline.statistics, state: pipeline.engine.stateSizes)
    }

    private func runOnTwoThreads(input: Int32) throws -> Result {
        let settings = self.settings
        let queue = ChunkQueue(capacity: 4)
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

        var sink = EngineSink(engine: Engine(configuration: settings.configuration))
        sink.engine.trackUpdates(settings.emitEvery != nil)
        var clock = UpdateClock(everyMilliseconds: settings.emitEvery)
        reading: while true {
            switch queue.take() {
            case .chunk(let chunk):
                sink.replay(chunk)
                if clock.isDue() { sink.engine.emitUpdates(into: &sink.output) }
                try self.write(&sink.output)
            case .end:
                break reading
            case .failure(let error):
                throw error
            }
        }
        sink.engine.finish(into: &sink.output)
        try self.write(&sink.output)
        try self.flush()
        return Result(statistics: sink.engine.statistics, state: sink.engine.stateSizes)
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

    /// Writes out and clears what the engine produced.
    func write(_ output: inout EngineOutput) throws {
        guard !output.isEmpty else { return }
        for row in output.rows {
            try self.rows.writeLine { row.appendJSON(to: &$0) }
            try self.alerts?.observe(row)
        }
        if !output.rows.isEmpty { try self.alerts?.sink.flush() }
        // Rows are what people watch: hand them on as soon as a chunk produced any.
        if !output.rows.isEmpty { try self.rows.flush() }
        if let deadLetters = self.deadLetters {
            for letter in output.deadLetters {
                try deadLetters.writeLine { letter.appendJSON(to: &$0) }
            }
        }
        output.removeAll()
    }

    private func flush() throws {
        try self.rows.flush()
        try self.alerts?.sink.flush()
        try self.deadLetters?.flush()
    }
}
