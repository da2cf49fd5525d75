import XCTest

@testable import RoasCore

/// CRC-32C against published vectors (RFC 3720 B.4) and a bit-at-a-time reference: `checksum` and,
/// each on its own, the table-driven version and (where the CPU has it) the CRC32 instruction.
final class CRC32CTests: XCTestCase {
    /// The textbook bitwise CRC-32C, one bit per step.
    static func reference(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
        }
        return ~crc
    }

    static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.checksum($0, seed: seed) }
    }

    func testPublishedVectors() {
        XCTAssertEqual(Self.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(Self.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(Self.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(Self.checksum(Array(0..<32)), 0x46DD_794E)
        XCTAssertEqual(Self.checksum(Array((0..<32).reversed())), 0x113F_DB5C)
        XCTAssertEqual(Self.checksum([]), 0)
        XCTAssertEqual(Self.checksum([], seed: 0x1234_5678), 0x1234_5678)
    }

    /// The implementations under test, by name.
    static var implementations: [(String, (UnsafeRawBufferPointer, UInt32) -> UInt32)] {
        var all: [(String, (UnsafeRawBufferPointer, UInt32) -> UInt32)] = [
            ("checksum", { CRC32C.checksum($0, seed: $1) }),
            ("tables", { CRC32C.tableChecksum($0, seed: $1) }),
        ]
        if CRC32C.isHardwareAccelerated {
            all.append(("instruction", { CRC32C.hardwareChecksum($0, seed: $1) }))
        }
        return all
    }

    func testTheInstructionIsUsedOnThisMachine() throws {
        #if arch(x86_64)
        // Every x86-64 CPU since 2008 has SSE 4.2; the CI machine and this one do.
        let flags = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        try XCTSkipUnless(flags.contains(" sse4_2"), "this CPU has no SSE 4.2")
        XCTAssertTrue(CRC32C.isHardwareAccelerated)
        #endif
    }

    func testMatchesTheBitwiseReferenceAtEveryLengthAndAlignment() {
        var random = SplitMix64(seed: 0xC3C3)
        let bytes = (0..<300).map { _ in random.byte() }
        for (name, implementation) in Self.implementations {
            for start in 0..<8 {
                for end in start...bytes.count {
                    let slice = Array(bytes[start..<end])
                    let fast = bytes.withUnsafeBytes { implementation(UnsafeRawBufferPointer(rebasing: $0[start..<end]), 0) }
                    XCTAssertEqual(fast, Self.reference(slice), "\(name), bytes \(start)..<\(end)")
                }
            }
        }
    }

    func testImplementationsAgreeOnRandomInputsAndSeeds() {
        var random = SplitMix64(seed: 0x1D5E)
        for round in 0..<2000 {
            let bytes = (0..<random.int(0...5000)).map { _ in random.byte() }
            let seed = UInt32(truncatingIfNeeded: random.int(0...Int(UInt32.max)))
            let expected = bytes.withUnsafeBytes { CRC32C.tableChecksum($0, seed: seed) }
            if round < 100 { XCTAssertEqual(expected, Self.reference(bytes, seed: seed), "round \(round)") }
            for (name, implementation) in Self.implementations {
                XCTAssertEqual(bytes.withUnsafeBytes { implementation($0, seed) }, expected, "\(name), round \(round)")
            }
        }
    }

    func testIsIncremental() {
        for seed in 0..<200 as Range<UInt64> {
            var random = SplitMix64(seed: 0x5EED, case: Int(seed))
            let bytes = (0..<random.int(0...2000)).map { _ in random.byte() }
            let whole = Self.reference(bytes)
            XCTAssertEqual(Self.checksum(bytes), whole, "seed \(seed)")
            // Any number of pieces, cut anywhere, gives the checksum of the whole.
            var crc: UInt32 = 0
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + random.int(0...70))
                crc = Self.checksum(Array(bytes[start..<end]), seed: crc)
                start = end
            }
            XCTAssertEqual(crc, whole, "seed \(seed)")
            let split = random.int(0...bytes.count)
            let first = Array(bytes[..<split])
            let second = Array(bytes[split...])
            XCTAssertEqual(Self.checksum(second, seed: Self.checksum(first)), whole, "seed \(seed), split \(split)")
            XCTAssertEqual(Self.reference(second, seed: Self.reference(first)), whole, "seed \(seed), split \(split)")
        }
    }
}
