import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import RoasCore
import RoasRuntime
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Set once every listener is up (`/readyz`).
final class Readiness: Sendable {
    private let listeners: Atomic<Int>
    init(listeners: Int) { self.listeners = Atomic(listeners) }
    func listenerStarted() { self.listeners.subtract(1, ordering: .relaxed) }
    var isReady: Bool { self.listeners.load(ordering: .relaxed) <= 0 }
}

/// `roas serve`: TCP and webhook ingest into one engine, live views, metrics and the dashboard, run
/// as a swift-service-lifecycle `ServiceGroup`.
///
/// Shutdown (SIGTERM, SIGINT or `shutdown()`): the TCP listener stops accepting and each connection
/// applies what it had read; the engine applies everything pending and closes every window, as at
/// the end of stdin in `roas run`, and the event streams end; then the HTTP server stops. With a
/// data folder (`ServeSettings.durability`) the engine writes a checkpoint instead and its open
/// windows stay open for the next start, which resumes from the folder (also after a crash).
public final class RoasService: Sendable {
    /// Where the listeners ended up (the bound ports, for port 0).
    public struct Bound: Sendable {
        public var tcp: ListenAddress?
        public var http: ListenAddress?
    }

    private let settings: ServeSettings
    let ingestor: Ingestor
    private let logger: Logger
    private let group = Mutex<ServiceGroup?>(nil)
    private let shutdownRequested = Atomic<Bool>(false)
    private let recovery = Mutex<RecoveryReport?>(nil)
    private let postgres: PostgresRowSink?

    /// - Parameter postgres: `--sink postgres://…`: where rows also go (run by this server, and
    ///   stopped last, once the engine has written its last rows).
    public init(
        settings: ServeSettings, rows: sending ByteSink, deadLetters: sending ByteSink?, postgres: PostgresRowSink? = nil,
        alertLog: sending ByteSink? = nil, logger: Logger
    ) {
        self.settings = settings
        self.logger = logger
        self.postgres = postgres
        self.ingestor = Ingestor(
            settings: settings, rows: rows, deadLetters: deadLetters, postgres: postgres, alertLog: alertLog)
    }

    /// With a data folder: takes the folder, loads its newest checkpoint and replays its log (see
    /// `Ingestor.recover`). `run` does this first when it was not called; nil without a folder.
    @discardableResult
    public func recover() async throws -> RecoveryReport? {
        guard let durability = self.settings.durability else { return nil }
        if let report = self.recovery.withLock({ $0 }) { return report }
        let report = try await self.ingestor.recover(durability, logger: self.logger)
        self.recovery.withLock { $0 = report }
        self.logger.notice(
            "recovered from the data folder",
            metadata: [
                "directory": "\(durability.directory)", "checkpoint_lsn": "\(report.checkpointLSN)",
                "replayed_records": "\(report.replayedRecords)", "replayed_bytes": "\(report.replayedBytes)",
                "skipped_rows": "\(report.skippedRows)", "milliseconds": "\(report.milliseconds)",
            ])
        return report
    }

