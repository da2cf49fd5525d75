/// Identities merged by link events (union-find), with the member list of every merged group.
///
/// Links apply in event-time order, so the graph as it stands when a purchase applies is the graph
/// "as of" that purchase's time.
struct IdentityGraph: Sendable {
    private var parent: [Int32] = []
    private var members: [Int32: [Int32]] = [:]

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
            self.parent.append(contentsOf: (self.parent.count..<needed).map { Int32($0) })
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
