#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a pipeline over a file descriptor to its end, writing rows and dead letters as they come.
public struct StreamRunner {
    public var pipeline: Pipeline
    public let rows: ByteSink
    public let deadLetters: ByteSink?
    /// Milliseconds of wall-clock time between live updates; nil for none.
    public let emitEvery: Int64?
    public var chunkSize = 1 << 20

    public init(pipeline: Pipeline, rows: ByteSink, deadLetters: ByteSink?, emitEvery: Int64?) {
        self.pipeline = pipeline
        self.rows = rows
        self.deadLetters = deadLetters
        self.emitEvery = emitEvery
        self.pipeline.trackUpdates(emitEvery != nil)
    }

    /// Monotonic milliseconds.
    public static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Reads `input` to its end and returns the final statistics.
    public mutating func run(input: Int32) throws -> Statistics {
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: self.chunkSize, alignment: 16)
        defer { chunk.deallocate() }
        var nextUpdate = self.emitEvery.map { StreamRunner.monotonicMilliseconds() + $0 }
        while true {
            let count = read(input, chunk, self.chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw RoasError(.input, "cannot read input: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            self.pipeline.consume(UnsafeRawBufferPointer(start: chunk, count: count))
            if let due = nextUpdate, let every = self.emitEvery, StreamRunner.monotonicMilliseconds() >= due {
                self.pipeline.emitUpdates()
                nextUpdate = StreamRunner.monotonicMilliseconds() + every
            }
            try self.drain()
        }
        self.pipeline.finish()
        try self.drain()
        try self.rows.flush()
        try self.deadLetters?.flush()
        return self.pipeline.statistics
    }

    /// Writes out what the pipeline produced.
    public mutating func drain() throws {
        guard !self.pipeline.output.isEmpty else { return }
        for row in self.pipeline.output.rows {
            try self.rows.writeLine { row.appendJSON(to: &$0) }
        }
        // Rows are what people watch: hand them on as soon as a chunk produced any.
        if !self.pipeline.output.rows.isEmpty { try self.rows.flush() }
        if let deadLetters = self.deadLetters {
            for letter in self.pipeline.output.deadLetters {
                try deadLetters.writeLine { letter.appendJSON(to: &$0) }
            }
        }
        self.pipeline.output.removeAll()
    }
}
