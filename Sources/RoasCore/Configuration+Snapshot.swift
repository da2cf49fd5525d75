extension EngineConfiguration {
    /// Writes every option that changes results, for `checkSnapshot(from:)` to compare.
    func writeSnapshot(to writer: inout SnapshotWriter) {
        writer.write(self.modelsText)
        for value in [self.clickLookback, self.viewLookback, self.halfLife, self.window, self.slide] {
            writer.write(value)
        }
        writer.write(self.byCampaign)
        writer.write(self.byTier)
        writer.write(self.lateness)
        writer.write(self.dedupHorizon)
        writer.write(count: self.currencies.codes.count)
        for (code, rate) in zip(self.currencies.codes, self.currencies.rates) {
            writer.write(code)
            writer.write(rate)
        }
        writer.write(self.keepsDeadLetters)
    }

    /// The models as a snapshot records them: the model's name alone without `--models` (the bytes of
    /// a layout-2 snapshot), "models=" and the list with it.
    var modelsText: String {
        self.labelsModels ? "models=" + self.models.map(\.rawValue).joined(separator: ",") : self.model.rawValue
    }

    /// Reads the options a snapshot was taken with and compares them with these.
    ///
    /// The half-life counts only when either model is time-decay, the only one that uses it.
    /// - Throws: `SnapshotError.configurationMismatch` naming every option that differs, such as
    ///   "--window 1h in the snapshot, 30m now"; `SnapshotError.invalid` when the options cannot be read.
    func checkSnapshot(from reader: inout SnapshotReader) throws {
        let modelsText = try reader.readString()
        let names =
            modelsText.hasPrefix("models=")
            ? modelsText.dropFirst(7).split(separator: ",", omittingEmptySubsequences: false) : [modelsText[...]]
        let models = try names.map { name in
            guard let model = AttributionModel(rawValue: String(name)) else {
                throw SnapshotError.invalid("unknown attribution model '\(name)'")
            }
            return model
        }
        var differences: [String] = []
        func compare<T: Equatable>(_ flag: String, _ recorded: T, _ current: T, _ text: (T) -> String) {
            if recorded != current {
                differences.append("\(flag) \(text(recorded)) in the snapshot, \(text(current)) now")
            }
        }
        func duration(_ value: Int64) -> String { value < 0 ? "\(value)ms" : DurationText.text(value) }
        if modelsText != self.modelsText {
            func flag(_ text: String) -> String { text.hasPrefix("models=") ? "--models " + text.dropFirst(7) : "--model " + text }
            // "--model a in the snapshot, b now", like every other option; the flags in full when one is --models.
            let now = modelsText.hasPrefix("models=") || self.labelsModels ? flag(self.modelsText) : self.modelsText
            differences.append("\(flag(modelsText)) in the snapshot, \(now) now")
        }
        let clickLookback = try reader.read(Int64.self)
        let viewLookback = try reader.read(Int64.self)
        let halfLife = try reader.read(Int64.self)
        let window = try reader.read(Int64.self)
        let slide = try reader.read(Int64.self)
        let byCampaign = try reader.readBool()
        let byTier = try reader.readBool()
        let lateness = try reader.read(Int64.self)
        let dedupHorizon = try reader.read(Int64.self)
        compare("--window", window, self.window, duration)
        compare("--slide", slide, self.slide, duration)
        compare("--lateness", lateness, self.lateness, duration)
        compare("--click-lookback", clickLookback, self.clickLookback, duration)
        compare("--view-lookback", viewLookback, self.viewLookback, duration)
        if models.contains(.timeDecay) || self.models.contains(.timeDecay) { compare("--half-life", halfLife, self.halfLife, duration) }
        compare("--by", [byTier, byCampaign], [self.byTier, self.byCampaign]) {
            ($0[0] ? "tier" : "creator") + ($0[1] ? ",campaign" : "")
        }
        compare("--dedup-horizon", dedupHorizon, self.dedupHorizon, duration)
        let count = try reader.readCount(elementSize: 8 + 8)
        var codes: [String] = []
        var rates: [Double] = []
        for _ in 0..<count {
            codes.append(try reader.readString())
            rates.append(try reader.readDouble())
        }
        try SnapshotReader.require(!codes.isEmpty, "the snapshot has no base currency")
        compare("--base-currency", codes[0], self.currencies.base) { $0 }
        func rateList(_ codes: [String], _ rates: [Double]) -> String {
            codes.count <= 1 ? "none" : zip(codes, rates).dropFirst().map { "\($0)=\($1)" }.joined(separator: " ")
        }
        if codes[0] == self.currencies.base && (codes != self.currencies.codes || rates != self.currencies.rates) {
            let current = rateList(self.currencies.codes, self.currencies.rates)
            differences.append("rates \(rateList(codes, rates)) in the snapshot, \(current) now")
        }
        // Whether dead-letter records are written (`--dead-letter`) may change between runs: it only
        // decides whether waiting events keep their raw line, and a restored one without it is
        // dead-lettered with an empty `raw`.
        _ = try reader.readBool()
        if !differences.isEmpty { throw SnapshotError.configurationMismatch(differences.joined(separator: "; ")) }
    }
}

extension EngineConfiguration {
    /// The options that change rows, and `--partitions`, as `roas serve --nats` records them with its
    /// stream, so that every `roas worker` can check its own against them (`checkOptionsRecord`).
    public var optionsRecord: [UInt8] {
        var writer = SnapshotWriter()
        writer.write(UInt64(1))
        writer.write(UInt64(self.partitions))
        self.writeSnapshot(to: &writer)
        return writer.bytes
    }

    /// Compares these options with a record made by `optionsRecord`.
    /// - Throws: `RoasError(.options)` naming every option that differs ("--window 1h there,
    ///   30m now"), or saying the record cannot be read.
    public func checkOptionsRecord(_ record: [UInt8], source: String) throws {
        do {
            try record.withUnsafeBytes { bytes in
                var reader = SnapshotReader(bytes)
                guard try reader.read(UInt64.self) == 1 else { throw SnapshotError.invalid("an options record of another version") }
                let partitions = try reader.read(UInt64.self)
                var differences: [String] = []
                if partitions != UInt64(self.partitions) {
                    differences.append("--partitions \(partitions) in the snapshot, \(self.partitions) now")
                }
                do {
                    try self.checkSnapshot(from: &reader)
                } catch SnapshotError.configurationMismatch(let text) {
                    differences.append(text)
                }
                if !differences.isEmpty { throw SnapshotError.configurationMismatch(differences.joined(separator: "; ")) }
            }
        } catch SnapshotError.configurationMismatch(let text) {
            throw RoasError(
                .options,
                "\(source) was made with other options: " + text.replacing(" in the snapshot, ", with: " there, "))
        } catch {
            throw RoasError(.options, "\(source) holds options this build cannot read (\(error))")
        }
    }
}
