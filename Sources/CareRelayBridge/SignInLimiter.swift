import Foundation

/// Limits sign-in attempts per client address, per invitation code and overall, in bounded
/// memory and constant time per attempt, however many distinct codes or addresses are tried.
///
/// Each address and each code keeps only its last `limit` attempt times (a sliding window:
/// an attempt is refused when `limit` attempts already fell within `window`). At most
/// `remembering` addresses and as many codes are kept; when a table is full, the one tried
/// least recently is forgotten. Forgetting can only let a forgotten address or code try again
/// early; the overall window, which nothing evicts, still holds every attempt from everyone to
/// `overallLimit` per `window`, so guessing codes with many addresses stays as slow as that.
public final class SignInLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var addresses: RecentlyUsed<SlidingWindow>
    private var codes: RecentlyUsed<SlidingWindow>
    private var overall: SlidingWindow
    public let limit: Int
    public let window: TimeInterval

    public init(limit: Int, overallLimit: Int, window: TimeInterval, remembering capacity: Int) {
        self.limit = max(1, limit)
        self.window = window
        addresses = RecentlyUsed(capacity: max(1, capacity))
        codes = RecentlyUsed(capacity: max(1, capacity))
        overall = SlidingWindow(limit: max(1, overallLimit))
    }

    /// Records an attempt against the address, the code's hash and the overall window; false
    /// when any of them was already at its limit. Every attempt counts, refused ones too, so
    /// that trying on through a refusal keeps the refusal going.
    public func attempt(address: String, codeHash: String, now: Date) -> Bool {
        let limit = self.limit, window = self.window
        return lock.withLock {
            let byAddress = addresses.update(address, new: { SlidingWindow(limit: limit) }) { $0.record(now, window: window) }
            let byCode = codes.update(codeHash, new: { SlidingWindow(limit: limit) }) { $0.record(now, window: window) }
            let everyone = overall.record(now, window: window)
            return byAddress && byCode && everyone
        }
    }

    /// How many addresses and codes are remembered now (at most twice the capacity).
    public var remembered: Int {
        lock.withLock { addresses.count + codes.count }
    }
}

/// The times of the last `limit` attempts, oldest overwritten first.
struct SlidingWindow {
    private var times: [Date] = []
    private var oldest = 0
    let limit: Int

    init(limit: Int) {
        self.limit = limit
        times.reserveCapacity(limit)
    }

    /// Records an attempt at `now`; true when fewer than `limit` earlier ones fall within
    /// `window` of it (the oldest of the last `limit` is then outside it).
    mutating func record(_ now: Date, window: TimeInterval) -> Bool {
        if times.count < limit {
            times.append(now)
            return true
        }
        let allowed = now.timeIntervalSince(times[oldest]) >= window
        times[oldest] = now
        oldest = (oldest + 1) % limit
        return allowed
    }
}

/// A dictionary of at most `capacity` entries that forgets the least recently used one to
/// make room: a doubly linked list threaded through a fixed pool of slots, so every
/// operation is O(1) and nothing grows past the capacity.
struct RecentlyUsed<Value> {
    private struct Slot {
        var key: String
        var value: Value
        var older: Int
        var newer: Int
    }

    private var slots: [Slot] = []
    private var index: [String: Int] = [:]
    private var newest = -1
    private var oldest = -1
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { index.count }

    /// Runs `change` on the entry for `key` (made from `new` when absent, in the place of the
    /// least recently used entry when full) and makes it the most recently used.
    mutating func update<Result>(_ key: String, new: () -> Value, _ change: (inout Value) -> Result) -> Result {
        let slot: Int
        if let found = index[key] {
            slot = found
            unlink(slot)
        } else if slots.count < capacity {
            slot = slots.count
            slots.append(Slot(key: key, value: new(), older: -1, newer: -1))
            index[key] = slot
        } else {
            slot = oldest
            unlink(slot)
            index[slots[slot].key] = nil
            slots[slot].key = key
            slots[slot].value = new()
            index[key] = slot
        }
        // Make it the newest.
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
        return change(&slots[slot].value)
    }

    private mutating func unlink(_ slot: Int) {
        let older = slots[slot].older, newer = slots[slot].newer
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[newer].older = older } else { newest = older }
    }
}
