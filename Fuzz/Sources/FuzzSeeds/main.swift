import FuzzSupport

// Writes the seed corpora of the fuzz targets (Fuzz/corpus/<target>/), from real inputs made by
// RoasCore itself: the built-in sample, `roas gen` output, a write-ahead log written by
// `WriteAheadLog`, snapshots taken by `Engine.snapshot()`. Deterministic: run it again and the
// files come out the same; files named `regression-*` (inputs of bugs once found, added by hand)
// are kept. Usage: FuzzSeeds CORPUS_FOLDER
@testable import RoasCore
@testable import RoasGen
@testable import RoasRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Never called: the sanitizer build links libFuzzer whole, whose `main` (unused) names this.
@_cdecl("LLVMFuzzerTestOneInput")
func unused(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { 0 }

guard CommandLine.arguments.count == 2 else {
    printError("usage: FuzzSeeds CORPUS_FOLDER")
    exit(2)
}
let corpus = CommandLine.arguments[1]
let now: Int64 = 1_795_255_200

/// The seed folder `name`, emptied of what an earlier run wrote there; inputs kept by hand for a
/// bug once found (`regression-*`) stay.
func folder(_ name: String) -> String {
    let path = corpus + "/" + name
    mkdir(corpus, 0o755)
    mkdir(path, 0o755)
    var status = stat()
    require(stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR, "cannot create \(path)")
    for entry in TemporaryDirectory.list(path) where !entry.hasPrefix("regression-") {
        TemporaryDirectory.remove(path + "/" + entry)
    }
    return path
}

func save(_ bytes: some Collection<UInt8>, _ folder: String, _ name: String) {
    TemporaryDirectory.write(bytes, to: folder + "/" + name)
}

/// `roas gen` output: `events` events, seeded, optionally signed in batches and with faults.
func generated(events: Int, seed: UInt64, secret: WebhookSecret? = nil, batchSize: Int = 4, dirty: Double = 0) -> [UInt8] {
    var configuration = GeneratorConfiguration()
    configuration.seed = seed
    configuration.events = events
    configuration.creators = 4
    configuration.users = 8
    configuration.secret = secret
    configuration.batchSize = batchSize
    configuration.dirtyFraction = dirty
    configuration.lateFraction = dirty / 2
    configuration.badBatchFraction = secret == nil ? 0 : 0.25
    var generator = try! EventGenerator(configuration: configuration, now: { now })
    var bytes: [UInt8] = []
    while generator.fill(&bytes) {}
    return bytes
}

func lines(_ bytes: [UInt8]) -> [[UInt8]] {
    bytes.split(separator: 0x0A, omittingEmptySubsequences: true).map { Array($0) }
}

// MARK: json: single lines

do {
    let path = folder("json")
    var all = (Sample.morning + Sample.noon + Sample.forged).map { Array($0.utf8) }
    all += lines(generated(events: 12, seed: 7, dirty: 0.3))
    all += [
        #"{"type":"click","id":"\u0063-9","ts":"2026-11-21T10:10:00.250+01:30","user":"tt:\"q\"","creator":"@caf\u00e9","campaign":null}"#,
        #"{"type":"spend","id":"s-9","ts":0,"creator":"\ud83d\ude00","amount":1.5e-7,"currency":"GBP"}"#,
        #"{"type":"refund","id":"r-9","ts":"8999-12-31T23:59:59.999Z","order":"o-1","amount":1000000000000,"currency":null}"#,
        #"[1,-0.5e+3,true,false,null,{"a":[{}]},"\/\b\f\n\r\t"]"#,
        #"{"batch":{"id":"b-1","timestamp":1795255200,"signature":"v1,AAAA","bytes":10}}"#,
    ].map { Array($0.utf8) }
    for (index, line) in all.enumerated() { save(line, path, String(format: "%03d", index)) }
}

// MARK: frames: flags, --max-line, --max-batch, cuts, stream

do {
    let path = folder("frames")
    let sample = Sample.stream(now: now)
    let signed = generated(events: 16, seed: 3, secret: Sample.secret, batchSize: 5, dirty: 0.2)
    let plain = generated(events: 10, seed: 4, dirty: 0.3)
    func frame(_ flags: UInt8, _ line: UInt8, _ batch: UInt8, cuts: [UInt16], _ stream: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [flags, line, batch, UInt8(cuts.count)]
        for cut in cuts { bytes += [UInt8(cut & 0xFF), UInt8(cut >> 8)] }
        return bytes + stream
    }
    save(frame(1 | 2 | 4, 0, 0, cuts: [], sample), path, "sample-signed")
    save(frame(2, 0, 0, cuts: [100, 700, 701], sample), path, "sample-unsigned-cut")
    save(frame(1 | 2 | 8 | 16, 0, 0, cuts: [], Array(Sample.morning.map { $0 + "\n" }.joined().utf8)), path, "webhook-signed")
    save(frame(1 | 4, 0, 0, cuts: [33], signed), path, "gen-signed")
    save(frame(2, 3, 4, cuts: [5, 50], plain), path, "gen-small-limits")
    save(
        frame(0, 6, 2, cuts: [], Array("\n  \r\n{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"v1,A\",\"bytes\":3}}\nab\ncd\n".utf8)), path,
        "short-frame")
}

// MARK: engine: options and 5-byte events (see EngineProgram)

do {
    let path = folder("engine")
    /// One event: op (kind | unit << 3 | flags), dt, id, who, amount.
    func event(_ kind: UInt8, unit: UInt8 = 1, dt: UInt8, id: UInt8 = 0, who: UInt8 = 0, amount: UInt8 = 0) -> [UInt8] {
        [kind | unit << 3, dt, id, who, amount]
    }
    // A morning like the sample's: spend, views, a link, clicks, purchases, a refund, a duplicate.
    var story: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
    story += event(5, dt: 0, who: 0b0010_0000, amount: 0x03)  // spend 1 USD, @c0, campaign k0
    story += event(0, dt: 60, who: 0b0010_0001)  // view u1 @c0 k0
    story += event(0, dt: 10, who: 0b0000_1010)  // view u2 @c1
    story += event(4, dt: 30, who: 0b0001_1001)  // link u1 - amz:3
    story += event(1, dt: 120, who: 0b0010_0001)  // click u1 @c0 k0
    story += event(2, dt: 200, who: 0b0000_1001, amount: 0x00)  // purchase u1 order o1 39.99
    story += event(2, dt: 100, who: 0b0001_0010, amount: 0x44)  // purchase u2 order o2 12.5 EUR
    story += event(3, dt: 250, who: 0b0000_1000, amount: 0x03)  // refund o1 1 USD
    story += event(0, dt: 5, id: 0x81, who: 0b0000_0011)  // view with a pooled id
    story += event(0, dt: 5, id: 0x81, who: 0b0000_0011)  // its duplicate
    story += event(0, unit: 0, dt: 1, who: 0x40)  // junk: ...
    story += [6 | 2 << 3, 0, 0, 0, 0]  // malformed line
    story += [7, 5, 0, 0, 0] + Array("hello".utf8)  // raw line
    story += event(1, unit: 3, dt: 2, who: 0b0001_1010)  // two hours later: click u2 @c3
    story += event(2, dt: 10, who: 0b0000_1010, amount: 0x5F)  // purchase u2 order o1 again (duplicate order)
    save(story, path, "story")
    var hopping = story
    hopping[0] = 0x02 | 0x08 | 0x20 | 0x80  // linear, by campaign, snapshot halfway, live updates
    hopping[1] = 0x00 | 2 << 3  // 1h windows sliding by 30m
    hopping[5] = 4  // compare with the path of --threads 2
    save(hopping, path, "story-hopping")
    var decay = story
    decay[0] = 0x03 | 0x40  // time-decay, RFC 3339 times
    decay[2] = 0x04 | 1 << 3  // lateness 1 min, no dedup
    decay[4] = 0x04 | 0x08  // half-life 1h, EUR at 1
    decay[5] = 4  // compare with the path of --threads 2
    save(decay, path, "story-decay")
    var random = SplitMix(seed: 2026)
    for index in 0..<3 {
        save((0..<(8 + 5 * 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, path, "random-\(index)")
    }
}

// MARK: log: raw segments, and damage to a log written by WriteAheadLog

do {
    let path = folder("log")
    let directory = TemporaryDirectory.path + "/seed-log"
    TemporaryDirectory.remove(directory)
    let log = try! WriteAheadLog(directory: directory, nextLSN: 1, fsync: .batch)
    let stream = Sample.stream(now: now)
    // Records as `roas serve --data-dir` journals them: parsed chunks of its input.
    var parser = ChunkParser(
        configuration: SnapshotConfigurations.plain, secrets: [Sample.secret], tolerance: 0, maximumLineLength: 1 << 20,
        maximumBatchBytes: 16 << 20, capacity: 4096, journals: true, now: { now })
    var journals: [[UInt8]] = []
    stream.withUnsafeBytes { bytes in
        for start in stride(from: 0, to: bytes.count, by: 900) {
            journals.append(parser.consume(UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + 900, bytes.count)])).journal)
        }
    }
    journals.append(parser.finish().journal)
    for (index, journal) in journals.enumerated() {
        _ = try! journal.withUnsafeBytes { try log.append(kind: 1, payload: $0) }
        if index == 1 { try! log.roll() }
    }
    _ = try! [UInt8]().withUnsafeBytes { try log.append(kind: 2, payload: $0) }
    try! log.close()
    let names = TemporaryDirectory.list(directory + "/wal")
    let segments = names.map { TemporaryDirectory.read(directory + "/wal/" + $0)! }
    TemporaryDirectory.remove(directory)
    require(segments.count == 2, "the seed log has \(segments.count) segments")
    save([0, 0, 0] + segments[1], path, "raw-one-segment")
    let first = segments[0]
    save([0, 1 | 8, 2, UInt8(first.count & 0xFF), UInt8(first.count >> 8)] + first + segments[1], path, "raw-two-segments")
    save([0, 4, 0] + Array(segments[1].dropFirst(16).prefix(40)), path, "raw-torn")
    save([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], path, "damaged-none")
    save([1, 0x80 | 1, 40, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0], path, "damaged-burst")
    save([1, 0, 0, 0, 0, 0, 0x30, 0x80, 0], path, "damaged-cut-last")
    save([1, 0, 0, 0, 0, 0, 0, 0, 0x81], path, "damaged-deleted")
}

