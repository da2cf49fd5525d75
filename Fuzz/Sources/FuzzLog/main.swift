import FuzzSupport

// Fuzz target `log`: `WriteAheadLog.replay` over segment files in a data folder (in memory when
// /dev/shm exists). Two modes, by the first byte's low bit:
//
// Raw (0): one to four segment files of arbitrary bytes. Byte 1: segments - 1 (`& 3`), 4 put a valid
// header before each, 8 name each after the LSN in its header (else 1, 2, 3, 4); byte 2: an LSN to
// replay after; then, for each segment but the last, its length (two bytes) and bytes; the last
// takes the rest. Checks: replay returns or throws `WALError`, never traps; without repairing it
// changes no file; records come in rising LSN order and the report counts them; replaying after an
// LSN gives exactly the later records; when it returns, a repairing replay gives the same records
// and leaves a log that replays again with no damage reported and the same records.
//
// Damaged (1): a log written by `WriteAheadLog` itself (three segments, records of 0 to 200 bytes),
// then at most one burst of one to four changed bytes in one segment, a cut of each segment, and
// possibly one segment deleted. Checks: never a trap; every record replayed is one that was written
// (same LSN, kind and payload: CRC-32C catches any burst of up to 32 bits), in order; with the damage
// in the last segment only, the records are a prefix of those written; a changed byte or a cut
// inside a record or header of another segment is an error (`WALError.corrupt`), not a silent loss.
@testable import RoasCore
@testable import RoasRuntime

#if canImport(Glibc)
import Glibc
#endif

struct Record: Equatable {
    var lsn: UInt64
    var kind: UInt8
    var payload: [UInt8]
}

struct Replayed: Equatable {
    var records: [Record]
    var report: WriteAheadLog.ReplayReport
}

let dataDirectory = TemporaryDirectory.path + "/data"
let walDirectory = dataDirectory + "/wal"

func replay(after lsn: UInt64 = 0, repairing: Bool) -> Result<Replayed, WALError> {
    var records: [Record] = []
    do {
        let report = try WriteAheadLog.replay(directory: dataDirectory, after: lsn, repairing: repairing) { lsn, kind, payload in
            records.append(Record(lsn: lsn, kind: kind, payload: Array(payload)))
        }
        return .success(Replayed(records: records, report: report))
    } catch let error as WALError {
        return .failure(error)
    } catch {
        fail("replay threw \(error), not a WALError")
    }
}

func resetFolder() {
    TemporaryDirectory.remove(dataDirectory)
    require(mkdir(dataDirectory, 0o755) == 0 && mkdir(walDirectory, 0o755) == 0, "cannot create \(walDirectory)")
}

func writeSegments(_ segments: [(UInt64, [UInt8])]) {
    resetFolder()
    for (firstLSN, bytes) in segments {
        TemporaryDirectory.write(bytes, to: walDirectory + "/" + SegmentFile.name(firstLSN: firstLSN))
    }
}

func files() -> [String: [UInt8]] {
    var result: [String: [UInt8]] = [:]
    for name in TemporaryDirectory.list(walDirectory) { result[name] = TemporaryDirectory.read(walDirectory + "/" + name) }
    return result
}

func checkReplayed(_ replayed: Replayed, after lsn: UInt64) {
    var previous: UInt64 = 0
    var bytes = 0
    for record in replayed.records {
        require(record.lsn > previous && record.lsn > lsn, "record LSNs out of order: \(record.lsn) after \(previous)")
        previous = record.lsn
        bytes += SegmentFile.recordHeaderBytes + record.payload.count
    }
    let report = replayed.report
    require(report.records == replayed.records.count && report.bytes == bytes, "the report's record and byte counts")
    require(report.lastLSN >= previous, "the report's last LSN \(report.lastLSN) is before a replayed record's")
    require(report.nextLSN > report.lastLSN && report.nextLSN > lsn, "the report's next LSN \(report.nextLSN)")
}

// MARK: Raw segments

func fuzzRaw(_ input: inout FuzzInput) {
    let layout = input.byte()
    let after = UInt64(input.byte())
    let count = Int(layout & 3) + 1
    var segments: [(UInt64, [UInt8])] = []
    var used = Set<UInt64>()
    for index in 0..<count {
        var bytes = Array(index == count - 1 ? input.rest() : input.bytes(Int(input.uint16())))
        var firstLSN = UInt64(index + 1)
        if layout & 4 != 0 {
            bytes = SegmentFile.header(firstLSN: firstLSN) + bytes
        } else if layout & 8 != 0 && bytes.count >= 16 {
            firstLSN = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        }
        guard used.insert(firstLSN).inserted else { continue }
        segments.append((firstLSN, bytes))
    }
    writeSegments(segments)
    let before = files()

    let first = replay(repairing: false)
    require(files() == before, "a replay without repairing changed the files")
    let later = replay(after: after, repairing: false)
    switch (first, later) {
    case (.success(let all), .success(let some)):
        checkReplayed(all, after: 0)
        checkReplayed(some, after: after)
        require(some.records == all.records.filter { $0.lsn > after }, "replaying after LSN \(after) gives other records")
        require(some.report.lastLSN == all.report.lastLSN, "replaying after an LSN changes the last LSN")
    case (.failure(let a), .failure(let b)):
        require(a == b, "replaying after an LSN fails differently: \(a) / \(b)")
        return
    default:
        fail("replaying after LSN \(after) and from the start disagree: \(first) / \(later)")
    }
    guard case .success(let clean) = first else { return }

    switch replay(repairing: true) {
    case .success(let repaired):
        require(repaired.records == clean.records, "a repairing replay gives other records")
        require(repaired.report.droppedTail == nil || clean.report.droppedTail != nil, "a repair where none was reported")
        switch replay(repairing: false) {
        case .success(let again):
            require(again.records == clean.records, "after a repair the log replays other records")
            require(again.report.droppedTail == nil, "after a repair the log is still damaged: \(again.report.droppedTail!)")
        case .failure(let error):
            fail("after a repair the log does not replay: \(error)")
        }
    case .failure(let error):
        fail("a log that replays without repairing fails to repair: \(error)")
    }
}