    /// Runs until shutdown; `onListening` is called once every listener is bound. Returns what a
    /// finished `roas run` returns.
    public func run(
        handlesSignals: Bool = true, onListening: @escaping @Sendable (Bound) -> Void = { _ in }
    ) async throws -> RunResult {
        try await self.recover()
        guard handlesSignals else { return try await self.serve(onListening: onListening) }
        // Caught from here on, before any listener is bound and reported: a SIGTERM right after the
        // "listening" line is a graceful shutdown too (the service group would install its handlers
        // later). The signals' task is a child of this one, ended when serving ends.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        return try await withThrowingTaskGroup(of: Void.self, returning: RunResult.self) { group in
            group.addTask {
                for await _ in signals { await self.shutdown() }
            }
            defer { group.cancelAll() }
            return try await self.serve(onListening: onListening)
        }
    }

    /// `run` once the data folder is recovered and the signals are caught.
    private func serve(onListening: @escaping @Sendable (Bound) -> Void) async throws -> RunResult {
        let listeners = (self.settings.tcp == nil ? 0 : 1) + (self.settings.http == nil ? 0 : 1)
        let readiness = Readiness(listeners: listeners)
        let bound = Mutex(Bound())
        let report: @Sendable () -> Void = {
            readiness.listenerStarted()
            if readiness.isReady { onListening(bound.withLock { $0 }) }
        }
        // Services stop in reverse order: TCP first (each connection applies what it read), then
        // the engine (final rows, also to /v1/stream, whose streams then end), then HTTP, then the
        // database sink (it delivers what is queued). A webhook racing the shutdown is either
        // applied before the engine finishes or answered 503.
        let engine = EngineService(
            ingestor: self.ingestor, every: self.settings.liveEvery,
            checkpointEvery: self.settings.durability?.checkpointEvery)
        var services: [any Service] = []
        if let postgres = self.postgres { services.append(postgres) }
        // Stopped after the engine (services stop in reverse order): the alerts of its last rows are queued.
        if let webhooks = self.ingestor.webhooks { services.append(AlertWebhookService(queue: webhooks, logger: self.logger)) }
        var tcpService: TCPService?
        if let address = self.settings.tcp {
            let tcp = TCPIngest(address: address, settings: self.settings, ingestor: self.ingestor, logger: self.logger)
            let listener = try await tcp.bind()
            let port = listener.channel.localAddress?.port ?? address.port
            bound.withLock { $0.tcp = ListenAddress(host: address.host, port: port) }
            self.logger.notice("TCP ingest listening", metadata: ["address": "\(address.host):\(port)"])
            tcpService = TCPService(ingest: tcp, listener: listener)
            report()
        }
        if let address = self.settings.http {
            let routes = HTTPRoutes(settings: self.settings, ingestor: self.ingestor, readiness: readiness)
            let logger = self.logger
            // --max-http-connections and --http-timeout, on Hummingbird's HTTP/1.1 channel.
            let gate = HTTPConnectionGate(
                limit: self.settings.maximumHTTPConnections, metrics: self.ingestor.metrics, logger: logger)
            let timeout = TimeAmount.milliseconds(self.settings.httpTimeout)
            let app = Application(
                router: routes.router(),
                server: HTTPServerBuilder { responder in
                    LimitedHTTP1Channel(responder: responder, timeout: timeout, gate: gate)
                },
                configuration: .init(address: .hostname(address.host, port: address.port), serverName: "roas"),
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? address.port
                    bound.withLock { $0.http = ListenAddress(host: address.host, port: port) }
                    logger.notice("HTTP listening", metadata: ["address": "\(address.host):\(port)"])
                    report()
                },
                logger: logger)
            services.append(app)
        }
        services.append(engine)
        if let tcpService { services.append(tcpService) }
        if listeners == 0 { onListening(Bound()) }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [],
                logger: self.logger))
        self.group.withLock { $0 = group }
        if self.shutdownRequested.load(ordering: .relaxed) { await group.triggerGracefulShutdown() }
        try await group.run()
        return try await self.ingestor.finish()
    }

    /// Whether a data folder holds state of an earlier run (its outputs are then continued).
    public static func hasState(directory: String) -> Bool {
        DataFolder.hasState(directory)
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        self.shutdownRequested.store(true, ordering: .relaxed)
        if let group = self.group.withLock({ $0 }) { await group.triggerGracefulShutdown() }
    }

    /// Open TCP connections.
    public var connectionCount: Int { self.ingestor.gauges.connections.load(ordering: .relaxed) }

    /// The engine's counts so far.
    public var statistics: Statistics {
        get async { await self.ingestor.statistics }
    }
}

/// The engine's clock: live rows, the idle close, metrics and stats every `every` milliseconds, and
/// with a data folder a checkpoint every `checkpointEvery`, beside the follower of the write-ahead
/// log (`Ingestor.followLog()`). At graceful shutdown (after the TCP listener has drained) it
/// finishes the engine, also when a tick failed, so that the log is closed and its follower ends.
struct EngineService: Service {
    let ingestor: Ingestor
    let every: Int64
    let checkpointEvery: Int64?

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            // Not ended by shutdown: it ends once finish() has closed the log.
            group.addTask { await self.ingestor.followLog() }
            // With --follow, the stream read back; ends in finish() too.
            group.addTask { await self.ingestor.followStream() }
            var failure: (any Error)?
            do {
                try await cancelWhenGracefulShutdown {
                    try await withThrowingDiscardingTaskGroup { ticks in
                        ticks.addTask {
                            while true {
                                try await Task.sleep(for: .milliseconds(self.every))
                                try await self.ingestor.tick()
                            }
                        }
                        if let checkpointEvery = self.checkpointEvery {
                            ticks.addTask {
                                while true {
                                    try await Task.sleep(for: .milliseconds(checkpointEvery))
                                    try await self.ingestor.checkpointIfDue()
                                }
                            }
                        }
                    }
                }
            } catch is CancellationError {
                // Graceful shutdown: the listeners have drained (they stop first).
            } catch {
                failure = error
            }
            do {
                _ = try await self.ingestor.finish()
            } catch {
                throw failure ?? error
            }
            if let failure { throw failure }
        }
    }
}

/// The TCP listener as a service.
struct TCPService: Service {
    let ingest: TCPIngest
    let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    func run() async throws {
        try await self.ingest.serve(self.listener)
    }
}
