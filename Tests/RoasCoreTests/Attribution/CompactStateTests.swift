import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// The compact, paged state against plain models of it: the touch log's pages, the id arena's
/// length-prefixed records and the sharded dedup set must answer exactly as a simple array,
/// a byte comparison and a dictionary would.
@Suite("Compact state")
struct CompactStateTests {
    /// Ids of every record length class (one- and two-byte lengths, across a chunk's end) read back
    /// exactly, and compare as their bytes do.
    @Test func idRecordsReadBackAndOrderLikeTheirBytes() {
        var random = SplitMix64(seed: 0x1D5)
        var arena = IDArena()
        var kept: [(offset: Int64, bytes: [UInt8])] = []
        let lengths = [0, 1, 15, 16, 17, 127, 128, 129, 300, 16_383, 16_384, 70_000, IDArena.chunkSize + 5]
        for round in 0..<400 {
            let length = round < lengths.count ? lengths[round] : Int(random.next() % 40)
            // Few distinct bytes, so that prefixes and equal ids are common.
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: 97 + random.next() % 3) }
            let offset = bytes.withUnsafeBytes { arena.append($0, time: Int64(round)) }
            kept.append((offset, bytes))
        }
        Self.expectIDs(kept, in: arena, pairs: 2000, random: &random)
        #expect(!arena.holdsRecord(at: arena.end))
    }

    /// Each of `kept` reads back from `arena`, and `pairs` random pairs of them compare as their bytes do.
    static func expectIDs(
        _ kept: [(offset: Int64, bytes: [UInt8])], in arena: IDArena, pairs: Int, random: inout SplitMix64
    ) {
        for (offset, bytes) in kept {
            #expect(arena.holdsRecord(at: offset))
            #expect(arena.withID(at: offset) { Array($0) } == bytes)
        }
        for _ in 0..<pairs {
            let a = kept[Int(random.next() % UInt64(kept.count))]
            let b = kept[Int(random.next() % UInt64(kept.count))]
            let expected = a.bytes == b.bytes ? 0 : (a.bytes.lexicographicallyPrecedes(b.bytes) ? -1 : 1)
            #expect(IDArena.compare(arena, a.offset, arena, b.offset) == expected)
        }
    }

    /// Numbered ids ("v-9999998") are kept as records that take their first bytes from the last whole
    /// record before them: they read back exactly, compare as their bytes do, take less than three
    /// quarters of the bytes of whole records (with one id in 50 a long one that shares nothing), and
    /// an arena restored from a snapshot at any point goes on writing the bytes the uninterrupted one writes.
    @Test func numberedIDsShareTheirFirstBytes() throws {
        var random = SplitMix64(seed: 0x5AED)
        var arena = IDArena()
        var restored: IDArena? = nil
        var kept: [(offset: Int64, bytes: [UInt8])] = []
        var wholeBytes = 0
        var number: UInt64 = 9_000_000
        func written(_ arena: IDArena) -> [UInt8] {
            var writer = SnapshotWriter()
            arena.write(to: &writer)
            return writer.bytes
        }
        for round in 0..<40_000 {
            number += 1 + random.next() % 40
            // Mostly numbered ids, some of other shapes: longer and shorter than the restart, one
            // that is a prefix of it, an empty one.
            let text: String
            switch random.next() % 50 {
            case 0: text = ""
            case 1: text = "v-\(number / 10)"
            case 2: text = "click-\(number)-\(random.next() % 1000)"
            case 3: text = String(repeating: "x", count: 60 + Int(random.next() % 100))
            default: text = "v-\(number)"
            }
            let bytes = Array(text.utf8)
            let offset = bytes.withUnsafeBytes { arena.append($0, time: Int64(round)) }
            let again = bytes.withUnsafeBytes { restored?.append($0, time: Int64(round)) }
            if let again { #expect(again == offset) }
            kept.append((offset, bytes))
            wholeBytes += IDArena.recordSize(bytes.count)
            if round % 9_973 == 9_972 {
                // Restore a copy here; it must go on exactly as the arena does.
                let snapshot = written(arena)
                restored = try snapshot.withUnsafeBytes { raw in
                    var reader = SnapshotReader(raw)
                    return try IDArena(from: &reader)
                }
                #expect(written(restored!) == snapshot)
            }
        }
        #expect(arena.chunkSpan.count > 3)
        #expect(written(restored!) == written(arena), "a restored arena wrote other bytes")
        #expect(Double(arena.end) < 0.75 * Double(wholeBytes), "\(arena.end) bytes for \(wholeBytes) of whole records")
        Self.expectIDs(kept, in: arena, pairs: 4000, random: &random)
    }

    /// A damaged arena in a snapshot is refused or reads without a trap: every byte of a chunk of
    /// shared records set to another value, each offset that `holdsRecord` accepts reads back.
    @Test func damagedIDRecordsAreRefusedOrReadSafely() throws {
        var arena = IDArena()
        var offsets: [Int64] = []
        for number in 0..<40 {
            offsets.append(Array("v-\(1_000_000 + number * 7)".utf8).withUnsafeBytes { arena.append($0, time: 1) })
        }
        var writer = SnapshotWriter()
        arena.write(to: &writer)
        let bytes = writer.bytes
        var refused = 0
        // The chunk's bytes are the last ones before the next offset (8 bytes).
        for index in (bytes.count - 8 - Int(arena.end))..<(bytes.count - 8) {
            for value: UInt8 in [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xff, bytes[index] ^ 0x10] {
                var damaged = bytes
                damaged[index] = value
                let read = try? damaged.withUnsafeBytes { raw -> IDArena in
                    var reader = SnapshotReader(raw)
                    return try IDArena(from: &reader)
                }
                guard let read else {
                    refused += 1
                    continue
                }
                for offset in Int64(0)..<(arena.end + 2) where read.holdsRecord(at: offset) {
                    _ = read.withID(at: offset) { Array($0) }
                    _ = IDArena.compare(read, offset, read, offsets[0])
                }
            }
        }
        #expect(refused > 0)
    }

    /// Chains across many pages, eviction that frees whole pages, and a log restored mid-page: every
    /// walk returns exactly the touches a plain array of them holds, newest first. With `jumps`, the
    /// stream skips about 25 days of event time every few thousand touches, so pages hold times too
    /// far from their first for a 32-bit offset.
    @Test(arguments: [false, true])
    func pagedTouchLogWalksLikeAPlainArray(jumps: Bool) throws {
        var random = SplitMix64(seed: 0x7A6E)
        let lateness: Int64 = 50
        var log = TouchLog(lateness: lateness)
        var all: [(identity: Int32, id: Int64, time: Int64)] = []
        var time: Int64 = 1_000
        var evicted: Int64 = .min
        func check(_ log: TouchLog, _ context: String) {
            for identity in Int32(0)..<12 {
                let lower = time - 5_000
                var walked: [[Int64]] = []
                log.forEach(of: identity, in: lower, time) { walked.append([$0.time, $1]) }
                let expected = all.reversed().filter {
                    $0.identity == identity && $0.time >= max(lower, evicted) && $0.time <= time
                }.map { [$0.time, $0.id] }
                #expect(walked == expected, "\(context), identity \(identity)")
            }
        }
        // Dozens of pages, several evictions.
        for step in 0..<(3 * 32_768 + 1_234) {
            // Arrival order within the lateness: times go forwards, each one up to the lateness back.
            time += Int64(random.next() % 3)
            if jumps && random.next() % 3_000 == 0 { time += 2_200_000_000 + Int64(random.next() % 1_000) }
            let touchTime = time - Int64(random.next() % UInt64(lateness))
            let identity = Int32(random.next() % 12)
            log.append(time: touchTime, creator: 0, campaign: -1, id: Int64(step) * 11, identity: identity)
            all.append((identity, Int64(step) * 11, touchTime))
            if step % 20_000 == 19_999 {
                // Evicts what is older than a cutoff that trails the newest time by more than the lateness.
                evicted = time - 30_000
                log.evict(before: evicted)
                check(log, "after evicting at step \(step)")
            }
        }
        #expect(log.count < all.count, "nothing was evicted")
        #expect(log.pageCount < (all.count >> Int(TouchLog.pageShift)) + 1, "no page was freed")
        check(log, "at the end")
        // A snapshot restores pages from a position in the middle of one, and walks the same.
        var writer = SnapshotWriter()
        log.write(to: &writer)
        let bytes = writer.bytes
        let restored = try bytes.withUnsafeBytes { raw in
            var reader = SnapshotReader(raw)
            return try TouchLog(from: &reader, lateness: lateness)
        }
        #expect(restored.count == log.count && restored.end == log.end)
        check(restored, "restored")
        var again = SnapshotWriter()
        restored.write(to: &again)
        #expect(again.bytes == bytes)
    }

    /// The sharded dedup set answers exactly as a dictionary of id to time does: a duplicate when the
    /// id was seen at a time not older than the cutoff, through growth, expiry, epochs moved and ids
    /// kept far, and after a snapshot. With 32 bits of time (the least the engine uses), with 16 (a
    /// shard moves its epoch every few thousand steps) and with 12 (less than the horizon: many ids
    /// are kept far); the stream sometimes jumps ahead by more than the horizon, and sometimes sends
    /// an id far ahead without moving the cutoff (as an event past `--max-keys` does). Tables in one
    /// array each and in pages, switched to the other at step 200,000 (as `roas serve --data-dir` does
    /// after its replay); a copy taken midway (as a checkpoint takes one) still writes the same bytes
    /// after the set it was copied from went on.
    @Test(arguments: [32, 16, 12], [false, true])
    func shardedDedupMatchesADictionary(timeBits: Int, paged: Bool) throws {
        var random = SplitMix64(seed: 0xDED ^ UInt64(timeBits))
        var set = DedupSet(capacity: 16, timeBits: timeBits, paged: paged)
        var frozen: (set: DedupSet, bytes: [UInt8])? = nil
        var model: [UInt64: Int64] = [:]
        var time: Int64 = 1_700_000_000_000
        var farAhead = 0
        for step in 0..<300_000 {
            time += Int64(random.next() % 4)
            if random.next() % 50_000 == 0 { time += 1_000_000 }
            let cutoff = time - 20_000
            // Ids from a range that repeats, so duplicates inside and outside the horizon are common.
            let id = random.next() % 150_000
            let at = random.next() % 5_000 == 0 ? time + 10_000_000_000 : time - Int64(random.next() % 64)
            if at > time { farAhead += 1 }
            let fingerprint = withUnsafeBytes(of: id) { Fingerprint($0) }
            let expected: Bool = model[id].map { $0 < cutoff } ?? true
            #expect(set.insert(fingerprint, time: at, cutoff: cutoff) == expected, "step \(step)")
            if expected { model[id] = at }
            if step == 100_000 {
                var writer = SnapshotWriter()
                set.write(to: &writer)
                frozen = (set, writer.bytes)
            }
            if step == 200_000 {
                var before = SnapshotWriter()
                set.write(to: &before)
                set.setPaged(!paged)
                var after = SnapshotWriter()
                set.write(to: &after)
                #expect(set.isPaged == !paged && after.bytes == before.bytes)
            }
            if step == 150_000 || step == 220_000 {
                var writer = SnapshotWriter()
                set.write(to: &writer)
                let layout = set.isPaged
                set = try writer.bytes.withUnsafeBytes { raw in
                    var reader = SnapshotReader(raw)
                    return try DedupSet(from: &reader, timeBits: timeBits, paged: layout)
                }
                #expect(set.isPaged == (step == 150_000 ? paged : !paged))
                var again = SnapshotWriter()
                set.write(to: &again)
                #expect(again.bytes == writer.bytes, "a restored set writes the same bytes")
            }
        }
        #expect(farAhead > 30)
        var later = SnapshotWriter()
        frozen?.set.write(to: &later)
        #expect(frozen != nil && later.bytes == frozen?.bytes, "the copy did not change")
        // Expired entries are dropped as shards rebuild: the set holds far fewer than it saw.
        #expect(set.count < model.count)
    }

    /// The overlay's bound grows with the set: a sixteenth of the ids it held when the copy was taken
    /// (here 12,500 of 200,000), above the limit it was made with (1,000). Up to it, ids taken while
    /// the copy is held go beside the pages and no page is copied; past it, pages are copied.
    @Test func theOverlayHoldsASixteenthOfALargeSet() {
        var set = DedupSet(capacity: 16, paged: true, overlayLimit: 1_000)
        let time: Int64 = 1_700_000_000_000
        let cutoff = time - 3_600_000
        func fingerprint(_ id: UInt64) -> Fingerprint { withUnsafeBytes(of: id) { Fingerprint($0) } }
        var fresh = 0
        for id in UInt64(0)..<200_000 where set.insert(fingerprint(id), time: time, cutoff: cutoff) { fresh += 1 }
        #expect(fresh == 200_000)
        // As a checkpoint's copy (`Engine.checkpointCopy`): without the growths in progress.
        var held = set
        held.dropGrowth()
        var mostBeside = 0
        for id in UInt64(200_000)..<210_000 {
            let taken = set.insert(fingerprint(id), time: time, cutoff: cutoff)
            #expect(taken)
            mostBeside = max(mostBeside, set.overlayCount)
        }
        // Nearly all of them beside (an id of a shard rebuilt meanwhile goes to its new table), none copied.
        #expect(mostBeside > 9_000 && mostBeside <= 10_000 && set.pagesCopied == 0, "\(mostBeside) beside, \(set.pagesCopied) copied")
        for id in UInt64(210_000)..<230_000 {
            let taken = set.insert(fingerprint(id), time: time, cutoff: cutoff)
            #expect(taken)
            mostBeside = max(mostBeside, set.overlayCount)
        }
        #expect(mostBeside == 200_000 / DedupSet.overlayShare && set.pagesCopied > 100, "\(mostBeside) beside")
        // Every id answers as taken, in the set and (those before it) in the copy.
        var again = 0
        for id in UInt64(0)..<230_000 where set.insert(fingerprint(id), time: time, cutoff: cutoff) { again += 1 }
        #expect(again == 0)
        let old = held.insert(fingerprint(7), time: time, cutoff: cutoff)
        let new = held.insert(fingerprint(220_000), time: time, cutoff: cutoff)
        #expect(!old && new)
    }

    /// While a copy of a paged set is held (a checkpoint being written), ids that go to its pages
    /// are kept beside them and no page is copied; once the copy is gone they are moved into their
    /// pages as ids come, and none is left. Past the overlay's limit, pages are copied as before.
    /// Every answer equals a dictionary of id to time's throughout, the copy writes the bytes it
    /// wrote when taken, and a set restored while ids are kept beside its pages writes the same
    /// bytes and answers the same.
    @Test(arguments: [200_000, 6_000])
    func idsTakenWhileACopyIsHeldGoBesideItsPages(overlayLimit: Int) throws {
        var random = SplitMix64(seed: 0x0E1A ^ UInt64(overlayLimit))
        // The set, and from step 60,000 a copy restored from its snapshot then: each answers alike.
        var sets = [DedupSet(capacity: 16, paged: true, overlayLimit: overlayLimit)]
        var model: [UInt64: Int64] = [:]
        var time: Int64 = 1_700_000_000_000
        var held: (set: DedupSet, bytes: [UInt8])? = nil
        var mostBeside = 0
        func step(_ step: Int) {
            time += Int64(random.next() % 4)
            let cutoff = time - 40_000
            let id = random.next() % 120_000
            let at = time - Int64(random.next() % 64)
            let fingerprint = withUnsafeBytes(of: id) { Fingerprint($0) }
            let expected: Bool = model[id].map { $0 < cutoff } ?? true
            for index in sets.indices {
                #expect(sets[index].insert(fingerprint, time: at, cutoff: cutoff) == expected, "set \(index), step \(step)")
            }
            if expected { model[id] = at }
            mostBeside = max(mostBeside, sets[0].overlayCount)
        }
        for index in 0..<40_000 { step(index) }
        #expect(sets[0].overlayCount == 0 && sets[0].pagesCopied == 0)
        var writer = SnapshotWriter()
        sets[0].write(to: &writer)
        held = (sets[0], writer.bytes)
        for index in 40_000..<60_000 { step(index) }
        if overlayLimit > 20_000 {
            #expect(sets[0].pagesCopied == 0, "no page copied while the copy was held")
            #expect(sets[0].overlayCount > 10_000)
        } else {
            #expect(mostBeside == overlayLimit && sets[0].pagesCopied > 100, "past the limit, pages are copied")
        }
        // A restore while ids are beside the pages: the same bytes, then the same answers.
        var during = SnapshotWriter()
        sets[0].write(to: &during)
        // Appended as read: a constant left holding it would be a copy holding its pages.
        sets.append(
            try during.bytes.withUnsafeBytes { raw in
                var reader = SnapshotReader(raw)
                return try DedupSet(from: &reader, paged: true, overlayLimit: overlayLimit)
            })
        var again = SnapshotWriter()
        sets[1].write(to: &again)
        #expect(again.bytes == during.bytes)
        var later = SnapshotWriter()
        held?.set.write(to: &later)
        #expect(later.bytes == held?.bytes, "the copy did not change")
        held = nil
        let beside = sets[0].overlayCount
        let copied = sets[0].pagesCopied
        for index in 60_000..<(60_000 + beside / 2 + 10) { step(index) }
        #expect(sets.map(\.overlayCount) == [0, 0], "every id kept beside was moved into its page (\(beside))")
        #expect(sets[0].pagesCopied == copied, "no page copied once the copy was gone")
        for index in (60_000 + beside / 2 + 10)..<100_000 { step(index) }
        // A second copy, taken as a checkpoint takes it: the tables beside the pages are kept from the
        // first (emptied as ids come), so they need not grow again from empty.
        let slots = sets[0].overlaySlots
        #expect(slots > 0 && sets[0].overlayCount == 0)
        var second = sets[0]
        second.dropGrowth()
        var secondBytes = SnapshotWriter()
        second.write(to: &secondBytes)
        for index in 100_000..<101_000 { step(index) }
        #expect(sets[0].overlayCount > 100 && sets[0].overlaySlots == slots, "the kept tables took the first ids")
        for index in 101_000..<120_000 { step(index) }
        if overlayLimit > 20_000 { #expect(sets[0].overlayCount > 10_000 && sets[0].overlaySlots >= slots) }
        var whileHeld = SnapshotWriter()
        sets[0].write(to: &whileHeld)
        let restored = try whileHeld.bytes.withUnsafeBytes { raw in
            var reader = SnapshotReader(raw)
            return try DedupSet(from: &reader, paged: true, overlayLimit: overlayLimit)
        }
        var restoredBytes = SnapshotWriter()
        restored.write(to: &restoredBytes)
        #expect(restoredBytes.bytes == whileHeld.bytes)
        #expect(restored.overlayCount == sets[0].overlayCount, "the kept tables' old ids are not written")
        var secondLater = SnapshotWriter()
        second.write(to: &secondLater)
        #expect(secondLater.bytes == secondBytes.bytes, "the second copy did not change")
        second = DedupSet(capacity: 16)
        for index in 120_000..<160_000 { step(index) }
        #expect(sets.map(\.overlayCount) == [0, 0])
    }

    /// The bits of time follow the dedup horizon plus the lateness: 32 for a day, more past 24 days.
    /// Ids spread evenly over the 64 shards (here exactly: one per shard in turn) fill the shards at
    /// one pace, yet their tables are rebuilt one after another (each at its own limit, 64-70%
    /// full), not all within the same few ids: with millions of ids, a rebuild of every shard in a
    /// few chunks was seconds of work there.
    @Test(arguments: [false, true])
    func dedupShardsAreRebuiltOneAfterAnother(paged: Bool) {
        var random = SplitMix64(seed: 0x5EB)
        var set = DedupSet(capacity: 1 << 16, paged: paged)
        var rebuiltAt: [Int] = []
        for step in 0..<200_000 {
            let before = set.rebuilds
            let shard = UInt64(step % DedupSet.shardCount) << UInt64(64 - DedupSet.shardBits)
            let fingerprint = Fingerprint(high: shard | random.next() >> UInt64(DedupSet.shardBits), low: random.next())
            let fresh = set.insert(fingerprint, time: 1_000, cutoff: 0)
            #expect(fresh)
            rebuiltAt += Array(repeating: step, count: set.rebuilds - before)
        }
        // 64 shards of 1,024 slots, then 2,048, then 4,096: three rebuilds each, each doubling.
        #expect(rebuiltAt.count == 3 * 64, "\(rebuiltAt.count) rebuilds")
        var most = 0
        for (index, step) in rebuiltAt.enumerated() {
            most = max(most, rebuiltAt[index...].prefix { $0 < step + 40 }.count)
        }
        // One limit for every shard: all 64 within 64 ids. Some shards share a limit here (60 limits).
        #expect(most <= 2, "at most \(most) rebuilds within 40 ids")
    }

    /// A shard's table past `wholeRebuildSlots` grows beside itself, a few slots per id taken, and
    /// every answer meanwhile equals a dictionary's: ids taken again after they expired (written to
    /// a slot the move has passed, so to the new table too), ids whose slot the move has not reached,
    /// a shard's epoch moved while it grows (16 bits of time), a snapshot written and read back
    /// mid-growth (the old table alone is written: the restored set answers the same), the tables
    /// switched between one array and pages mid-growth, and a copy that dropped its growths (as a
    /// checkpoint's does) writing the bytes it wrote when taken while the set goes on filling.
    @Test(arguments: [32, 16], [false, true])
    func dedupShardsGrowBesideThemselves(timeBits: Int, paged: Bool) throws {
        var random = SplitMix64(seed: 0x6E0 ^ UInt64(timeBits))
        let whole = 1 << 8
        var sets = [DedupSet(capacity: 16, timeBits: timeBits, paged: paged, wholeRebuildSlots: whole)]
        var model: [UInt64: Int64] = [:]
        var time: Int64 = 1_700_000_000_000
        var held: (set: DedupSet, bytes: [UInt8])? = nil
        var stepsGrowing = 0
        var snapshotsMidGrowth = 0
        var rebuildsBeforeSwitch = 0
        for step in 0..<400_000 {
            time += Int64(random.next() % 2)
            let cutoff = time - 30_000
            // Growing numbers of ids, some again within the horizon and some after it.
            let id = random.next() % UInt64(20_000 + step)
            let at = time - Int64(random.next() % 64)
            let fingerprint = withUnsafeBytes(of: id) { Fingerprint($0) }
            let expected: Bool = model[id].map { $0 < cutoff } ?? true
            for index in sets.indices {
                #expect(sets[index].insert(fingerprint, time: at, cutoff: cutoff) == expected, "set \(index), step \(step)")
            }
            if expected { model[id] = at }
            guard sets[0].growing > 0 else { continue }
            stepsGrowing += 1
            if stepsGrowing % 20_000 == 1 {
                var writer = SnapshotWriter()
                sets[0].write(to: &writer)
                let layout = sets[0].isPaged
                let restored = try writer.bytes.withUnsafeBytes { raw in
                    var reader = SnapshotReader(raw)
                    return try DedupSet(from: &reader, timeBits: timeBits, paged: layout, wholeRebuildSlots: whole)
                }
                var again = SnapshotWriter()
                restored.write(to: &again)
                #expect(again.bytes == writer.bytes, "a set restored mid-growth writes the same bytes")
                #expect(restored.growing == 0)
                sets = [sets[0], restored]
                snapshotsMidGrowth += 1
                if held == nil {
                    var copy = sets[0]
                    copy.dropGrowth()
                    held = (copy, writer.bytes)
                }
            }
            if stepsGrowing == 30_000 {
                rebuildsBeforeSwitch = sets[0].rebuilds
                sets[0].setPaged(!paged)
                #expect(sets[0].growing == 0, "switching layouts starts growths over")
            }
        }
        #expect(stepsGrowing > 60_000, "tables grew over many ids (\(stepsGrowing) steps with a growth going on)")
        #expect(snapshotsMidGrowth >= 3)
        #expect(rebuildsBeforeSwitch > 64 && sets[0].rebuilds > 16, "growths ended: \(rebuildsBeforeSwitch), then \(sets[0].rebuilds)")
        var later = SnapshotWriter()
        held?.set.write(to: &later)
        #expect(held != nil && later.bytes == held?.bytes, "the copy did not change")
        #expect(sets[0].count < model.count, "expired ids were dropped as tables grew")
    }

    @Test func dedupTimeBitsFollowTheSpan() {
        let day: Int64 = 86_400_000
        #expect(DedupSet.timeBits(span: day + 3_600_000) == 32)
        #expect(DedupSet.timeBits(span: 24 * day) == 32)
        #expect(DedupSet.timeBits(span: 25 * day) == 33)
        #expect(DedupSet.timeBits(span: 365 * day) == 36)
        #expect(DedupSet.timeBits(span: 20_000_000 * day) == 52)
        #expect(DedupSet.timeBits(span: .max) == 56)
        #expect(Admission.dedupTimeBits(lateness: .max, dedupHorizon: .max) == 56)
        // A snapshot written with other bits is refused.
        var writer = SnapshotWriter()
        DedupSet(capacity: 16, timeBits: 33).write(to: &writer)
        #expect(throws: SnapshotError.invalid("dedup entries hold 33 bits of time, 32 with these options")) {
            try writer.bytes.withUnsafeBytes { raw in
                var reader = SnapshotReader(raw)
                _ = try DedupSet(from: &reader, timeBits: 32)
            }
        }
    }

    /// Snapshot checks: a dedup entry in the wrong shard, or a shard fuller than 85%, is refused.
    @Test func dedupSnapshotsWithMisplacedOrCrowdedEntriesAreRefused() {
        func read(_ write: (inout SnapshotWriter) -> Void) -> Error? {
            var writer = SnapshotWriter()
            write(&writer)
            return writer.bytes.withUnsafeBytes { raw in
                var reader = SnapshotReader(raw)
                do {
                    _ = try DedupSet(from: &reader)
                    return nil
                } catch { return error }
            }
        }
        var good = SnapshotWriter()
        DedupSet(capacity: 16).write(to: &good)
        #expect(read { $0.append(good.bytes) } == nil)
        // 63 empty shards, then `last`, and no far ids.
        let emptyShard = [UInt64](repeating: 0, count: 32)
        func shards(last: [UInt64], epoch: Int64 = 0) -> (inout SnapshotWriter) -> Void {
            { writer in
                writer.write(count: DedupSet.shardCount)
                writer.write(UInt8(32))
                for shard in 0..<DedupSet.shardCount {
                    writer.write(shard == DedupSet.shardCount - 1 ? epoch : 0)
                    writer.write(UInt8(0))
                    writer.write(UInt16(16))
                    writer.write(count: 16)
                    (shard == DedupSet.shardCount - 1 ? last : emptyShard).withUnsafeBytes { writer.append($0) }
                }
                writer.write(count: 0)
            }
        }
        #expect(read(shards(last: emptyShard)) == nil)
        var misplaced = emptyShard
        misplaced[0] = 1
        misplaced[1] = 5
        // An entry of shard 0 in shard 63.
        #expect(read(shards(last: misplaced)) != nil)
        var crowded = emptyShard
        for slot in 0..<14 {
            crowded[2 * slot] = UInt64(63) << 58 | UInt64(slot)
            crowded[2 * slot + 1] = 5
        }
        // 14 of 16 slots.
        #expect(read(shards(last: crowded)) != nil)
        var fits = crowded
        fits[2 * 13 + 1] = 0
        #expect(read(shards(last: fits)) == nil, "13 of 16 slots is within 85%")
        #expect(read(shards(last: fits, epoch: SnapshotReader.timeLimit)) == nil)
        #expect(read(shards(last: fits, epoch: SnapshotReader.timeLimit + 1)) != nil, "an epoch out of range")
    }
}
