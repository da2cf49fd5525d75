import CFuzzDriver

#if canImport(Glibc)
import Glibc
#endif

/// The function libFuzzer calls with each input (`LLVMFuzzerTestOneInput`).
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// Runs libFuzzer with the process's arguments and exits with its status.
///
/// SwiftPM renames an executable's `main` (and links it in as `main`), so libFuzzer's own `main`
/// is never used: each target's `main.swift` calls this with its `LLVMFuzzerTestOneInput`.
public func fuzzMain(_ callback: FuzzCallback) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv, callback)
    exit(status)
}

/// A broken property: says which and stops the process, so that libFuzzer saves the input as a crash.
public func fail(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    printError("roas-fuzz: property failed at \(file):\(line): \(message())")
    abort()
}

/// Writes `text` and a newline to standard error, unbuffered.
public func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let count = write(2, bytes.baseAddress! + done, bytes.count - done)
            if count <= 0 { return }
            done += count
        }
    }
}

/// `fail(message)` unless `condition` holds.
@inline(__always)
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fail(message(), file: file, line: line) }
}

/// Bugs of issue 16 that are known and being fixed: `ROAS_FUZZ_AVOID=overflow,decay` keeps the
/// generated inputs away from them, so that a long run can look for others. Empty by default:
/// the targets check everything.
public enum KnownIssues {
    nonisolated(unsafe) private static var names: Set<String>? = nil

    /// True when `ROAS_FUZZ_AVOID` names `issue`.
    public static func avoids(_ issue: String) -> Bool {
        if names == nil {
            let text = getenv("ROAS_FUZZ_AVOID").map { String(cString: $0) } ?? ""
            names = Set(text.split(separator: ",").map { String($0) })
        }
        return names!.contains(issue)
    }
}

/// A text for messages: printable ASCII as is, the rest escaped.
public func describe(_ bytes: some Sequence<UInt8>, limit: Int = 300) -> String {
    var text = ""
    var count = 0
    for byte in bytes {
        count += 1
        if count > limit {
            text += "…"
            break
        }
        if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
            text.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16)
            text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return text
}
