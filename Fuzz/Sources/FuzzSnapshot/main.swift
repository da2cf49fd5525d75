import FuzzSupport

// Fuzz target `snapshot`: any bytes as an engine snapshot (`Engine(snapshot:configuration:)`), read
// with the two configurations of `SnapshotConfigurations` (the second when the first does not
// match). Checks: it returns an engine or throws `SnapshotError`, never traps; a decoded engine
// re-encodes to the same bytes (but for the options the reader ignores by design: the dead-letter
// flag, the half-life of a model without decay, the order of the changed keys); the decoded
// engine takes more events (times near its watermark) and finishes without trapping, its rows
// never negative; and what it then snapshots reads back.
@testable import RoasCore

let configurations = SnapshotConfigurations.all

/// The offset of the configuration's dead-letter flag in a snapshot (after magic, version, byte order).
func deadLetterFlagOffset(_ configuration: EngineConfiguration) -> Int {
    var writer = SnapshotWriter()
    configuration.writeSnapshot(to: &writer)
    return Engine.snapshotMagic.count + 4 + 1 + writer.bytes.count - 1
}

let flagOffsets = configurations.map(deadLetterFlagOffset)

func decode(_ bytes: UnsafeRawBufferPointer) -> (Engine, Int)? {
    for (index, configuration) in configurations.enumerated() {
        do {
            return (try Engine(snapshot: bytes, configuration: configuration), index)
        } catch SnapshotError.configurationMismatch {
            continue
        } catch is SnapshotError {
            return nil
        } catch {
            fail("reading a snapshot threw \(error), not a SnapshotError")
        }
    }
    return nil
}

/// A few events just after `watermark`, as NDJSON.
func lines(after watermark: Int64) -> [UInt8] {
    let time = min(max(watermark, 0), EventParser.maximumTime - 10_000_000)
    let events = [
        #"{"type":"spend","id":"fz-s","ts":\#(time),"creator":"@c0","campaign":"k0","amount":50}"#,
        #"{"type":"view","id":"fz-v","ts":\#(time + 1),"user":"u0","creator":"@c0","campaign":"k0"}"#,
        #"{"type":"click","id":"fz-c","ts":\#(time + 2),"user":"u0","creator":"@c1"}"#,
        #"{"type":"link","id":"fz-l","ts":\#(time + 3),"user":"u0","linked":"u1"}"#,
        #"{"type":"purchase","id":"fz-p","ts":\#(time + 4),"user":"u1","order":"fz-o","amount":39.99,"currency":"EUR"}"#,
        #"{"type":"refund","id":"fz-r","ts":\#(time + 5_000_000),"order":"fz-o","amount":10}"#,
        #"{"type":"view","id":"fz-v","ts":\#(time + 5_000_001),"user":"u2","creator":"@c0"}"#,
    ]
    return Array(events.joined(separator: "\n").utf8) + [0x0A]
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard let (engine, index) = decode(bytes) else { return 0 }
    let configuration = configurations[index]

    // The same bytes again, but for the dead-letter flag, which the reader ignores, the half-life
    // of a model that does not use it, which it does not compare either, and the order of
    // the changed keys of live updates (16 bytes each, just before the last 9 bytes), which the
    // reader takes in any order and the writer sorts.
    var encoded = engine.snapshot()
    require(encoded.count == bytes.count, "a decoded snapshot of \(bytes.count) bytes re-encodes to \(encoded.count)")
    let flag = flagOffsets[index]
    encoded[flag] = bytes[flag]
    if configuration.model != .timeDecay {
        // The half-life, compared only when the model is time-decay (after the model's name and
        // the two lookbacks).
        let halfLife = Engine.snapshotMagic.count + 4 + 1 + 8 + configuration.model.rawValue.utf8.count + 16
        encoded.replaceSubrange(halfLife..<(halfLife + 8), with: bytes[halfLife..<(halfLife + 8)])
    }
    let changes = engine.windows.changed.count
    // After them: whether changes are tracked (1 byte), the next sweep (8) and the creator profiles.
    var profiles = SnapshotWriter(reservingCapacity: 64)
    engine.writeProfiles(to: &profiles)
    let changesEnd = bytes.count - 9 - profiles.bytes.count
    let changesStart = changesEnd - 16 * changes
    if changes > 1 {
        func records(_ buffer: [UInt8]) -> [[UInt8]] {
            var list: [[UInt8]] = []
            for index in 0..<changes {
                let start: Int = changesStart + 16 * index
                list.append(Array(buffer[start..<(start + 16)]))
            }
            return list.sorted { $0.lexicographicallyPrecedes($1) }
        }
        require(
            records(encoded) == records(Array(bytes)),
            "a decoded snapshot re-encodes other changed keys")
        encoded.replaceSubrange(changesStart..<changesEnd, with: bytes[changesStart..<changesEnd])
    }
    if !encoded.elementsEqual(bytes) {
        let offset = zip(encoded, bytes).enumerated().first { $0.element.0 != $0.element.1 }!.offset
        fail("a decoded snapshot re-encodes differently from byte \(offset) of \(bytes.count)")
    }

    // It goes on: more events, then the end of input.
    var sink = EngineSink(engine: engine)
    var parser = ChunkParser(
        configuration: configuration, secrets: [], tolerance: 0, maximumLineLength: 1 << 20,
        maximumBatchBytes: 16 << 20, capacity: 4096, now: { 0 })
    lines(after: engine.watermark).withUnsafeBytes { sink.replay(parser.consume($0)) }
    sink.replay(parser.finish())
    sink.finish()
    for row in sink.output.rows {
        let f = row.figures
        require(
            f.views >= 0 && f.clicks >= 0 && f.conversions >= 0 && f.revenue >= 0 && f.refunds >= 0 && f.spend >= 0,
            "a row of a decoded engine has a negative figure: \(row.json)")
    }
    do {
        _ = try Engine(snapshot: sink.engine.snapshot(), configuration: configuration)
    } catch {
        fail("a decoded engine, finished, takes a snapshot that does not read back: \(error)")
    }
    return 0
}

fuzzMain(fuzzOne)
