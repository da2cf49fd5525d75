/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, seedable generator, so every property test can be
/// replayed from the seed printed in its failure message.
package struct SplitMix64: RandomNumberGenerator {
    private(set) var state: UInt64

    package init(seed: UInt64) {
        self.state = seed
    }

    /// A generator for case `index` of the test seeded with `seed`, independent of the other cases,
    /// so one failing case can be replayed alone.
    package init(seed: UInt64, case index: Int) {
        var mixer = SplitMix64(seed: seed)
        self.state = mixer.next() ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03)
    }

    package mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `range` (uniform).
    package mutating func int(_ range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }

    package mutating func int(_ range: Range<Int>) -> Int {
        Int.random(in: range, using: &self)
    }

    /// True with probability `probability`.
    package mutating func chance(_ probability: Double) -> Bool {
        Double(self.next() >> 11) * 0x1.0p-53 < probability
    }

    package mutating func pick<C: Collection>(_ collection: C) -> C.Element {
        collection.randomElement(using: &self)!
    }

    package mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: self.next())
    }
}

extension Collection<UInt8> {
    /// The bytes as text for failure messages: printable ASCII as is, the rest as `\xNN`.
    package var debugText: String {
        var text = ""
        for byte in self.prefix(600) {
            switch byte {
            case 0x5C: text += "\\\\"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        if self.count > 600 { text += "…(\(self.count) bytes)" }
        return text
    }
}

extension [UInt8] {
    /// The bytes of `text` (UTF-8).
    package init(utf8 text: String) {
        self = Array(text.utf8)
    }
}
