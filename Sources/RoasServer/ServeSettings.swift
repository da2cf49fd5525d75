import Foundation
import RoasCore
import RoasRuntime
import RoasScaleOut

/// Everything `roas serve` needs: the settings of `roas run` plus where to listen and its limits.
public struct ServeSettings: Sendable {
    /// Engine configuration, secrets, tolerance, line and batch limits, and `emitEvery` (live rows
    /// written to the output; the dashboard gets live rows every second regardless).
    public var run: RunSettings
    public var tcp: ListenAddress?
    public var http: ListenAddress?
    /// TCP connections at once; more are closed at once with an error line.
    public var maximumConnections = 1024
    /// Milliseconds a TCP connection may stay silent before it is closed (a half-sent frame is then
    /// dead-lettered `bad_frame`, as at the end of stdin); 0: never.
    public var connectionIdleTimeout: Int64 = 60_000
    /// Bytes of the kernel's receive buffer of each TCP connection (SO_RCVBUF on the listening
    /// socket); nil: the kernel's own, which grows up to `net.ipv4.tcp_rmem`'s maximum (32 MiB on
    /// some machines) and so holds that much of a sender's stream while ingest waits.
    public var tcpReceiveBuffer: Int?
    /// Milliseconds without any event after which the watermark follows the wall clock
    /// (wall clock minus the lateness), so open windows still close.
    public var idleClose: Int64 = 30_000
    /// Bearer token for the read endpoints (`/v1/roas`, `/v1/stream`, `/metrics`, `/`); nil for none.
    public var apiToken: String?
    /// Chunks waiting for the engine beyond which webhook requests get 503 with Retry-After.
    public var maximumQueuedChunks = 64
    /// Wall-clock milliseconds between live updates on `/v1/stream` and the dashboard.
    public var liveEvery: Int64 = 1000
    /// `--data-dir`: a write-ahead log and checkpoints; input is acknowledged once durable, and a
    /// restart resumes where the last run stopped (also after a crash).
    public var durability: DurabilitySettings?
    // Limits against unauthenticated clients: every one bounds what a client can make roas hold
    // before it has proved anything (see README, "Options of roas serve").
    /// `--max-http-connections`: HTTP connections at once; one more is answered 503 and closed at once.
    public var maximumHTTPConnections = 1024
    /// `--http-timeout`, milliseconds: to receive a request's head (from the connection's start or
    /// the previous response), to receive its whole body (from its head), and to keep an idle
    /// connection open.
    public var httpTimeout: Int64 = 30_000
    /// `--max-inflight-bytes`: body and frame bytes held in memory at once by webhook requests and
    /// TCP connections together (as read, and as parsed until applied); webhooks get 503 beyond it,
    /// TCP connections stop reading. At least twice `--max-batch`.
    public var maximumInflightBytes = 256 << 20
    /// `--stream-buffer`: bytes of events a `/v1/stream` subscriber may have waiting; one that falls
    /// further behind is dropped (its stream ends).
    public var streamBufferBytes = 1 << 20
    /// `--alert`: rules evaluated on final rows (their alerts go to `/v1/alerts`, `/v1/stream` and `--alerts`).
    public var alertRules: [AlertRule] = []
    /// `--alert-webhook URL --alert-secret whsec_...`: alerts are also POSTed there, signed with
    /// Standard Webhooks and retried (AlertWebhookService); with `durability`, queued in an outbox.
    public var alertWebhook: AlertWebhookSettings?
    /// `--nats`: the replicated log this edge appends input to, instead of applying it to an engine
    /// of its own (opened before the server starts; see `LogEdge`).
    var edge: LogEdge?
    /// `--follow`: reads the stream back into the engine (`Ingestor.followStream()`).
    var follower: LogFollower?
    /// Wall-clock milliseconds since the epoch.
    public var wallClock: @Sendable () -> Int64 = { SystemClock.wallClockMilliseconds() }

    public init(run: RunSettings) {
        self.run = run
    }
}
