import CNats
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A replicated log kept in a NATS JetStream stream, through the NATS C client (libnats 3.x).
///
/// One NATS connection to any of `urls` (it reconnects to another of them, or to a server the cluster
/// announces, when its server goes away). `append` publishes asynchronously with a `Nats-Msg-Id`
/// header and waits for the stream's acknowledgements: JetStream acknowledges a message once a
/// quorum of the stream's replicas stores it, and drops a message whose id it saw within the
/// stream's duplicate window. Readers are ephemeral pull consumers (see `reader(filter:from:)`).
///
/// Every method blocks its thread (libnats is synchronous): call them from threads of your own, not
/// from Swift's cooperative pool. The log is safe to use from several threads at once; libnats locks
/// its connection and contexts itself, and the only Swift state shared with its threads is behind
/// a `Mutex`.
public final class JetStreamLog: ReplicatedLog, Sendable {
    /// What a stream looks like now, as its leader reports it.
    public struct StreamStatus: Sendable, Equatable {
        /// Messages stored.
        public var messages: UInt64
        /// The sequence of the last message stored (0 when none was).
        public var lastSequence: UInt64
        /// The name of the server leading the stream, nil during an election or without a cluster.
        public var leader: String?
        /// The stream's configured replica count.
        public var replicas: Int
        /// Consumers on the stream (readers' ones included).
        public var consumers: Int
    }

    /// The server URLs the log was given.
    public let urls: [String]
    /// The JetStream stream's name.
    public let stream: String
    /// How many servers hold each message (and each reader's consumer).
    public let replicas: Int
    private let connection: CPointer
    /// For JetStream API requests (stream and consumer management, reads).
    private let management: CPointer
    /// For asynchronous publishing: its acknowledgement handler finds `pending` through `ackToken`.
    private let publisher: CPointer
    private let pending: PendingAppends
    private let ackToken: UInt
    private let appendTimeoutMilliseconds: Int64
    private let isClosed = Atomic<Bool>(false)

    /// The largest message the servers take, headers included (their `max_payload`, as the server
    /// this log is connected to announced it; 1 MiB by default).
    public var maximumRecordBytes: Int { Int(natsConnection_GetMaxPayload(self.connection.pointer)) }

    /// Connects to the servers and makes sure the stream exists with these settings.
    ///
    /// - Parameters:
    ///   - urls: NATS server URLs such as `nats://127.0.0.1:4222`; any reachable one will do.
    ///   - stream: the stream's name (no `.`, `*`, `>` or whitespace).
    ///   - subjects: the subjects the stream stores (wildcards allowed), e.g. `["roas.events.>"]`.
    ///   - replicas: how many servers hold each message (1 to 5; 3 survives the loss of one server);
    ///     nil: the stream must exist already, with any number (a reader of someone else's stream).
    ///   - duplicateWindow: how long the stream remembers message ids, so how long after a failed
    ///     append a retry with the same ids is still deduplicated.
    ///   - connectTimeout: how long to wait for each server when connecting.
    ///   - requestTimeout: how long to wait for a JetStream API answer (stream and consumer
    ///     management, `lastMessage`).
    ///   - appendTimeout: how long `append` waits for each record's acknowledgement.
    ///
    /// An existing stream is used as it is if its subjects and replica count are these (a second
    /// process opening the same log), and refused with a `LogError` otherwise.
    public init(
        urls: [String],
        stream: String,
        subjects: [String],
        replicas: Int? = 3,
        duplicateWindow: Duration = .seconds(120),
        connectTimeout: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(5),
        appendTimeout: Duration = .seconds(5)
    ) throws {
        let origin = "NATS JetStream at \(urls.joined(separator: ", "))"
        guard !urls.isEmpty else { throw LogError("NATS JetStream: no server URL given", isTransient: false) }
        guard Self.isValidName(stream) else {
            throw LogError("\(origin): invalid stream name '\(stream)' (no '.', '*', '>' or whitespace)", isTransient: false)
        }
        guard !subjects.isEmpty, subjects.allSatisfy({ !$0.isEmpty }) else {
            throw LogError("\(origin): stream \(stream) needs at least one non-empty subject", isTransient: false)
        }
        if let replicas, !(1...5).contains(replicas) {
            throw LogError("\(origin): stream \(stream): replicas must be 1 to 5, not \(replicas)", isTransient: false)
        }
        let token = nextAckToken.add(1, ordering: .relaxed).newValue
        let pending = PendingAppends()
        let connection = try Self.connect(urls: urls, timeout: connectTimeout, ackToken: token, origin: origin)
        var management: OpaquePointer?
        var publisher: OpaquePointer?
        let streamReplicas: Int
        do {
            management = try Self.jetStream(connection, requestTimeout: requestTimeout, ackToken: nil, origin: origin)
            publisher = try Self.jetStream(
                connection, requestTimeout: requestTimeout, ackToken: token, stallWait: appendTimeout, origin: origin)
            guard let management else { throw LogError("\(origin): no JetStream context", isTransient: false) }
            // A cluster that has just started (or lost its meta leader) answers stream requests
            // with timeouts or "not available" for a few seconds: try again, 0.5 s more each time.
            var attempt = 0
            while true {
                do {
                    streamReplicas = try Self.ensureStream(
                        management,
                        name: stream,
                        subjects: subjects,
                        replicas: replicas,
                        duplicateWindow: duplicateWindow,
                        origin: origin
                    )
                    break
                } catch let error as LogError where error.isTransient && attempt < Self.streamAttempts - 1 {
                    attempt += 1
                    usleep(useconds_t(500_000 * attempt))
                }
            }
        } catch {
            jsCtx_Destroy(publisher)
            jsCtx_Destroy(management)
            natsConnection_Destroy(connection)
            throw error
        }
        guard let management, let publisher else {
            natsConnection_Destroy(connection)
            throw LogError("\(origin): no JetStream context", isTransient: false)
        }
        ackTargets.withLock { $0[token] = pending }
        self.urls = urls
        self.stream = stream
        self.replicas = streamReplicas
        self.connection = CPointer(connection)
        self.management = CPointer(management)
        self.publisher = CPointer(publisher)
        self.pending = pending
        self.ackToken = token
        self.appendTimeoutMilliseconds = max(1, appendTimeout.milliseconds)
    }

