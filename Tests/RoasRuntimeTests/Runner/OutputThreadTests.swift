import Foundation
import Testing

@testable import RoasCore
@testable import RoasRuntime

/// `roas run`'s output thread: every step reaches every sink in the engine's order, `flush` waits
/// for all of it, and a sink's error reaches the engine's side.
@Suite("Output thread")
struct OutputThreadTests {
    /// Records what it is handed; fails from the `failAt`-th write on, when set.
    final class Recorder: EngineOutputSink, @unchecked Sendable {
        var lines: [Int] = []
        var replayed: [Int] = []
        var flushes = 0
        let failAt: Int?

        init(failAt: Int? = nil) { self.failAt = failAt }

        func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
            if let failAt, self.lines.count >= failAt { throw RoasError(.output, "cannot write output: disk full") }
            self.lines += output.deadLetters.map(\.line)
            self.replayed.append(replayedFinalRows)
        }

        func flush() throws { self.flushes += 1 }
    }

    static func step(_ line: Int) -> EngineOutput {
        var output = EngineOutput()
        output.deadLetters.append(DeadLetter(reason: .malformed, batch: nil, line: line, raw: [], detail: "x"))
        return output
    }

    @Test("10,000 steps reach two sinks in order, and flush waits for them")
    func order() throws {
        let first = Recorder()
        let second = Recorder()
        let thread = OutputThread(sinks: [first, second], capacity: 3)
        for line in 1...10_000 { try thread.write(Self.step(line), replayedFinalRows: line % 3) }
        try thread.flush()
        #expect(first.lines == Array(1...10_000))
        #expect(second.lines == Array(1...10_000))
        #expect(first.replayed == (1...10_000).map { $0 % 3 })
        #expect(first.flushes == 1 && second.flushes == 1)
        thread.close()
    }

    @Test("a sink's error is thrown by a later write or by flush, and nothing after it is written")
    func failure() throws {
        let failing = Recorder(failAt: 5)
        let thread = OutputThread(sinks: [failing])
        var thrown: (any Error)? = nil
        for line in 1...1000 where thrown == nil {
            do { try thread.write(Self.step(line), replayedFinalRows: 0) } catch { thrown = error }
        }
        if thrown == nil {
            do { try thread.flush() } catch { thrown = error }
        }
        let error = try #require(thrown as? RoasError)
        #expect(error.message.contains("disk full"))
        #expect(throws: RoasError.self) { try thread.flush() }
        #expect(failing.lines == [1, 2, 3, 4, 5])
        thread.close()
    }
}
