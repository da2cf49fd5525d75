import RoasCore

/// One batch for `POST /v1/events`: its Standard Webhooks headers and payload.
public struct WebhookBatch: Sendable, Equatable {
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