    deinit {
        // The acknowledgement handler may still run on a libnats thread: once the token is gone it
        // only frees the message it was given.
        _ = ackTargets.withLock { $0.removeValue(forKey: self.ackToken) }
        jsCtx_Destroy(self.publisher.pointer)
        jsCtx_Destroy(self.management.pointer)
        natsConnection_Close(self.connection.pointer)
        natsConnection_Destroy(self.connection.pointer)
    }

    /// Closes the connection: appends waiting for acknowledgements fail at once, and every later call
    /// (readers' too) throws. Safe to call from any thread, more than once. The C objects are freed
    /// when the log and its readers are released.
    public func close() {
        guard !self.isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        natsConnection_Close(self.connection.pointer)
        self.pending.failAll(AppendFailure(reason: "the log was closed", isTransient: false))
    }

    // MARK: Appending

    /// Publishes every record asynchronously, then waits until the stream has acknowledged each one
    /// (stored by a quorum of replicas, or recognised as a duplicate) or `appendTimeout` has passed.
    /// See `ReplicatedLog.append`.
    public func append(_ records: [LogEntry]) throws -> [LogAppend] {
        try self.checkOpen()
        guard !records.isEmpty else { return [] }
        let batch = AppendBatch(count: records.count)
        for (index, record) in records.enumerated() {
            do {
                try self.publish(record, index: index, batch: batch)
            } catch {
                // Records already published may still be stored: the caller retries them by id.
                self.pending.forget(batch)
                throw error
            }
        }
        // libnats fails each record after `appendTimeout` itself; the margin only guards against a
        // lost callback.
        let limit = DispatchTime.now() + .milliseconds(Int(clamping: self.appendTimeoutMilliseconds + 2_000))
        if batch.finished.wait(timeout: limit) == .timedOut {
            self.pending.forget(batch)
            let unconfirmed = batch.outcome().results.filter { $0 == nil }.count
            throw LogError(
                "\(self.place): append: \(unconfirmed) of \(records.count) records not acknowledged in time",
                isTransient: true
            )
        }
        let (results, failures) = batch.outcome()
        if let first = failures.first {
            throw LogError(
                "\(self.place): append: \(failures.count) of \(records.count) records not confirmed; first: \(first.reason)",
                isTransient: first.isTransient
            )
        }
        let confirmed = results.compactMap { $0 }
        guard confirmed.count == records.count else {
            throw LogError("\(self.place): append: some records have no acknowledgement", isTransient: true)
        }
        return confirmed
    }

