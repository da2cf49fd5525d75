import Logging
import RoasCore
import RoasRuntime
import ServiceLifecycle

/// Delivers the alerts of `AlertWebhookQueue` to `--alert-webhook`, one at a time in the order they
/// fired (so a key's firing alert always arrives before its resolved one), off the ingest path:
/// ingest only queues them. A failed attempt (no connection, no answer within `--alert-timeout`,
/// 408, 429 or 5xx) is retried after a backoff that doubles from `--alert-retry-base` (1 s) up to
/// 5 minutes, shortened by up to 20% at random; the backoff is the receiver's (the queue waits
/// behind its head). An alert still undelivered `--alert-retry-for` (1 h) after it was queued is
/// dropped; a 3xx or other 4xx answer drops it at once. Failing spells are logged once, when they
/// start, and once when deliveries succeed again.
///
/// At graceful shutdown (after the engine has written its last rows and their alerts): with a data
/// folder the queue stays in the outbox for the next start; without, each waiting alert gets one
/// more attempt within `AlertWebhookSettings.shutdownGrace`, and what is left is lost (logged).
struct AlertWebhookService: Service {
    let queue: AlertWebhookQueue
    let logger: Logger

    func run() async throws {
        let settings = self.queue.settings
        let client = try AlertWebhookClient(url: settings.url, timeout: settings.timeout)
        let (queue, logger) = (self.queue, self.logger)
        let failures = await cancelWhenGracefulShutdown {
            var deliverer = AlertDeliverer(queue: queue, client: client, logger: logger)
            await deliverer.run()
            return deliverer.failures
        }
        let waiting = queue.count
        guard waiting > 0 else { return }
        if queue.isPersistent {
            logger.notice("undelivered alerts stay in the outbox for the next start", metadata: ["alerts": "\(waiting)"])
            return
        }
        // Still failing: the spell was logged already.
        var deliverer = AlertDeliverer(queue: queue, client: client, logger: logger, failures: failures)
        let lost = await deliverer.drain(for: settings.shutdownGrace)
        if lost > 0 {
            logger.error(
                "exiting with undelivered alerts; without --data-dir they are lost", metadata: ["alerts": "\(lost)"])
        }
    }
}

/// The delivery loop's state: the signer (libcrypto's HMAC context, owned by this task) and the
/// receiver's failing spell.
struct AlertDeliverer {
    let queue: AlertWebhookQueue
    let client: AlertWebhookClient
    let logger: Logger
    private let signer: AlertWebhookSigner
    /// Failed attempts in a row (any alert): what the backoff grows with.
    private(set) var failures = 0
    private var droppedSinceLog = 0
    private var lastDropLog: Int64 = .min

    init(queue: AlertWebhookQueue, client: AlertWebhookClient, logger: Logger, failures: Int = 0) {
        self.failures = failures
        self.queue = queue
        self.client = client
        self.logger = logger
        self.signer = AlertWebhookSigner(secret: queue.settings.secret)
    }

    enum Result: Equatable {
        case delivered, rejected, retry, cancelled
    }

    /// Delivers until the task is cancelled, waiting for alerts when none is queued.
    mutating func run() async {
        var wakeups = self.queue.wakeups.makeAsyncIterator()
        let policy = self.queue.settings.retry
        while !Task.isCancelled {
            guard let entry = self.queue.front() else {
                // Nothing waits: sleep until `offer` queues something (nil: cancelled).
                guard await wakeups.next() != nil else { return }
                continue
            }
            if self.queue.wallClock() - entry.queuedAt >= policy.giveUpAfter {
                self.drop(entry)
                continue
            }
            switch await self.attempt(entry) {
            case .delivered, .rejected:
                continue
            case .cancelled:
                return
            case .retry:
                let delay = policy.delay(afterFailures: self.failures, random: Double.random(in: 0..<1))
                do {
                    try await Task.sleep(for: .milliseconds(delay))
                } catch {
                    return
                }
            }
        }
    }

