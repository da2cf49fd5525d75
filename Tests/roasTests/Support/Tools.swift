import Foundation
import RoasTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the test machinery (a missing binary, python3 or Python package) with a message
/// that says how to fix it.
struct ToolFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What a finished child process left behind.
struct ProcessResult: CustomStringConvertible {
    var command: [String]
    var status: Int32
    var stdout: Data
    var stderr: Data
    var timedOut: Bool

    var stdoutText: String { String(decoding: self.stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: self.stderr, as: UTF8.self) }

    /// Non-empty lines of stdout.
    var stdoutLines: [String] { self.stdoutText.split(separator: "\n").map(String.init) }

    var description: String {
        var text = "$ \(self.command.joined(separator: " "))\nexit status \(self.status)"
        if self.timedOut { text += " (killed after the timeout)" }
        text += "\n--- stdout ---\n\(self.stdoutText.prefix(8000))\n--- stderr ---\n\(self.stderrText.prefix(8000))"
        return text
    }
}

enum Tools {
    /// The package root: the first folder above this file holding Package.swift.
    static let root: URL = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                return folder
            }
            folder = folder.deletingLastPathComponent()
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    static func schema(_ name: String) -> String { root.appendingPathComponent("schemas/\(name)").path }
    static func pythonScript(_ name: String) -> String { root.appendingPathComponent("scripts/\(name)").path }

    /// A fresh path in the temporary folder (nothing is created).
    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "roasTests-\(UUID().uuidString)-\(name)"
    }

    /// Writes `text` to a fresh temporary file and returns its path.
    static func temporaryFile(_ name: String, _ data: Data) throws -> String {
        let path = temporaryPath(name)
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw ToolFailure("cannot write \(path)")
        }
        return path
    }

    static func temporaryFile(_ name: String, lines: [String]) throws -> String {
        try temporaryFile(name, Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    /// The `roas` executable built next to the test bundle (set ROAS_BINARY to override).
    ///
    /// On Linux the test bundle `roasPackageTests.xctest` is an executable in the products folder, so
    /// `roas` is its sibling; on macOS the products folder is the parent of the `.xctest` bundle.
    static func roasBinary() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["ROAS_BINARY"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolFailure("ROAS_BINARY=\(path) is not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        var folders: [URL] = []
        for bundle in [Bundle.main] + Bundle.allBundles {
            folders.append(bundle.bundleURL)
            folders.append(bundle.bundleURL.deletingLastPathComponent())
        }
        if let argument = CommandLine.arguments.first {
            let executable = URL(fileURLWithPath: argument).resolvingSymlinksInPath()
            folders.append(executable.deletingLastPathComponent())
            // macOS: …/debug/roasPackageTests.xctest/Contents/MacOS/roasPackageTests
            folders.append(
                executable.deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().deletingLastPathComponent())
        }
        for folder in folders {
            let candidate = folder.appendingPathComponent("roas")
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isFolder), !isFolder.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate.path)
            {
                return candidate
            }
        }
        throw ToolFailure(
            "cannot find the built roas executable next to the test bundle (looked in "
                + Set(folders.map(\.path)).sorted().joined(separator: ", ") + "); run through `swift test` or set ROAS_BINARY")
    }

    /// The first executable `name` in the folders of PATH.
    static func onPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// python3 from PYTHON, or the first `python3` on PATH.
    static func python3() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["PYTHON"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolFailure("PYTHON=\(path) is not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        if let found = onPath("python3") { return found }
        throw ToolFailure(
            "python3 is not on PATH; these tests need Python 3 with jsonschema 4.26 and standardwebhooks 1.1.0 "
                + "(python3 -m pip install -r scripts/requirements.txt)")
    }

    /// Runs `executable` with `arguments`, feeding `stdin`, and waits at most `timeout` seconds.
    static func run(
        _ executable: URL, _ arguments: [String], stdin: Data = Data(), timeout: TimeInterval = 120
    ) throws -> ProcessResult {
        let inputPath = try temporaryFile("stdin", stdin)
        let outputPath = try temporaryFile("stdout", Data())
        let errorPath = try temporaryFile("stderr", Data())
        defer {
            for path in [inputPath, outputPath, errorPath] { try? FileManager.default.removeItem(atPath: path) }
        }
        guard let input = FileHandle(forReadingAtPath: inputPath),
            let output = FileHandle(forWritingAtPath: outputPath),
            let error = FileHandle(forWritingAtPath: errorPath)
        else { throw ToolFailure("cannot open the temporary files of a child process") }
        defer {
            try? input.close()
            try? output.close()
            try? error.close()
        }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        do {
            try childProcessLaunch.withLock { try process.run() }
        } catch {
            throw ToolFailure("cannot run \(executable.path): \(error)")
        }
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            finished.wait()
        }
        return ProcessResult(
            command: [executable.path] + arguments, status: process.terminationStatus,
            stdout: FileManager.default.contents(atPath: outputPath) ?? Data(),
            stderr: FileManager.default.contents(atPath: errorPath) ?? Data(), timedOut: timedOut)
    }

    /// Runs the built `roas` with `arguments`.
    /// The bound only turns a hang into a failure: generating or running a stream takes seconds on a
    /// quiet machine and several times that beside other work.
    static func roas(_ arguments: [String], stdin: Data = Data(), timeout: TimeInterval = 300) throws -> ProcessResult {
        try run(try roasBinary(), arguments, stdin: stdin, timeout: timeout)
    }

    /// Runs one of the Python scripts of scripts/; exit status 3 (a missing Python package) is a failure
    /// of the environment and is thrown with the script's message.
    static func python(
        _ script: String, _ arguments: [String], stdin: Data = Data(), timeout: TimeInterval = 120
    ) throws -> ProcessResult {
        let result = try run(try python3(), [pythonScript(script)] + arguments, stdin: stdin, timeout: timeout)
        if result.status == 3 {
            throw ToolFailure("a Python package these tests need is missing:\n\(result)")
        }
        if result.status == 2 {
            throw ToolFailure("scripts/\(script) could not run:\n\(result)")
        }
        return result
    }

    enum Expectation: String {
        case valid, invalid
    }

    /// Validates each line against a schema of schemas/ with scripts/validate.py.
    ///
    /// With `.valid` every line must be valid, with `.invalid` every line must be rejected; the
    /// returned result has exit status 0 when that holds.
    static func validate(_ lines: [String], against schema: String, expect: Expectation = .valid) throws -> ProcessResult {
        let path = try temporaryFile(schema.replacingOccurrences(of: ".schema.json", with: ".ndjson"), lines: lines)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try validate(file: path, against: schema, expect: expect)
    }

    static func validate(file path: String, against schema: String, expect: Expectation = .valid) throws -> ProcessResult {
        try python("validate.py", [Tools.schema(schema), path, "--expect", expect.rawValue])
    }

    /// The JSON object of one line, for checking figures.
    static func object(_ line: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ToolFailure("not a JSON object: \(line)")
        }
        return object
    }

    /// A JSON number of a parsed object as a Double, whichever type JSONSerialization chose.
    static func number(_ value: Any?) -> Double? {
        switch value {
        case let value as Int: Double(value)
        case let value as Double: value
        case let value as NSNumber: value.doubleValue
        default: nil
        }
    }
}

