import Testing

@testable import RoasCore

/// `PagedArray` against `Array`, and the interner kept in pages, while copies are taken and held (a
/// checkpoint being written): a copy never changes, and a write copies only the page it lands on.
@Suite("Paged arrays")
struct PagedArrayTests {
    /// Random appends, writes and copies of a paged array (pages of 8 elements) and an `Array` side
    /// by side: the same elements after every step, every held copy as it was when taken, ranges
    /// across pages read back joined, and writes while a copy is held copy only their pages.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func aPagedArrayIsAnArrayWhoseCopiesCopyLittle(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var paged = PagedArray<Int64>(pageShift: 3, paged: true)
        var plain: [Int64] = []
        var held: [(copy: PagedArray<Int64>, elements: [Int64])] = []
        // What an `Array` would have copied: all of its elements at the first write after a copy was taken.
        var arrayWouldCopy = 0
        var copyTaken = false
        for step in 0..<3_000 {
            let operation = random.next() % 10
            if operation < 8 && copyTaken {
                arrayWouldCopy += plain.count
                copyTaken = false
            }
            switch operation {
            case 0, 1, 2:
                let value = Int64(bitPattern: random.next())
                paged.append(value)
                plain.append(value)
            case 3:
                let count = Int(random.next() % 20)
                paged.append(repeating: Int64(step), count: count)
                plain.append(contentsOf: repeatElement(Int64(step), count: count))
            case 4:
                let values = (0..<Int(random.next() % 30)).map { _ in Int64(bitPattern: random.next()) }
                values.withUnsafeBufferPointer { paged.append(contentsOf: $0) }
                plain.append(contentsOf: values)
            case 5, 6, 7:
                guard !plain.isEmpty else { continue }
                let index = Int(random.next() % UInt64(plain.count))
                let copiedBefore = paged.pagesCopied
                let shared = held.contains { $0.copy.count > index }
                paged[index] = Int64(step)
                plain[index] = Int64(step)
                // A page a copy holds is copied once; one this array alone holds is written in place.
                #expect(paged.pagesCopied - copiedBefore <= (shared ? 1 : 0), "step \(step)")
            case 8:
                if held.count < 3 {
                    held.append((paged, plain))
                    copyTaken = true
                }
            default:
                if !held.isEmpty { held.remove(at: Int(random.next() % UInt64(held.count))) }
                if step % 500 == 9 {
                    // To one array and back to pages: the same elements, and the copies held unchanged.
                    paged.setPaged(false)
                    #expect(!paged.isPaged && paged.elements == plain)
                    paged.setPaged(true)
                }
            }
            #expect(paged.count == plain.count)
            if step % 50 == 0 {
                #expect(paged.elements == plain, "step \(step)")
                for copy in held { #expect(copy.copy.elements == copy.elements, "step \(step): a held copy changed") }
                if plain.count > 1 {
                    let start = Int(random.next() % UInt64(plain.count))
                    let end = start + Int(random.next() % UInt64(plain.count - start + 1))
                    let read = paged.withElements(from: start, to: end) { Array($0) }
                    #expect(read == Array(plain[start..<end]))
                }
            }
        }
        #expect(paged.elements == plain)
        #expect(paged.pagesCopied > 0, "copies were held while the array was written")
        // Far fewer elements copied than whole copies would have copied.
        #expect(paged.pagesCopied * 8 * 4 < arrayWouldCopy, "\(paged.pagesCopied) pages, \(arrayWouldCopy) elements")
    }

    /// `prefetchForWrite` loads a page's reference count at 16 bytes before its elements: the object's
    /// type and reference count, then its capacity, then the elements.
    @Test func aPagesReferenceCountIsSixteenBytesBeforeItsElements() {
        for page in [PagedArray<Int64>.Page.make(capacity: 4), PagedArray<Int64>.Page.make(capacity: 4096)] {
            let object = UnsafeRawPointer(Unmanaged.passUnretained(page).toOpaque())
            #expect(UnsafeRawPointer(page.elements) - 16 == object + 8)
        }
        let small = PagedArray<Int32>.Page.make(capacity: 4)
        #expect(UnsafeRawPointer(small.elements) - 16 == UnsafeRawPointer(Unmanaged.passUnretained(small).toOpaque()) + 8)
    }

