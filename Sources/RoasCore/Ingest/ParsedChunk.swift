/// What the reading thread verified and parsed from one chunk of input, for the engine's thread:
/// the bytes of the fields it needs, copied into one buffer, and one entry per line, in order.
///
/// Handing over whole chunks keeps the two threads apart for about a megabyte of input at a time;
/// the engine's thread replays the entries in order, so the result is exactly that of one thread.
public struct ParsedChunk: Sendable {
    /// A range of `bytes`; `count == -1` means absent (an optional field).
    struct Field: Sendable {
        var offset: Int32
        var count: Int32
        static let absent = Field(offset: 0, count: -1)
    }

    struct Event: Sendable {
        var kind: EventKind
        var time: Int64
        var amount: Int64
        var currency: Int32
        var line: Int
        var batch: Int32
        var id: Field
        var user: Field
        var linked: Field
        var creator: Field
        var campaign: Field
        var order: Field
        var raw: Field
        /// `Engine.hashes(of:)`, computed on the reading thread.
        var hashes: Engine.EventHashes
    }

    struct Reject: Sendable {
        var rejection: Rejection
        var line: Int
        var batch: Int32
        var raw: Field
    }

    /// One line's (or batch's) outcome, in order. Events and rejections are kept in arrays of their
    /// own, taken in turn, so that an entry holds no reference: replaying one copies no string.
    enum Entry: Sendable {
        /// The next of `events`.
        case event
        /// The next of `rejects`.
        case reject
        case blank
        case acceptedBatch
        case rejectedBatch(Reason)
        /// Lines counted without a record each (see `EventSink.countDeadLetters`); nil: blank lines.
        case counted(Reason?, lines: Int)
    }

    var bytes = FieldBytes()
    var entries: [Entry] = []
    var events: [Event] = []
    var rejects: [Reject] = []
    var batches: [String] = []
    /// Lines and bytes of input this chunk covers.
    public internal(set) var linesRead = 0
    public internal(set) var bytesRead = 0
    /// What the chunk took in, as a stream `roas run` reads (each accepted batch as a frame, each
    /// bare event as a line; nothing rejected before the engine), when the parser journals: the
    /// write-ahead log record of `roas serve --data-dir`.
    public internal(set) var journal: [UInt8] = []
    /// Every batch of the chunk, accepted or rejected, in order (acknowledgements).
    public internal(set) var batchOutcomes: [BatchOutcome] = []

    public var isEmpty: Bool { self.entries.isEmpty }

    /// The memory the chunk holds (its buffers' capacities), for `roas serve --max-inflight-bytes`.
    public var retainedBytes: Int {
        self.bytes.capacity + self.entries.capacity * MemoryLayout<Entry>.stride
            + self.events.capacity * MemoryLayout<Event>.stride + self.rejects.capacity * MemoryLayout<Reject>.stride
            + self.journal.capacity
            + self.batches.count * MemoryLayout<String>.stride + self.batchOutcomes.capacity * MemoryLayout<BatchOutcome>.stride
    }

    /// Parsed events (each may still be `late` or `duplicate` for the engine).
    public var eventCount: Int { self.events.count }

    /// Lines rejected while reading (dead letters before the engine).
    public var rejectedCount: Int {
        self.entries.reduce(self.rejects.count) { count, entry in
            switch entry {
            case .counted(.some, let lines): count + lines
            default: count
            }
        }
    }
}

/// What became of one batch: accepted (`rejection == nil`) or rejected whole.
public struct BatchOutcome: Sendable, Equatable {
    /// nil when the frame's header could not be read.
    public var id: String?
    /// The batch's own timestamp (seconds), when it could be read.
    public var timestamp: Int64?
    public var rejection: Rejection?
    /// `AcceptedBatches.digest(of:)` of an accepted batch's payload (what checkpoints keep with its id); else 0.
    public var digest: UInt64 = 0

    public init(id: String?, timestamp: Int64?, rejection: Rejection?) {
        self.id = id
        self.timestamp = timestamp
        self.rejection = rejection
    }
}

