import Foundation
import RoasCore
import Testing

@testable import RoasRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoint files: the snapshot streamed into the file reads back as the engine it was taken of,
/// files of the earlier layout still read, and damage anywhere is caught by the checksum.
@Suite("Checkpoint files")
struct CheckpointStoreTests {
    static func engine() throws -> Engine {
        let configuration = EngineConfiguration(currencies: try CurrencyTable(base: "USD", rates: Sample.rates))
        var pipeline = Pipeline(configuration: configuration, now: { 1_795_255_200 })
        let lines = (Sample.morning + Sample.noon).joined(separator: "\n") + "\n"
        Array(lines.utf8).withUnsafeBytes { pipeline.consume($0) }
        #expect(pipeline.engine.stateSizes.touches > 0)
        return pipeline.engine
    }

    static func folder() -> String {
        let path = NSTemporaryDirectory() + "roas-checkpoints-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aCheckpointReadsBackAsTheEngineItWasTakenOf() throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CheckpointStore(directory: directory)
        let engine = try Self.engine()
        let batches = [(id: "b-1", entry: AcceptedBatches.Entry(timestamp: 5, digest: 9))]
        let (covered, bytes) = try store.write(lsn: 7, rowsPosition: 123, deadLettersPosition: 45, batches: batches, engine: engine)
        #expect(covered == 0)
        #expect(bytes == engine.snapshot().count)
        let files = try store.files()
        #expect(files.map(\.lsn) == [7])
        let read = try store.read(files[0].path)
        #expect(read.lsn == 7 && read.rowsPosition == 123 && read.deadLettersPosition == 45)
        #expect(read.batches.map(\.id) == ["b-1"] && read.batches[0].entry == batches[0].entry)
        #expect(Array(read.engine) == engine.snapshot())
        let restored = try read.engine.withUnsafeBytes { try Engine(snapshot: $0, configuration: engine.configuration) }
        #expect(restored.snapshot() == engine.snapshot())

        // Two are kept; the older one's LSN is what the log may be cut up to.
        #expect(try store.write(lsn: 9, rowsPosition: 130, batches: [], engine: engine).covered == 7)
        #expect(try store.write(lsn: 12, rowsPosition: 140, batches: [], engine: engine).covered == 9)
        #expect(try store.files().map(\.lsn) == [9, 12])
    }

    /// `ROASCKP3` (no dead-letter position) and `ROASCKP2` files (the snapshot's length before it
    /// too), as earlier releases wrote, still read.
    @Test(arguments: [2, 3]) func theEarlierLayoutsStillRead(layout: Int) throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CheckpointStore(directory: directory)
        let engine = try Self.engine()
        let snapshot = engine.snapshot()
        var body: [UInt8] = []
        func append(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { body.append(contentsOf: $0) } }
        append(4)
        append(77)
        append(1)
        append(3)
        body.append(contentsOf: Array("b-9".utf8))
        append(11)
        append(12)
        if layout == 2 { append(UInt64(snapshot.count)) }
        body.append(contentsOf: snapshot)
        var file = Array("ROASCKP\(layout)".utf8)
        withUnsafeBytes(of: body.withUnsafeBytes { CRC32C.checksum($0) }.littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: body)
        let path = store.folder + "/00000000000000000004.ckpt"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(file)))
        let read = try store.read(path)
        #expect(read.lsn == 4 && read.rowsPosition == 77 && read.deadLettersPosition == 0 && read.batches.map(\.id) == ["b-9"])
        #expect(read.batches[0].entry == AcceptedBatches.Entry(timestamp: 11, digest: 12))
        #expect(Array(read.engine) == snapshot)
    }

    /// A flipped byte anywhere, or bytes added at the end (the snapshot runs to the end of the file),
    /// make the file unusable rather than a different engine.
    @Test func damageAnywhereIsCaught() throws {
        let directory = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CheckpointStore(directory: directory)
        try store.write(lsn: 3, rowsPosition: 0, batches: [], engine: try Self.engine())
        let path = try store.files()[0].path
        let good = try #require(FileManager.default.contents(atPath: path))
        for position in stride(from: 0, to: good.count, by: max(1, good.count / 97)) {
            var bad = good
            bad[position] ^= 0x20
            try bad.write(to: URL(fileURLWithPath: path))
            #expect(throws: CheckpointError.self) { try store.read(path) }
        }
        try (good + Data([0x0A])).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.self) { try store.read(path) }
        try good.write(to: URL(fileURLWithPath: path))
        #expect(try store.read(path).lsn == 3)
    }
}
