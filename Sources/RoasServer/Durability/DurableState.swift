import Logging
import RoasCore
import RoasRuntime

extension BatchOutcome {
    /// What `AcceptedBatches` and checkpoints remember of an accepted batch.
    var entry: AcceptedBatches.Entry { AcceptedBatches.Entry(timestamp: self.timestamp ?? 0, digest: self.digest) }
}

/// What the engine is waiting to apply, in log order.
enum DurableInput: Sendable {
    case chunk(ParsedChunk)
    case advance(Int64)
}

/// An input appended to the log and queued, to pass to `Ingestor.completion(of:)`.
struct DurableTicket: Sendable {
    var id: Int
    /// 0 when nothing was logged.
    var lsn: UInt64
    /// The log's failure epoch at the append, for the sender's next one (nil: nothing chained yet).
    var epoch: UInt64?
}

/// The `--data-dir` part of the ingestor: the open data folder, and the state machine that orders
/// what goes through it.
struct DurableState {
    /// The open data folder: fixed from recovery to shutdown.
    struct Folder {
        let log: WriteAheadLog
        let checkpoints: CheckpointStore
        let settings: DurabilitySettings
        let logger: Logger
        /// The data folder's LOCK file, held while the server runs.
        let lock: Int32
    }

    typealias Machine = DurableIngest<
        DurableInput, Ingestor.Applied, CheckedContinuation<Ingestor.Applied, any Error>, CheckedContinuation<Void, Never>
    >

    let folder: Folder
    var machine: Machine
}