    /// Hands one record to libnats; its acknowledgement arrives in `publishAcknowledged`.
    private func publish(_ record: LogEntry, index: Int, batch: AppendBatch) throws {
        guard !record.id.isEmpty else {
            let problem = "a record on '\(record.subject)' has no id to deduplicate it by"
            throw LogError("\(self.place): append: \(problem)", isTransient: false)
        }
        guard record.bytes.count <= Int(Int32.max) else {
            throw LogError("\(self.place): append: a record of \(record.bytes.count) bytes is too large", isTransient: false)
        }
        var message: OpaquePointer?
        var status = record.bytes.withUnsafeBytes { bytes in
            natsMsg_Create(
                &message,
                record.subject,
                nil,
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                Int32(bytes.count)
            )
        }
        guard status == NATS_OK, let created = message else {
            throw self.failure("append: cannot make a message on subject '\(record.subject)'", status)
        }
        self.pending.insert(created, batch: batch, index: index)
        status = record.id.withCString { id in
            self.stream.withCString { stream in
                var options = jsPubOptions()
                jsPubOptions_Init(&options)
                options.MsgId = id
                // A subject that another stream holds must not count as appended to this one.
                options.ExpectStream = stream
                options.MaxWait = self.appendTimeoutMilliseconds
                // On success libnats owns the message and sets `message` to nil.
                return js_PublishMsgAsync(self.publisher.pointer, &message, &options)
            }
        }
        guard status == NATS_OK else {
            let error = self.failure("append: cannot publish on subject '\(record.subject)'", status)
            if let message {
                _ = self.pending.take(message)
                natsMsg_Destroy(message)
            }
            throw error
        }
    }

    /// The publisher's acknowledgement handler (libnats calls it on its own thread, once per
    /// published message, with a server acknowledgement, a server error or a timeout). Frees the
    /// message, which the handler owns.
    fileprivate static func publishAcknowledged(
        message: OpaquePointer?,
        ack: UnsafeMutablePointer<jsPubAck>?,
        error: UnsafeMutablePointer<jsPubAckErr>?,
        closure: UnsafeMutableRawPointer?
    ) {
        defer { natsMsg_Destroy(message) }
        guard let message else { return }
        let token = UInt(bitPattern: closure)
        guard let pending = ackTargets.withLock({ $0[token] }), let entry = pending.take(message) else { return }
        if let ack {
            entry.batch.confirm(entry.index, LogAppend(sequence: ack.pointee.Sequence, duplicate: ack.pointee.Duplicate))
        } else {
            var reason = "no acknowledgement"
            var isTransient = true
            if let error {
                let status = error.pointee.Err
                let text = error.pointee.ErrText.map { String(cString: $0) } ?? ""
                let code = error.pointee.ErrCode.rawValue
                let statusText = String(cString: natsStatus_GetText(status))
                reason = statusText + (text.isEmpty || text == statusText ? "" : ": \(text)")
                if code != 0 { reason += " (JetStream error \(code))" }
                isTransient = Self.isTransient(status, error.pointee.ErrCode)
            }
            entry.batch.fail(entry.index, AppendFailure(reason: reason, isTransient: isTransient))
        }
    }

    /// The connection's disconnected handler: no acknowledgement of what was in flight will come
    /// (the server or its route to the stream leader is gone), so the waiting appends fail now rather
    /// than at their timeout; their callers append again, deduplicated by id.
    fileprivate static func disconnected(closure: UnsafeMutableRawPointer?) {
        let pending = ackTargets.withLock { $0[UInt(bitPattern: closure)] }
        pending?.failAll(AppendFailure(reason: "the connection to the server was lost", isTransient: true))
    }

    // MARK: Reading

    /// A reader of the messages on `filter` from stream sequence `sequence` on: an ephemeral pull
    /// consumer with as many replicas as the stream, its state in memory, no acknowledgements (the
    /// server deletes it two minutes after the reader stops fetching, or at `close()`).
    ///
    /// The reader survives a stream or consumer leader change and the loss of a server: when a fetch
    /// fails, `next` makes a new consumer from the sequence after the last message it returned and
    /// tries again, up to five times within about 20 s (making a consumer takes up to 9 s while a
    /// server is down, see `JetStreamReader.consumerTimeoutMilliseconds`); if that fails too it
    /// throws a transient `LogError` and stays usable (the next `next` starts over from the same
    /// sequence).
    public func reader(filter: String, from sequence: UInt64) throws -> any LogReader {
        try self.checkOpen()
        return try JetStreamReader(log: self, filter: filter, from: sequence)
    }

    /// The last message stored on exactly `subject` (`$JS.API.STREAM.MSG.GET` with `last_by_subj`).
    public func lastMessage(on subject: String) throws -> LogMessage? {
        try self.checkOpen()
        var message: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetLastMsg(&message, self.management.pointer, self.stream, subject, nil, &code)
        if status == NATS_NOT_FOUND || code == JSNoMessageFoundErr {
            natsMsg_Destroy(message)
            return nil
        }
        guard status == NATS_OK, let message else {
            throw self.failure("last message on '\(subject)'", status, code)
        }
        defer { natsMsg_Destroy(message) }
        return LogMessage(
            sequence: natsMsg_GetSequence(message),
            subject: natsMsg_GetSubject(message).map { String(cString: $0) } ?? subject,
            bytes: Self.payload(of: message)
        )
    }

    public func lastSequence() throws -> UInt64 { try self.status().lastSequence }

