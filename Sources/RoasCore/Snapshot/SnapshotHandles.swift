/// How many handles the engine's interners and currency table give out: the bounds that handles
/// held elsewhere in a snapshot are checked against, so that no lookup can go out of range.
struct SnapshotHandles {
    var users: Int
    var creators: Int
    var campaigns: Int
    var currencies: Int

    /// Checks a row key: a creator and a campaign handle, each in range or -1 (null).
    func check(_ key: RowKey) throws {
        try SnapshotReader.require(
            key.creator >= -1 && Int(key.creator) < self.creators && key.campaign >= -1
                && Int(key.campaign) < self.campaigns,
            "a row key's creator or campaign handle is out of range")
    }

    /// Checks an index into the configuration's currency table.
    func checkCurrency(_ currency: Int) throws {
        try SnapshotReader.require(
            currency >= 0 && currency < self.currencies, "currency index \(currency) is out of range")
    }
}