// MARK: snapshot: engines at several points, under both configurations

do {
    let path = folder("snapshot")
    func snapshots(_ configuration: EngineConfiguration, _ stream: [UInt8], secrets: [WebhookSecret], name: String) {
        save(Engine(configuration: configuration).snapshot(), path, name + "-empty")
        var parser = ChunkParser(
            configuration: configuration, secrets: secrets, tolerance: 0, maximumLineLength: 1 << 20,
            maximumBatchBytes: 16 << 20, capacity: 4096, now: { now })
        var sink = EngineSink(engine: Engine(configuration: configuration))
        sink.engine.trackUpdates(true)
        stream.withUnsafeBytes { bytes in
            sink.replay(parser.consume(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count * 2 / 3)])))
            save(sink.engine.snapshot(), path, name + "-running")
            sink.replay(parser.consume(UnsafeRawBufferPointer(rebasing: bytes[(bytes.count * 2 / 3)...])))
        }
        sink.replay(parser.finish())
        sink.finish()
        save(sink.engine.snapshot(), path, name + "-finished")
    }
    snapshots(SnapshotConfigurations.plain, Sample.stream(now: now), secrets: [Sample.secret], name: "plain-sample")
    snapshots(SnapshotConfigurations.hopping, generated(events: 30, seed: 11), secrets: [], name: "hopping-gen")
}
// MARK: parts: messages of the log, plain and framed

do {
    let path = folder("parts")
    let payload = generated(events: 24, seed: 21)
    let header = BatchHeader(id: "seed-1", timestamp: now, signature: "v1,abc", bytes: payload.count)
    let parser = EventParser(currencies: try! CurrencyTable(base: "USD", rates: [:]))
    let parts = payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 4, parser: parser) }
    for part in parts {
        save([0] + part.encoded, path, "read-plain-\(part.partition)")
        save([0] + LogCompression.compress(part.encoded), path, "read-zstd-\(part.partition)")
        save([1, UInt8(part.partition * 7), 0x40] + part.encoded, path, "write-\(part.partition)")
    }
    save([0] + LogCompression.compress(Array("{\"idle_advance\":1795255200000}".utf8)), path, "read-zstd-advance")
    // Pieces of the largest part.
    let largest = parts.max { $0.body.count < $1.body.count }!
    for piece in largest.cut(maximumBytes: 600) {
        save([0] + piece.encoded, path, "read-piece-\(piece.piece)")
    }
}
print("seeds written to \(corpus)")
