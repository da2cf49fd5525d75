import Foundation

/// Held by every test while it starts a child process, so that no two start at once.
///
/// Foundation's `Process` (Linux) hands each child one end of a socketpair and learns of the child's
/// exit when that end closes; until its `run()` returns, that end is open in the test process
/// without close-on-exec. `PostgresServer` marks every descriptor of the test process close-on-exec
/// before it spawns: run beside a `Process.run()`, it took that end from the child, Foundation saw
/// the child "exit" at once, blocked in `waitpid` on the still running child, and reaped no other
/// child after that (a whole test run hung once). With this lock the two never overlap.
/// Take it with Foundation's `withLock`.
public let childProcessLaunch = NSLock()

/// Starts a server process the way the test servers (`PostgresServer`, `NATSCluster`) want it:
/// stdin from /dev/null, stdout and stderr into `output` (appended to, or truncated first), and no
/// descriptor of the test process inherited (every one is marked close-on-exec first). Takes
/// `childProcessLaunch` while it spawns. Returns the pid; throws `failure` of why `posix_spawn` failed.
public func spawnServer(
    _ argv: [String], output: String, appends: Bool, failure: (String) -> any Error
) throws -> pid_t {
    try childProcessLaunch.withLock {
        // The test runner's pipes among them.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) }
        for descriptor in open ?? Array(3..<1024) where descriptor > 2 {
            let flags = fcntl(descriptor, F_GETFD)
            if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
        }
        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t? = nil
        #else
        var actions = posix_spawn_file_actions_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | (appends ? O_APPEND : O_TRUNC), 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in cArguments + cEnvironment { free(pointer) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else { throw failure("posix_spawn \(argv[0]): \(String(cString: strerror(spawned)))") }
        return pid
    }
}
