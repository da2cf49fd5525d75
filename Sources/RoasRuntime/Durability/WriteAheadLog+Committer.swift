import Dispatch
import RoasCore

extension WriteAheadLog {
    /// The group-commit loop, run by the log's one committer thread, which alone owns the open segment.
    ///
    /// Each turn takes everything pending at once, fills in the CRCs, then writes it in groups: all of it
    /// (`batch`, `interval`) or one record at a time (`always`), split where a roll was requested and
    /// where the segment passes `segmentBytes`. Records that arrive during a write or a sync wait for the
    /// next turn, so one sync covers all of them.
    struct Committer: Sendable {
        let log: WriteAheadLog
        var writer: SegmentWriter
        /// The taken pending records; its buffers go back and forth with the shared state's.
        var bytes: [UInt8] = []
        var ends: [Int] = []
        var firstLSN: UInt64 = 0
        var rolls: [(lsn: UInt64, ticket: RollTicket)] = []
        /// The last LSN written successfully.
        var writtenLSN: UInt64 = 0
        /// Monotonic nanoseconds (`SystemClock`) of the last sync, for `interval`.
        var lastSync: UInt64 = 0

        init(log: WriteAheadLog, writer: SegmentWriter) {
            self.log = log
            self.writer = writer
        }

        private var syncInterval: UInt64? {
            guard case .interval(let milliseconds) = self.log.fsync else { return nil }
            return UInt64(max(0, milliseconds)) * 1_000_000
        }

        /// The committer thread's body: returns when the log is closed and drained.
        mutating func run() {
            while true {
                if let interval = self.syncInterval, self.writer.isUnsynced,
                    SystemClock.monotonicNanoseconds() >= self.lastSync &+ interval
                {
                    _ = self.syncNow()
                }
                let taken = self.log.state.withLock { state -> (took: Bool, isClosing: Bool) in
                    state.committerIsIdle = false
                    guard !state.pending.isEmpty || !state.rollRequests.isEmpty || state.isClosing else {
                        state.committerIsIdle = true
                        return (false, false)
                    }
                    swap(&state.pending, &self.bytes)
                    swap(&state.pendingEnds, &self.ends)
                    swap(&state.rollRequests, &self.rolls)
                    self.firstLSN = state.pendingFirstLSN
                    state.pendingFirstLSN = state.nextLSN
                    return (true, state.isClosing)
                }
                guard taken.took else {
                    if let interval = self.syncInterval, self.writer.isUnsynced {
                        // The semaphore's deadline is a DispatchTime: the time left, from now.
                        let deadline = self.lastSync &+ interval
                        let now = SystemClock.monotonicNanoseconds()
                        let left = deadline > now ? min(deadline - now, UInt64(Int.max)) : 0
                        _ = self.log.wakeUp.wait(timeout: .now() + .nanoseconds(Int(left)))
                    } else {
                        self.log.wakeUp.wait()
                    }
                    continue
                }
                self.commitTaken(isClosing: taken.isClosing)
                if taken.isClosing {
                    self.finish()
                    return
                }
                // Keep the buffers for the next turn, unless a burst made them huge.
                self.bytes.removeAll(keepingCapacity: self.bytes.capacity <= 16 << 20)
                self.ends.removeAll(keepingCapacity: true)
                self.rolls.removeAll(keepingCapacity: true)
            }
        }

        /// Writes the taken records in groups and does the taken rolls between them.
        private mutating func commitTaken(isClosing: Bool) {
            self.bytes.withUnsafeMutableBytes { buffer in
                var start = 0
                for end in self.ends {
                    let record = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
                    let checksum = SegmentFile.checksum(ofRecord: record)
                    buffer.storeBytes(of: checksum.littleEndian, toByteOffset: start + 4, as: UInt32.self)
                    start = end
                }
            }
            let count = self.ends.count
            var index = 0
            var rollIndex = 0
            while true {
                while rollIndex < self.rolls.count, self.rolls[rollIndex].lsn <= self.firstLSN + UInt64(index) {
                    self.rolls[rollIndex].ticket.complete(self.roll(at: self.rolls[rollIndex].lsn))
                    rollIndex += 1
                }
                guard index < count else { break }
                let lsn = self.firstLSN + UInt64(index)
                if self.writer.hasRecords && self.writer.length >= self.log.segmentBytes {
                    if case .failure(let error) = self.roll(at: lsn) {
                        // Records keep going to the current segment; the roll is tried again next group.
                        self.log.state.withLock { $0.lastError = "\(error)" }
                    }
                }
                let start = index == 0 ? 0 : self.ends[index - 1]
                var end = index + 1
                if self.log.fsync != .always {
                    let nextRoll = rollIndex < self.rolls.count ? self.rolls[rollIndex].lsn : UInt64.max
                    let room = self.log.segmentBytes - self.writer.length
                    while end < count, self.firstLSN + UInt64(end) < nextRoll, self.ends[end - 1] - start < room {
                        end += 1
                    }
                }
                let failure: String?
                let (failedThrough, failedBecause) = self.log.state.withLock { ($0.failedThrough, $0.failedBecause) }
                if lsn <= failedThrough {
                    // Appended before a failure was known: failed unwritten, so no later record of
                    // the same sender is in the log without the failed one.
                    end = min(end, Int(failedThrough - self.firstLSN) + 1)
                    failure = "not written: an earlier write failed (\(failedBecause))"
                    self.resolve(first: lsn, last: self.firstLSN + UInt64(end - 1), failure: failure, bytes: 0, syncNanoseconds: nil)
                } else {
                    failure = self.commitGroup(
                        from: start,
                        to: self.ends[end - 1],
                        first: lsn,
                        last: self.firstLSN + UInt64(end - 1)
                    )
                }
                if isClosing, let failure { self.log.state.withLock { $0.closeError = failure } }
                index = end
            }
        }