    /// At shutdown without a data folder: one attempt per waiting alert within `milliseconds`,
    /// stopping at the first failure. Returns how many are left.
    mutating func drain(for milliseconds: Int64) async -> Int {
        let end = SystemClock.monotonicMilliseconds() + milliseconds
        while let entry = self.queue.front() {
            let left = end - SystemClock.monotonicMilliseconds()
            guard left > 0 else { break }
            let result = await self.attempt(entry, timeout: min(self.client.timeout, left))
            if result == .retry || result == .cancelled { break }
        }
        return self.queue.count
    }

    /// One signed POST of `entry`; finishes it in the queue when delivered or refused.
    mutating func attempt(_ entry: AlertWebhookQueue.Entry, timeout: Int64? = nil) async -> Result {
        let metrics = self.queue.metrics
        let timestamp = self.queue.wallClock() / 1000
        let headers = self.signer.headers(webhookID: entry.webhookID, timestamp: timestamp, body: entry.body)
        let status: Int
        do {
            // Not cancelled with the delivery loop at shutdown: a POST the receiver may already have
            // answered 2xx must finish and be recorded as sent, or the shutdown's drain would send
            // it again. The unstructured task does not inherit the cancellation; the attempt is
            // bounded by its timeout all the same.
            let (client, body) = (self.client, entry.body)
            status = try await Task { try await client.post(body: body, headers: headers, timeout: timeout) }.value
        } catch {
            if Task.isCancelled || error is CancellationError { return .cancelled }
            metrics.failedAttempts.increment()
            self.failed(entry, "\(error)")
            return .retry
        }
        switch AlertRetryPolicy.verdict(status: status) {
        case .delivered:
            self.queue.finish(entry, .sent)
            metrics.delivered.increment()
            self.answered()
            return .delivered
        case .reject:
            metrics.failedAttempts.increment()
            metrics.droppedRejected.increment()
            self.queue.finish(entry, .dropped(reason: "rejected"))
            self.logger.error(
                "the alert webhook refused an alert; it is not retried",
                metadata: ["url": "\(self.client.url)", "status": "\(status)", "webhook_id": "\(entry.webhookID)"])
            self.answered()
            return .rejected
        case .retry:
            metrics.failedAttempts.increment()
            self.failed(entry, "HTTP \(status)")
            return .retry
        }
    }

    /// A failed attempt: the first of a spell is logged (a warning), the others only at debug level.
    private mutating func failed(_ entry: AlertWebhookQueue.Entry, _ reason: String) {
        self.failures += 1
        let metadata: Logger.Metadata = [
            "url": "\(self.client.url)", "reason": "\(reason)", "webhook_id": "\(entry.webhookID)",
            "queued_alerts": "\(self.queue.count)",
        ]
        if self.failures == 1 {
            self.logger.warning(
                "alert webhook delivery failed; retrying with backoff (logged again only once it delivers)", metadata: metadata)
        } else {
            self.logger.debug("alert webhook delivery failed again", metadata: metadata.merging(["failures": "\(self.failures)"]) { $1 })
        }
    }

    /// The receiver answered: a failing spell is over.
    private mutating func answered() {
        if self.failures > 0 {
            self.logger.notice(
                "alert webhook delivers again", metadata: ["url": "\(self.client.url)", "failed_attempts": "\(self.failures)"])
        }
        self.failures = 0
    }

    /// Gives up on an alert queued longer than `--alert-retry-for`: counted, and logged at most
    /// once a minute (a long outage expires many at once).
    private mutating func drop(_ entry: AlertWebhookQueue.Entry) {
        self.queue.finish(entry, .dropped(reason: "expired"))
        self.queue.metrics.droppedExpired.increment()
        self.droppedSinceLog += 1
        let now = SystemClock.monotonicMilliseconds()
        if now - self.lastDropLog >= 60_000 {
            self.logger.error(
                "dropped undelivered alerts after retrying for --alert-retry-for",
                metadata: [
                    "url": "\(self.client.url)", "alerts": "\(self.droppedSinceLog)", "webhook_id": "\(entry.webhookID)",
                    "retry_for_ms": "\(self.queue.settings.retry.giveUpAfter)",
                ])
            self.droppedSinceLog = 0
            self.lastDropLog = now
        }
    }
}