    /// Short and long byte strings (the table keeps those of at most 16 bytes in the slot; the long
    /// ones cross the arena's pages).
    static func string(_ number: UInt64) -> [UInt8] {
        let text = number % 3 == 0 ? "user-with-a-long-name-\(number)" : "u\(number)"
        return Array(text.utf8)
    }

    static func snapshot(_ interner: Interner) -> [UInt8] {
        var writer = SnapshotWriter()
        interner.write(to: &writer)
        return writer.bytes
    }

    /// The same strings interned into two interners, one of which has copies taken and held at times
    /// (one across a growth of its table): every handle, lookup and snapshot byte is that of the
    /// interner never copied, the copies do not change, a snapshot reads back, and while a copy is
    /// held new strings copy a few pages, not the table.
    @Test func aHeldCopyOfTheInternerChangesNoHandleAndNoSnapshotByte() throws {
        var random = SplitMix64(seed: 0x1A7E)
        var plain = Interner(capacity: 16)
        var copied = Interner(capacity: 16)
        copied.setPaged(true)
        var copy: (interner: Interner, bytes: [UInt8])? = nil
        var copiedWhileHeld = 0
        for step in 0..<60_000 {
            // New strings often early, mostly known ones later.
            let number = random.next() % UInt64(min(2_000 + step, 30_000))
            let bytes = Self.string(number)
            let expected = bytes.withUnsafeBytes { plain.intern($0) }
            let before = copied.pagesCopied
            let got = bytes.withUnsafeBytes { copied.intern($0) }
            if copy != nil { copiedWhileHeld += copied.pagesCopied - before }
            #expect(got == expected, "step \(step)")
            #expect(copied.count == plain.count)
            // Held over [5,000, 9,000) (the table grows from 8,192 slots meanwhile), [20,000, 20,500) and [40,000, 52,000).
            if step == 5_000 || step == 20_000 || step == 40_000 { copy = (copied, Self.snapshot(copied)) }
            if step == 9_000 || step == 20_500 || step == 52_000, let held = copy {
                #expect(Self.snapshot(held.interner) == held.bytes, "step \(step): the copy did not change")
                copy = nil
            }
            if step % 997 == 0 {
                let bytes = Self.snapshot(copied)
                #expect(bytes == Self.snapshot(plain), "step \(step): the snapshot of the interner never copied")
                let restored = try bytes.withUnsafeBytes { raw in
                    var reader = SnapshotReader(raw)
                    return try Interner(from: &reader)
                }
                #expect(restored.count == plain.count && Self.snapshot(restored) == bytes)
                for handle in stride(from: 0, to: plain.count, by: 37) {
                    let text = copied.withBytes(of: Int32(handle)) { Array($0) }
                    #expect(restored.withBytes(of: Int32(handle)) { Array($0) } == text)
                    #expect(text.withUnsafeBytes { restored.prospectiveHandle($0, hash: Interner.hash($0)) } == Int32(handle))
                }
            }
            if step % 101 == 0 {
                let other = Self.string(random.next() % 40_000)
                let prospective = other.withUnsafeBytes { plain.prospectiveHandle($0, hash: Interner.hash($0)) }
                #expect(other.withUnsafeBytes { copied.prospectiveHandle($0, hash: Interner.hash($0)) } == prospective)
                #expect(other.withUnsafeBytes { copied.contains($0) } == other.withUnsafeBytes { plain.contains($0) })
                #expect(copied.withBytes(of: expected) { Array($0) } == bytes)
            }
        }
        #expect(copiedWhileHeld > 0, "new strings while a copy was held copied pages")
        #expect(plain.pagesCopied == 0)
        copied.setPaged(false)
        #expect(Self.snapshot(copied) == Self.snapshot(plain))
    }
}