/// An `EventSink` that records into a `ParsedChunk`.
public struct ChunkRecorder: EventSink {
    var chunk = ParsedChunk()
    /// Copy raw lines, for dead letters written later (links, purchases and refunds may be
    /// dead-lettered when they apply).
    let keepsRawLines: Bool
    /// Fill the chunk's `journal`.
    let journals: Bool

    public init(keepsRawLines: Bool, journals: Bool = false, capacity: Int = 1 << 21) {
        self.keepsRawLines = keepsRawLines
        self.journals = journals
        self.chunk.bytes.reserveCapacity(capacity)
        self.chunk.entries.reserveCapacity(capacity >> 7)
        self.chunk.events.reserveCapacity(capacity >> 7)
    }

    /// Hands over what was recorded, with the lines and bytes it covers.
    public mutating func take(linesRead: Int, bytesRead: Int) -> ParsedChunk {
        var taken = ParsedChunk()
        swap(&taken, &self.chunk)
        taken.linesRead = linesRead
        taken.bytesRead = bytesRead
        self.chunk.bytes.reserveCapacity(taken.bytes.capacity)
        self.chunk.entries.reserveCapacity(taken.entries.capacity)
        self.chunk.events.reserveCapacity(taken.events.capacity)
        return taken
    }

    @inline(__always)
    private mutating func field(_ bytes: UnsafeRawBufferPointer) -> ParsedChunk.Field {
        let offset = self.chunk.bytes.append(bytes)
        return ParsedChunk.Field(offset: Int32(truncatingIfNeeded: offset), count: Int32(truncatingIfNeeded: bytes.count))
    }

    /// The index in `batches` of the origin's batch (-1: none), compared in place with the last
    /// one, so that a line of the same batch as the one before costs no reference counting.
    @inline(__always)
    private mutating func batch(_ origin: Origin) -> Int32 {
        let count = self.chunk.batches.count
        if let batchAt = origin.batchAt {
            if count > 0 && self.chunk.batches[count - 1] == batchAt.pointee { return Int32(count - 1) }
            self.chunk.batches.append(batchAt.pointee)
            return Int32(count)
        }
        guard let id = origin.batch else { return -1 }
        if count > 0 && self.chunk.batches[count - 1] == id { return Int32(count - 1) }
        self.chunk.batches.append(id)
        return Int32(count)
    }

    @inline(__always)
    public mutating func accept(_ event: ParsedEvent, origin: Origin) {
        let recorded = ParsedChunk.Event(
            kind: event.kind, time: event.time, amount: event.amount, currency: Int32(event.currency),
            line: origin.line, batch: self.batch(origin), id: self.field(event.id),
            user: self.field(event.user), linked: self.field(event.linked), creator: self.field(event.creator),
            campaign: event.campaign.map { self.field($0) } ?? .absent, order: self.field(event.order),
            raw: self.keepsRawLines ? self.field(origin.raw) : .absent, hashes: Engine.hashes(of: event))
        self.chunk.events.append(recorded)
        self.chunk.entries.append(.event)
        if self.journals && !origin.isInBatch {
            self.chunk.journal.append(contentsOf: origin.raw)
            self.chunk.journal.append(0x0A)
        }
    }

    public mutating func reject(_ rejection: Rejection, origin: Origin) {
        let raw = self.keepsRawLines ? self.field(origin.raw) : .absent
        self.chunk.rejects.append(
            ParsedChunk.Reject(rejection: rejection, line: origin.line, batch: self.batch(origin), raw: raw))
        self.chunk.entries.append(.reject)
    }

    public mutating func countBlankLine() { self.chunk.entries.append(.blank) }
    public mutating func countAcceptedBatch() { self.chunk.entries.append(.acceptedBatch) }
    public mutating func countRejectedBatch(_ reason: Reason) { self.chunk.entries.append(.rejectedBatch(reason)) }
    public mutating func countDeadLetters(_ reason: Reason, lines: Int) { self.chunk.entries.append(.counted(reason, lines: lines)) }
    public mutating func countBlankLines(_ lines: Int) { self.chunk.entries.append(.counted(nil, lines: lines)) }

