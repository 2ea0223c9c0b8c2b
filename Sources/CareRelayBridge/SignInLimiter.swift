import Foundation
import Synchronization

/// Limits sign-in attempts per client address, per invitation code and overall, in bounded
/// memory and constant time per attempt, however many distinct codes or addresses are tried.
///
/// Each address and each code keeps only its last `limit` attempt times (a sliding window:
/// an attempt is refused when `limit` attempts already fell within `window`). At most
/// `remembering` addresses and as many codes are kept; when a table is full, the one tried
/// least recently is forgotten. Forgetting can only let a forgotten address or code try again
/// early; the overall window, which nothing evicts, still holds every attempt from everyone to
/// `overallLimit` per `window`, so guessing codes with many addresses stays as slow as that.
public final class SignInLimiter: Sendable {
    private struct Tables {
        var addresses: AttemptTable<String>
        var codes: AttemptTable<String>
        var overall: AttemptTable<Int>
    }

    private let tables: Mutex<Tables>
    public let window: TimeInterval

    public init(limit: Int, overallLimit: Int, window: TimeInterval, remembering capacity: Int) {
        self.window = window
        tables = Mutex(
            Tables(
                addresses: AttemptTable(limit: limit, capacity: capacity),
                codes: AttemptTable(limit: limit, capacity: capacity),
                overall: AttemptTable(limit: overallLimit, capacity: 1)))
    }

    /// Records an attempt against the address, the code's hash and the overall window; false
    /// when any of them was already at its limit. Every attempt counts, refused ones too, so
    /// that trying on through a refusal keeps the refusal going.
    public func attempt(address: String, codeHash: String, now: Date) -> Bool {
        let time = now.timeIntervalSinceReferenceDate
        // 15 hex digits (60 bits) of the hash are plenty to tell codes apart and fit in a
        // Swift string without a heap allocation; two codes that share them would only share
        // one count, which is stricter, never looser.
        let code = String(codeHash.prefix(15))
        return tables.withLock { tables in
            let byAddress = tables.addresses.record(address, at: time, window: window)
            let byCode = tables.codes.record(code, at: time, window: window)
            let everyone = tables.overall.record(0, at: time, window: window)
            return byAddress && byCode && everyone
        }
    }

    /// How many addresses and codes are remembered now (at most twice the capacity).
    public var remembered: Int {
        tables.withLock { $0.addresses.count + $0.codes.count }
    }
}

/// The times of the last `limit` attempts of at most `capacity` keys, the key tried least
/// recently forgotten to make room. Slots live in arrays that grow to the capacity and no
/// further: a doubly linked list through the slots orders them by use, and each slot's
/// times are a ring in one shared array, so every attempt is O(1) and allocates nothing
/// once the table is full.
struct AttemptTable<Key: Hashable> {
    private struct Slot {
        var key: Key
        var older: Int
        var newer: Int
        /// How many of the slot's `limit` times are set, and where the oldest is once all are.
        var filled: Int
        var oldestTime: Int
    }

    private var slots: [Slot] = []
    /// Slot i's attempt times are at i * limit ..< (i + 1) * limit.
    private var times: [TimeInterval] = []
    private var index: [Key: Int] = [:]
    private var newest = -1
    private var oldest = -1
    let limit: Int
    let capacity: Int

    init(limit: Int, capacity: Int) {
        self.limit = max(1, limit)
        self.capacity = max(1, capacity)
    }

    var count: Int { index.count }

    /// Records an attempt by `key` at `now`; true when fewer than `limit` of its earlier
    /// attempts fall within `window` of it (the oldest of its last `limit` is then outside).
    mutating func record(_ key: Key, at now: TimeInterval, window: TimeInterval) -> Bool {
        let slot = use(key)
        let base = slot * limit
        if slots[slot].filled < limit {
            times[base + slots[slot].filled] = now
            slots[slot].filled += 1
            return true
        }
        let at = base + slots[slot].oldestTime
        let allowed = now - times[at] >= window
        times[at] = now
        slots[slot].oldestTime = (slots[slot].oldestTime + 1) % limit
        return allowed
    }

    /// The slot of `key`, made the most recently used: found, new, or the least recently
    /// used one given over to it when the table is full.
    private mutating func use(_ key: Key) -> Int {
        let slot: Int
        if let found = index[key] {
            slot = found
            unlink(slot)
        } else if slots.count < capacity {
            slot = slots.count
            slots.append(Slot(key: key, older: -1, newer: -1, filled: 0, oldestTime: 0))
            times.append(contentsOf: repeatElement(0, count: limit))
            index[key] = slot
        } else {
            slot = oldest
            unlink(slot)
            index[slots[slot].key] = nil
            slots[slot] = Slot(key: key, older: -1, newer: -1, filled: 0, oldestTime: 0)
            index[key] = slot
        }
        slots[slot].older = newest
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
        return slot
    }

    private mutating func unlink(_ slot: Int) {
        let older = slots[slot].older, newer = slots[slot].newer
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        slots[slot].older = -1
        slots[slot].newer = -1
    }
}
