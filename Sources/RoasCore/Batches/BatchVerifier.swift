import Synchronization

/// The ids of accepted batches, shared by every reader of one engine (the connections of
/// `roas serve`), so that a batch replayed on another connection is still `replayed_batch`.
///
/// With a tolerance, ids are forgotten once a resend of them would be stale anyway; with
/// `tolerance == 0` (replaying archives) every accepted id is kept.
public final class AcceptedBatches: Sendable {
    private struct State {
        var timestamps: [String: Int64] = [:]
        var insertionsSincePrune = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Forgets `id`, so that a resend of a batch that could not be made durable is accepted.
    public func remove(_ id: String) {
        _ = self.state.withLock { $0.timestamps.removeValue(forKey: id) }
    }

    /// Forgets the ids of the batches `chunk` accepted: the chunk will not be applied (it could not
    /// be made durable), so their resends must be taken.
    public func remove(acceptedIn chunk: ParsedChunk) {
        for outcome in chunk.batchOutcomes where outcome.rejection == nil {
            if let id = outcome.id { self.remove(id) }
        }
    }

    /// Remembers `id` as accepted (recovery of `roas serve --data-dir`).
    public func restore(_ id: String, timestamp: Int64) {
        self.state.withLock { $0.timestamps[id] = timestamp }
    }

    /// Remembers `id`; false when it was already accepted.
    func insert(_ id: String, timestamp: Int64, now: Int64, tolerance: Int64) -> Bool {
        self.state.withLock { state in
            guard state.timestamps[id] == nil else { return false }
            state.timestamps[id] = timestamp
            state.insertionsSincePrune += 1
            if tolerance > 0 && state.insertionsSincePrune >= 4096 {
                state.insertionsSincePrune = 0
                let horizon = now - tolerance - 1
                state.timestamps = state.timestamps.filter { $0.value >= horizon }
            }
            return true
        }
    }

    public var count: Int { self.state.withLock { $0.timestamps.count } }
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

    /// nil when the batch is accepted (and its id is then remembered), else the rejection.
    public func verify(_ header: BatchHeader, payload: UnsafeRawBufferPointer) -> Rejection? {
        if self.isTrusted {
            self.accepted.restore(header.id, timestamp: header.timestamp)
            return nil
        }
        guard self.hasSecrets else {
            return Rejection(.badSignature, "no secret is configured, so no batch can be verified")
        }
        guard self.signer.verify(signatures: header.signature, id: header.id, timestamp: header.timestamp, body: payload)
        else {
            return Rejection(.badSignature, "no v1 signature matches any configured secret")
        }
        let now = self.now()
        if self.tolerance > 0 && abs(now - header.timestamp) > self.tolerance {
            return Rejection(.staleBatch, "timestamp \(header.timestamp) is \(now - header.timestamp) s from now, over --tolerance")
        }
        guard self.accepted.insert(header.id, timestamp: header.timestamp, now: now, tolerance: self.tolerance) else {
            return Rejection(.replayedBatch, "batch id \(header.id) was already accepted")
        }
        return nil
    }
}
