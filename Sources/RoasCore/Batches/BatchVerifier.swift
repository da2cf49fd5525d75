import Synchronization

/// The ids of accepted batches, shared by every reader of one engine (the connections of
/// `roas serve`), so that a batch replayed on another connection is still `replayed_batch`, and one
/// resent with another body is a `conflict`.
///
/// With a tolerance, ids are forgotten once a resend of them would be stale anyway; with
/// `tolerance == 0` (replaying archives) every accepted id is kept.
public final class AcceptedBatches: Sendable {
    /// What is remembered of an accepted batch.
    public struct Entry: Sendable, Equatable {
        /// The batch's own timestamp (seconds).
        public var timestamp: Int64
        /// `digest(of:)` of its payload; 0 when unknown (restored from a checkpoint written before
        /// digests were kept), which matches any payload.
        public var digest: UInt64

        public init(timestamp: Int64, digest: UInt64) {
            self.timestamp = timestamp
            self.digest = digest
        }
    }

    /// What `insert` found.
    enum Insertion {
        case inserted, duplicate, conflict
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var insertionsSincePrune = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// A 64-bit digest of a batch payload: its CRC-32C and its length, a final newline left out (a
    /// webhook body may lack the one its log record has). Tells a changed resend from a retry; it is
    /// no defence against a sender who holds the secret, who may send anything anyway.
    public static func digest(of payload: UnsafeRawBufferPointer) -> UInt64 {
        let body = payload.last == 0x0A ? UnsafeRawBufferPointer(rebasing: payload.dropLast()) : payload
        return UInt64(CRC32C.checksum(body)) << 32 | UInt64(UInt32(truncatingIfNeeded: body.count)) | 1 << 31
    }

    /// Forgets `id`, so that a resend of a batch that could not be made durable is accepted.
    public func remove(_ id: String) {
        _ = self.state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// Forgets the ids of the batches `chunk` accepted: the chunk will not be applied (it could not
    /// be made durable), so their resends must be taken.
    public func remove(acceptedIn chunk: ParsedChunk) {
        for outcome in chunk.batchOutcomes where outcome.rejection == nil {
            if let id = outcome.id { self.remove(id) }
        }
    }

    /// Whether `id` is remembered as accepted (or as taken and waiting to be made durable).
    public func contains(_ id: String) -> Bool {
        self.state.withLock { $0.entries[id] != nil }
    }

    /// Remembers `id` as accepted (recovery of `roas serve --data-dir`).
    public func restore(_ id: String, _ entry: Entry) {
        self.state.withLock { $0.entries[id] = entry }
    }

    /// Remembers `id`, unless it was already accepted: then `duplicate` when `digest` is the one
    /// accepted, else `conflict`.
    func insert(_ id: String, _ entry: Entry, now: Int64, tolerance: Int64) -> Insertion {
        self.state.withLock { state in
            if let known = state.entries[id] {
                return known.digest == 0 || known.digest == entry.digest ? .duplicate : .conflict
            }
            state.entries[id] = entry
            state.insertionsSincePrune += 1
            if tolerance > 0 && state.insertionsSincePrune >= 4096 {
                state.insertionsSincePrune = 0
                let horizon = now.subtractingReportingOverflow(tolerance + 1).partialValue
                state.entries = state.entries.filter { $0.value.timestamp >= horizon }
            }
            return .inserted
        }
    }

    public var count: Int { self.state.withLock { $0.entries.count } }
}

/// Checks a well-formed batch frame, in the order of the spec: bad_signature, stale_batch, replayed_batch.
///
/// Only accepted batch ids count for replay (see `AcceptedBatches`).
public struct BatchVerifier {
    public let signer: WebhookSigner
    /// Seconds; 0 disables the staleness check.
    public let tolerance: Int64
    /// Wall-clock seconds since the epoch.
    public let now: @Sendable () -> Int64
    private let accepted: AcceptedBatches
    /// Replaying the write-ahead log of `roas serve --data-dir`: what it holds was verified when it
    /// arrived, so signatures and timestamps are not checked again (the secrets may have rotated
    /// since) and bare events are taken even when secrets are configured; batch ids are remembered.
    public let isTrusted: Bool

    public init(
        secrets: [WebhookSecret], tolerance: Int64, accepted: AcceptedBatches = AcceptedBatches(),
        isTrusted: Bool = false, now: @escaping @Sendable () -> Int64
    ) {
        self.signer = WebhookSigner(secrets: secrets)
        self.tolerance = tolerance
        self.accepted = accepted
        self.isTrusted = isTrusted
        self.now = now
    }

    public var hasSecrets: Bool { !self.signer.secrets.isEmpty }

    /// True when `timestamp` is more than `tolerance` seconds from `now` (never with `tolerance` 0);
    /// any two `Int64`s compare without overflow.
    public static func isStale(_ timestamp: Int64, now: Int64, tolerance: Int64) -> Bool {
        guard tolerance > 0 else { return false }
        let (difference, overflow) = now.subtractingReportingOverflow(timestamp)
        return overflow || difference.magnitude > UInt64(tolerance)
    }

    /// The batch's rejection, or nil when it is accepted (its id is then remembered); with the
    /// `AcceptedBatches.digest(of:)` of its payload once it was computed (0 before that).
    public func verify(_ header: BatchHeader, payload: UnsafeRawBufferPointer) -> (rejection: Rejection?, digest: UInt64) {
        if self.isTrusted {
            let digest = AcceptedBatches.digest(of: payload)
            self.accepted.restore(header.id, AcceptedBatches.Entry(timestamp: header.timestamp, digest: digest))
            return (nil, digest)
        }
        guard self.hasSecrets else {
            return (Rejection(.badSignature, "no secret is configured, so no batch can be verified"), 0)
        }
        guard self.signer.verify(signatures: header.signature, id: header.id, timestamp: header.timestamp, body: payload)
        else {
            return (Rejection(.badSignature, "no v1 signature matches any configured secret"), 0)
        }
        let now = self.now()
        if BatchVerifier.isStale(header.timestamp, now: now, tolerance: self.tolerance) {
            return (
                Rejection(
                    .staleBatch, "timestamp \(header.timestamp) is more than --tolerance (\(self.tolerance) s) from now (\(now))"), 0
            )
        }
        let digest = AcceptedBatches.digest(of: payload)
        switch self.accepted.insert(
            header.id, AcceptedBatches.Entry(timestamp: header.timestamp, digest: digest), now: now, tolerance: self.tolerance)
        {
        case .inserted:
            return (nil, digest)
        case .duplicate:
            return (Rejection(.replayedBatch, "batch id \(header.id) was already accepted"), digest)
        case .conflict:
            return (
                Rejection(
                    .conflict, "batch id \(header.id) was already accepted with another body; a resend must be byte-identical"),
                digest
            )
        }
    }
}