    /// Deletes the stream with every message it holds (`nats stream rm`); the log is of no more use
    /// after it. For tests of what a stream made again does to the processes reading it.
    package func deleteStream() throws {
        try self.checkOpen()
        var code = jsErrCode(rawValue: 0)
        let status = js_DeleteStream(self.management.pointer, self.stream, nil, &code)
        guard status == NATS_OK else { throw self.failure("delete the stream", status, code) }
    }

    /// The stream's message count, last sequence, leader, replica count and consumer count.
    public func status() throws -> StreamStatus {
        try self.checkOpen()
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, self.management.pointer, self.stream, nil, &code)
        guard status == NATS_OK, let info else { throw self.failure("stream info", status, code) }
        defer { jsStreamInfo_Destroy(info) }
        let leader = info.pointee.Cluster?.pointee.Leader.map { String(cString: $0) }
        return StreamStatus(
            messages: info.pointee.State.Msgs,
            lastSequence: info.pointee.State.LastSeq,
            leader: leader?.isEmpty == true ? nil : leader,
            replicas: Int(info.pointee.Config?.pointee.Replicas ?? 0),
            consumers: Int(info.pointee.State.Consumers)
        )
    }

    // MARK: Helpers shared with the reader

    /// "NATS JetStream at <urls>, stream <name>", the start of every error message.
    var place: String { "NATS JetStream at \(self.urls.joined(separator: ", ")), stream \(self.stream)" }

    var managementContext: OpaquePointer { self.management.pointer }

    func checkOpen() throws {
        if self.isClosed.load(ordering: .acquiring) {
            throw LogError("\(self.place): the log was closed", isTransient: false)
        }
    }

    /// A `LogError` for a failed libnats call: the status text, the thread's last libnats error
    /// (which carries the server's description) and the JetStream error code.
    func failure(_ what: String, _ status: natsStatus, _ code: jsErrCode = jsErrCode(rawValue: 0)) -> LogError {
        Self.failure("\(self.place): \(what)", status, code)
    }

    static func failure(_ what: String, _ status: natsStatus, _ code: jsErrCode = jsErrCode(rawValue: 0)) -> LogError {
        let statusText = String(cString: natsStatus_GetText(status))
        var text = "\(what): \(statusText)"
        var lastStatus = NATS_OK
        if let last = nats_GetLastError(&lastStatus), lastStatus == status {
            let detail = Self.withoutSourceLocation(String(cString: last))
            if !detail.isEmpty, detail != statusText { text += ": \(detail)" }
        }
        if code.rawValue != 0 { text += " (JetStream error \(code.rawValue))" }
        if status == NATS_CONNECTION_CLOSED { text += "; the log was closed" }
        return LogError(text, isTransient: Self.isTransient(status, code))
    }

    /// libnats's last error without its "Error: (conn.c:2088): " prefix.
    private static func withoutSourceLocation(_ text: String) -> String {
        var detail = Substring(text)
        if detail.hasPrefix("Error: ") { detail = detail.dropFirst(7) }
        if detail.hasPrefix("("), let end = detail.firstRange(of: "): "), detail[..<end.lowerBound].contains(".c:") {
            detail = detail[end.upperBound...]
        }
        return String(detail)
    }

    /// Whether a failure may pass by itself: a lost or not yet re-established connection, a leader
    /// election, a timeout.
    /// Tries at looking the stream up or making it, when the cluster answers with a transient error.
    static let streamAttempts = 4

    static func isTransient(_ status: natsStatus, _ code: jsErrCode) -> Bool {
        let statuses = [
            NATS_TIMEOUT, NATS_NO_RESPONDERS, NATS_CONNECTION_DISCONNECTED, NATS_NO_SERVER, NATS_IO_ERROR,
            NATS_STALE_CONNECTION, NATS_MISSED_HEARTBEAT, NATS_INSUFFICIENT_BUFFER, NATS_NOT_YET_CONNECTED,
            NATS_SLOW_CONSUMER,
        ]
        let codes = [JSClusterNotAvailErr, JSClusterNotLeaderErr, JSInsufficientResourcesErr, JSStreamOfflineErr]
        return statuses.contains(status) || codes.contains(code)
    }

    /// A copy of a message's payload.
    static func payload(of message: OpaquePointer) -> [UInt8] {
        let length = Int(natsMsg_GetDataLength(message))
        guard length > 0, let data = natsMsg_GetData(message) else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }

    // MARK: Setting up

    private static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains { $0 == "." || $0 == "*" || $0 == ">" || $0.isWhitespace }
    }

    /// Connects to any of `urls`, reconnecting forever afterwards; a disconnection fails the appends
    /// of the log with `ackToken` (see `disconnected`).
    private static func connect(urls: [String], timeout: Duration, ackToken: UInt, origin: String) throws -> OpaquePointer {
        var created: OpaquePointer?
        guard natsOptions_Create(&created) == NATS_OK, let options = created else {
            throw LogError("\(origin): cannot initialise the NATS client library", isTransient: false)
        }
        defer { natsOptions_Destroy(options) }
        var status = withCStrings(urls) { natsOptions_SetServers(options, $0, Int32($1)) }
        guard status == NATS_OK else { throw Self.failure("\(origin): invalid server URL list", status) }
        let settings: [(String, natsStatus)] = [
            ("timeout", natsOptions_SetTimeout(options, max(1, timeout.milliseconds))),
            ("name", natsOptions_SetName(options, "roas")),
            ("reconnect", natsOptions_SetAllowReconnect(options, true)),
            // Reconnect forever, 250 ms (plus up to 100 ms of jitter) apart for each server.
            ("max reconnect", natsOptions_SetMaxReconnect(options, -1)),
            ("reconnect wait", natsOptions_SetReconnectWait(options, 250)),
            ("reconnect jitter", natsOptions_SetReconnectJitter(options, 100, 1_000)),
            // What publishing may buffer while reconnecting: a few batches of large records.
            ("reconnect buffer", natsOptions_SetReconnectBufSize(options, 64 << 20)),
            // Notice a silently dead server within about 6 s (a stopped one closes the socket at once).
            ("ping interval", natsOptions_SetPingInterval(options, 2_000)),
            ("max pings out", natsOptions_SetMaxPingsOut(options, 3)),
            // JetStream API requests fail at a disconnect instead of waiting out their timeout.
            ("fail requests on disconnect", natsOptions_SetFailRequestsOnDisconnect(options, true)),
            (
                "disconnected callback",
                natsOptions_SetDisconnectedCB(
                    options, { _, closure in JetStreamLog.disconnected(closure: closure) },
                    UnsafeMutableRawPointer(bitPattern: ackToken))
            ),
        ]
        for (name, result) in settings where result != NATS_OK {
            throw Self.failure("\(origin): cannot set the NATS option \(name)", result)
        }
        var connection: OpaquePointer?
        status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else {
            natsConnection_Destroy(connection)
            throw Self.failure("\(origin): cannot connect (is a NATS server with JetStream listening there?)", status)
        }
        return connection
    }

    /// A JetStream context; with `ackToken`, one for asynchronous publishing whose acknowledgements
    /// go to `publishAcknowledged` with the token as closure.
    private static func jetStream(
        _ connection: OpaquePointer,
        requestTimeout: Duration,
        ackToken: UInt?,
        stallWait: Duration = .zero,
        origin: String
    ) throws -> OpaquePointer {
        var options = jsOptions()
        jsOptions_Init(&options)
        options.Wait = max(1, requestTimeout.milliseconds)
        if let ackToken {
            options.PublishAsync.AckHandler = { _, message, ack, error, closure in
                JetStreamLog.publishAcknowledged(message: message, ack: ack, error: error, closure: closure)
            }
            options.PublishAsync.AckHandlerClosure = UnsafeMutableRawPointer(bitPattern: ackToken)
            // Bound the records in flight; a publish past the bound waits up to `stallWait` (the
            // default, 200 ms, is too short for 1 MiB records at R3).
            options.PublishAsync.MaxPending = 4_096
            options.PublishAsync.StallWait = max(1, stallWait.milliseconds)
        }
        var context: OpaquePointer?
        let status = natsConnection_JetStream(&context, connection, &options)
        guard status == NATS_OK, let context else { throw Self.failure("\(origin): cannot make a JetStream context", status) }
        return context
    }

    /// Looks the stream up and creates it when absent; throws when it exists with other subjects or
    /// another replica count.
    private static func ensureStream(
        _ context: OpaquePointer,
        name: String,
        subjects: [String],
        replicas: Int?,
        duplicateWindow: Duration,
        origin: String
    ) throws -> Int {
        let place = "\(origin), stream \(name)"
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        var status = js_GetStreamInfo(&info, context, name, nil, &code)
        if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr {
            guard let replicas else {
                throw LogError("\(place): no such stream (a process that makes it, such as roas serve --nats, starts first)", isTransient: true)
            }
            code = jsErrCode(rawValue: 0)
            status = name.withCString { cName in
                withCStrings(subjects) { cSubjects, count in
                    var config = jsStreamConfig()
                    jsStreamConfig_Init(&config)
                    config.Name = cName
                    config.Subjects = cSubjects
                    config.SubjectsLen = Int32(count)
                    config.Storage = js_FileStorage
                    config.Retention = js_LimitsPolicy
                    config.Replicas = Int64(replicas)
                    config.Duplicates = duplicateWindow.nanoseconds
                    return js_AddStream(&info, context, &config, nil, &code)
                }
            }
            if code == JSStreamNameExistErr {
                // Another process created it meanwhile: check that one.
                jsStreamInfo_Destroy(info)
                info = nil
                code = jsErrCode(rawValue: 0)
                status = js_GetStreamInfo(&info, context, name, nil, &code)
            } else if status != NATS_OK {
                jsStreamInfo_Destroy(info)
                throw Self.failure("\(place): cannot create the stream (\(replicas) replicas)", status, code)
            }
        }
        guard status == NATS_OK, let info else {
            jsStreamInfo_Destroy(info)
            throw Self.failure("\(place): cannot look the stream up", status, code)
        }
        defer { jsStreamInfo_Destroy(info) }
        guard let config = info.pointee.Config else {
            throw LogError("\(place): the server sent no configuration", isTransient: true)
        }
        var existing: [String] = []
        if let list = config.pointee.Subjects {
            for index in 0..<Int(config.pointee.SubjectsLen) {
                if let subject = list[index] { existing.append(String(cString: subject)) }
            }
        }
        let existingReplicas = Int(config.pointee.Replicas)
        if Set(existing) != Set(subjects) || (replicas != nil && existingReplicas != replicas) {
            throw LogError(
                "\(place): the stream exists with subjects \(existing.sorted()) and \(existingReplicas) replica(s), "
                    + "but this log was opened with subjects \(subjects.sorted()) and \(replicas ?? existingReplicas) replica(s): open it "
                    + "with the stream's settings, or delete the stream (`nats stream rm \(name)`) to recreate it",
                isTransient: false
            )
        }
        return existingReplicas
    }
}

