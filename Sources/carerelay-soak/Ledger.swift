import CareRelayProtocol
import Foundation
import Synchronization

/// What senders were told and what the receiving application got, kept by every thread of a
/// soak and compared at the end. Locked: senders and receivers write from their own threads.
///
/// `@unchecked Sendable`: every property is read and written only with `condition` held,
/// inside `lock` (callers outside read through `ledger.lock { ... }`) or in `wait`'s
/// predicate. An `NSCondition`, not a `Mutex`, because `wait` sleeps until something changes.
final class Ledger: @unchecked Sendable {
    private let condition = NSCondition()
    /// Idempotency key → message id, for every send the broker answered ACCEPTED.
    private(set) var accepted: [String: String] = [:]
    /// ACCEPTED answers marked duplicate: a resend whose first answer was lost (e.g. in a kill).
    private(set) var lateAcknowledgements = 0
    private(set) var lateKeys: [String] = []
    private(set) var refusals: [String: Int] = [:]
    private(set) var refusalReasons: [String: String] = [:]
    /// Message id → how many times the application was handed it (over all client instances).
    private(set) var handed: [String: Int] = [:]
    /// Idempotency key → the message ids delivered for it; more than one is a duplicate message.
    private(set) var idsForKey: [String: Set<String>] = [:]
    /// Deliveries whose body named no soak key (should not happen).
    private(set) var unreadable = 0
    /// Ids one client instance handed over twice, though it deduplicates.
    private(set) var repeatsWithinInstance = 0

    func lock<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        return body()
    }

    func recordAccepted(key: String, id: String, duplicate: Bool) {
        lock {
            accepted[key] = id
            if duplicate {
                lateAcknowledgements += 1
                lateKeys.append(key)
            }
        }
    }

    func recordRefusal(_ error: ProtocolError) {
        lock {
            refusals[error.code.name, default: 0] += 1
            refusalReasons[error.code.name] = error.reason
        }
    }

    func recordDelivery(id: String, key: String?, repeatWithinInstance: Bool) {
        lock {
            if repeatWithinInstance { repeatsWithinInstance += 1 }
            handed[id, default: 0] += 1
            if let key { idsForKey[key, default: []].insert(id) } else { unreadable += 1 }
        }
    }

    var acceptedCount: Int { lock { accepted.count } }

    /// Waits until `done` holds or `timeout` passes with no change at all; true if it held.
    func wait(idleTimeout timeout: TimeInterval, until done: () -> Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !done() {
            if !condition.wait(until: Date().addingTimeInterval(timeout)) { return done() }
        }
        return true
    }

    /// Waits until every accepted message has been handed to the application.
    func awaitAllDelivered(idleTimeout: TimeInterval) -> Bool {
        wait(idleTimeout: idleTimeout) { accepted.values.allSatisfy { handed[$0] != nil } }
    }

    /// The verdict on exactly-once delivery of what was accepted.
    struct Tally {
        var accepted = 0
        /// Accepted but never handed to the application.
        var lost = 0
        /// Keys delivered as more than one message, or ids handed over more than once by one
        /// client instance (which deduplicates): both mean the application saw a message twice.
        var duplicates = 0
        /// Ids handed over again after the application restarted: at-least-once, allowed.
        var redeliveries = 0
        /// Delivered, but under a key never acknowledged or for a different id than acknowledged.
        var phantoms = 0
    }

    func tally() -> Tally {
        lock {
            var tally = Tally(accepted: accepted.count)
            for id in accepted.values where handed[id] == nil { tally.lost += 1 }
            for (key, ids) in idsForKey {
                if ids.count > 1 { tally.duplicates += ids.count - 1 }
                if accepted[key] == nil || !ids.contains(accepted[key] ?? "") { tally.phantoms += 1 }
            }
            tally.duplicates += repeatsWithinInstance + unreadable
            tally.redeliveries = handed.values.reduce(0) { $0 + $1 - 1 } - repeatsWithinInstance
            return tally
        }
    }
}

/// Set once to ask worker threads to finish.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
