@testable import RoasCore

/// Drives an `Engine` line by line as the pipeline does for lines outside batch frames (parse, then
/// accept or dead-letter), and collects what it produces; the engine can be swapped mid-stream.
struct EngineDriver {
    var engine: Engine
    var parser: EventParser
    var output = EngineOutput()
    var rows: [Row] = []
    var deadLetters: [DeadLetter] = []
    /// Keep rows and dead letters (off for large measurement runs).
    var collects = true

    init(configuration: EngineConfiguration) {
        self.init(engine: Engine(configuration: configuration))
    }

    init(engine: Engine) {
        self.engine = engine
        self.parser = EventParser(currencies: engine.configuration.currencies)
    }

    /// Feeds one line (no newline) with its line number and batch id.
    mutating func feed(_ line: [UInt8], number: Int, batch: String? = nil) {
        line.withUnsafeBytes { self.feed($0, number: number, batch: batch) }
    }

    mutating func feed(_ line: UnsafeRawBufferPointer, number: Int, batch: String?) {
        self.engine.addLines(read: 1, bytes: line.count + 1)
        let origin = Origin(line: number, batch: batch, raw: line)
        let result = self.parser.parse(line) { event in self.engine.accept(event, origin: origin, into: &self.output) }
        if case .failure(let rejection) = result { self.engine.reject(rejection, origin: origin, into: &self.output) }
        self.drain()
    }

    mutating func emitUpdates() {
        self.engine.emitUpdates(into: &self.output)
        self.drain()
    }

    mutating func advanceIdle(to time: Int64) {
        self.engine.advanceIdle(to: time, into: &self.output)
        self.drain()
    }

    mutating func finish() {
        self.engine.finish(into: &self.output)
        self.drain()
    }

    mutating func drain() {
        if self.collects {
            self.rows += self.output.rows
            self.deadLetters += self.output.deadLetters
        }
        self.output.removeAll()
    }

    /// The rows as the JSON lines `roas run` writes.
    var rowText: [String] { self.rows.map(\.json) }
    var deadLetterText: [String] { self.deadLetters.map(\.json) }
}
