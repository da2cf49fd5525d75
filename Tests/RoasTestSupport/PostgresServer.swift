import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for the tests: `initdb` in a fresh temporary folder, a server on a
/// free loopback port (trust authentication, fsync off), one database, all deleted by `destroy()`.
///
/// PostgreSQL refuses to run as root, so when the tests run as root every command runs as the
/// `postgres` user (`runuser -u postgres -- …`) and the folder belongs to that user. The methods
/// block: call them through `offThread`, or use `with(_:)`.
public final class PostgresServer: Sendable {
    /// Why the cluster could not be made or driven; the message says how to fix it.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public let directory: String
    public let port: Int
    public let database = PostgresServer.databaseName
    public static let databaseName = "roas_test"
    private let tools: Tools

    /// The sink's URL for the test database.
    public var url: String { "postgres://postgres@127.0.0.1:\(self.port)/\(self.database)" }

    /// Runs `body` with a started cluster and destroys the cluster afterwards, also on failure.
    public static func with<T: Sendable>(_ body: (PostgresServer) async throws -> T) async throws -> T {
        let server = try await offThread { try PostgresServer() }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(server))
        } catch {
            result = .failure(error)
        }
        try await offThread { server.destroy() }
        return try result.get()
    }

    /// Finds the binaries, makes the cluster, starts it and creates the database.
    public init() throws {
        let binaries = try Self.findBinaries()
        let asPostgresUser = geteuid() == 0
        var template = Array((FileManager.default.temporaryDirectory.path + "/roas-pg-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure("mkdtemp: \(String(cString: strerror(errno)))") }
        let directory = String(cString: made)
        let tools = Tools(binaries: binaries, directory: directory, asPostgresUser: asPostgresUser)
        if asPostgresUser {
            guard let user = getpwnam("postgres") else {
                throw Failure("running as root needs a postgres user (apt-get install postgresql creates it)")
            }
            guard chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw Failure("chown \(directory): \(String(cString: strerror(errno)))")
            }
        }
        var port = 0
        do {
            try tools.run(
                "initdb",
                "-D",
                tools.dataDirectory,
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync"
            )
            // Another process may take the port between probing and binding: try a few.
            var attempt = 0
            while true {
                port = try freeLoopbackPort()
                do {
                    try tools.startServer(port: port)
                    break
                } catch  where attempt < 3 {
                    attempt += 1
                }
            }
            try tools.run("createdb", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", Self.databaseName)
        } catch {
            _ = try? tools.run("pg_ctl", "-D", tools.dataDirectory, "-m", "immediate", "-w", "stop")
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        self.directory = directory
        self.tools = tools
        self.port = port
    }

    /// Starts the server again after `stop()`: same port, same data.
    public func start() throws {
        try self.tools.startServer(port: self.port)
    }

    /// Stops the server (`pg_ctl stop -m fast`): open connections are closed, as in an outage.
    public func stop() throws {
        try self.tools.run("pg_ctl", "-D", self.tools.dataDirectory, "-m", "fast", "-w", "stop")
    }

    /// Runs `sql` with psql on the test database; its rows, one per line, fields separated by `|`.
    public func query(_ sql: String) throws -> String {
        try self.tools.run(
            "psql", "-h", "127.0.0.1", "-p", "\(self.port)", "-U", "postgres", "-d", self.database, "-At", "-X",
            "-v", "ON_ERROR_STOP=1", "-c", sql)
    }

    /// The rows of a sink table (`roas_rows` or `roas_live_rows`) as the JSON lines `roas run` writes
    /// (`final` as given), sorted; so a table compares with a run's rows line for line.
    public func rowsAsJSON(table: String = "roas_rows", final: Bool = true) throws -> [String] {
        let time = #"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#
        let sql = """
            SELECT '{"window_start":"' || to_char(window_start AT TIME ZONE 'UTC', \(time))
                || '","window_end":"' || to_char(window_end AT TIME ZONE 'UTC', \(time))
                || '","creator":' || coalesce(to_json(creator)::text, 'null')
                || ',"campaign":' || coalesce(to_json(campaign)::text, 'null')
                || ',"views":' || views || ',"clicks":' || clicks
                || ',"conversions":' || trim_scale(conversions) || ',"revenue":' || trim_scale(revenue)
                || ',"refunds":' || trim_scale(refunds) || ',"spend":' || trim_scale(spend)
                || ',"roas":' || \(Self.ratio("roas")) || ',"ctr":' || \(Self.ratio("ctr"))
                || ',"cvr":' || \(Self.ratio("cvr")) || ',"aov":' || \(Self.ratio("aov"))
                || ',"cpa":' || \(Self.ratio("cpa")) || ',"net_revenue":' || trim_scale(net_revenue)
                || ',"roi":' || \(Self.ratio("roi")) || ',"reach":' || reach || ',"engagements":' || engagements
                || ',"engagement_rate":' || \(Self.ratio("engagement_rate")) || ',"leads":' || trim_scale(leads)
                || ',"cpl":' || \(Self.ratio("cpl")) || ',"tier":' || coalesce(to_json(tier)::text, 'null')
                || ',"final":\(final)}'
            FROM \(table)
            """
        return try self.query(sql).split(separator: "\n").map(String.init).sorted()
    }

    /// SQL printing a double column as roas prints a ratio: at most six decimals, or null.
    static func ratio(_ column: String) -> String {
        "coalesce(trim_scale(round(\(column) * 1000000)::numeric / 1000000)::text, 'null')"
    }

    /// Stops the server if it runs and deletes the folder.
    public func destroy() {
        _ = try? self.tools.run("pg_ctl", "-D", self.tools.dataDirectory, "-m", "immediate", "-w", "stop")
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// The newest `/usr/lib/postgresql/<version>/bin` (Debian), else a `pg_ctl` on the PATH.
    static func findBinaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .sorted { (Double($0) ?? 0) > (Double($1) ?? 0) }
        for version in versions where Self.hasTools("\(root)/\(version)/bin") {
            return "\(root)/\(version)/bin"
        }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        where Self.hasTools(folder) {
            return folder
        }
        throw Failure(
            "PostgreSQL server binaries (initdb, pg_ctl, createdb, psql) not found in \(root)/*/bin or on the PATH: "
                + "apt-get install postgresql"
        )
    }

    private static func hasTools(_ folder: String) -> Bool {
        ["initdb", "pg_ctl", "createdb", "psql"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(folder)/\($0)") }
    }

    fileprivate static func runuser() throws -> String {
        for path in ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Failure("running as root needs runuser (util-linux) to start PostgreSQL as the postgres user")
    }
}

/// The PostgreSQL binaries, run in the cluster's folder, as the postgres user when we are root.
private struct Tools: Sendable {
    let binaries: String
    let directory: String
    let asPostgresUser: Bool

    var dataDirectory: String { self.directory + "/data" }

    func startServer(port: Int) throws {
        let options = "-p \(port) -k \(self.directory) -c listen_addresses=127.0.0.1 -c fsync=off"
        try self.run(
            "pg_ctl",
            "-D",
            self.dataDirectory,
            "-l",
            self.directory + "/server.log",
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start"
        )
    }

    /// Runs one of the PostgreSQL binaries in the cluster's folder and waits for it; throws with its
    /// output when it fails.
    ///
    /// Not Foundation's `Process`: it learns of the exit by EOF on a socket the child inherits, which
    /// the server forked by `pg_ctl start` keeps open, so it would wait for the server to stop.
    @discardableResult
    func run(_ tool: String, _ arguments: String...) throws -> String {
        // `sh` enters the folder: the postgres user may not be allowed into the package's folder.
        var argv =
            ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", self.directory, self.binaries + "/" + tool] + arguments
        if self.asPostgresUser { argv = [try PostgresServer.runuser(), "-u", "postgres", "--"] + argv }
        let outputPath = self.directory + "/\(tool).out"
        let status = try Self.spawnAndWait(argv, output: outputPath)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            let log = (try? String(contentsOfFile: self.directory + "/server.log", encoding: .utf8)) ?? ""
            throw PostgresServer.Failure(
                "\(tool) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)"
                    + (log.isEmpty ? "" : "\nserver.log:\n\(log.suffix(2000))")
            )
        }
        return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// `posix_spawn` with stdin from /dev/null and stdout and stderr to `output`, then `waitpid`.
    /// Returns the exit status (or 128 + the signal).
    private static func spawnAndWait(_ argv: [String], output: String) throws -> Int32 {
        let pid = try spawnServer(argv, output: output, appends: false, failure: PostgresServer.Failure.init)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw PostgresServer.Failure("waitpid: \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

}
