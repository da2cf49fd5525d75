/// Checks a well-formed batch frame, in the order of the spec: bad_signature, stale_batch, replayed_batch.
///
/// Only accepted batch ids count for replay. With a tolerance, ids are forgotten once a resend of
/// them would be stale anyway; with `tolerance == 0` (replaying archives) every accepted id is kept.
public struct BatchVerifier {
    public let signer: WebhookSigner
    /// Seconds; 0 disables the staleness check.
    public let tolerance: Int64
    /// Wall-clock seconds since the epoch.
    public let now: @Sendable () -> Int64
    private var accepted: [String: Int64] = [:]
    private var insertionsSincePrune = 0

    public init(secrets: [WebhookSecret], tolerance: Int64, now: @escaping @Sendable () -> Int64) {
        self.signer = WebhookSigner(secrets: secrets)
        self.tolerance = tolerance
        self.now = now
    }

    public var hasSecrets: Bool { !self.signer.secrets.isEmpty }

    /// nil when the batch is accepted (and its id is then remembered), else the rejection.
    public mutating func verify(_ header: BatchHeader, payload: UnsafeRawBufferPointer) -> Rejection? {
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
        if self.accepted[header.id] != nil {
            return Rejection(.replayedBatch, "batch id \(header.id) was already accepted")
        }
        self.accepted[header.id] = header.timestamp
        self.insertionsSincePrune += 1
        if self.tolerance > 0 && self.insertionsSincePrune >= 4096 {
            self.insertionsSincePrune = 0
            let horizon = now - self.tolerance - 1
            self.accepted = self.accepted.filter { $0.value >= horizon }
        }
        return nil
    }
}
