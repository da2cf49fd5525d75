import Logging
import PostgresNIO
import RoasCore
import RoasRuntime
import ServiceLifecycle
import Synchronization

/// `--sink postgres://…`: delivers rows to PostgreSQL, final rows into `roas_rows` and live rows
/// into `roas_live_rows`, upserted by (window_start, window_end, creator, campaign).
///
/// Rows wait in a bounded queue; `run()` takes them in order, up to `batchRows` at a time, and
/// writes each batch with one statement in one transaction. While PostgreSQL is down or slow the
/// queue fills and `enqueue` suspends its caller, so ingest waits instead of rows being dropped.
/// Delivery is at least once: a batch whose commit was not confirmed is written again, which the
/// upsert makes harmless. `waitDelivered` tells when rows are committed (a checkpoint must not
/// cover rows that are not in the database yet).
///
/// The loop owns one `PostgresConnection` rather than a `PostgresClient`: a single writer keeps
/// batches in order, and owning the connection lets it see an outage at once, log it, and choose
/// the backoff itself instead of waiting on a pool's lease. The connection is plain TCP (no TLS).
/// The tables need PostgreSQL 15 or newer (`UNIQUE NULLS NOT DISTINCT`).
public final class PostgresRowSink: Service, Sendable {
    private let url: PostgresURL
    private let logger: Logger
    private let batchRows: Int
    private let shutdownPatience: Duration
    private let state: Mutex<PostgresRowQueue>
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let connectionIDs = Atomic<Int>(0)

    static let firstBackoff: Duration = .milliseconds(100)
    static let longestBackoff: Duration = .seconds(5)

    /// Parses `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or `postgresql://`, with an
    /// optional `?sslmode=disable`); nothing connects until `run()`.
    ///
    /// - Parameters:
    ///   - maximumQueuedRows: rows that may wait for PostgreSQL before `enqueue` suspends.
    ///   - batchRows: the most rows written by one statement.
    /// - Throws: `RoasError(.options, …)` when the URL is not of that form or asks for TLS.
    public convenience init(url: String, logger: Logger, maximumQueuedRows: Int = 100_000, batchRows: Int = 1000) throws {
        try self.init(
            url: url,
            logger: logger,
            maximumQueuedRows: maximumQueuedRows,
            batchRows: batchRows,
            shutdownPatience: .seconds(30)
        )
    }

