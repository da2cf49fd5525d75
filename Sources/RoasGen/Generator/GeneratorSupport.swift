import HeapModule
import RoasCore

/// An event the generator has planned: scheduled for later (`key` = its time) or waiting in the
/// arrival buffer (`key` = its arrival time, event time plus less than the disorder).
struct PlannedEvent {
    enum Kind: UInt8 {
        case view, click, checkout, purchase, refund, link, spend, engagement, signup, profile
    }

    var key: Int64
    var sequence: UInt64
    var time: Int64
    var kind: Kind
    /// Purchase or checkout: after a click (not view-through). Spend: a daily fee (not CPM).
    var flag: Bool
    /// Purchase or refund: index into `GeneratorConfiguration.CurrencyCode.allCases`.
    var currency: UInt8
    var creator: Int32
    var user: Int32
    /// Cents of the order's currency (purchase, refund) or of USD (spend); the action (engagement:
    /// an index into `GeneratorModel.actions`).
    var amount: Int64
    var order: Int64

    init(time: Int64, kind: Kind, creator: Int32 = 0, user: Int32 = 0, flag: Bool = false) {
        self.key = time
        self.sequence = 0
        self.time = time
        self.kind = kind
        self.flag = flag
        self.currency = 0
        self.creator = creator
        self.user = user
        self.amount = 0
        self.order = 0
    }

    @inline(__always)
    func precedes(_ other: PlannedEvent) -> Bool {
        self.key != other.key ? self.key < other.key : self.sequence < other.sequence
    }
}

/// Planned events wait in swift-collections' `Heap`, ordered by (key, sequence): the sequence is
/// unique, so the order is total and the stream does not depend on how the heap breaks ties.
extension PlannedEvent: Comparable {
    static func < (a: PlannedEvent, b: PlannedEvent) -> Bool { a.precedes(b) }
    static func == (a: PlannedEvent, b: PlannedEvent) -> Bool { a.key == b.key && a.sequence == b.sequence }
}

/// Text helpers for the generator's fixed strings.
enum GeneratorBytes {
    /// Zero-padded decimal text.
    static func padded(_ value: Int, width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// The arrival buffer: events leave in (arrival time, sequence) order, like a heap, but in O(1).
///
/// Arrival times are event time plus less than the disorder D, and the generator releases every
/// arrival due at or before an event's time before it plans that event, so all waiting arrivals lie
/// within D milliseconds: a ring of D + 1 one-millisecond buckets, each first-in first-out, holds
/// them without collisions.
struct ArrivalQueue {
    private var buckets: [[PlannedEvent]]
    private var heads: [Int]
    private let width: Int64
    /// No waiting arrival is earlier than this.
    private var cursor: Int64 = .min
    private(set) var count = 0

    init(disorder: Int64) {
        self.width = disorder + 1
        self.buckets = Array(repeating: [], count: Int(disorder + 1))
        self.heads = Array(repeating: 0, count: Int(disorder + 1))
    }

    @inline(__always)
    private func slot(_ key: Int64) -> Int {
        Int(key % self.width)
    }

    @inline(__always)
    mutating func push(_ event: PlannedEvent) {
        if self.count == 0 || event.key < self.cursor { self.cursor = event.key }
        self.buckets[self.slot(event.key)].append(event)
        self.count += 1
    }

    /// The next arrival with key <= `limit`, or nil.
    @inline(__always)
    mutating func pop(upTo limit: Int64) -> PlannedEvent? {
        while self.count > 0 && self.cursor <= limit {
            let slot = self.slot(self.cursor)
            let head = self.heads[slot]
            if head < self.buckets[slot].count {
                let event = self.buckets[slot][head]
                self.count -= 1
                if head + 1 == self.buckets[slot].count {
                    self.buckets[slot].removeAll(keepingCapacity: true)
                    self.heads[slot] = 0
                } else {
                    self.heads[slot] = head + 1
                }
                return event
            }
            self.cursor += 1
        }
        return nil
    }

    /// Whether an arrival with key <= `limit` may be waiting (true means: call `pop(upTo:)`).
    @inline(__always)
    func mayHave(upTo limit: Int64) -> Bool {
        self.count > 0 && self.cursor <= limit
    }
}

/// Raw stores into a line buffer of `capacity` bytes (every generated line is far shorter).
struct LineWriter {
    static let capacity = 1024
    private let base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0

    @inline(__always)
    init(_ base: UnsafeMutablePointer<UInt8>) {
        self.base = base
    }

    @inline(__always)
    mutating func put(_ text: StaticString) {
        (self.base + self.count).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        self.count += text.utf8CodeUnitCount
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafePointer<UInt8>, count: Int) {
        (self.base + self.count).update(from: bytes, count: count)
        self.count += count
    }

    @inline(__always)
    mutating func put(byte: UInt8) {
        self.base[self.count] = byte
        self.count += 1
    }

    /// The decimal digits of a non-negative integer.
    @inline(__always)
    mutating func put(decimal value: Int64) {
        var rest = UInt64(value)
        var digits = 1
        var power: UInt64 = 10
        while digits < 19 && rest >= power {
            digits += 1
            power &*= 10
        }
        var index = self.count + digits
        self.count = index
        repeat {
            index -= 1
            self.base[index] = 0x30 &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
    }

    /// Cents as a JSON number: `35`, `35.5`, `35.27`.
    @inline(__always)
    mutating func put(cents: Int64) {
        self.put(decimal: cents / 100)
        let fraction = cents % 100
        guard fraction != 0 else { return }
        self.put(byte: UInt8(ascii: "."))
        self.put(byte: 0x30 &+ UInt8(fraction / 10))
        if fraction % 10 != 0 { self.put(byte: 0x30 &+ UInt8(fraction % 10)) }
    }

    /// Fixed-width upper-case base 36.
    @inline(__always)
    mutating func put(base36 value: UInt64, digits: Int) {
        var rest = value
        var index = self.count + digits
        self.count = index
        for _ in 0..<digits {
            index -= 1
            let digit = UInt8(rest % 36)
            self.base[index] = digit < 10 ? 0x30 &+ digit : 0x41 &+ digit &- 10
            rest /= 36
        }
    }

    /// `,"currency":"USD"}` and the newline, by `GeneratorConfiguration.CurrencyCode` index.
    @inline(__always)
    mutating func put(currency index: UInt8) {
        switch index {
        case 1: self.put(",\"currency\":\"EUR\"}\n")
        case 2: self.put(",\"currency\":\"GBP\"}\n")
        default: self.put(",\"currency\":\"USD\"}\n")
        }
    }
}