        /// Writes one group, syncs it unless in `interval` mode, and completes its waiters; the error, if any.
        private mutating func commitGroup(from start: Int, to end: Int, first: UInt64, last: UInt64) -> String? {
            var failure = self.bytes.withUnsafeBytes { buffer in
                self.writer.write(UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
            }
            var syncNanoseconds: UInt64? = nil
            if failure == nil && self.syncInterval == nil {
                let sync = self.writer.sync(dropOnFailure: true)
                failure = sync.failure
                syncNanoseconds = sync.nanoseconds
            }
            if failure == nil {
                self.writer.acceptWritten()
                self.writtenLSN = last
            }
            self.resolve(
                first: first,
                last: last,
                failure: failure,
                bytes: end - start,
                syncNanoseconds: syncNanoseconds
            )
            if failure == nil, let interval = self.syncInterval,
                SystemClock.monotonicNanoseconds() >= self.lastSync &+ interval
            {
                _ = self.syncNow()
            }
            return failure
        }

        /// Records the group's outcome and completes its waiters, outside the lock. A failure also
        /// condemns every record appended so far (written neither in this turn nor the next) and
        /// moves the failure epoch, so chained appends from their senders are refused.
        private func resolve(first: UInt64, last: UInt64, failure: String?, bytes: Int, syncNanoseconds: UInt64?) {
            var handOver: (CheckedContinuation<[ResolvedGroup]?, Never>, [ResolvedGroup])?
            let ready = self.log.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                if let failure, last > state.failedThrough {
                    state.failureEpoch += 1
                    state.failedThrough = state.nextLSN - 1
                    state.failedBecause = failure
                }
                state.resolvedLSN = last
                if let syncNanoseconds {
                    state.syncs += 1
                    state.syncNanoseconds += syncNanoseconds
                }
                if let failure {
                    state.failedGroups += 1
                    state.lastError = failure
                    state.recordFailure(first: first, last: last, message: failure)
                } else {
                    state.durableLSN = last
                    if syncNanoseconds != nil { state.syncedLSN = last }
                    state.lastError = nil
                    state.bytesWritten += bytes
                    state.recordsWritten += Int(last - first + 1)
                }
                if state.resolvedGroups != nil {
                    state.resolvedGroups?.append(ResolvedGroup(first: first, last: last, failure: failure))
                    if let follower = state.groupsFollower, let groups = state.resolvedGroups {
                        state.groupsFollower = nil
                        state.resolvedGroups = []
                        handOver = (follower, groups)
                    }
                }
                var ready: [CheckedContinuation<Void, any Error>] = []
                if state.waiters.count <= Int(last - first + 1) {
                    let due = state.waiters.keys.filter { $0 >= first && $0 <= last }
                    for lsn in due { ready.append(contentsOf: state.waiters.removeValue(forKey: lsn)!) }
                } else {
                    for lsn in first...last {
                        if let waiters = state.waiters.removeValue(forKey: lsn) { ready.append(contentsOf: waiters) }
                    }
                }
                return ready
            }
            for continuation in ready {
                if let failure {
                    continuation.resume(throwing: WALError.write(failure))
                } else {
                    continuation.resume()
                }
            }
            if let (follower, groups) = handOver { follower.resume(returning: groups) }
        }

        /// Syncs the segment now (`interval` mode, rolls, closing); the error, if any.
        private mutating func syncNow() -> String? {
            let lsn = self.writtenLSN
            // Written records were acknowledged already: a failed sync cannot take them back.
            let sync = self.writer.sync(dropOnFailure: false)
            self.lastSync = SystemClock.monotonicNanoseconds()
            self.log.state.withLock { state in
                state.syncs += 1
                state.syncNanoseconds += sync.nanoseconds
                if let failure = sync.failure {
                    state.failedGroups += 1
                    state.lastError = failure
                } else {
                    state.syncedLSN = max(state.syncedLSN, lsn)
                }
            }
            return sync.failure
        }

        /// Moves on to a new segment starting at `lsn`, the current one synced first.
        private mutating func roll(at lsn: UInt64) -> Result<UInt64, WALError> {
            if let failure = self.writer.repair() { return .failure(.io(failure)) }
            guard self.writer.hasRecords else { return .success(self.writer.firstLSN) }
            // A segment other than the last must have no torn tail: replay treats one as corruption.
            if self.writer.isUnsynced, let failure = self.syncNow() { return .failure(.io(failure)) }
            let next: SegmentWriter
            do {
                next = try SegmentWriter.create(directory: self.writer.directory, firstLSN: lsn)
            } catch let error as WALError {
                return .failure(error)
            } catch {
                return .failure(.io("\(error)"))
            }
            self.writer.closeFile()
            self.writer = next
            self.log.state.withLock { $0.currentSegmentFirstLSN = lsn }
            return .success(lsn)
        }

        /// Syncs what is left and closes the segment; then the thread ends.
        private mutating func finish() {
            if self.writer.isUnsynced, let failure = self.syncNow() {
                self.log.state.withLock { $0.closeError = $0.closeError ?? failure }
            }
            self.writer.closeFile()
            // The follower of the groups hears that none follows (after taking what is left).
            let follower = self.log.state.withLock { state -> (CheckedContinuation<[ResolvedGroup]?, Never>, [ResolvedGroup]?)? in
                state.isStopped = true
                guard let follower = state.groupsFollower else { return nil }
                state.groupsFollower = nil
                let groups = state.resolvedGroups ?? []
                state.resolvedGroups = []
                return (follower, groups.isEmpty ? nil : groups)
            }
            if let (continuation, groups) = follower { continuation.resume(returning: groups) }
            self.log.stopped.leave()
        }
    }
}
