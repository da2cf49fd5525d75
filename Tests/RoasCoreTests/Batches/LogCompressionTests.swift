import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// The Zstandard frames `roas serve --nats --log-compression zstd` writes: they give back the part
/// exactly, a reader tells them from plain parts by their first bytes, and a damaged, cut, padded or
/// oversized frame is an error, never a crash or other bytes.
@Suite("Log compression")
struct LogCompressionTests {
    static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    /// The parts of a batch of a random stream.
    static func parts(seed: UInt64, partitions: Int = 16) -> [LogPart] {
        var maker = StreamMaker(seed: seed)
        let lines = maker.events(count: 400, start: 1_764_000_000_000, span: 3_600_000).map(\.line)
        let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
        let header = BatchHeader(id: "b-\(seed)", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
        let parser = EventParser(currencies: try! CurrencyTable(base: "USD", rates: [:]))
        return payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: partitions, parser: parser) }
    }

    @Test
    func framesGiveBackThePartsExactly() throws {
        var plain = 0
        var compressed = 0
        for seed in UInt64(1)...8 {
            for part in Self.parts(seed: seed) {
                let encoded = part.encoded
                let frame = LogCompression.zstd.encode(encoded)
                #expect(Array(frame.prefix(4)) == Self.magic)
                #expect(try LogCompression.decode(frame) == encoded)
                let decoded = try LogCompression.decode(frame).withUnsafeBytes { try LogPart(decoding: $0) }
                #expect(decoded == part)
                // `none` writes the part as it is, and reading it changes nothing.
                #expect(LogCompression.none.encode(encoded) == encoded)
                #expect(try LogCompression.decode(encoded) == encoded)
                plain += encoded.count
                compressed += frame.count
            }
        }
        // Events of a random stream, 25 per part: at least 2.5x smaller (about 3.5x here; the
        // scale-out benchmark's parts of 60 events shrink about 6x).
        #expect(compressed * 5 < plain * 2, "\(plain) bytes in parts, \(compressed) compressed")
    }

    @Test
    func anyBytesSurviveAFrame() throws {
        var random = SplitMix64(seed: 7)
        for count in [0, 1, 3, 4, 100, 4_096, 70_000, 1 << 20] {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            let frame = LogCompression.compress(bytes)
            #expect(try LogCompression.decode(frame) == bytes, "\(count) bytes")
        }
        // Bytes that begin as a frame does are framed like any others.
        let lookalike = Self.magic + [1, 2, 3]
        #expect(try LogCompression.decode(LogCompression.compress(lookalike)) == lookalike)
    }

    @Test
    func notAFrameIsReadAsItIs() throws {
        for message in ["{\"idle_advance\":1764000000000}", "", "x", "(\u{B5}/"] {
            #expect(try LogCompression.decode(Array(message.utf8)) == Array(message.utf8))
        }
    }

    /// Every cut of a frame, every one of its bytes changed, bytes after it: an error (the frame's
    /// checksum catches a change inside the data), never a crash and never other bytes.
    @Test
    func damagedFramesAreErrors() throws {
        let part = Self.parts(seed: 3)[5].encoded
        let frame = LogCompression.compress(part)
        for length in 4..<frame.count {
            #expect(throws: LogCompression.Invalid.self, "cut at \(length)") { try LogCompression.decode(Array(frame.prefix(length))) }
        }
        var unnoticed: [Int] = []
        for index in 4..<frame.count {
            var damaged = frame
            damaged[index] ^= 0x10
            do {
                let bytes = try LogCompression.decode(damaged)
                if bytes != part { unnoticed.append(index) }
            } catch is LogCompression.Invalid {
                // Refused, as it should be.
            }
        }
        #expect(unnoticed.isEmpty, "changed bytes decoded to other bytes without an error at \(unnoticed)")
        #expect(throws: LogCompression.Invalid.self) { try LogCompression.decode(frame + [0x0A]) }
        #expect(throws: LogCompression.Invalid.self) { try LogCompression.decode(frame + frame) }
    }

    /// A frame that declares more than a part can hold is refused before anything is allocated, and
    /// one that declares no size at all is refused too.
    @Test
    func framesThatDeclareTooMuchOrNothingAreRefused() throws {
        // Frame header: single segment with an 8-byte content size, then an empty last raw block.
        func frame(declaring size: UInt64) -> [UInt8] {
            Self.magic + [0xE0] + (0..<8).map { UInt8(truncatingIfNeeded: size >> (8 * $0)) } + [0x01, 0x00, 0x00]
        }
        let huge = frame(declaring: 1 << 40)
        #expect(throws: LogCompression.Invalid("a zstd message declares 1099511627776 bytes, over the limit")) {
            try LogCompression.decode(huge)
        }
        let overByOne = frame(declaring: UInt64(LogCompression.maximumContentBytes) + 1)
        #expect(throws: LogCompression.Invalid.self) { try LogCompression.decode(overByOne) }
        // Declares 5 bytes, holds none.
        #expect(throws: LogCompression.Invalid.self) { try LogCompression.decode(frame(declaring: 5)) }
        // Declares 0 bytes and holds none: an empty message.
        #expect(try LogCompression.decode(frame(declaring: 0)) == [])
        // No content size: a window descriptor instead, then an empty last raw block.
        let unsized = Self.magic + [0x00, 0x00, 0x01, 0x00, 0x00]
        #expect(throws: LogCompression.Invalid("a zstd message declares no content size")) { try LogCompression.decode(unsized) }
    }
}