/// A reader of a JetStream stream: an ephemeral pull consumer, remade after failures from the
/// sequence after the last message returned. One thread at a time.
final class JetStreamReader: LogReader {
    /// Fetch attempts per `next` call before it throws, and the time after which it stops retrying.
    static let attempts = 5
    static let retryBudget: Duration = .seconds(20)
    /// How long making a consumer may take: nats-server 2.9 gives a new consumer a preferred leader
    /// at random, offline servers included, and then elects another only after an election timeout
    /// of 4 to 9 s.
    static let consumerTimeoutMilliseconds: Int64 = 12_000

    private let log: JetStreamLog
    private let filter: String
    /// The stream sequence the next consumer starts at.
    private var nextSequence: UInt64
    private var subscription: OpaquePointer?
    private var isClosed = false
    /// How many consumers the reader has made (1 + recoveries), for tests.
    private(set) var consumersMade = 0
    /// The consumer sequence of the last message the current consumer delivered (0 before the first).
    private var lastConsumerSequence: UInt64 = 0
    /// How many times a consumer skipped deliveries and was remade (tests read it).
    private(set) var gapsRecovered = 0

    init(log: JetStreamLog, filter: String, from sequence: UInt64) throws {
        self.log = log
        self.filter = filter
        self.nextSequence = max(1, sequence)
        // Subscribing now reports a filter outside the stream's subjects at once.
        try self.subscribe()
    }

