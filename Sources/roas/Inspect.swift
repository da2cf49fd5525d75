import ArgumentParser
import Foundation
import RoasCore
import RoasRuntime

/// `roas inspect`: what a data folder of `roas serve --data-dir` holds, checked but not changed.
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reports what a data folder of roas serve --data-dir holds: checkpoints, log, engine state.",
        discussion: """
            Reads only (no repair, no lock): every checkpoint is read back and every log record's checksum
            checked. Give the engine options the server runs with (--window, --lateness, --rates, ...) so the
            newest checkpoint's engine can be decoded. Prints one JSON object; exit status 0 when the folder
            would recover, 1 when it holds a problem (a log record damaged before its end, no usable checkpoint
            where one is needed, or other engine options).
            """
    )

    @OptionGroup var options: EngineOptions

    @Option(help: "The data folder.")
    var dataDir: String

    @Option(help: "Also write the input the log holds after the newest usable checkpoint, as a framed stream, to this file.")
    var export: String?

    func run() async throws {
        try reportingFailures {
            let configuration = try self.options.makeConfiguration()
            let export = try self.export.map { try ByteSink(path: $0) }
            let report = try DataFolderReport.inspect(directory: self.dataDir, configuration: configuration, export: export)
            print(report.json)
            let optionsDiffer = report.engineProblem?.hasPrefix("written with other engine options") ?? false
            if report.logProblem != nil || optionsDiffer { throw ExitCode(1) }
        }
    }
}
