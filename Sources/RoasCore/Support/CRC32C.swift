import CRoasCRC32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of write-ahead log records.
///
/// With the CPU's CRC32 instruction where there is one (x86-64 SSE 4.2, checked once at run time;
/// see `CRoasCRC32C`), else table-driven, slicing-by-8: eight bytes per step through eight
/// 256-entry tables. Both give the same checksums (the tests compare them with a bitwise
/// reference). The checksum is incremental: `checksum(b, seed: checksum(a)) == checksum(a + b)`.
public enum CRC32C {
    /// Whether `checksum` uses the CPU's CRC32 instruction.
    public static let isHardwareAccelerated = roas_crc32c_hardware_available() != 0

    /// The reflected Castagnoli polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// Eight tables of 256 entries, one after the other: entry `k * 256 + i` is the CRC register
    /// after byte `i` followed by `k` zero bytes, so eight table reads advance the CRC by eight bytes.
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ CRC32C.polynomial : crc >> 1
            }
            tables[index] = crc
        }
        for index in 0..<256 {
            var crc = tables[index]
            for slice in 1..<8 {
                crc = (crc >> 8) ^ tables[Int(crc & 0xFF)]
                tables[slice * 256 + index] = crc
            }
        }
        return tables
    }()

    /// The CRC-32C of `bytes`, continuing from `seed` (the checksum of the bytes before them, or 0).
    ///
    /// - Complexity: O(`bytes.count`).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        self.isHardwareAccelerated ? self.instructionChecksum(bytes, seed: seed) : self.tableChecksum(bytes, seed: seed)
    }

    /// `checksum` with the CRC32 instruction; only where `isHardwareAccelerated` (the tests and
    /// benchmarks compare it with `tableChecksum`).
    public static func hardwareChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32) -> UInt32 {
        precondition(self.isHardwareAccelerated, "CRC32C.hardwareChecksum: this CPU has no CRC32 instruction")
        return self.instructionChecksum(bytes, seed: seed)
    }

    /// `hardwareChecksum` without the check, for `checksum`, which has made it.
    private static func instructionChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return ~roas_crc32c_hardware(~seed, base, bytes.count)
    }

    /// `checksum` from the tables, on any CPU.
    public static func tableChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32) -> UInt32 {
        guard var pointer = bytes.baseAddress, bytes.count > 0 else { return seed }
        var remaining = bytes.count
        var crc = ~seed
        self.tables.withUnsafeBufferPointer { table in
            while remaining >= 8 {
                // Records are little-endian on disk and the CRC is reflected: the first byte is the low one.
                let word = UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self))
                let low = UInt32(truncatingIfNeeded: word) ^ crc
                let high = UInt32(truncatingIfNeeded: word >> 32)
                let fromLow: UInt32 =
                    table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                let fromHigh: UInt32 =
                    table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
                crc = fromLow ^ fromHigh
                pointer += 8
                remaining -= 8
            }
            while remaining > 0 {
                crc = (crc >> 8) ^ table[Int((crc ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)]
                pointer += 1
                remaining -= 1
            }
        }
        return ~crc
    }
}
