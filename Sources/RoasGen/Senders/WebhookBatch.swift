import RoasCore

/// One batch for `POST /v1/events`: its Standard Webhooks headers and payload.
public struct WebhookBatch: Sendable {
    public var id: String
    public var timestamp: Int64
    public var signature: String
    public var payload: [UInt8]

    public init(id: String, timestamp: Int64, signature: String, payload: [UInt8]) {
        self.id = id
        self.timestamp = timestamp
        self.signature = signature
        self.payload = payload
    }
}

/// Collects the signed batch frames of a stream (the frames `roas gen --secret` writes).
public struct BatchCollector: FrameHandler {
    public var batches: [WebhookBatch] = []
    /// Lines outside any frame, or frames the decoder rejected: nothing a webhook can carry.
    public var skippedLines = 0

    public init() {}

    public mutating func handle(_ item: FrameItem) {
        switch item {
        case .batch(let header, _, let payload, _):
            self.batches.append(
                WebhookBatch(id: header.id, timestamp: header.timestamp, signature: header.signature, payload: Array(payload)))
        case .line, .tooLong, .rejected:
            self.skippedLines += 1
        case .blank:
            break
        }
    }
}
