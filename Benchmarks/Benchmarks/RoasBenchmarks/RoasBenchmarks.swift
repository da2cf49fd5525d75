// Benchmarks of RoasCore's hot paths. Every input is synthetic, deterministic (a fixed-seed
// generator) and built once per benchmark process, outside the measured region; each benchmark
// builds its fresh per-iteration state (parser, decoder, pipeline) before `startMeasurement()`.
//
// Throughput counts logical operations per second: with `scalingFactor: .kilo` an iteration runs
// 1,000 of them (lines parsed, tags verified); with `.one` an iteration is one whole buffer or
// stream, whose size README.md gives, so events/s = throughput × events per stream.
// mallocCountTotal is what the static thresholds in Thresholds/ gate on (see README.md).

import Benchmark
import RoasCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        units: [.mallocCountTotal: .count],
        warmupIterations: 3,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 1_000,
        thresholds: allocationGate(slack: 0)
    )
    let kilo = configuration(.kilo)

    // MARK: framing

    Benchmark("framing", configuration: configuration(.one)) { benchmark in
        let input = Inputs.framingInput
        var decoder = FrameDecoder()
        var counter = CountingHandler()
        benchmark.startMeasurement()
        input.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + Inputs.chunkSize)
                decoder.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                decoder.decode(into: &counter)
                offset = end
            }
        }
        decoder.decode(into: &counter, isFinal: true)
        benchmark.stopMeasurement()
        precondition(counter.lines == Inputs.framingLines && counter.other == 0, "framing: \(counter)")
        blackHole(counter)
    }

    // MARK: parse

    for kind in [EventKind.view, .click, .purchase, .spend] {
        Benchmark("parse.\(kind.name)", configuration: kilo) { benchmark in
            let lines = Inputs.parseLines(kind)
            let parser = EventParser(currencies: Inputs.currencies)
            var checksum: Int64 = 0
            var failures = 0
            lines.bytes.withUnsafeBytes { all in
                // One pass before measuring: a parser's scratch buffer is allocated on first use,
                // after that parsing a line allocates nothing; the measured pass checks that.
                for range in lines.ranges {
                    _ = parser.parse(UnsafeRawBufferPointer(rebasing: all[range])) { $0.time }
                }
                benchmark.startMeasurement()
                for index in benchmark.scaledIterations {
                    let line = UnsafeRawBufferPointer(rebasing: all[lines.ranges[index]])
                    switch parser.parse(line, { $0.time &+ $0.amount }) {
                    case .success(let value): checksum &+= value
                    case .failure: failures += 1
                    }
                }
                benchmark.stopMeasurement()
            }
            precondition(failures == 0, "parse.\(kind.name): \(failures) lines rejected")
            blackHole(checksum)
        }
    }

    // MARK: hmac

    for (name, size, scaling) in [("1KiB", 1 << 10, BenchmarkScalingFactor.kilo), ("64KiB", 1 << 16, .one), ("1MiB", 1 << 20, .one)] {
        Benchmark("hmac.\(name)", configuration: configuration(scaling)) { benchmark in
            let batch = Inputs.hmacBatch(size: size)
            let signer = WebhookSigner(secrets: [Inputs.secret])
            var matched = 0
            benchmark.startMeasurement()
            batch.payload.withUnsafeBytes { body in
                for _ in benchmark.scaledIterations {
                    if signer.verify(signatures: batch.header.signature, id: batch.header.id, timestamp: batch.header.timestamp, body: body) {
                        matched += 1
                    }
                }
            }
            benchmark.stopMeasurement()
            precondition(matched == benchmark.scaledIterations.count, "hmac.\(name): a signature did not verify")
        }
    }

    // MARK: crc32c (the write-ahead log's record checksum)

    let crcInput = Inputs.hmacBatch(size: 1 << 20).payload
    var crcImplementations: [(String, @Sendable (UnsafeRawBufferPointer) -> UInt32)] = [
        ("tables", { CRC32C.tableChecksum($0, seed: 0) })
    ]
    if CRC32C.isHardwareAccelerated {
        crcImplementations.append(("instruction", { CRC32C.hardwareChecksum($0, seed: 0) }))
    }
    for (name, implementation) in crcImplementations {
        Benchmark("crc32c.\(name).1MiB", configuration: configuration(.one)) { benchmark in
            let expected = crcInput.withUnsafeBytes { CRC32C.tableChecksum($0, seed: 0) }
            var agreed = true
            benchmark.startMeasurement()
            crcInput.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    agreed = agreed && implementation(bytes) == expected
                }
            }
            benchmark.stopMeasurement()
            precondition(agreed, "crc32c.\(name): a checksum differs from the tables'")
        }
    }

    // MARK: attribution

    for model in AttributionModel.allCases {
        Benchmark("attribution.\(model.rawValue)", configuration: configuration(.one, slack: streamSlack)) { benchmark in
            var settings = EngineConfiguration(currencies: Inputs.currencies)
            settings.model = model
            var pipeline = Pipeline(configuration: settings, now: { Inputs.now })
            runPipeline(benchmark, Inputs.attributionStream, &pipeline)
        }
    }

    // MARK: windows

    for (name, window, slide) in [("tumbling", Int64(3_600_000), Int64(3_600_000)), ("hopping24h-1h", 86_400_000, 3_600_000)] {
        Benchmark("windows.\(name)", configuration: configuration(.one, slack: streamSlack)) { benchmark in
            var settings = EngineConfiguration(currencies: Inputs.currencies)
            settings.window = window
            settings.slide = slide
            var pipeline = Pipeline(configuration: settings, now: { Inputs.now })
            runPipeline(benchmark, Inputs.windowStream, &pipeline)
        }
    }

    Benchmark("windows.many-creators", configuration: configuration(.one, slack: streamSlack)) { benchmark in
        var pipeline = Pipeline(configuration: EngineConfiguration(currencies: Inputs.currencies), now: { Inputs.now })
        runPipeline(benchmark, Inputs.manyCreatorsStream, &pipeline)
    }

    // MARK: pipeline

    Benchmark("pipeline.signed", configuration: configuration(.one, slack: streamSlack)) { benchmark in
        var pipeline = Pipeline(
            configuration: EngineConfiguration(currencies: Inputs.currencies), secrets: [Inputs.secret], tolerance: 0,
            now: { Inputs.now })
        runPipeline(benchmark, Inputs.signedStream, &pipeline, writesRows: true)
    }
}

