#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The header line of a signed batch frame: `{"batch":{"id":…,"timestamp":…,"signature":…,"bytes":N}}`.
public struct BatchHeader: Sendable, Equatable {
    public var id: String
    /// Seconds since the epoch, as the Standard Webhooks `webhook-timestamp`.
    public var timestamp: Int64
    /// One or more space-separated `v1,<base64>`.
    public var signature: String
    /// Payload length in bytes, final newline included.
    public var bytes: Int

    public init(id: String, timestamp: Int64, signature: String, bytes: Int) {
        self.id = id
        self.timestamp = timestamp
        self.signature = signature
        self.bytes = bytes
    }

    /// The header line, without its newline.
    public var line: String {
        "{\"batch\":{\"id\":\(JSONText.quoted(self.id)),\"timestamp\":\(self.timestamp),"
            + "\"signature\":\(JSONText.quoted(self.signature)),\"bytes\":\(self.bytes)}}"
    }

    /// True when the line's first member is `"batch"` (the rule that tells a header from an event).
    @inline(__always)
    /// The header as a frame's header line (for the dead letters of a webhook request's batch).
    public var json: String {
        var output: [UInt8] = []
        JSONText.append("{\"batch\":{\"id\":", to: &output)
        JSONText.appendQuoted(self.id.utf8, to: &output)
        JSONText.append(",\"timestamp\":\(self.timestamp),\"signature\":", to: &output)
        JSONText.appendQuoted(self.signature.utf8, to: &output)
        JSONText.append(",\"bytes\":\(self.bytes)}}", to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// A batch id or timestamp that breaks the rules of `validate(id:timestampText:)`.
    public enum Invalid: Error, Sendable, Equatable {
        case idLength, idDot, timestamp

        /// The rule, to follow the field's name (`batch.id` in a frame, `webhook-id` in a request).
        public var rule: String {
            switch self {
            case .idLength: "must be a string of 1 to 256 bytes"
            case .idDot: "must not contain '.'"
            case .timestamp: "must be integer epoch seconds"
            }
        }
    }

    /// The one set of rules for a batch's id and timestamp, shared by framed input (`parse`) and
    /// webhooks (`webhook-id`, `webhook-timestamp`), so that what one accepts the other (and the
    /// write-ahead log's replay, which reads frames) accepts too: an id of 1 to 256 bytes without
    /// '.', and a timestamp written as a JSON integer (`-`? then digits, no leading zero) of at most
    /// 18 digits (`EventParser.integer`'s limit). Returns the timestamp.
    public static func validate(id: String, timestampText: some StringProtocol) -> Result<Int64, Invalid> {
        guard !id.isEmpty, id.utf8.count <= 256 else { return .failure(.idLength) }
        guard !id.contains(".") else { return .failure(.idDot) }
        let text = Array(timestampText.utf8)
        let digits = text.first == UInt8(ascii: "-") ? text.dropFirst() : text[...]
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            digits.count == 1 || digits.first != 0x30
        else { return .failure(.timestamp) }
        guard let value = text.withUnsafeBytes({ EventParser.integer($0) }) else {
            return .failure(.timestamp)
        }
        return .success(value)
    }

    static func looksLikeHeader(_ line: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        @inline(__always) func skip() {
            while index < line.count, line[index] == 0x20 || line[index] == 0x09 { index += 1 }
        }
        skip()
        guard index < line.count, line[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skip()
        let word: StaticString = "\"batch\""
        guard line.count - index >= 7 else { return false }
        for offset in 0..<7 where line[index + offset] != word.utf8Start[offset] { return false }
        return true
    }

    /// What reading a header line gave.
    enum Parsed {
        case header(BatchHeader)
        /// Not a valid header; `bytes` is the frame length when it could be read, so the frame can be skipped.
        case invalid(id: String?, bytes: Int?, detail: String)
    }

    /// The members of a header's `batch` object that `parse` reads.
    private enum Member: Int, CaseIterable {
        case id, timestamp, signature, bytes

        /// The member named by a key's bytes (unescaped), if it is one.
        init?(_ name: UnsafeRawBufferPointer) {
            @inline(__always) func named(_ text: StaticString) -> Bool {
                name.count == text.utf8CodeUnitCount && memcmp(name.baseAddress!, text.utf8Start, name.count) == 0
            }
            switch name.count {
            case 2 where named("id"): self = .id
            case 5 where named("bytes"): self = .bytes
            case 9 where named("timestamp"): self = .timestamp
            case 9 where named("signature"): self = .signature
            default: return nil
            }
        }
    }

    static func parse(_ line: UnsafeRawBufferPointer) -> Parsed {
        var batchSpan = JSONSpan()
        var first = true
        var firstIsBatch = false
        var scanner = JSONScanner(line)
        let result = scanner.scanObject { key, value in
            if first {
                first = false
                var isBatch: Bool
                if key.flag {
                    var keyBytes: [UInt8] = []
                    JSONScanner.unescape(line, key, into: &keyBytes)
                    isBatch = keyBytes.elementsEqual("batch".utf8)
                } else {
                    isBatch = line[key.start..<key.end].elementsEqual("batch".utf8)
                }
                firstIsBatch = value.kind == .object && isBatch
                if firstIsBatch { batchSpan = value }
            }
        }
        guard result == .object, firstIsBatch else {
            return .invalid(id: nil, bytes: nil, detail: "the batch header is not a JSON object {\"batch\":{…}}")
        }
        let inner = UnsafeRawBufferPointer(rebasing: line[batchSpan.start..<batchSpan.end])
        // The four members a header has, by `Member`; any other key is kept only to tell a repeat.
        var spans = [JSONSpan](repeating: JSONSpan(), count: Member.allCases.count)
        // A set: a hostile header may hold a hundred thousand keys within --max-line.
        var others = Set<[UInt8]>()
        var repeated = false
        var innerScanner = JSONScanner(inner)
        _ = innerScanner.scanObject { key, value in
            var escaped: [UInt8] = []
            if key.flag { JSONScanner.unescape(inner, key, into: &escaped) }
            let member: Member? =
                key.flag
                ? escaped.withUnsafeBytes { Member($0) } : Member(UnsafeRawBufferPointer(rebasing: inner[key.start..<key.end]))
            // A repeated key makes the header bad_frame; the first value still gives the frame length.
            if let member {
                if spans[member.rawValue].kind != .absent { repeated = true } else { spans[member.rawValue] = value }
            } else {
                let name = key.flag ? escaped : Array(inner[key.start..<key.end])
                if !others.insert(name).inserted { repeated = true }
            }
        }
        func string(_ member: Member) -> String? {
            let span = spans[member.rawValue]
            guard span.kind == .string else { return nil }
            if span.flag {
                var decoded: [UInt8] = []
                JSONScanner.unescape(inner, span, into: &decoded)
                return String(decoding: decoded, as: UTF8.self)
            }
            return String(decoding: inner[span.start..<span.end], as: UTF8.self)
        }
        func integer(_ member: Member) -> Int64? {
            let span = spans[member.rawValue]
            guard span.kind == .number, !span.flag else { return nil }
            return EventParser.integer(UnsafeRawBufferPointer(rebasing: inner[span.start..<span.end]))
        }
        let id = string(.id)
        let bytes = integer(.bytes).flatMap { $0 >= 0 && $0 <= Int64(Int32.max) * 64 ? Int($0) : nil }
        if repeated { return .invalid(id: id, bytes: bytes, detail: "the batch header repeats a key") }
        guard let id else { return .invalid(id: nil, bytes: bytes, detail: "batch.id " + Invalid.idLength.rule) }
        var timestampText = ""
        let timestampSpan = spans[Member.timestamp.rawValue]
        if timestampSpan.kind == .number, !timestampSpan.flag {
            timestampText = String(decoding: inner[timestampSpan.start..<timestampSpan.end], as: UTF8.self)
        }
        let timestamp: Int64
        switch Self.validate(id: id, timestampText: timestampText) {
        case .success(let value): timestamp = value
        case .failure(let invalid):
            let field = invalid == .timestamp ? "batch.timestamp " : "batch.id "
            return .invalid(id: id, bytes: bytes, detail: field + invalid.rule)
        }
        guard let signature = string(.signature) else {
            return .invalid(id: id, bytes: bytes, detail: "batch.signature must be a string")
        }
        guard let bytes else {
            return .invalid(id: id, bytes: nil, detail: "batch.bytes must be a non-negative integer")
        }
        return .header(BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: bytes))
    }
}