    deinit {
        self.close()
    }

    func next(max: Int, timeout: Duration) throws -> [LogMessage] {
        guard !self.isClosed else { throw LogError("\(self.log.place): the reader was closed", isTransient: false) }
        try self.log.checkOpen()
        guard max > 0 else { return [] }
        let clock = ContinuousClock()
        let giveUp = clock.now + Self.retryBudget
        var failures = 0
        while true {
            do {
                if self.subscription == nil { try self.subscribe() }
                let messages = try self.fetch(max: max, timeout: timeout)
                // A fetch that found a gap before any message dropped its consumer: read on from a new one.
                if messages.isEmpty && self.subscription == nil && clock.now < giveUp { continue }
                return messages
            } catch let error as LogError where error.isTransient && failures + 1 < Self.attempts && clock.now < giveUp {
                failures += 1
                // 200, 400, 600, 800 ms: long enough for an election, or for the client to reconnect.
                usleep(useconds_t(200_000 * failures))
            }
        }
    }

    func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.deleteSubscription()
    }

    /// Deletes the subscription and its consumer on the server.
    private func deleteSubscription() {
        guard let subscription = self.subscription else { return }
        // Unsubscribe deletes the consumer on the server; Destroy alone would leave it to expire.
        natsSubscription_Unsubscribe(subscription)
        natsSubscription_Destroy(subscription)
        self.subscription = nil
    }

    /// Makes the pull consumer, from `nextSequence` on.
    private func subscribe() throws {
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        options.Config.AckPolicy = js_AckNone
        options.Config.DeliverPolicy = js_DeliverByStartSequence
        options.Config.OptStartSeq = self.nextSequence
        // As many replicas as the stream: nats-server 2.9 places a one-replica ephemeral consumer on a
        // random server of the stream, offline ones included, and creating it then times out.
        options.Config.Replicas = Int64(self.log.replicas)
        options.Config.MemoryStorage = true
        // The server deletes the consumer after two minutes without a fetch (a reader never closed).
        options.Config.InactiveThreshold = Duration.seconds(120).nanoseconds
        var contextOptions = jsOptions()
        jsOptions_Init(&contextOptions)
        contextOptions.Wait = Self.consumerTimeoutMilliseconds
        var created: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        let status = self.log.stream.withCString { stream in
            options.Stream = stream
            return js_PullSubscribe(&created, self.log.managementContext, self.filter, nil, &contextOptions, &options, &code)
        }
        guard status == NATS_OK, let subscription = created else {
            throw self.log.failure("reader on '\(self.filter)' from sequence \(self.nextSequence)", status, code)
        }
        // No client-side limit (messages over one would be dropped): each fetch's max bytes bounds it.
        natsSubscription_SetPendingLimits(subscription, -1, -1)
        self.subscription = subscription
        self.lastConsumerSequence = 0
        self.consumersMade += 1
    }

    /// One fetch; drops the subscription when it fails, so that the next attempt makes a new one.
    private func fetch(max: Int, timeout: Duration) throws -> [LogMessage] {
        guard let subscription = self.subscription else { return [] }
        let milliseconds = Swift.max(1, timeout.milliseconds)
        var request = jsFetchRequest()
        jsFetchRequest_Init(&request)
        request.Batch = Int32(clamping: max)
        request.Expires = milliseconds * 1_000_000
        // At most 64 MiB per fetch (a single message over that still comes alone).
        request.MaxBytes = 64 << 20
        if milliseconds >= 1_000 {
            // Heartbeats from the consumer while it waits: their absence means the consumer or its
            // server is gone (NATS_MISSED_HEARTBEAT), rather than an empty stream.
            request.Heartbeat = Swift.min(milliseconds / 4, 5_000) * 1_000_000
        }
        // No-wait with an expiry (server 2.9+): the server waits up to the expiry for the first message,
        // then ends the request as soon as it has sent what is there (a plain fetch would wait for the
        // whole batch).
        request.NoWait = true
        var list = natsMsgList()
        let status = natsSubscription_FetchRequest(&list, subscription, &request)
        if status == NATS_TIMEOUT || status == NATS_NOT_FOUND { return [] }
        guard status == NATS_OK else {
            let error = self.log.failure("reading '\(self.filter)' from sequence \(self.nextSequence)", status)
            self.dropSubscription()
            // Besides lost connections and timeouts, the server ends pull requests with statuses such
            // as 409 Leadership Change or Consumer Deleted (NATS_ERR): all pass with a new consumer.
            throw LogError(error.description, isTransient: status != NATS_CONNECTION_CLOSED)
        }
        var gap = false
        defer {
            // After the messages of the list are destroyed. Its server answers: delete the consumer
            // there too, rather than leave it until it expires.
            if gap { self.deleteSubscription() }
        }
        defer { natsMsgList_Destroy(&list) }
        var messages: [LogMessage] = []
        messages.reserveCapacity(Int(list.Count))
        for index in 0..<Int(list.Count) {
            guard let message = list.Msgs[index] else { continue }
            var metadata: UnsafeMutablePointer<jsMsgMetaData>?
            let parsed = natsMsg_GetMetaData(&metadata, message)
            guard parsed == NATS_OK, let metadata else {
                self.dropSubscription()
                throw self.log.failure("reading '\(self.filter)': a message without JetStream metadata", parsed)
            }
            let sequence = metadata.pointee.Sequence.Stream
            let consumerSequence = metadata.pointee.Sequence.Consumer
            jsMsgMetaData_Destroy(metadata)
            // Each delivery numbers on from the last (as NATS's ordered consumers check). A jump means
            // deliveries the consumer counts as made never arrived: a fetch's reply lost when the
            // consumer's leader died, say, whose successor goes on after them. Keep what came before
            // and remake the consumer from the sequence after it, rather than skip messages.
            if consumerSequence > self.lastConsumerSequence + 1 {
                self.gapsRecovered += 1
                gap = true
                break
            }
            self.lastConsumerSequence = consumerSequence
            // A consumer whose leader changed can deliver again what it delivered before (its
            // delivered state is not acknowledged, so not replicated at once): read each message once.
            guard sequence >= self.nextSequence else { continue }
            self.nextSequence = sequence + 1
            let subject = natsMsg_GetSubject(message).map { String(cString: $0) } ?? ""
            messages.append(LogMessage(sequence: sequence, subject: subject, bytes: JetStreamLog.payload(of: message)))
        }
        return messages
    }

    /// The server leading the reader's consumer now; nil before the reader has one.
    func consumerServer() throws -> String? {
        try self.consumerInfo { $0.Cluster?.pointee.Leader.map { String(cString: $0) } } ?? nil
    }

    /// The name of the reader's consumer now; nil before the reader has one.
    func consumerName() throws -> String? {
        try self.consumerInfo { $0.Name.map { String(cString: $0) } } ?? nil
    }

    /// `read` of the reader's consumer's info, asked of the server now; nil before the reader has one.
    private func consumerInfo<T>(_ read: (jsConsumerInfo) -> T) throws -> T? {
        guard let subscription = self.subscription else { return nil }
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = natsSubscription_GetConsumerInfo(&info, subscription, nil, &code)
        guard status == NATS_OK, let info else { throw self.log.failure("consumer info of '\(self.filter)'", status, code) }
        defer { jsConsumerInfo_Destroy(info) }
        return read(info.pointee)
    }

    /// Forgets the subscription without deleting its consumer (its server may be gone; it expires).
    private func dropSubscription() {
        natsSubscription_Destroy(self.subscription)
        self.subscription = nil
    }
}

