/// The currencies roas knows: the base currency and those of the rates file, with their rates.
public struct CurrencyTable: Sendable {
    /// The base currency's code, such as `USD`.
    public let base: String
    /// Codes by index; index 0 is the base currency.
    public private(set) var codes: [String]
    /// Base units per unit, by index.
    public private(set) var rates: [Double]
    /// Index + 1 by packed three-letter code, 0 for unknown.
    private var lookup: [UInt16]

    /// The rates accepted: wide enough for any pair of real currencies, narrow enough that a converted
    /// amount is always a finite number (one too large for an `Int64` is dead-lettered `overflow`).
    public static let rateRange: ClosedRange<Double> = 1e-12...1e12

    /// - Throws: `RoasError` when a code is not three upper-case letters or a rate is outside `rateRange`.
    public init(base: String, rates: [String: Double] = [:]) throws {
        guard let basePacked = CurrencyTable.pack(Array(base.utf8)) else {
            throw RoasError(.options, "base currency '\(base)' is not an ISO 4217 code (three upper-case letters)")
        }
        self.base = base
        self.codes = [base]
        self.rates = [1]
        self.lookup = [UInt16](repeating: 0, count: 26 * 26 * 26)
        self.lookup[basePacked] = 1
        for (code, rate) in rates.sorted(by: { $0.key < $1.key }) {
            guard let packed = CurrencyTable.pack(Array(code.utf8)) else {
                throw RoasError(.rates, "rates: '\(code)' is not an ISO 4217 code (three upper-case letters)")
            }
            guard rate.isFinite && rate >= CurrencyTable.rateRange.lowerBound && rate <= CurrencyTable.rateRange.upperBound
            else {
                throw RoasError(.rates, "rates: the rate of \(code) must be a number from 1e-12 to 1e12, got \(rate)")
            }
            if code == base {
                guard rate == 1 else {
                    throw RoasError(.rates, "rates: the base currency \(base) must have rate 1, got \(rate)")
                }
                continue
            }
            self.codes.append(code)
            self.rates.append(rate)
            self.lookup[packed] = UInt16(self.codes.count)
        }
    }

    @inline(__always)
    static func pack<C: Collection<UInt8>>(_ bytes: C) -> Int? {
        guard bytes.count == 3 else { return nil }
        var packed = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") else { return nil }
            packed = packed * 26 + Int(byte - UInt8(ascii: "A"))
        }
        return packed
    }

    /// The index of a currency code, or nil when it is unknown.
    @inline(__always)
    public func index(of bytes: UnsafeRawBufferPointer) -> Int? {
        guard let packed = CurrencyTable.pack(bytes) else { return nil }
        let entry = self.lookup[packed]
        return entry == 0 ? nil : Int(entry) - 1
    }
}
