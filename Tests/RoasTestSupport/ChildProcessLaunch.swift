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