// MARK: A damaged real log

/// The segments of a log written by `WriteAheadLog`, and its records.
struct Template {
    var segments: [(firstLSN: UInt64, bytes: [UInt8])] = []
    var records: [Record] = []
    /// Offsets of record starts in each segment, and its end.
    var boundaries: [[Int]] = []
}

let template: Template = {
    resetFolder()
    var template = Template()
    do {
        let log = try WriteAheadLog(directory: dataDirectory, nextLSN: 1, fsync: .batch, segmentBytes: 1 << 20)
        var random = SplitMix(seed: 16)
        for index in 0..<15 {
            let count = [0, 1, 17, 64, 200][index % 5]
            var payload = Array("{\"type\":\"view\",\"id\":\"v-\(index)\"}\n".utf8)
            while payload.count < count { payload.append(UInt8(truncatingIfNeeded: random.next())) }
            payload = Array(payload.prefix(count))
            _ = try payload.withUnsafeBytes { try log.append(kind: UInt8(1 + index % 2), payload: $0) }
            if index == 4 || index == 9 { try log.roll() }
        }
        try log.close()
    } catch {
        fail("cannot write the template log: \(error)")
    }
    guard case .success(let replayed) = replay(repairing: false), replayed.report.droppedTail == nil else {
        fail("the template log does not replay cleanly")
    }
    template.records = replayed.records
    for name in TemporaryDirectory.list(walDirectory) {
        let firstLSN = SegmentFile.firstLSN(name: name)!
        let bytes = TemporaryDirectory.read(walDirectory + "/" + name)!
        var offsets = [SegmentFile.headerBytes]
        var offset = SegmentFile.headerBytes
        while offset < bytes.count {
            let length = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
            offset += SegmentFile.recordHeaderBytes + length
            offsets.append(offset)
        }
        template.segments.append((firstLSN, bytes))
        template.boundaries.append(offsets)
    }
    require(template.segments.count == 3 && template.records.count == 15, "the template log's shape")
    return template
}()

func fuzzDamaged(_ input: inout FuzzInput) {
    var segments = template.segments.map { ($0.firstLSN, $0.bytes) }
    let last = segments.count - 1
    // Damage per segment: (a changed byte at an offset, a cut inside a record or header).
    var damaged = [Bool](repeating: false, count: segments.count)
    var cutAtBoundary = [Bool](repeating: false, count: segments.count)

    var burst: (segment: Int, positions: [Int])? = nil
    let burstByte = input.byte()
    if burstByte & 0x80 != 0 {
        let index = Int(burstByte & 3) % segments.count
        let length = Int((burstByte >> 2) & 3) + 1
        let offset = Int(input.uint16()) % segments[index].1.count
        var positions: [Int] = []
        for position in offset..<min(offset + length, segments[index].1.count) {
            let mask = input.byte()
            segments[index].1[position] ^= mask
            if mask != 0 { positions.append(position) }
        }
        burst = (index, positions)
    }
    for index in segments.indices {
        let cut = input.uint16()
        guard cut & 0x8000 != 0 else { continue }
        let length = Int(cut & 0x7FFF) % (segments[index].1.count + 1)
        if length < segments[index].1.count {
            segments[index].1.removeSubrange(length...)
            if template.boundaries[index].contains(length) {
                cutAtBoundary[index] = true
            } else {
                damaged[index] = true
            }
        }
    }
    if let burst, burst.positions.contains(where: { $0 < segments[burst.segment].1.count }) {
        damaged[burst.segment] = true
    }
    let deletion = input.byte()
    var deleted: Int? = nil
    if deletion & 0x80 != 0 {
        deleted = Int(deletion & 3) % segments.count
        segments.remove(at: deleted!)
        damaged.remove(at: deleted!)
        cutAtBoundary.remove(at: deleted!)
    }
    writeSegments(segments)

    let result = replay(repairing: false)
    let lastIndex = segments.count - 1
    if damaged.enumerated().contains(where: { $0.offset < lastIndex && $0.element }) {
        guard case .failure(let error) = result, case .corrupt = error else {
            fail("damage inside a segment that is not the last is not reported as corruption: \(result)")
        }
        return
    }
    guard case .success(let replayed) = result else {
        // The last segment's header may be damaged: an error is fine, a trap is not.
        return
    }
    checkReplayed(replayed, after: 0)
    let written = Dictionary(uniqueKeysWithValues: template.records.map { ($0.lsn, $0) })
    for record in replayed.records {
        require(written[record.lsn] == record, "replay returns a record that was never written: LSN \(record.lsn)")
    }
    let onlyLastTouched =
        deleted == nil && !cutAtBoundary.dropLast().contains(true) && lastIndex == last
    if onlyLastTouched {
        require(
            Array(template.records.prefix(replayed.records.count)) == replayed.records,
            "damage in the last segment gives records that are not a prefix of those written")
        if !damaged[lastIndex] && !cutAtBoundary[lastIndex] {
            require(replayed.records == template.records && replayed.report.droppedTail == nil, "an intact log loses records")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    _ = template
    if input.byte() & 1 == 0 {
        fuzzRaw(&input)
    } else {
        fuzzDamaged(&input)
    }
    return 0
}

fuzzMain(fuzzOne)
