/// The byte order of an interner's names (`Interner.compare`), as a rank per handle, kept up to date
/// as names are added: sorting by rank compares two integers instead of two names' bytes.
///
/// An interner only grows and never changes a name, so `update` sorts just the names added since it
/// last ran and merges them in: O(n) when names were added, nothing otherwise.
struct NameOrder: Sendable {
    /// Every handle ranked, in byte order of its name.
    private(set) var sorted: [Int32] = []
    /// By handle, its position in `sorted`.
    private(set) var ranks: [Int32] = []

    /// Ranks the names `interner` holds beyond those ranked already (the same interner, or one it
    /// grew into, every time).
    mutating func update(_ interner: Interner) {
        let ranked = self.ranks.count
        guard interner.count > ranked else { return }
        let added = (Int32(ranked)..<Int32(interner.count)).sorted { interner.compare($0, $1) }
        var merged: [Int32] = []
        merged.reserveCapacity(interner.count)
        var old = 0
        for handle in added {
            // Equal names cannot be two handles: a new name goes before the first old one after it.
            while old < self.sorted.count && interner.compare(self.sorted[old], handle) {
                merged.append(self.sorted[old])
                old += 1
            }
            merged.append(handle)
        }
        merged.append(contentsOf: self.sorted[old...])
        self.sorted = merged
        self.ranks = [Int32](repeating: 0, count: merged.count)
        for (rank, handle) in merged.enumerated() { self.ranks[Int(handle)] = Int32(rank) }
    }
}