/// A long-running child process (a server under test): stdout and stderr go to temporary files
/// that can be read while it runs, it can be sent a signal and waited for with a timeout, and it is
/// killed (SIGKILL) if it is still running when the object goes away, so a failing test leaves no
/// process behind.
final class ChildProcess: @unchecked Sendable {
    let command: [String]
    private let process = Process()
    private let outputPath: String
    private let errorPath: String
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var hasExited = false
    private var handles: [FileHandle] = []

    /// Starts `executable` with `arguments`; stdin is /dev/null.
    init(_ executable: URL, _ arguments: [String]) throws {
        self.command = [executable.path] + arguments
        self.outputPath = try Tools.temporaryFile("child-stdout", Data())
        self.errorPath = try Tools.temporaryFile("child-stderr", Data())
        guard let output = FileHandle(forWritingAtPath: self.outputPath),
            let error = FileHandle(forWritingAtPath: self.errorPath)
        else { throw ToolFailure("cannot open the output files of a child process") }
        self.handles = [output, error]
        self.process.executableURL = executable
        self.process.arguments = arguments
        self.process.standardInput = FileHandle.nullDevice
        self.process.standardOutput = output
        self.process.standardError = error
        self.process.terminationHandler = { [finished = self.finished, lock = self.lock, weak self] _ in
            lock.lock()
            self?.hasExited = true
            lock.unlock()
            finished.signal()
        }
        do {
            try childProcessLaunch.withLock { try self.process.run() }
        } catch {
            throw ToolFailure("cannot run \(executable.path): \(error)")
        }
    }

