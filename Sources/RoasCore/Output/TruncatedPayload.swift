import COpenSSL

/// The payload of a rejected batch (`bad_signature`, `stale_batch`, `replayed_batch`) over
/// `TruncatedPayload.prefixBytes`, as its header line's dead letter keeps it: its first bytes, its
/// length and its SHA-256, instead of one record per payload line. Those lines are still counted
/// as dead letters (blank ones as blank lines), so the summary is the same as with whole records;
/// an unauthenticated sender can no longer make roas write what it sends.
public struct TruncatedPayload: Sendable, Equatable {
    /// Payloads up to this many bytes keep one dead letter per line, as before.
    public static let prefixBytes = 4096

    /// The payload's length.
    public var bytes: Int
    /// SHA-256 of the whole payload.
    public var sha256: [UInt8]
    /// Its first `prefixBytes` bytes.
    public var prefix: [UInt8]
    /// Payload lines counted as dead letters without a record of their own.
    public var omittedLines: Int

    public init(bytes: Int, sha256: [UInt8], prefix: [UInt8], omittedLines: Int) {
        self.bytes = bytes
        self.sha256 = sha256
        self.prefix = prefix
        self.omittedLines = omittedLines
    }

    /// Keeps the prefix and digest of `payload`.
    public init(payload: UnsafeRawBufferPointer, omittedLines: Int) {
        self.init(
            bytes: payload.count, sha256: Self.sha256(payload),
            prefix: Array(payload.prefix(Self.prefixBytes)), omittedLines: omittedLines)
    }

    /// SHA-256 through OpenSSL's libcrypto.
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let done = digest.withUnsafeMutableBufferPointer { roas_sha256(bytes.baseAddress, bytes.count, $0.baseAddress) }
        precondition(done == 1, "libcrypto SHA-256 failed")
        return digest
    }

    /// `,"truncated":true,"payload_bytes":N,"payload_sha256":"<hex>","payload_prefix":"…","omitted_lines":N`.
    func appendJSONMembers(to output: inout [UInt8]) {
        JSONText.append(",\"truncated\":true,\"payload_bytes\":\(self.bytes),\"payload_sha256\":\"", to: &output)
        let hex = Array("0123456789abcdef".utf8)
        for byte in self.sha256 {
            output.append(hex[Int(byte >> 4)])
            output.append(hex[Int(byte & 15)])
        }
        JSONText.append("\",\"payload_prefix\":", to: &output)
        JSONText.appendQuoted(self.prefix, to: &output)
        JSONText.append(",\"omitted_lines\":\(self.omittedLines)", to: &output)
    }
}
