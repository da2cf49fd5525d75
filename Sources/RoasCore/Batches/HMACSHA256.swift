import COpenSSL

/// HMAC-SHA256 with one key, through OpenSSL's libcrypto; the key schedule is computed once.
public final class HMACSHA256 {
    private let context: OpaquePointer

    public init(key: [UInt8]) {
        guard let context = key.withUnsafeBufferPointer({ roas_hmac_sha256_new($0.baseAddress, $0.count) }) else {
            fatalError("libcrypto could not create an HMAC-SHA256 context")
        }
        self.context = context
    }

    deinit { roas_hmac_sha256_free(self.context) }

    /// The 32-byte tag of the concatenation of `parts`.
    public func authenticate(_ parts: UnsafeRawBufferPointer...) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: 32)
        self.authenticate(parts, into: &tag)
        return tag
    }

    func authenticate(_ parts: [UnsafeRawBufferPointer], into tag: inout [UInt8]) {
        precondition(roas_hmac_sha256_reset(self.context) == 1, "libcrypto HMAC reset failed")
        for part in parts where part.count > 0 {
            precondition(roas_hmac_sha256_update(self.context, part.baseAddress, part.count) == 1)
        }
        let done = tag.withUnsafeMutableBufferPointer { roas_hmac_sha256_final(self.context, $0.baseAddress) }
        precondition(done == 1, "libcrypto HMAC final failed")
    }
}
