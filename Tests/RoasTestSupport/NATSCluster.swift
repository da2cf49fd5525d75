import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway 3-node NATS JetStream cluster on loopback for the tests: Debian's `nats-server`, one
/// process per node with its own client, route and monitoring ports, config, data and log in a fresh
/// temporary folder, all deleted by `destroy()`.
///
/// Nodes are numbered 0, 1, 2 and named `node0`… (the names stream info reports as leaders). The
/// methods block: call them through `offThread`, or use `with(_:)`.
public final class NATSCluster: Sendable {
    /// Why the cluster could not be made or driven; the message says how to fix it.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// One node's ports.
    public struct Node: Sendable {
        public let name: String
        public let clientPort: Int
        public let routePort: Int
        public let monitorPort: Int
    }

    public let directory: String
    public let nodes: [Node]
    private let executable: String
    /// Each node's process, nil while killed.
    private let processes: Mutex<[pid_t?]>

    /// The client URLs of all nodes, for `--nats` or `JetStreamLog(urls:)`.
    public var urls: [String] { self.nodes.map { "nats://127.0.0.1:\($0.clientPort)" } }

    /// The index of the node called `name` (a stream leader's name), if any.
    public func node(named name: String) -> Int? {
        self.nodes.firstIndex { $0.name == name }
    }