    public mutating func batchAccepted(
        _ header: BatchHeader, headerLine: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, digest: UInt64
    ) {
        // The digest is what checkpoints remember, to tell a retry from a changed resend after a restart.
        var outcome = BatchOutcome(id: header.id, timestamp: header.timestamp, rejection: nil)
        outcome.digest = digest
        self.chunk.batchOutcomes.append(outcome)
        guard self.journals else { return }
        // A frame again, whatever it came as (a webhook body need not end in a newline).
        let endsLine = payload.last == 0x0A
        var frame = header
        frame.bytes = payload.count + (endsLine ? 0 : 1)
        self.chunk.journal.append(contentsOf: frame.json.utf8)
        self.chunk.journal.append(0x0A)
        self.chunk.journal.append(contentsOf: payload)
        if !endsLine { self.chunk.journal.append(0x0A) }
    }

    public mutating func batchRejected(id: String?, timestamp: Int64?, rejection: Rejection) {
        self.chunk.batchOutcomes.append(BatchOutcome(id: id, timestamp: timestamp, rejection: rejection))
    }
}

extension EngineSink {
    /// How many events ahead `replay` prefetches where the dedup set keeps an event's page (paged
    /// tables only), then its dedup and user slots, then a view's or click's chain head, found
    /// through the user's slot.
    static let pagePrefetchDistance = 24
    static let prefetchDistance = 16
    static let headPrefetchDistance = 8

    /// Applies a recorded chunk exactly as if its lines had been read on this thread.
    public mutating func replay(_ chunk: ParsedChunk) {
        chunk.bytes.withUnsafeBytes { bytes in
            chunk.batches.withUnsafeBufferPointer { batches in
                chunk.events.withUnsafeBufferPointer { events in
                    self.replay(chunk.entries, events: events, rejects: chunk.rejects, bytes: bytes, batches: batches)
                }
            }
        }
        self.engine.addLines(read: chunk.linesRead, bytes: chunk.bytesRead)
        // The workers run this chunk's touches while the engine takes the next.
        self.engine.flushPartitions()
    }

    @inline(__always)
    private mutating func replay(
        _ entries: [ParsedChunk.Entry], events: UnsafeBufferPointer<ParsedChunk.Event>, rejects: [ParsedChunk.Reject],
        bytes: UnsafeRawBufferPointer, batches: UnsafeBufferPointer<String>
    ) {
        @inline(__always) func buffer(_ field: ParsedChunk.Field) -> UnsafeRawBufferPointer {
            guard field.count > 0 else { return ParsedEvent.empty }
            return UnsafeRawBufferPointer(rebasing: bytes[Int(field.offset)..<Int(field.offset + field.count)])
        }
        @inline(__always) func batch(_ index: Int32) -> UnsafePointer<String>? {
            index < 0 ? nil : batches.baseAddress! + Int(index)
        }
        var nextEvent = 0
        var nextReject = 0
        for entry in entries {
            switch entry {
            case .event:
                // Overlap the cache misses of an event a few ahead with the work on this one.
                if nextEvent + EngineSink.pagePrefetchDistance < events.count {
                    self.engine.prefetchDedupPage(events[nextEvent + EngineSink.pagePrefetchDistance].hashes)
                }
                if nextEvent + EngineSink.prefetchDistance < events.count {
                    self.engine.prefetch(events[nextEvent + EngineSink.prefetchDistance].hashes)
                }
                if nextEvent + EngineSink.headPrefetchDistance < events.count {
                    let ahead = events[nextEvent + EngineSink.headPrefetchDistance]
                    if ahead.kind == .view || ahead.kind == .click {
                        self.engine.prefetchTouchHead(
                            userHash: ahead.hashes.user, userLength: Int(ahead.user.count), isClick: ahead.kind == .click)
                    }
                }
                let recorded = events[nextEvent]
                nextEvent += 1
                let event = ParsedEvent(
                    kind: recorded.kind, time: recorded.time, id: buffer(recorded.id), user: buffer(recorded.user),
                    linked: buffer(recorded.linked), creator: buffer(recorded.creator),
                    campaign: recorded.campaign.count < 0 ? nil : buffer(recorded.campaign),
                    order: buffer(recorded.order), amount: recorded.amount, currency: Int(recorded.currency))
                self.accept(
                    event, hashes: recorded.hashes,
                    origin: Origin(line: recorded.line, batchAt: batch(recorded.batch), raw: buffer(recorded.raw)))
            case .reject:
                let reject = rejects[nextReject]
                nextReject += 1
                self.reject(
                    reject.rejection, origin: Origin(line: reject.line, batchAt: batch(reject.batch), raw: buffer(reject.raw)))
            case .blank:
                self.countBlankLine()
            case .acceptedBatch:
                self.countAcceptedBatch()
            case .rejectedBatch(let reason):
                self.countRejectedBatch(reason)
            case .counted(let reason, let lines):
                if let reason { self.countDeadLetters(reason, lines: lines) } else { self.countBlankLines(lines) }
            }
        }
    }
}

