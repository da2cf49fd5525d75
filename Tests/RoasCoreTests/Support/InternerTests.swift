import Testing

@testable import RoasCore

/// The interner while a copy of it is held (a checkpoint being written): new strings wait beside
/// its arrays, with the handles they would have had, and are moved into them once the copy is gone.
@Suite("Interner")
struct InternerTests {
    /// Short and long byte strings (the table keeps those of at most 16 bytes in the slot).
    static func string(_ number: UInt64) -> [UInt8] {
        let text = number % 3 == 0 ? "user-with-a-long-name-\(number)" : "u\(number)"
        return Array(text.utf8)
    }

    /// The same strings interned into two interners, one of which has copies taken and held at
    /// times (one across a growth of its table) and let go of: every handle, every lookup and
    /// every snapshot's bytes are those of the interner never copied, the copies do not change,
    /// and once no copy is held the pending strings all move into the arrays.
    @Test func aHeldCopyChangesNoHandleAndNoSnapshotByte() throws {
        var random = SplitMix64(seed: 0x1A7E)
        var plain = Interner(capacity: 16)
        var copied = Interner(capacity: 16)
        var copy: (interner: Interner, bytes: [UInt8])? = nil
        var mostPending = 0
        func snapshot(_ interner: Interner) -> [UInt8] {
            var writer = SnapshotWriter()
            interner.write(to: &writer)
            return writer.bytes
        }
        for step in 0..<60_000 {
            // New strings often early, mostly known ones later.
            let number = random.next() % UInt64(min(2_000 + step, 30_000))
            let bytes = Self.string(number)
            let expected = bytes.withUnsafeBytes { plain.intern($0) }
            let got = bytes.withUnsafeBytes { copied.intern($0) }
            #expect(got == expected, "step \(step)")
            #expect(copied.count == plain.count)
            mostPending = max(mostPending, copied.pendingCount)
            // Held over [5,000, 9,000) (the table grows from 8,192 slots meanwhile), [20,000, 20,500) and [40,000, 52,000).
            if step == 5_000 || step == 20_000 || step == 40_000 { copy = (copied, snapshot(copied)) }
            if step == 9_000 || step == 20_500 || step == 52_000, let held = copy {
                #expect(snapshot(held.interner) == held.bytes, "step \(step): the copy did not change")
                copy = nil
            }
            if step % 997 == 0 {
                let bytes = snapshot(copied)
                #expect(bytes == snapshot(plain), "step \(step): the snapshot of the interner never copied")
                let restored = try bytes.withUnsafeBytes { raw in
                    var reader = SnapshotReader(raw)
                    return try Interner(from: &reader)
                }
                #expect(restored.count == plain.count && snapshot(restored) == bytes)
            }
            if step % 101 == 0 {
                let other = Self.string(random.next() % 40_000)
                let handle = other.withUnsafeBytes { plain.contains($0) ? plain.prospectiveHandle($0, hash: Interner.hash($0)) : -1 }
                #expect(other.withUnsafeBytes { copied.contains($0) } == (handle >= 0))
                let prospective = other.withUnsafeBytes { plain.prospectiveHandle($0, hash: Interner.hash($0)) }
                #expect(other.withUnsafeBytes { copied.prospectiveHandle($0, hash: Interner.hash($0)) } == prospective)
                let back = copied.withBytes(of: expected) { Array($0) }
                #expect(back == bytes)
            }
        }
        #expect(mostPending > 1_000, "strings waited beside the arrays while a copy was held")
        #expect(copied.pendingCount == 0, "none is left once no copy is held")
        #expect(snapshot(copied) == snapshot(plain))
    }
}