    /// - Parameter shutdownPatience: how long PostgreSQL may keep failing after a graceful shutdown
    ///   request before the rows still queued are given up.
    init(url: String, logger: Logger, maximumQueuedRows: Int, batchRows: Int, shutdownPatience: Duration) throws {
        guard maximumQueuedRows > 0, batchRows > 0 else {
            throw RoasError(.options, "--sink: the queue and batch sizes must be positive")
        }
        self.url = try PostgresURL(url)
        self.logger = logger
        self.batchRows = batchRows
        self.shutdownPatience = shutdownPatience
        self.state = Mutex(PostgresRowQueue(capacity: maximumQueuedRows))
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Enqueueing

    /// Appends `rows` to the queue, suspending while `maximumQueuedRows` rows wait for PostgreSQL.
    ///
    /// Rows enter in order, as room frees up; concurrent callers are served first come, first
    /// served. A caller cancelled while waiting appends the rest beyond the bound rather than
    /// dropping it. Once `run()` has returned, rows are dropped (and `waitDelivered` throws).
    ///
    /// - Returns: the sequence number of the last row of `rows` (rows are numbered from 1 since start).
    @discardableResult
    public func enqueue(_ rows: [Row]) async -> UInt64 {
        if rows.isEmpty { return self.state.withLock { $0.enqueued } }
        var rest = rows[...]
        var hasTurn = false
        var cancelled = false
        while true {
            let id = self.state.withLock { $0.makeWaiterID() }
            var last: UInt64?
            let resumed = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                    let step = self.state.withLock {
                        $0.enqueue(
                            &rest,
                            id: id,
                            hasTurn: hasTurn,
                            overflow: cancelled || Task.isCancelled,
                            continuation: continuation
                        )
                    }
                    // Before waiting too: the loop must drain what was just appended to make room.
                    self.wake.yield()
                    if case .done(let sequence, let next) = step {
                        last = sequence
                        next?.resume(returning: true)
                        continuation.resume(returning: false)
                    }
                }
            } onCancel: {
                self.state.withLock { $0.removeRoomWaiter(id) }?.resume(returning: false)
            }
            if let last { return last }
            hasTurn = resumed
            cancelled = Task.isCancelled
        }
    }

    /// Appends `rows` at once, whatever the queue holds, in the order of the calls; callers bound the
    /// queue by calling `waitForRoom` between appends (as `roas serve` does after each chunk it
    /// applies), so it exceeds `maximumQueuedRows` by at most what the callers appended meanwhile.
    ///
    /// - Returns: the sequence number of the last row of `rows`.
    @discardableResult
    public func append(_ rows: [Row]) -> UInt64 {
        let sequence = self.state.withLock { $0.appendAll(rows) }
        if !rows.isEmpty { self.wake.yield() }
        return sequence
    }

    /// Returns once fewer than `maximumQueuedRows` rows wait for PostgreSQL (or the sink has stopped),
    /// or when the caller is cancelled.
    public func waitForRoom() async {
        let id = self.state.withLock { $0.makeWaiterID() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let kept = self.state.withLock {
                    Task.isCancelled ? false : $0.awaitSpace(id: id, continuation: continuation)
                }
                if !kept { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.removeSpaceWaiter(id) }?.resume()
        }
    }

    /// The sequence number of the last row enqueued or appended.
    public var enqueuedSequence: UInt64 { self.state.withLock { $0.enqueued } }

    /// Returns once every row up to `sequence` (see `enqueue`) is committed in PostgreSQL.
    ///
    /// - Throws: `CancellationError` when the caller is cancelled; `RoasError(.output, …)` when
    ///   `run()` has ended with those rows undelivered.
    public func waitDelivered(_ sequence: UInt64) async throws {
        let id = self.state.withLock { $0.makeWaiterID() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Cancellation is checked under the lock: either onCancel finds this waiter, or
                // this sees the cancellation.
                let (kept, delivered, cancelled) = self.state.withLock {
                    Task.isCancelled
                        ? (false, $0.delivered, true)
                        : ($0.awaitDelivery(of: sequence, id: id, continuation: continuation), $0.delivered, false)
                }
                guard !kept else { return }
                if delivered >= sequence {
                    continuation.resume()
                } else if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    continuation.resume(throwing: self.undeliveredError(sequence))
                }
            }
        } onCancel: {
            self.state.withLock { $0.removeDeliveryWaiter(id) }?.resume(throwing: CancellationError())
        }
    }

    /// Returns once every row up to `sequence` is committed in PostgreSQL; throws after `patience`.
    /// - Throws: `RoasError(.output, …)` naming the sequence and the sink's last error.
    public func waitDelivered(_ sequence: UInt64, patience: Duration) async throws {
        let inTime = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.waitDelivered(sequence)
                return true
            }
            group.addTask {
                try await Task.sleep(for: patience)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        guard inTime else {
            throw RoasError(
                .output,
                "rows up to \(sequence) are not in PostgreSQL after \(patience) (\(self.lastError ?? "no error yet"))")
        }
    }

    /// The sequence number of the last row committed in PostgreSQL.
    public var deliveredSequence: UInt64 { self.state.withLock { $0.delivered } }

    /// Rows waiting for PostgreSQL, including the batch being written.
    public var queuedRows: Int { self.state.withLock { $0.count } }

    /// Why the last attempt to deliver failed; nil once a batch has been committed since.
    public var lastError: String? { self.state.withLock { $0.lastError } }

    private func undeliveredError(_ sequence: UInt64) -> RoasError {
        RoasError(.output, "the PostgreSQL sink stopped before row \(sequence) was delivered (\(self.url.redacted))")
    }

    // MARK: Delivering

    /// Delivers queued rows until graceful shutdown, then delivers what is left and returns.
    ///
    /// On an error it logs once per outage, keeps the batch at the head of the queue, and
    /// reconnects after 100 ms, doubling up to 5 s. After a graceful shutdown request it stops
    /// once the queue is empty, or once PostgreSQL has failed for 30 s (logging what is lost).
    /// Cancellation stops it at once.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.deliver()
        } onGracefulShutdown: {
            self.state.withLock { $0.shutdownRequestedAt = .now }
            self.wake.yield()
        }
        let (wakeups, undelivered, dropped) = self.state.withLock { state in
            (state.close(), state.count, state.droppedAfterClose)
        }
        wakeups.resume(failure: self.undeliveredError(self.deliveredSequence + 1))
        if undelivered > 0 || dropped > 0 {
            self.logger.error(
                "PostgreSQL sink stopped with rows not delivered",
                metadata: [
                    "sink.url": "\(self.url.redacted)", "rows.undelivered": "\(undelivered)",
                    "rows.dropped": "\(dropped)",
                ]
            )
        }
    }

    private func deliver() async {
        var wakeups = self.wakeups.makeAsyncIterator()
        var connection: PostgresConnection?
        var backoff = Self.firstBackoff
        var outageStart: ContinuousClock.Instant?
        var retriedQuietly = false
        while !Task.isCancelled {
            let (batch, shutdownAt) = self.state.withLock { ($0.peek(self.batchRows), $0.shutdownRequestedAt) }
            if batch.isEmpty {
                if shutdownAt != nil { break }
                if await wakeups.next() == nil { break }  // cancelled
                continue
            }
            let reused = connection != nil
            do {
                let open = try await self.connectIfNeeded(connection)
                connection = open
                try await self.write(batch, on: open)
                self.state.withLock { $0.commit(batch.count) }.resume(failure: CancellationError())
                retriedQuietly = false
                if let start = outageStart {
                    self.logger.notice(
                        "PostgreSQL sink delivering again",
                        metadata: ["sink.url": "\(self.url.redacted)", "outage.seconds": "\(start.duration(to: .now))"]
                    )
                }
                outageStart = nil
                backoff = Self.firstBackoff
            } catch {
                if Task.isCancelled { break }
                try? await connection?.close()
                connection = nil
                let reason = PostgresErrorText.describe(error)
                self.state.withLock { $0.lastError = reason }
                // A connection left idle may have been closed by the server: one quiet retry.
                if reused && outageStart == nil && !retriedQuietly {
                    self.logger.debug("PostgreSQL connection lost; reconnecting", metadata: ["error": "\(reason)"])
                    retriedQuietly = true
                    continue
                }
                let now = ContinuousClock.now
                if outageStart == nil {
                    self.logger.error(
                        "PostgreSQL sink cannot deliver rows; retrying with backoff",
                        metadata: [
                            "sink.url": "\(self.url.redacted)", "rows.queued": "\(self.queuedRows)",
                            "error": "\(reason)",
                        ]
                    )
                }
                let start = outageStart ?? now
                outageStart = start
                if let shutdownAt, max(start, shutdownAt).duration(to: now) >= self.shutdownPatience {
                    self.logger.error(
                        "PostgreSQL sink giving up at shutdown",
                        metadata: ["sink.url": "\(self.url.redacted)", "rows.undelivered": "\(self.queuedRows)"]
                    )
                    break
                }
                self.logger.debug(
                    "PostgreSQL sink waiting before the next attempt",
                    metadata: ["backoff": "\(backoff)", "error": "\(reason)"]
                )
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, Self.longestBackoff)
            }
        }
        try? await connection?.close()
    }

    /// `connection` if still open, else a new one with the tables created.
    private func connectIfNeeded(_ connection: PostgresConnection?) async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        var configuration = PostgresConnection.Configuration(
            host: self.url.host,
            port: self.url.port,
            username: self.url.username,
            password: self.url.password,
            database: self.url.database,
            tls: .disable
        )
        configuration.options.connectTimeout = .seconds(10)
        let connection = try await PostgresConnection.connect(
            configuration: configuration,
            id: self.connectionIDs.add(1, ordering: .relaxed).newValue,
            logger: self.logger
        )
        do {
            try await self.prepare(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        self.logger.info("PostgreSQL sink connected", metadata: ["sink.url": "\(self.url.redacted)"])
        return connection
    }

    private func prepare(_ connection: PostgresConnection) async throws {
        var version = 0
        for try await value in try await connection.query(PostgresRowStatements.serverVersion, logger: self.logger)
            .decode(Int32.self)
        {
            version = Int(value)
        }
        guard version >= PostgresRowStatements.minimumServerVersion else {
            throw RoasError(
                .output,
                "PostgreSQL \(version / 10_000) is too old for the sink: it needs 15 or newer (NULLS NOT DISTINCT)"
            )
        }
        for table in [PostgresRowStatements.finalTable, PostgresRowStatements.liveTable] {
            try await connection.query(PostgresRowStatements.createTable(table), logger: self.logger)
            // A table made by an older roas keeps its rows and gains the KPI columns.
            try await connection.query(PostgresRowStatements.addColumns(table), logger: self.logger)
            try await connection.query(PostgresRowStatements.widenKey(table), logger: self.logger)
        }
    }

    private func write(_ rows: [Row], on connection: PostgresConnection) async throws {
        let batch = PostgresRowBatch(rows)
        try await connection.withTransaction(logger: self.logger) { connection in
            _ = try await connection.query(PostgresRowStatements.upsert(batch), logger: self.logger)
        }
    }
}
