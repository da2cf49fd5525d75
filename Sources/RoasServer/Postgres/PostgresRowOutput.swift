import Dispatch
import RoasCore
import RoasRuntime

/// `roas worker --sink postgres://…`: hands the rows a thread of its own writes (an `OutputThread`
/// sink) to a `PostgresRowSink`, blocking that thread while the sink's queue is full, and on
/// `flush()` until PostgreSQL holds every row handed over (a checkpoint must not cover rows that
/// are not in the database yet). Rows written again after a restart are harmless: the sink upserts.
public final class PostgresRowOutput: EngineOutputSink {
    private let sink: PostgresRowSink
    private let writesUpdates: Bool
    private let owns: @Sendable (Row) -> Bool
    private let patience: Duration

    /// - Parameters:
    ///   - writesUpdates: live rows too (`--emit-every`), not only final ones.
    ///   - owns: which rows are this process's to write.
    ///   - patience: how long `flush()` waits for PostgreSQL before it fails.
    public init(
        sink: PostgresRowSink, writesUpdates: Bool, owns: @escaping @Sendable (Row) -> Bool, patience: Duration = .seconds(60)
    ) {
        self.sink = sink
        self.writesUpdates = writesUpdates
        self.owns = owns
        self.patience = patience
    }

    public func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
        let rows = output.rows.filter { (self.writesUpdates || $0.isFinal) && self.owns($0) }
        guard !rows.isEmpty else { return }
        self.sink.append(rows)
        try Self.blocking { [sink] in await sink.waitForRoom() }
    }

    /// Waits until PostgreSQL holds every row handed over so far.
    /// - Throws: `RoasError(.output)` when it does not within `patience`.
    public func flush() throws {
        let sequence = self.sink.enqueuedSequence
        guard self.sink.deliveredSequence < sequence else { return }
        let (sink, patience) = (self.sink, self.patience)
        try Self.blocking { try await sink.waitDelivered(sequence, patience: patience) }
    }

    /// Runs `body` as a task and blocks this (non-cooperative) thread until it ends.
    private static func blocking(_ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Task {
            do {
                try await body()
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    /// Written by the task before it signals, read after the wait.
    private final class Outcome: @unchecked Sendable {
        var error: (any Error)?
    }
}
