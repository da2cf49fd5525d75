/// The handles of the names an event refers to; -1 where it has none.
public struct EventHandles: Sendable, Equatable {
    public var user: Int32 = -1
    public var linked: Int32 = -1
    public var creator: Int32 = -1
    public var campaign: Int32 = -1

    public init() {}
}

/// Interned identities, creators and campaigns.
///
/// Interning can run on the reading thread: it sends the engine each new creator and campaign name
/// in the order it interned them, so the engine's table gives every name the same handle.
public struct NameTable: Sendable {
    public var users = Interner(capacity: 1 << 16)
    public var creators = Interner()
    public var campaigns = Interner()

    public init() {}

    /// The kinds of names the engine needs the text of (for rows).
    public enum Kind: UInt8, Sendable {
        case creator, campaign
    }

    /// The handles of `event`'s names, interning new ones.
    @inline(__always)
    public mutating func handles(for event: ParsedEvent) -> EventHandles {
        var handles = EventHandles()
        switch event.kind {
        case .view, .click:
            handles.user = self.users.intern(event.user)
            handles.creator = self.creators.intern(event.creator)
            if let campaign = event.campaign { handles.campaign = self.campaigns.intern(campaign) }
        case .spend:
            handles.creator = self.creators.intern(event.creator)
            if let campaign = event.campaign { handles.campaign = self.campaigns.intern(campaign) }
        case .purchase:
            handles.user = self.users.intern(event.user)
        case .link:
            handles.user = self.users.intern(event.user)
            handles.linked = self.users.intern(event.linked)
        case .refund:
            break
        }
        return handles
    }
}
