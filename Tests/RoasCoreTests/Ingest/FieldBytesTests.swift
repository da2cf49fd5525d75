import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// `FieldBytes`, the buffer a parsed chunk keeps its fields in: against an array fed the same
/// appends, every length its inline copies treat apart (0-3, 4-7, 8-16, over 16), from offsets that
/// leave the bytes unaligned, growing from no capacity, with copies taken in between that must keep
/// their bytes (copy on write).
@Suite("Field bytes")
struct FieldBytesTests {
    @Test(arguments: 0..<8 as Range<UInt64>)
    func appendsAsAnArrayDoes(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let source = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }
        var bytes = FieldBytes(capacity: Int(seed % 3) * 7)
        var expected: [UInt8] = []
        var copies: [(FieldBytes, [UInt8])] = []
        for step in 0..<2000 {
            let count = random.chance(0.1) ? Int.random(in: 17...300, using: &random) : Int.random(in: 0...16, using: &random)
            let start = Int.random(in: 0...(source.count - count), using: &random)
            let offset = source[start..<(start + count)].withUnsafeBytes { bytes.append($0) }
            #expect(offset == expected.count)
            expected += source[start..<(start + count)]
            if step % 97 == 0 { copies.append((bytes, expected)) }
            if step % 301 == 0 { bytes.reserveCapacity(expected.count + 1000) }
        }
        #expect(bytes.count == expected.count)
        #expect(bytes.capacity >= bytes.count)
        #expect(bytes.withUnsafeBytes { Array($0) } == expected)
        for (copy, bytesThen) in copies {
            #expect(copy.withUnsafeBytes { Array($0) } == bytesThen)
        }
        // A copy appended to is its own: the original keeps its bytes.
        var copy = bytes
        _ = [UInt8](repeating: 7, count: 9).withUnsafeBytes { copy.append($0) }
        #expect(bytes.withUnsafeBytes { Array($0) } == expected)
        #expect(copy.withUnsafeBytes { Array($0) } == expected + Array(repeating: 7, count: 9))
    }
}
