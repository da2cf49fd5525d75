import Foundation
import RoasCore
import RoasCoreTestSupport
import RoasRuntime
import RoasTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The write-ahead log on real files: round trips per mode, group commit, rolls, torn tails,
/// corruption, and a genuine write failure (a lowered RLIMIT_FSIZE).
///
/// XCTest rather than Swift Testing: XCTest runs these one at a time, and the failure test lowers a
/// process-wide limit that must not hit other tests' files.
final class WriteAheadLogTests: XCTestCase {
    struct Record: Equatable, CustomStringConvertible {
        var lsn: UInt64
        var kind: UInt8
        var payload: [UInt8]

        var description: String { "#\(self.lsn) kind \(self.kind), \(self.payload.count) bytes" }
    }

    /// A fresh directory, removed after the test.
    func makeDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("roas-wal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        self.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// A payload whose length and bytes depend on `index` (some empty).
    static func payload(_ index: Int, length: Int? = nil) -> [UInt8] {
        let count = length ?? (index * 37) % 300
        return (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &* 7) }
    }

    typealias Replayed = (records: [Record], report: WriteAheadLog.ReplayReport)

    static func replay(_ directory: String, after lsn: UInt64 = 0, repairing: Bool = true) throws -> Replayed {
        var records: [Record] = []
        func collect(_ lsn: UInt64, _ kind: UInt8, _ payload: UnsafeRawBufferPointer) {
            records.append(Record(lsn: lsn, kind: kind, payload: Array(payload)))
        }
        let report = try WriteAheadLog.replay(directory: directory, after: lsn, repairing: repairing, collect)
        return (records, report)
    }

    static func contents(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    /// A record as the format describes it, built here independently of the log's own encoder.
    static func encode(_ record: Record) -> [UInt8] {
        var checksummed: [UInt8] = [record.kind]
        withUnsafeBytes(of: record.lsn.littleEndian) { checksummed.append(contentsOf: $0) }
        checksummed.append(contentsOf: record.payload)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(record.payload.count).littleEndian) { bytes.append(contentsOf: $0) }
        let crc = checksummed.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + checksummed
    }