/// Why one record of an append failed.
struct AppendFailure: Sendable {
    let reason: String
    let isTransient: Bool
}

/// The records of one `append` call: their acknowledgements as they arrive, and a semaphore
/// signalled when the last one has.
final class AppendBatch: Sendable {
    private struct State {
        var results: [LogAppend?]
        var failures: [AppendFailure] = []
        var outstanding: Int
    }

    private let state: Mutex<State>
    /// Signalled once, when every record is confirmed or failed.
    let finished = DispatchSemaphore(value: 0)

    init(count: Int) {
        self.state = Mutex(State(results: Array(repeating: nil, count: count), outstanding: count))
    }

    func confirm(_ index: Int, _ result: LogAppend) {
        self.resolve { $0.results[index] = result }
    }

    func fail(_ index: Int, _ failure: AppendFailure) {
        self.resolve { $0.failures.append(failure) }
    }

    private func resolve(_ update: (inout State) -> Void) {
        let done = self.state.withLock { state -> Bool in
            update(&state)
            state.outstanding -= 1
            return state.outstanding == 0
        }
        if done { self.finished.signal() }
    }

    func outcome() -> (results: [LogAppend?], failures: [AppendFailure]) {
        self.state.withLock { ($0.results, $0.failures) }
    }
}

/// The messages a log has published and not yet seen acknowledged, by address, with the batch and
/// position each belongs to. An address is unique while libnats holds the message, which it frees
/// only after the acknowledgement handler has taken the entry.
final class PendingAppends: Sendable {
    struct Entry: Sendable {
        let batch: AppendBatch
        let index: Int
    }

