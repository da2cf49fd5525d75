/// Identities merged by link events (union-find), with the member list of every merged group.
///
/// Links apply in event-time order, so the graph as it stands when a purchase applies is the graph
/// "as of" that purchase's time.
struct IdentityGraph: Sendable {
    /// Each identity's parent, up to the greatest identity ever linked. Paged with the engine's state
    /// (`setPaged`), so that the first link after a copy of the engine was taken (a checkpoint being
    /// written) copies one page, not 4 bytes per user.
    private var parent = PagedArray<Int32>(pageShift: 14)
    private var members: [Int32: [Int32]] = [:]

    /// Keeps the parents in pages, or in one array (`PagedArray.setPaged`).
    mutating func setPaged(_ paged: Bool) { self.parent.setPaged(paged) }

    /// The group's representative. Merging the smaller group into the larger keeps paths short
    /// (at most log2 of the group size), so no path compression is needed.
    func root(of identity: Int32) -> Int32 {
        guard Int(identity) < self.parent.count else { return identity }
        var node = identity
        while self.parent[Int(node)] != node { node = self.parent[Int(node)] }
        return node
    }

    mutating func link(_ a: Int32, _ b: Int32) {
        let needed = Int(max(a, b)) + 1
        if self.parent.count < needed {
            for node in self.parent.count..<needed { self.parent.append(Int32(node)) }
        }
        let rootA = self.root(of: a)
        let rootB = self.root(of: b)
        guard rootA != rootB else { return }
        var (bigRoot, smallRoot) = (rootA, rootB)
        var big = self.members.removeValue(forKey: rootA) ?? [rootA]
        var small = self.members.removeValue(forKey: rootB) ?? [rootB]
        if big.count < small.count {
            swap(&big, &small)
            swap(&bigRoot, &smallRoot)
        }
        self.parent[Int(smallRoot)] = bigRoot
        big.append(contentsOf: small)
        self.members[bigRoot] = big
    }

    /// Every identity linked to `identity` (itself included).
    func group(of identity: Int32) -> [Int32] {
        let root = self.root(of: identity)
        return self.members[root] ?? [identity]
    }
}

// MARK: Snapshots

extension IdentityGraph {
    /// Groups hold at most every node once.
    var snapshotByteEstimate: Int { 18 + 8 * self.parent.count + 14 * self.members.count }

    /// Writes the parents, then each merged group (root, members) in order of root.
    func write(to writer: inout SnapshotWriter) {
        self.parent.withParts { writer.write(rawParts: $0) }
        writer.write(count: self.members.count)
        for root in self.members.keys.sorted() {
            writer.write(root)
            writer.write(raw: self.members[root]!)
        }
    }

    /// Reads what `write(to:)` wrote: a forest (no cycles, at most 32 deep) over handles below
    /// `identities`, whose member lists are exactly the trees of two or more identities, each under its root.
    init(from reader: inout SnapshotReader, identities: Int) throws {
        let parent = try reader.readRaw(Int32.self)
        try SnapshotReader.require(parent.count <= identities, "the identity graph has more nodes than identities")
        for (node, next) in parent.enumerated() {
            try SnapshotReader.require(
                next >= 0 && Int(next) < parent.count, "identity \(node)'s parent is out of range")
        }
        // Every node's root and depth, by walking paths; nodes on the current path are marked -2, so
        // that a cycle is found rather than followed forever. Merging the smaller group into the
        // larger keeps depths within log2 of a group's size: a deeper tree would slow every lookup.
        var roots = [Int32](repeating: -1, count: parent.count)
        var depths = [Int](repeating: 0, count: parent.count)
        var path: [Int32] = []
        for node in 0..<parent.count where roots[node] == -1 {
            var current = Int32(node)
            while roots[Int(current)] == -1 && parent[Int(current)] != current {
                roots[Int(current)] = -2
                path.append(current)
                current = parent[Int(current)]
            }
            try SnapshotReader.require(roots[Int(current)] != -2, "the identity graph has a cycle")
            if roots[Int(current)] == -1 { roots[Int(current)] = current }
            let root = roots[Int(current)]
            var depth = depths[Int(current)]
            for member in path.reversed() {
                depth += 1
                roots[Int(member)] = root
                depths[Int(member)] = depth
            }
            try SnapshotReader.require(depth <= 32, "the identity graph is deeper than merging by size allows")
            path.removeAll(keepingCapacity: true)
        }
        var sizes: [Int32: Int] = [:]
        for (node, root) in roots.enumerated() where root != Int32(node) { sizes[root, default: 1] += 1 }
        let count = try reader.readCount(elementSize: 4 + 2 + 8)
        try SnapshotReader.require(count == sizes.count, "the identity graph lists \(count) groups, not \(sizes.count)")
        var members: [Int32: [Int32]] = [:]
        members.reserveCapacity(count)
        var previous: Int32 = -1
        for _ in 0..<count {
            let root = try reader.read(Int32.self)
            let group = try reader.readRaw(Int32.self)
            try SnapshotReader.require(
                root > previous && sizes[root] == group.count, "an identity group is not a tree of the graph")
            previous = root
            var seen = Set<Int32>()
            for member in group {
                try SnapshotReader.require(
                    member >= 0 && Int(member) < parent.count && roots[Int(member)] == root
                        && seen.insert(member).inserted,
                    "an identity group lists a member of another group")
            }
            members[root] = group
        }
        self.init()
        self.parent = PagedArray(parent, pageShift: self.parent.pageShift)
        self.members = members
    }
}
