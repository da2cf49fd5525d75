import CRoasPrefetch

/// An array of plain values kept in pages, for the big tables of an engine that is copied while it
/// runs (`roas serve` writes a checkpoint from a copy, on another thread). A copy shares the pages;
/// a write then replaces only the page it lands on by a copy of its own, where an `Array` would copy
/// all of its elements at the first write: at 10M users the user interner's table alone is about
/// 1 GB, which stalled the chunk that first wrote to it.
///
/// Paged (`setPaged(true)`, `EngineConfiguration.pagedState`), a page holds `1 << pageShift`
/// elements; unpaged (an engine that is never copied, `roas run`'s), the array is one page that
/// doubles as it grows, as an `Array`'s buffer does. Both forms are read the same way, without a
/// branch: the page's address (one more load than an `Array`'s, from a small array that stays in
/// cache), then the element. The last page of a paged array starts small and doubles up to a page,
/// so a small array costs little.
///
/// A page is written only while one array alone holds it (`isKnownUniquelyReferenced`); a copy
/// being read on another thread holds its pages, so they never change under it. Hence
/// `@unchecked Sendable`.
struct PagedArray<Element: SnapshotRaw & BitwiseCopyable>: @unchecked Sendable {
    /// A page: its capacity, then its elements. Elements are plain values: nothing to deinitialize.
    final class Page: ManagedBuffer<Int, Element> {
        static func make(capacity: Int) -> Page {
            unsafeDowncast(Page.create(minimumCapacity: capacity) { _ in capacity }, to: Page.self)
        }

        var elements: UnsafeMutablePointer<Element> { self.withUnsafeMutablePointerToElements { $0 } }
    }

    /// log2 of a page's elements once paged.
    let pageShift: Int
    /// The shift in use: `pageShift` when paged, `unpagedShift` (one page for any count) when not.
    private var shift: Int
    private var mask: Int
    private var pages: [Page] = []
    /// Where each page keeps its elements: fixed for the page's life, read without touching the page.
    private var bases: [UnsafeMutablePointer<Element>] = []
    private(set) var count = 0
    /// How many pages were replaced by a copy of their own because a copy of the array held them (for tests).
    private(set) var pagesCopied = 0

    /// An unpaged array's one page holds up to 2^40 elements (more than memory).
    private static var unpagedShift: Int { 40 }

    var isPaged: Bool { self.shift == self.pageShift }

    /// An empty array, paged or not; `pageShift` is log2 of the elements a page holds once paged.
    init(pageShift: Int, paged: Bool = false) {
        precondition(pageShift > 0 && pageShift < 32)
        self.pageShift = pageShift
        self.shift = paged ? pageShift : PagedArray.unpagedShift
        self.mask = (1 << self.shift) - 1
    }

    /// `count` copies of `element`.
    init(repeating element: Element, count: Int, pageShift: Int, paged: Bool = false) {
        self.init(pageShift: pageShift, paged: paged)
        self.append(repeating: element, count: count)
    }

    /// The elements of `elements`, paged or not.
    init(_ elements: [Element], pageShift: Int, paged: Bool = false) {
        self.init(pageShift: pageShift, paged: paged)
        elements.withUnsafeBufferPointer { self.append(contentsOf: $0) }
    }

    subscript(index: Int) -> Element {
        @inline(__always) get {
            precondition(index >= 0 && index < self.count, "PagedArray index out of range")
            return self.bases[index >> self.shift][index & self.mask]
        }
        @inline(__always) set {
            precondition(index >= 0 && index < self.count, "PagedArray index out of range")
            self.writableBase(ofPage: index >> self.shift)[index & self.mask] = newValue
        }
    }

    /// Writes `element` at `index` and returns the element it replaces: one look-up of the page.
    @inline(__always)
    mutating func exchange(_ index: Int, with element: Element) -> Element {
        precondition(index >= 0 && index < self.count, "PagedArray index out of range")
        let slot = self.writableBase(ofPage: index >> self.shift) + (index & self.mask)
        let old = slot.pointee
        slot.pointee = element
        return old
    }

    /// Where page `page`'s elements are, once it is this array's alone (copied first when a copy of
    /// the array holds it too).
    @inline(__always)
    private mutating func writableBase(ofPage page: Int) -> UnsafeMutablePointer<Element> {
        if _slowPath(!isKnownUniquelyReferenced(&self.pages[page])) { self.copyPage(page) }
        return self.bases[page]
    }

    @inline(never)
    private mutating func copyPage(_ page: Int) {
        let old = self.pages[page]
        let capacity = old.header
        let copy = Page.make(capacity: capacity)
        copy.elements.initialize(from: old.elements, count: min(capacity, self.count - page << self.shift))
        self.pages[page] = copy
        self.bases[page] = copy.elements
        self.pagesCopied += 1
    }

    /// Starts loading the element at `index` into the cache (a hint: an index out of range is ignored).
    @inline(__always)
    func prefetch(_ index: Int) {
        guard index >= 0 && index < self.count else { return }
        roas_prefetch(self.bases[index >> self.shift] + (index & self.mask))
    }