    static func segmentHeader(firstLSN: UInt64) -> [UInt8] {
        var bytes = Array("ROASWAL1".utf8)
        withUnsafeBytes(of: firstLSN.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func segmentName(_ firstLSN: UInt64) -> String {
        let digits = String(firstLSN)
        return String(repeating: "0", count: 20 - digits.count) + digits + ".log"
    }

    /// Appends and waits for each record in turn.
    static func appendDurably(
        _ log: WriteAheadLog,
        _ records: inout [Record],
        count: Int,
        kind: UInt8 = 1
    )
        async throws
    {
        for _ in 0..<count {
            let payload = Self.payload(records.count)
            let lsn = try log.append(kind: kind, payload)
            try await log.waitDurable(lsn)
            records.append(Record(lsn: lsn, kind: kind, payload: payload))
        }
    }

    // MARK: Round trips

    func testRoundTripInEachMode() async throws {
        for mode in [FsyncMode.batch, .always, .interval(milliseconds: 20)] {
            let directory = try self.makeDirectory()
            let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: mode)
            var expected: [Record] = []
            for index in 0..<60 {
                let record = Record(lsn: UInt64(index + 1), kind: UInt8(index % 5), payload: Self.payload(index))
                XCTAssertEqual(try log.append(kind: record.kind, record.payload), record.lsn, "\(mode)")
                expected.append(record)
                if index % 3 == 2 { try await log.waitDurable(record.lsn) }
            }
            try await log.waitDurable(60)
            XCTAssertEqual(log.durableLSN, 60, "\(mode)")
            XCTAssertEqual(log.recordsWritten, 60, "\(mode)")
            XCTAssertEqual(log.bytesWritten, expected.reduce(0) { $0 + 17 + $1.payload.count }, "\(mode)")
            XCTAssertNil(log.lastError)
            try log.close()
            XCTAssertEqual(log.syncedLSN, 60, "\(mode): close syncs")

            var (records, report) = try Self.replay(directory)
            XCTAssertEqual(records, expected, "\(mode)")
            XCTAssertEqual(report.records, 60)
            XCTAssertEqual(report.bytes, log.bytesWritten)
            XCTAssertEqual(report.lastLSN, 60)
            XCTAssertEqual(report.nextLSN, 61)
            XCTAssertEqual(report.segments, 1)
            XCTAssertNil(report.droppedTail)
            (records, report) = try Self.replay(directory, after: 42)
            XCTAssertEqual(records, Array(expected[42...]), "\(mode)")
            XCTAssertEqual(report.lastLSN, 60)

            // A restart opens a new segment at the report's next LSN.
            let reopened = try WriteAheadLog(directory: directory, nextLSN: report.nextLSN, fsync: mode)
            try await Self.appendDurably(reopened, &expected, count: 5, kind: 9)
            try reopened.close()
            (records, report) = try Self.replay(directory)
            XCTAssertEqual(records, expected, "\(mode)")
            XCTAssertEqual(report.segments, 2)
            XCTAssertEqual(try WriteAheadLog.segments(in: directory).map(\.firstLSN), [1, 61])
        }
    }

    func testTheFileLayoutIsTheDocumentedOne() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1234, fsync: .batch)
        let payload: [UInt8] = Array("hello, log".utf8)
        try await log.waitDurable(try log.append(kind: 7, payload))
        try log.close()
        let segments = try WriteAheadLog.segments(in: directory)
        XCTAssertEqual(segments.map(\.firstLSN), [1234])
        XCTAssertEqual(segments[0].path, directory + "/wal/00000000000000001234.log")
        XCTAssertEqual(
            try Self.contents(segments[0].path),
            Self.segmentHeader(firstLSN: 1234) + Self.encode(Record(lsn: 1234, kind: 7, payload: payload))
        )
    }

    func testLargeRecordsAndChunkBoundariesReplayExactly() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var random = SplitMix64(seed: 0xB16)
        var expected: [Record] = []
        for index in 0..<1200 {
            // Records straddle the replay's 1 MiB chunks; one is larger than a chunk.
            let count = index == 600 ? (5 << 19) + 3 : random.int(0...4000)
            let record = Record(
                lsn: UInt64(index + 1),
                kind: random.byte(),
                payload: (0..<count).map { _ in random.byte() }
            )
            XCTAssertEqual(try log.append(kind: record.kind, record.payload), record.lsn)
            expected.append(record)
        }
        try await log.waitDurable(1200)
        try log.close()
        let (records, report) = try Self.replay(directory)
        XCTAssertEqual(records.count, expected.count)
        XCTAssertTrue(records == expected, "replayed records differ")
        XCTAssertNil(report.droppedTail)
    }

    func testCloseDrainsWhatIsPendingAndLaterCallsAreRefused() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 5, fsync: .batch)
        for index in 0..<100 { _ = try log.append(kind: 1, Self.payload(index)) }
        try log.close()
        try log.close()
        XCTAssertEqual(log.durableLSN, 104)
        try await log.waitDurable(104)
        try await log.waitDurable(3)  // before the log's first LSN: an earlier run's
        XCTAssertThrowsError(try log.append(kind: 1, [1])) { XCTAssertEqual($0 as? WALError, .closed) }
        XCTAssertThrowsError(try log.roll()) { XCTAssertEqual($0 as? WALError, .closed) }
        do {
            try await log.waitDurable(105)
            XCTFail("LSN 105 was never assigned")
        } catch {
            XCTAssertEqual(error as? WALError, .unknownLSN(105))
        }
        XCTAssertEqual(try Self.replay(directory).0.map(\.lsn), Array(5...104))
    }

    func testAnOversizedPayloadIsRefused() throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        defer { try? log.close() }
        var byte: UInt8 = 0
        try withUnsafeBytes(of: &byte) { bytes in
            // Never read: the length check comes first.
            let huge = UnsafeRawBufferPointer(start: bytes.baseAddress, count: WriteAheadLog.maximumPayloadBytes + 1)
            XCTAssertThrowsError(try log.append(kind: 1, payload: huge)) {
                XCTAssertEqual($0 as? WALError, .recordTooLarge(WriteAheadLog.maximumPayloadBytes + 1))
            }
        }
    }

    // MARK: Group commit

    func testConcurrentAppendersAreAllDurableAndReplayedInOrder() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        let appenders = 8
        let perAppender = 150
        let appended = try await withThrowingTaskGroup(of: [Record].self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    var mine: [Record] = []
                    for index in 0..<perAppender {
                        let payload = Self.payload(appender * 1000 + index)
                        let lsn = try log.append(kind: UInt8(appender), payload)
                        try await log.waitDurable(lsn)
                        XCTAssertGreaterThanOrEqual(log.durableLSN, lsn)
                        mine.append(Record(lsn: lsn, kind: UInt8(appender), payload: payload))
                    }
                    return mine
                }
            }
            var all: [Record] = []
            for try await records in group { all += records }
            return all
        }
        let records = log.recordsWritten
        let syncs = log.syncs
        let syncMicroseconds = Double(log.syncNanoseconds) / Double(max(syncs, 1)) / 1000
        try log.close()
        XCTAssertEqual(records, appenders * perAppender)
        print(
            "WAL batch mode, \(appenders) appenders waiting per record: \(records) records, \(syncs) syncs, "
                + "\(Double(records) / Double(max(syncs, 1))) records per sync, \(syncMicroseconds) µs per sync"
        )
        let (replayed, _) = try Self.replay(directory)
        XCTAssertEqual(replayed, appended.sorted { $0.lsn < $1.lsn })
        XCTAssertEqual(replayed.map(\.lsn), Array(1...UInt64(appenders * perAppender)))
    }

    func testOneSyncCoversEverythingPending() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        let payloads = (0..<1000).map { Self.payload($0) }
        var lsns: [UInt64] = []
        for payload in payloads { lsns.append(try log.append(kind: 1, payload)) }
        for lsn in lsns { try await log.waitDurable(lsn) }
        print("WAL batch mode, 1000 records appended before waiting: \(log.syncs) syncs")
        XCTAssertLessThan(log.syncs, 1000)
        try log.close()
        XCTAssertEqual(try Self.replay(directory).0.count, 1000)
    }

    func testAlwaysModeSyncsEachRecord() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .always)
        var lsns: [UInt64] = []
        for index in 0..<40 { lsns.append(try log.append(kind: 1, Self.payload(index))) }
        for lsn in lsns { try await log.waitDurable(lsn) }
        XCTAssertEqual(log.syncs, 40)
        try log.close()
        XCTAssertEqual(try Self.replay(directory).0.count, 40)
    }

    func testIntervalModeAcknowledgesAfterWriteAndSyncsWithinTheInterval() async throws {
        let directory = try self.makeDirectory()
        let interval: Int64 = 100
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .interval(milliseconds: interval))
        let start = ContinuousClock.now
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 50)
        XCTAssertEqual(log.durableLSN, 50)
        // The sync comes at most one interval after the last write; wait a bounded while for it.
        while log.syncedLSN < 50 && ContinuousClock.now - start < .seconds(3) {
            try await Task.sleep(for: .milliseconds(5))
        }
        XCTAssertEqual(log.syncedLSN, 50)
        let elapsed = (ContinuousClock.now - start) / .milliseconds(interval)
        XCTAssertLessThanOrEqual(Double(log.syncs), 2 + elapsed, "at most one sync per interval")
        try log.close()
        XCTAssertEqual(try Self.replay(directory).0, records)
    }

    // MARK: Segments

    func testRollAndRemoveSegmentsKeepReplayCorrect() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 10)
        XCTAssertEqual(try log.roll(), 11)
        try await Self.appendDurably(log, &records, count: 10)
        XCTAssertEqual(try log.roll(), 21)
        XCTAssertEqual(try log.roll(), 21, "an empty segment stays")
        try await Self.appendDurably(log, &records, count: 5)
        XCTAssertEqual(try WriteAheadLog.segments(in: directory).map(\.firstLSN), [1, 11, 21])

        // A checkpoint through 15 covers segment 1 only.
        XCTAssertEqual(try log.removeSegments(coveredBy: 15), 1)
        XCTAssertEqual(try WriteAheadLog.segments(in: directory).map(\.firstLSN), [11, 21])
        var (replayed, report) = try Self.replay(directory, after: 15)
        XCTAssertEqual(replayed, Array(records[15...]))
        XCTAssertEqual(report.segments, 2)
        XCTAssertEqual(try log.removeSegments(coveredBy: 20), 1)
        XCTAssertEqual(try log.removeSegments(coveredBy: 1000), 0, "never the current segment")
        XCTAssertEqual(try WriteAheadLog.segments(in: directory).map(\.firstLSN), [21])

        // Records appended before roll() go to the old segment, later ones to the new.
        let before = try log.append(kind: 3, [1])
        let next = try log.roll()
        XCTAssertEqual(next, before + 1)
        let after = try log.append(kind: 3, [2])
        try await log.waitDurable(after)
        try log.close()
        (replayed, report) = try Self.replay(directory, after: 20)
        XCTAssertEqual(replayed.map(\.lsn), Array(21...27))
        XCTAssertEqual(try WriteAheadLog.segments(in: directory).map(\.firstLSN), [21, next])
    }

    func testSegmentsRollBySize() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch, segmentBytes: 1000)
        var lsns: [UInt64] = []
        var expected: [Record] = []
        for index in 0..<200 {
            let payload = Self.payload(index, length: 50)
            lsns.append(try log.append(kind: 1, payload))
            expected.append(Record(lsn: lsns.last!, kind: 1, payload: payload))
            if index % 10 == 0 { try await log.waitDurable(lsns.last!) }
        }
        for lsn in lsns { try await log.waitDurable(lsn) }
        try log.close()
        let segments = try WriteAheadLog.segments(in: directory)
        XCTAssertGreaterThan(segments.count, 10)
        for segment in segments {
            // A segment passes the limit by at most one record (67 bytes here).
            XCTAssertLessThan(try Self.size(segment.path), 1000 + 67, segment.path)
        }
        let (replayed, report) = try Self.replay(directory)
        XCTAssertEqual(replayed, expected)
        XCTAssertEqual(report.segments, segments.count)
    }

    func testOpeningRefusesSegmentsAtOrAfterTheNextLSNButReplacesEmptyOnes() async throws {
        let directory = try self.makeDirectory()
        var log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 3)
        XCTAssertEqual(try log.roll(), 4)
        try log.close()
        // A crash right after a roll leaves an empty last segment; the log reopens at its LSN.
        var (replayed, report) = try Self.replay(directory)
        XCTAssertEqual(replayed, records)
        XCTAssertEqual(report.nextLSN, 4)
        log = try WriteAheadLog(directory: directory, nextLSN: report.nextLSN, fsync: .batch)
        try await Self.appendDurably(log, &records, count: 2)
        try log.close()
        XCTAssertThrowsError(try WriteAheadLog(directory: directory, nextLSN: 4, fsync: .batch)) {
            guard case WALError.io(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("00000000000000000004.log"), message)
        }
        (replayed, report) = try Self.replay(directory)
        XCTAssertEqual(replayed, records)
        XCTAssertEqual(report.nextLSN, 6)
    }

    // MARK: Damage

    func testATornTailIsCutAtEveryOffsetOfTheLastRecord() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 3)
        try log.roll()
        try await Self.appendDurably(log, &records, count: 4)
        let last = Record(lsn: 8, kind: 4, payload: Self.payload(8, length: 12))
        try await log.waitDurable(try log.append(kind: last.kind, last.payload))
        try log.close()
        let segments = try WriteAheadLog.segments(in: directory)
        XCTAssertEqual(segments.map(\.firstLSN), [1, 4])
        let first = try Self.contents(segments[0].path)
        let original = try Self.contents(segments[1].path)
        let lastStart = original.count - 17 - last.payload.count
        XCTAssertEqual(Array(original[lastStart...]), Self.encode(last))

        var damaged: [(name: String, bytes: [UInt8])] = []
        for cut in lastStart..<original.count {
            damaged.append(("cut at \(cut)", Array(original[..<cut])))
        }
        for offset in lastStart..<original.count {
            var bytes = original
            bytes[offset] ^= 0x5A
            damaged.append(("byte \(offset) flipped", bytes))
        }
        for (name, bytes) in damaged {
            try FileManager.default.removeItem(atPath: directory + "/wal")
            try FileManager.default.createDirectory(atPath: directory + "/wal", withIntermediateDirectories: false)
            try Self.write(first, to: segments[0].path)
            try Self.write(bytes, to: segments[1].path)

            // An inspection leaves the files alone but sees the same records and the same tail.
            let (inspected, inspection) = try Self.replay(directory, repairing: false)
            XCTAssertEqual(inspected, records, name)
            XCTAssertEqual(inspection.droppedBytes, bytes.count - lastStart, name)
            XCTAssertEqual(try Self.contents(segments[1].path), bytes, name)

            let (replayed, report) = try Self.replay(directory)
            XCTAssertEqual(replayed, records, name)
            XCTAssertEqual(report.lastLSN, 7, name)
            XCTAssertEqual(report.nextLSN, 8, name)
            if bytes.count == lastStart {
                XCTAssertNil(report.droppedTail, name)
            } else {
                let tail = report.droppedTail ?? ""
                XCTAssertTrue(tail.contains("at offset \(lastStart)"), "\(name): \(tail)")
                XCTAssertEqual(report.droppedBytes, bytes.count - lastStart, name)
            }
            XCTAssertEqual(try Self.size(segments[1].path), lastStart, "\(name): the tail is cut")

            // The log goes on, and the cut segment, no longer the last, replays clean.
            let next = try WriteAheadLog(directory: directory, nextLSN: report.nextLSN, fsync: .batch)
            XCTAssertEqual(try next.append(kind: 9, [1, 2, 3]), 8, name)
            try next.close()
            let (again, againReport) = try Self.replay(directory)
            XCTAssertEqual(again, records + [Record(lsn: 8, kind: 9, payload: [1, 2, 3])], name)
            XCTAssertNil(againReport.droppedTail, name)
        }
    }

    /// A byte flipped anywhere in a one-segment log: in the last record it is a torn tail (no valid
    /// record follows), anywhere before it is damage to acknowledged records, which stops the replay
    /// with the file and offset, and only `truncatingDamage` cuts it (with every record after it).
    func testAFlippedByteAtEveryOffsetBeforeTheLastRecordIsDamageNotATornTail() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        for index in 0..<5 {
            let payload = Self.payload(index, length: 9 + index * 7)
            let lsn = try log.append(kind: 1, payload)
            try await log.waitDurable(lsn)
            records.append(Record(lsn: lsn, kind: 1, payload: payload))
        }
        try log.close()
        let path = try WriteAheadLog.segments(in: directory)[0].path
        let original = try Self.contents(path)
        var starts = [16]
        for record in records { starts.append(starts.last! + Self.encode(record).count) }
        XCTAssertEqual(starts.last, original.count)
        let lastStart = starts[records.count - 1]

        for offset in 16..<original.count {
            var bytes = original
            bytes[offset] ^= 0x5A
            try Self.write(bytes, to: path)
            let damaged = starts.lastIndex { $0 <= offset }!
            let name = "byte \(offset) (record \(damaged + 1)) flipped"
            if offset >= lastStart {
                // The last record: a torn tail, cut as before.
                let (replayed, report) = try Self.replay(directory, repairing: false)
                XCTAssertEqual(replayed, Array(records.prefix(4)), name)
                XCTAssertTrue(report.droppedTail?.contains("at offset \(lastStart)") ?? false, name)
                continue
            }
            for repairing in [false, true] {
                XCTAssertThrowsError(try Self.replay(directory, repairing: repairing), name) { error in
                    guard case WALError.corrupt(let errorPath, let errorOffset, let reason) = error else {
                        return XCTFail("\(name): \(error)")
                    }
                    XCTAssertEqual(errorPath, path, name)
                    XCTAssertEqual(errorOffset, starts[damaged], name)
                    XCTAssertTrue(reason.contains("a valid record"), "\(name): \(reason)")
                    XCTAssertTrue(reason.contains("--truncate-damaged-log"), "\(name): \(reason)")
                }
                XCTAssertEqual(try Self.contents(path), bytes, "\(name): damage is never cut without the flag")
            }
            // With the flag, the records before the damage replay and the rest is cut, said so.
            var replayed: [Record] = []
            let report = try WriteAheadLog.replay(directory: directory, after: 0, truncatingDamage: true) { lsn, kind, payload in
                replayed.append(Record(lsn: lsn, kind: kind, payload: Array(payload)))
            }
            XCTAssertEqual(replayed, Array(records.prefix(damaged)), name)
            XCTAssertTrue(report.droppedTail?.contains("--truncate-damaged-log") ?? false, name)
            XCTAssertEqual(try Self.size(path), starts[damaged], name)
            try Self.write(original, to: path)
        }
    }

    func testDamageBeforeTheLastSegmentIsCorruption() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 3)
        try log.roll()
        try await Self.appendDurably(log, &records, count: 3)
        try log.close()
        let path = try WriteAheadLog.segments(in: directory)[0].path
        let original = try Self.contents(path)
        let second = 16 + Self.encode(records[0]).count
        let third = second + Self.encode(records[1]).count

        func expectCorrupt(_ bytes: [UInt8], offset: Int, reason: String, line: UInt = #line) throws {
            try Self.write(bytes, to: path)
            XCTAssertThrowsError(try Self.replay(directory), line: line) { error in
                guard case WALError.corrupt(let errorPath, let errorOffset, let errorReason) = error else {
                    return XCTFail("\(error)", line: line)
                }
                XCTAssertEqual(errorPath, path, line: line)
                XCTAssertEqual(errorOffset, offset, line: line)
                XCTAssertTrue(errorReason.contains(reason), errorReason, line: line)
            }
            XCTAssertEqual(try Self.contents(path), bytes, "corruption is never cut away", line: line)
        }
        var flipped = original
        flipped[second + 20] ^= 1
        try expectCorrupt(flipped, offset: second, reason: "checksum mismatch")
        try expectCorrupt(Array(original[..<(third + 5)]), offset: third, reason: "short record header")
        try expectCorrupt(Array(original[..<(third + 20)]), offset: third, reason: "short record")
        var magic = original
        magic[0] = UInt8(ascii: "X")
        try expectCorrupt(magic, offset: 0, reason: "bad magic")
        try expectCorrupt(Array(original[..<10]), offset: 0, reason: "shorter than its header")
    }

    func testLSNsMustIncreaseAndStayInTheirSegment() throws {
        let directory = try self.makeDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/wal", withIntermediateDirectories: false)
        let first = directory + "/wal/" + Self.segmentName(1)
        let second = directory + "/wal/" + Self.segmentName(10)
        func record(_ lsn: UInt64) -> [UInt8] { Self.encode(Record(lsn: lsn, kind: 1, payload: [UInt8(lsn)])) }
        let cases: [(first: [UInt64], second: [UInt64], bad: String, offset: Int)] = [
            ([1, 3, 3], [10], first, 16 + 2 * 18),
            ([1, 3, 2], [10], first, 16 + 2 * 18),
            ([1, 10], [11], first, 16 + 18),
            ([1, 2], [9], second, 16),
            ([1, 2], [10, 12, 11], second, 16 + 2 * 18),
        ]
        for (firstLSNs, secondLSNs, bad, offset) in cases {
            try Self.write(Self.segmentHeader(firstLSN: 1) + firstLSNs.flatMap(record), to: first)
            try Self.write(Self.segmentHeader(firstLSN: 10) + secondLSNs.flatMap(record), to: second)
            XCTAssertThrowsError(try Self.replay(directory), "\(firstLSNs) \(secondLSNs)") { error in
                guard case WALError.corrupt(let path, let errorOffset, let reason) = error else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(path, bad, "\(firstLSNs) \(secondLSNs)")
                XCTAssertEqual(errorOffset, offset, "\(firstLSNs) \(secondLSNs)")
                XCTAssertTrue(reason.contains("LSN"), reason)
            }
        }
        // A gap is fine: a failed group leaves one.
        try Self.write(Self.segmentHeader(firstLSN: 1) + [1, 2, 5].flatMap(record), to: first)
        try Self.write(Self.segmentHeader(firstLSN: 10) + [12, 13].flatMap(record), to: second)
        XCTAssertEqual(try Self.replay(directory).0.map(\.lsn), [1, 2, 5, 12, 13])
        // So is a header name mismatch not: the file name and the header agree.
        try Self.write(Self.segmentHeader(firstLSN: 11) + [12, 13].flatMap(record), to: second)
        XCTAssertThrowsError(try Self.replay(directory)) { error in
            XCTAssertEqual(
                error as? WALError,
                .corrupt(path: second, offset: 8, reason: "header says first LSN 11, the name 10")
            )
        }
    }

    /// A last segment a crash left while creating it never held a record and is deleted: one shorter
    /// than its header, or of exactly a header that is not the one roas writes (zeros, other bytes,
    /// another LSN: the OS stopped before the header's sync). The same header with a record after it
    /// is damage.
    func testAHalfCreatedLastSegmentIsDeleted() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var records: [Record] = []
        try await Self.appendDurably(log, &records, count: 3)
        try log.close()
        let half = directory + "/wal/" + Self.segmentName(4)
        var otherBytes = Self.segmentHeader(firstLSN: 4)
        otherBytes[3] ^= 0x40
        let halves: [(name: String, bytes: [UInt8], reason: String)] = [
            ("7 bytes", Array(Self.segmentHeader(firstLSN: 4).prefix(7)), "shorter than its header"),
            ("zeros", [UInt8](repeating: 0, count: 16), "a damaged header alone"),
            ("bad magic", otherBytes, "a damaged header alone"),
            ("another LSN", Self.segmentHeader(firstLSN: 5), "a damaged header alone"),
        ]
        for (name, bytes, reason) in halves {
            try Self.write(bytes, to: half)
            let (replayed, report) = try Self.replay(directory)
            XCTAssertEqual(replayed, records, name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: half), name)
            XCTAssertTrue(report.droppedTail?.contains(reason) ?? false, "\(name): \(report)")
            XCTAssertEqual(report.droppedBytes, bytes.count, name)
            XCTAssertEqual(report.nextLSN, 4, name)
            XCTAssertEqual(report.segments, 1, name)
        }
        // With a record after it, the header is damage to a segment that held records: refused, kept.
        let damaged = [UInt8](repeating: 0, count: 16) + Self.encode(Record(lsn: 4, kind: 1, payload: [4]))
        try Self.write(damaged, to: half)
        XCTAssertThrowsError(try Self.replay(directory)) { error in
            XCTAssertEqual(error as? WALError, .corrupt(path: half, offset: 0, reason: "not a segment: bad magic"))
        }
        XCTAssertEqual(try Self.contents(half), damaged)
    }

    // MARK: Write failures

    func testAFailingWriteIsCutFromTheSegmentAndTheLogRecovers() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        var acknowledged: [Record] = []
        for _ in 0..<10 {
            let payload = Self.payload(acknowledged.count, length: 100)
            let lsn = try log.append(kind: 1, payload)
            try await log.waitDurable(lsn)
            acknowledged.append(Record(lsn: lsn, kind: 1, payload: payload))
        }
        let path = try WriteAheadLog.segments(in: directory)[0].path
        let goodSize = try Self.size(path)
        XCTAssertEqual(goodSize, 16 + 10 * 117)

        // A real limit 50 bytes past the end: the next 117-byte records cannot fit.
        let limit = try FileSizeLimit(bytes: goodSize + 50)
        defer { limit.restore() }
        var doomed: [UInt64] = []
        for index in 0..<3 { doomed.append(try log.append(kind: 2, Self.payload(100 + index, length: 100))) }
        for lsn in doomed {
            do {
                try await log.waitDurable(lsn)
                XCTFail("record \(lsn) cannot be durable past the size limit")
            } catch WALError.write(let message) {
                XCTAssertTrue(message.contains("File too large"), message)
            }
        }
        XCTAssertGreaterThanOrEqual(log.failedGroups, 1)
        XCTAssertTrue(log.lastError?.contains("File too large") ?? false, log.lastError ?? "nil")
        XCTAssertEqual(try Self.size(path), goodSize, "no part of a failed group stays in the segment")
        XCTAssertEqual(log.durableLSN, 10)

        // The log keeps going: a record that fits under the limit goes in.
        let small = Record(lsn: 0, kind: 3, payload: Self.payload(7, length: 20))
        let smallLSN = try log.append(kind: small.kind, small.payload)
        try await log.waitDurable(smallLSN)
        acknowledged.append(Record(lsn: smallLSN, kind: small.kind, payload: small.payload))
        XCTAssertNil(log.lastError)

        // Once space returns, so do large records.
        limit.restore()
        for _ in 0..<5 {
            let payload = Self.payload(acknowledged.count, length: 100)
            let lsn = try log.append(kind: 4, payload)
            try await log.waitDurable(lsn)
            acknowledged.append(Record(lsn: lsn, kind: 4, payload: payload))
        }
        for lsn in doomed {
            do {
                try await log.waitDurable(lsn)
                XCTFail("a failed record stays failed")
            } catch WALError.write(let message) {
                XCTAssertTrue(message.contains("File too large"), message)
            }
        }
        try log.close()
        let (replayed, report) = try Self.replay(directory)
        XCTAssertEqual(replayed, acknowledged)
        XCTAssertEqual(replayed.map(\.lsn), Array(1...10) + Array(14...19))
        XCTAssertNil(report.droppedTail)
    }

    func testAChainedAppendIsRefusedAfterAFailureSinceTheSendersPreviousRecord() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
        let first = try Self.payload(0, length: 100).withUnsafeBytes {
            try log.append(kind: 1, payload: $0, unlessFailedSince: nil)
        }
        try await log.waitDurable(first.lsn)
        // Still no failure: the chain holds.
        let second = try Self.payload(1, length: 100).withUnsafeBytes {
            try log.append(kind: 1, payload: $0, unlessFailedSince: first.epoch)
        }
        try await log.waitDurable(second.lsn)
        XCTAssertEqual(second.epoch, first.epoch)

        let limit = try FileSizeLimit(bytes: try Self.size(try WriteAheadLog.segments(in: directory)[0].path) + 50)
        defer { limit.restore() }
        let doomed = try log.append(kind: 2, Self.payload(2, length: 100))
        do {
            try await log.waitDurable(doomed)
            XCTFail("record \(doomed) cannot be durable past the size limit")
        } catch WALError.write {}
        limit.restore()

        // The sender of `second` may have had records in the failed group: its next one is refused,
        // and the refusal writes nothing.
        XCTAssertThrowsError(
            try Self.payload(3, length: 100).withUnsafeBytes { try log.append(kind: 1, payload: $0, unlessFailedSince: second.epoch) }
        ) { error in
            guard case WALError.write(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("refused"), message)
        }
        // A sender starting afresh goes in, and chains from the new epoch.
        let fresh = try Self.payload(4, length: 100).withUnsafeBytes { try log.append(kind: 1, payload: $0, unlessFailedSince: nil) }
        try await log.waitDurable(fresh.lsn)
        XCTAssertNotEqual(fresh.epoch, second.epoch)
        let next = try Self.payload(5, length: 100).withUnsafeBytes {
            try log.append(kind: 1, payload: $0, unlessFailedSince: fresh.epoch)
        }
        try await log.waitDurable(next.lsn)
        try log.close()
        let (replayed, _) = try Self.replay(directory)
        XCTAssertEqual(replayed.map(\.lsn), [first.lsn, second.lsn, fresh.lsn, next.lsn])
    }

    /// `nextResolvedGroups()`: what `roas serve` reads instead of one `waitDurable` per record.
    /// Groups come in LSN order, cover every LSN once (a failed group as well as durable ones, with
    /// the error), and the follower hears nil once the log is closed and every group was taken.
    func testAFollowerSeesEveryGroupInOrderFailuresIncludedThenTheEnd() async throws {
        let directory = try self.makeDirectory()
        let log = try WriteAheadLog(directory: directory, nextLSN: 5, fsync: .batch, followsGroups: true)
        var groups: [WriteAheadLog.ResolvedGroup] = []
        func collect(through lsn: UInt64) async {
            while groups.last.map({ $0.last < lsn }) ?? true {
                guard let next = await log.nextResolvedGroups() else { return XCTFail("the log ended before LSN \(lsn)") }
                groups += next
            }
        }
        for index in 0..<20 { _ = try log.append(kind: 1, Self.payload(index, length: 100)) }
        await collect(through: 24)

        let limit = try FileSizeLimit(bytes: try Self.size(try WriteAheadLog.segments(in: directory)[0].path) + 50)
        let doomed = try log.append(kind: 2, Self.payload(50, length: 100))
        await collect(through: doomed)
        limit.restore()
        let last = try log.append(kind: 3, Self.payload(51, length: 10))
        await collect(through: last)

        // Contiguous from the first LSN to the last, each LSN in exactly one group.
        XCTAssertEqual(groups.first?.first, 5)
        XCTAssertEqual(groups.last?.last, last)
        for (before, after) in zip(groups, groups.dropFirst()) { XCTAssertEqual(after.first, before.last + 1) }
        XCTAssertTrue(groups.allSatisfy { $0.first <= $0.last })
        let failed = groups.filter { $0.failure != nil }
        XCTAssertEqual(failed.map(\.first), [doomed])
        XCTAssertTrue(failed.allSatisfy { $0.failure?.contains("File too large") == true }, "\(failed)")
        XCTAssertTrue(groups.filter { $0.last < doomed }.allSatisfy { $0.failure == nil })

        // A follower waiting when the log closes hears the end; so does one that asks after.
        async let end = log.nextResolvedGroups()
        try await Task.sleep(for: .milliseconds(20))
        try log.close()
        let ended = await end
        XCTAssertNil(ended)
        let afterClose = await log.nextResolvedGroups()
        XCTAssertNil(afterClose)
    }

    // MARK: Flags

    func testFsyncModeArguments() {
        XCTAssertEqual(FsyncMode(argument: "batch"), .batch)
        XCTAssertEqual(FsyncMode(argument: "always"), .always)
        XCTAssertEqual(FsyncMode(argument: "interval:250ms"), .interval(milliseconds: 250))
        XCTAssertEqual(FsyncMode(argument: "interval:1s"), .interval(milliseconds: 1000))
        XCTAssertEqual(FsyncMode(argument: "interval:1m30s"), .interval(milliseconds: 90_000))
        for bad in ["", "Batch", "interval", "interval:", "interval:0", "interval:10", "interval:-1s", "sometimes"] {
            XCTAssertNil(FsyncMode(argument: bad), bad)
        }
        for mode in [FsyncMode.batch, .always, .interval(milliseconds: 250), .interval(milliseconds: 1000)] {
            XCTAssertEqual(FsyncMode(argument: mode.description), mode)
        }
        XCTAssertEqual(FsyncMode.interval(milliseconds: 1000).description, "interval:1s")
    }
}

extension WriteAheadLog {
    fileprivate func append(kind: UInt8, _ payload: [UInt8]) throws -> UInt64 {
        try payload.withUnsafeBytes { try self.append(kind: kind, payload: $0) }
    }
}