    /// Runs `body` with a started cluster and destroys the cluster afterwards, also on failure.
    /// - Parameter maxPayload: the servers' `max_payload` (NATS's default is 1MB).
    public static func with<T: Sendable>(
        maxPayload: String = "8MB", _ body: (NATSCluster) async throws -> T
    ) async throws -> T {
        let cluster = try await offThread { try NATSCluster.starting(maxPayload: maxPayload) }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(cluster))
        } catch {
            result = .failure(error)
        }
        try await offThread { cluster.destroy() }
        return try result.get()
    }

    /// A started cluster, tried again (up to three times, with other ports) when a node could not
    /// bind a port another process took between `freeLoopbackPort()` and the node's start (tests
    /// running beside each other start clusters at once).
    public static func starting(maxPayload: String = "8MB") throws -> NATSCluster {
        var attempts = 0
        while true {
            do {
                return try NATSCluster(maxPayload: maxPayload)
            } catch let failure as Failure where failure.description.contains("address already in use") && attempts < 2 {
                attempts += 1
            }
        }
    }

    /// Finds `nats-server`, writes the three configs, starts the nodes and waits until every node has
    /// a JetStream meta leader and is current with it (about a second).
    public init(maxPayload: String = "8MB") throws {
        let executable = try Self.findServer()
        var template = Array((FileManager.default.temporaryDirectory.path + "/roas-nats-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure("mkdtemp: \(String(cString: strerror(errno)))") }
        let directory = String(cString: made)
        self.directory = directory
        self.executable = executable
        self.processes = Mutex([nil, nil, nil])
        var nodes: [Node] = []
        do {
            // Nine distinct ports; another process may still take one before its node binds it, which
            // shows as a node that exits (see `waitUntilHealthy`).
            var ports: Set<Int> = []
            while ports.count < 9 { ports.insert(try freeLoopbackPort()) }
            let sorted = Array(ports)
            for index in 0..<3 {
                nodes.append(
                    Node(
                        name: "node\(index)",
                        clientPort: sorted[index * 3],
                        routePort: sorted[index * 3 + 1],
                        monitorPort: sorted[index * 3 + 2]
                    ))
            }
            for index in 0..<3 {
                let folder = "\(directory)/\(nodes[index].name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try Self.config(for: index, of: nodes, in: directory, maxPayload: maxPayload)
                    .write(toFile: "\(folder)/nats-server.conf", atomically: true, encoding: .utf8)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        self.nodes = nodes
        do {
            for index in 0..<3 { try self.spawn(node: index) }
            try self.waitUntilHealthy(nodes: [0, 1, 2])
        } catch {
            self.destroy()
            throw error
        }
    }

    /// Kills node `node` with SIGKILL (no shutdown: a crash) and reaps it.
    public func kill(node: Int) {
        let pid = self.processes.withLock { processes in
            defer { processes[node] = nil }
            return processes[node]
        }
        guard let pid else { return }
        #if canImport(Glibc)
        _ = Glibc.kill(pid, SIGKILL)
        #else
        _ = Darwin.kill(pid, SIGKILL)
        #endif
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    /// Starts a killed node again with its data and ports, and waits until it has rejoined the
    /// JetStream cluster.
    public func restart(node: Int) throws {
        guard self.processes.withLock({ $0[node] }) == nil else { return }
        try self.spawn(node: node)
        try self.waitUntilHealthy(nodes: [node])
    }

    /// Kills every node and deletes the folder.
    public func destroy() {
        for index in 0..<self.nodes.count { self.kill(node: index) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// The end of node `node`'s log, for failure messages.
    public func logTail(node: Int, characters: Int = 3_000) -> String {
        let text = (try? String(contentsOfFile: self.logPath(self.nodes[node]), encoding: .utf8)) ?? ""
        return String(text.suffix(characters))
    }

    // MARK: Processes

    private func configPath(_ node: Node) -> String { "\(self.directory)/\(node.name)/nats-server.conf" }
    private func logPath(_ node: Node) -> String { "\(self.directory)/\(node.name)/nats-server.log" }

    private static func config(for index: Int, of nodes: [Node], in directory: String, maxPayload: String) -> String {
        let node = nodes[index]
        let routes = nodes.indices.filter { $0 != index }.map { "nats://127.0.0.1:\(nodes[$0].routePort)" }
        return """
            server_name: \(node.name)
            listen: 127.0.0.1:\(node.clientPort)
            http: 127.0.0.1:\(node.monitorPort)
            # 8MB unless a test asks otherwise: records of 1 MiB plus headers (the default limit is
            # exactly 1 MiB).
            max_payload: \(maxPayload)
            jetstream {
                store_dir: "\(directory)/\(node.name)/data"
                max_memory_store: 64MB
                max_file_store: 1GB
            }
            cluster {
                name: roas-test
                listen: 127.0.0.1:\(node.routePort)
                routes: [\(routes.joined(separator: ", "))]
            }

            """
    }

    /// `nats-server` on the PATH, else Debian's /usr/sbin/nats-server.
    static func findServer() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for folder in path + ["/usr/sbin", "/usr/local/sbin"]
        where FileManager.default.isExecutableFile(atPath: "\(folder)/nats-server") {
            return "\(folder)/nats-server"
        }
        throw Failure("nats-server not found on the PATH or in /usr/sbin: apt-get install nats-server")
    }

    /// Starts node `node` (`nats-server -c <config>`), its output appended to its log.
    private func spawn(node: Int) throws {
        let argv = [self.executable, "-c", self.configPath(self.nodes[node])]
        let pid = try spawnServer(argv, output: self.logPath(self.nodes[node]), appends: true, failure: Failure.init)
        self.processes.withLock { $0[node] = pid }
    }

    /// Waits until each of `nodes` answers `/healthz` with status ok: it has contact with a JetStream
    /// meta leader and is current with it. Fails when a node exits or after 30 s.
    private func waitUntilHealthy(nodes: [Int]) throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var waiting = Set(nodes)
        while !waiting.isEmpty {
            for index in waiting.sorted() {
                if let pid = self.processes.withLock({ $0[index] }) {
                    var status: Int32 = 0
                    if waitpid(pid, &status, WNOHANG) == pid {
                        self.processes.withLock { $0[index] = nil }
                        throw Failure(
                            "nats-server \(self.nodes[index].name) exited (status \(status)); its log:\n"
                                + self.logTail(node: index))
                    }
                }
                let body = Self.httpGet(port: self.nodes[index].monitorPort, path: "/healthz") ?? ""
                if body.contains(#""status":"ok""#) { waiting.remove(index) }
            }
            if waiting.isEmpty { break }
            guard ContinuousClock.now < deadline else {
                let names = waiting.sorted().map { self.nodes[$0].name }.joined(separator: ", ")
                throw Failure(
                    "NATS cluster in \(self.directory): \(names) not healthy (no JetStream meta leader) after 30 s; "
                        + "log of \(self.nodes[waiting.sorted()[0]].name):\n\(self.logTail(node: waiting.sorted()[0]))"
                )
            }
            usleep(50_000)
        }
    }

    /// The body of `GET <path>` on 127.0.0.1:`port` (HTTP/1.0, so the server closes when done), or
    /// nil when nothing answers.
    static func httpGet(port: Int, path: String) -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return nil
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            response.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[end.upperBound...])
    }
}