extension ParsedChunk {
    /// How many of the chunk's events belong to the batches with these ids.
    public func events(ofBatches ids: Set<String>) -> Int {
        let indices = Set(self.batches.indices.filter { ids.contains(self.batches[$0]) }.map { Int32($0) })
        return self.events.reduce(0) { $0 + (indices.contains($1.batch) ? 1 : 0) }
    }

    /// The log routes (`LogRoute`) of the lines of the chunk's accepted batches, batch after batch,
    /// from what parsing recorded of each line (its entry): an event goes by its key, a line
    /// rejected or blank to partition 0, as `LogRoute.of` routes a line it cannot parse. So
    /// `roas serve --nats` splits a batch without parsing it a second time.
    struct Routes {
        private let chunk: ParsedChunk
        private let partitions: Int
        private var entry = 0
        private var event = 0

        init(_ chunk: ParsedChunk, partitions: Int) {
            self.chunk = chunk
            self.partitions = partitions
        }

        /// The routes of the next accepted batch's `lines` payload lines; nil when its entries do not
        /// account for exactly that many lines (the caller then parses them).
        mutating func nextBatch(lines: Int) -> [LogRoute]? {
            let entries = self.chunk.entries
            // To the next accepted batch's header line.
            var found = false
            while self.entry < entries.count && !found {
                switch entries[self.entry] {
                case .acceptedBatch: found = true
                case .event: self.event += 1
                default: break
                }
                self.entry += 1
            }
            guard found else { return nil }
            var routes: [LogRoute] = []
            routes.reserveCapacity(lines)
            while routes.count < lines && self.entry < entries.count {
                switch entries[self.entry] {
                case .event:
                    routes.append(self.route(of: self.chunk.events[self.event]))
                    self.event += 1
                case .reject, .blank: routes.append(.partition(0))
                case .counted(_, let count): routes += repeatElement(.partition(0), count: count)
                case .acceptedBatch, .rejectedBatch: return nil
                }
                self.entry += 1
            }
            return routes.count == lines ? routes : nil
        }

        private func route(of event: Event) -> LogRoute {
            let key: Field
            switch LogRoute.Key(event.kind) {
            case .user: key = event.user
            case .order: key = event.order
            case .creator: key = event.creator
            case nil: return .every
            }
            return self.chunk.bytes.withUnsafeBytes { bytes in
                let start = Int(key.offset)
                let slice =
                    key.count < 0
                    ? UnsafeRawBufferPointer(rebasing: bytes[0..<0]) : UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(key.count))])
                return .partition(LogRoute.partition(ofKey: slice, partitions: self.partitions))
            }
        }
    }
}