    private let entries = Mutex<[UInt: Entry]>([:])

    func insert(_ message: OpaquePointer, batch: AppendBatch, index: Int) {
        self.entries.withLock { $0[Self.key(message)] = Entry(batch: batch, index: index) }
    }

    func take(_ message: OpaquePointer) -> Entry? {
        self.entries.withLock { $0.removeValue(forKey: Self.key(message)) }
    }

    /// Drops a batch's entries: their acknowledgements, if they come, are ignored.
    func forget(_ batch: AppendBatch) {
        self.entries.withLock { entries in
            entries = entries.filter { $0.value.batch !== batch }
        }
    }

    /// Fails every waiting record (the connection was lost or closed: no acknowledgement will come).
    func failAll(_ failure: AppendFailure) {
        let taken = self.entries.withLock { entries in
            defer { entries.removeAll() }
            return Array(entries.values)
        }
        for entry in taken { entry.batch.fail(entry.index, failure) }
    }

    private static func key(_ message: OpaquePointer) -> UInt {
        UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(message)))
    }
}

/// The acknowledgement handlers' targets, by token. libnats may run a handler after its log is
/// gone; a token, unlike a pointer to the log's state, cannot dangle.
private let ackTargets = Mutex<[UInt: PendingAppends]>([:])
private let nextAckToken = Atomic<UInt>(0)

/// A libnats object pointer. libnats locks its connections, contexts and subscriptions itself, so
/// sharing the pointer between threads is safe; freeing it is left to the owner's `deinit`.
struct CPointer: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}

/// Calls `body` with a C array of C strings (`const char **`) copied from `strings`, and its count.
private func withCStrings<T>(
    _ strings: [String],
    _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>?, Int) -> T
) -> T {
    let copies = strings.map { strdup($0) }
    defer {
        for copy in copies { free(copy) }
    }
    var pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress, strings.count) }
}

extension Duration {
    /// Whole milliseconds, rounded down, clamped to `Int64`.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
        return overflow ? (seconds < 0 ? .min : .max) : product + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds, rounded down, clamped to `Int64`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : product + attoseconds / 1_000_000_000
    }
}