    /// `prefetch(_:)` for an element about to be written: its page's reference count too, which the
    /// write reads (`isKnownUniquelyReferenced`): 16 bytes before the elements, after the object's
    /// type and before the page's capacity. Another cache line than the element's when paged; when
    /// not, the one page's, which stays in cache.
    @inline(__always)
    func prefetchForWrite(_ index: Int) {
        guard index >= 0 && index < self.count else { return }
        let base = self.bases[index >> self.shift]
        roas_prefetch(UnsafeRawPointer(base) - 16)
        roas_prefetch(base + (index & self.mask))
    }

    /// Keeps the elements in pages of `1 << pageShift`, or in one page: the same elements either way.
    mutating func setPaged(_ paged: Bool) {
        guard paged != self.isPaged else { return }
        var other = PagedArray(pageShift: self.pageShift, paged: paged)
        self.withParts { parts in for part in parts { other.append(contentsOf: part) } }
        other.pagesCopied = self.pagesCopied
        self = other
    }

    /// Makes an unpaged array's one page hold at least `capacity` elements, so appends up to it
    /// never copy the elements already there (a paged array's pages are whole already: nothing to do).
    /// Memory the system gives zeroed is touched only as elements are appended.
    mutating func reserveCapacity(_ capacity: Int) {
        guard !self.isPaged, capacity > (self.pages.first?.header ?? 0) else { return }
        let grown = Page.make(capacity: capacity)
        if let old = self.pages.first { grown.elements.initialize(from: old.elements, count: self.count) }
        self.pages = [grown]
        self.bases = [grown.elements]
    }

    /// Makes room for one more element on the last page: a new page, or the last one grown.
    @inline(never)
    private mutating func makeRoom() {
        let page = self.count >> self.shift
        if page == self.pages.count {
            // A first page starts small; later ones are whole.
            let capacity = page == 0 ? min(16, 1 << self.shift) : 1 << self.shift
            let made = Page.make(capacity: capacity)
            self.pages.append(made)
            self.bases.append(made.elements)
            return
        }
        // The first page, grown (only the first is ever smaller than a page).
        let old = self.pages[page]
        let grown = Page.make(capacity: min(1 << self.shift, old.header * 2))
        grown.elements.initialize(from: old.elements, count: self.count & self.mask)
        self.pages[page] = grown
        self.bases[page] = grown.elements
    }

    @inline(__always)
    private func hasRoom() -> Bool {
        let page = self.count >> self.shift
        return page < self.pages.count && (self.count & self.mask) < self.pages[page].header
    }

    @inline(__always)
    mutating func append(_ element: Element) {
        if _slowPath(!self.hasRoom()) { self.makeRoom() }
        self.writableBase(ofPage: self.count >> self.shift)[self.count & self.mask] = element
        self.count += 1
    }

    mutating func append(repeating element: Element, count: Int) {
        self.append(count) { destination, _, take in destination.initialize(repeating: element, count: take) }
    }

    mutating func append(contentsOf elements: UnsafeBufferPointer<Element>) {
        guard let source = elements.baseAddress else { return }
        self.append(elements.count) { destination, done, take in destination.initialize(from: source + done, count: take) }
    }

    /// Appends `count` elements page by page: `fill` initializes `take` of them at `destination`,
    /// `done` having been appended before.
    private mutating func append(_ count: Int, _ fill: (UnsafeMutablePointer<Element>, Int, Int) -> Void) {
        var done = 0
        while done < count {
            if !self.hasRoom() { self.makeRoom() }
            let page = self.count >> self.shift
            let offset = self.count & self.mask
            let take = min(count - done, self.pages[page].header - offset)
            fill(self.writableBase(ofPage: page) + offset, done, take)
            self.count += take
            done += take
        }
    }

    /// Calls `body` with the elements from `start` to `end` in one buffer: in place when they are on
    /// one page (always, when not paged), else copied together.
    @inline(__always)
    func withElements<R>(from start: Int, to end: Int, _ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        precondition(start >= 0 && start <= end && end <= self.count, "PagedArray range out of bounds")
        if start == end { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
        let page = start >> self.shift
        if _fastPath((end - 1) >> self.shift == page) {
            // `self` is borrowed for the call, so its pages live until it returns (no retain here:
            // row keys are compared through this when windows close).
            return try body(UnsafeBufferPointer(start: self.bases[page] + (start & self.mask), count: end - start))
        }
        return try self.joined(from: start, to: end).withUnsafeBufferPointer { try body($0) }
    }

    /// The elements from `start` to `end`, which span pages, in one array.
    @inline(never)
    private func joined(from start: Int, to end: Int) -> [Element] {
        [Element](unsafeUninitializedCapacity: end - start) { buffer, initialized in
            var at = start
            while at < end {
                let take = min(end - at, (1 << self.shift) - (at & self.mask))
                (buffer.baseAddress! + (at - start)).initialize(from: self.bases[at >> self.shift] + (at & self.mask), count: take)
                at += take
            }
            initialized = end - start
        }
    }

    /// Calls `body` with every element, page by page, in order (for writing a snapshot).
    func withParts<R>(_ body: ([UnsafeBufferPointer<Element>]) throws -> R) rethrows -> R {
        try withExtendedLifetime(self.pages) {
            let parts = self.bases.indices.map { page in
                UnsafeBufferPointer(start: UnsafePointer(self.bases[page]), count: min(1 << self.shift, self.count - page << self.shift))
            }
            return try body(parts)
        }
    }

    /// The elements in one array (for tests).
    var elements: [Element] {
        self.withParts { parts in parts.flatMap { Array($0) } }
    }
}