/// The suite's default configuration with another scaling factor and allocation slack.
func configuration(_ scaling: BenchmarkScalingFactor, slack: Int = 0) -> Benchmark.Configuration {
    var configuration = Benchmark.defaultConfiguration
    configuration.scalingFactor = scaling
    configuration.thresholds = allocationGate(slack: slack)
    return configuration
}

/// Only allocations gate (`thresholds check`, `baseline check`): mallocCountTotal may move by at
/// most `slack` allocations per iteration at any percentile. Parsing, framing and HMAC count the
/// same every run, so their slack is 0; whole streams vary by a few (dictionary iteration order
/// differs from run to run, and with it what sorting rows allocates), so they get 16. Time and
/// throughput depend on the machine and its load: reported, never checked.
func allocationGate(slack: Int) -> [BenchmarkMetric: BenchmarkThresholds] {
    [
        .mallocCountTotal: BenchmarkThresholds(absolute: BenchmarkThresholds.Absolute.strict.mapValues { _ in slack }),
        .throughput: BenchmarkThresholds.none,
        .wallClock: BenchmarkThresholds.none,
    ]
}

/// The slack of benchmarks over whole streams (see `allocationGate`).
let streamSlack = 16

/// Feeds `stream` to a fresh pipeline in read-sized chunks, drains its output after each one as
/// `roas run` does, and finishes it (every window emitted). With `writesRows`, rows are rendered
/// to JSON in memory, as they would be written out. The pipeline is `inout` so that its storage
/// stays uniquely referenced: a copy would be copied again, inside the measurement, on first write.
func runPipeline(_ benchmark: Benchmark, _ stream: EventStream, _ pipeline: inout Pipeline, writesRows: Bool = false) {
    var sink: [UInt8] = []
    var rows = 0
    sink.reserveCapacity(1 << 17)
    @inline(__always) func drain() {
        rows += pipeline.output.rows.count
        if writesRows {
            for row in pipeline.output.rows {
                row.appendJSON(to: &sink)
                sink.append(0x0A)
            }
            sink.removeAll(keepingCapacity: true)
        }
        pipeline.output.removeAll()
    }
    benchmark.startMeasurement()
    stream.bytes.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + Inputs.chunkSize)
            pipeline.consume(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
            drain()
            offset = end
        }
    }
    pipeline.finish()
    drain()
    benchmark.stopMeasurement()
    let statistics = pipeline.statistics
    precondition(
        statistics.deadLetterCount == 0 && statistics.balances && statistics.acceptedEventCount == stream.events
            && rows > 0,
        "\(benchmark.name): the synthetic stream did not run clean: \(statistics)")
    blackHole(rows)
}

/// A frame handler that only counts what the decoder reports.
struct CountingHandler: FrameHandler {
    var lines = 0
    var bytes = 0
    var other = 0

    mutating func handle(_ item: FrameItem) {
        switch item {
        case .line(let line, _):
            self.lines += 1
            self.bytes += line.count
        default:
            self.other += 1
        }
    }
}