    deinit {
        self.kill()
        for handle in self.handles { try? handle.close() }
        for path in [self.outputPath, self.errorPath] { try? FileManager.default.removeItem(atPath: path) }
    }

    var processIdentifier: Int32 { self.process.processIdentifier }

    var isRunning: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return !self.hasExited
    }

    /// What it wrote so far.
    var stdout: Data { FileManager.default.contents(atPath: self.outputPath) ?? Data() }
    var stderr: Data { FileManager.default.contents(atPath: self.errorPath) ?? Data() }
    var stderrText: String { String(decoding: self.stderr, as: UTF8.self) }

    /// Polls stderr until `match` finds what it looks for; throws when the process exits first or
    /// `timeout` seconds pass (with what it wrote, for the failure message).
    func waitForStderr<T>(timeout: TimeInterval, _ match: (String) -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = match(self.stderrText) { return found }
            if !self.isRunning {
                if let found = match(self.stderrText) { return found }
                throw ToolFailure("the child process exited before it was ready:\n\(self.snapshot(timedOut: false))")
            }
            if Date() > deadline {
                throw ToolFailure("the child process was not ready after \(timeout) s:\n\(self.snapshot(timedOut: false))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Sends `signal` (SIGTERM by default) if it is still running.
    func send(_ signal: Int32 = SIGTERM) {
        guard self.isRunning else { return }
        _ = sendSignal(self.process.processIdentifier, signal)
    }

    /// Kills it (SIGKILL) if it is still running, and reaps it.
    func kill() {
        guard self.isRunning else { return }
        _ = sendSignal(self.process.processIdentifier, SIGKILL)
        _ = self.finished.wait(timeout: .now() + 10)
    }

    /// Waits at most `timeout` seconds for it to exit (then kills it, and the result says so).
    func wait(timeout: TimeInterval) -> ProcessResult {
        var timedOut = false
        if self.finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            _ = sendSignal(self.process.processIdentifier, SIGKILL)
            self.finished.wait()
        }
        self.finished.signal()  // later waits (and deinit) return at once
        return self.snapshot(timedOut: timedOut)
    }

    /// Sends SIGTERM and waits for the exit.
    func terminate(timeout: TimeInterval) -> ProcessResult {
        self.send(SIGTERM)
        return self.wait(timeout: timeout)
    }

    /// What it left behind so far; the status is meaningful once it has exited.
    func snapshot(timedOut: Bool) -> ProcessResult {
        ProcessResult(
            command: self.command, status: self.isRunning ? -1 : self.process.terminationStatus,
            stdout: self.stdout, stderr: self.stderr, timedOut: timedOut)
    }
}

/// kill(2), if `pid` is a real process id.
private func sendSignal(_ pid: Int32, _ signal: Int32) -> Int32 {
    guard pid > 0 else { return -1 }
    #if canImport(Glibc)
    return Glibc.kill(pid, signal)
    #else
    return Darwin.kill(pid, signal)
    #endif
}
