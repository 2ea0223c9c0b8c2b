import CareRelayModel
import CareRelayStore
import Foundation

/// What the store could not take while it was failing (a database restarting, a lost
/// connection, a full disk), kept so that nothing is left behind once it answers again:
/// confirmations receivers sent, deliveries that went out, and mailboxes that could not be
/// read for people still connected. Retried at most once a second, so a failing store is not
/// hammered; a confirmation is never dropped (`track`, `status` and the metrics agree with
/// what receivers confirmed once it is written).
struct StoreBacklog {
    var confirmations: [DeliveryConfirmation] = []
    var sent: [(seq: Int64, recipient: PersonID)] = []
    var withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)] = []
    var audit: [AuditEntry] = []
    /// People whose mailbox could not be read: their deliveries wait for the store, not for a
    /// new HELLO.
    var unreadMailboxes: Set<PersonID> = []
    var nextAttempt = Date.distantPast

    var isEmpty: Bool {
        confirmations.isEmpty && sent.isEmpty && withheld.isEmpty && audit.isEmpty && unreadMailboxes.isEmpty
    }

    /// Delivery records beyond this many are dropped, oldest first, rather than let memory
    /// grow without end during a long outage: a delivery without its record is still pending
    /// in the store and goes out again, which the client's deduplication absorbs.
    static let maxDeliveryRecords = 100_000

    /// A mailbox that could not be read, or a delivery that could not be decided, for a
    /// person still connected: tried again a second from now at the earliest, not on every turn.
    mutating func keepUnread(_ person: PersonID, now: Date) {
        unreadMailboxes.insert(person)
        nextAttempt = max(nextAttempt, now.addingTimeInterval(1))
    }

    mutating func keep(
        sent: [(seq: Int64, recipient: PersonID)], withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)], audit: [AuditEntry]
    ) {
        self.sent = Array((self.sent + sent).suffix(Self.maxDeliveryRecords))
        self.withheld += withheld
        self.audit = Array((self.audit + audit).suffix(Self.maxDeliveryRecords))
    }
}

extension BrokerCore {
    /// Writes what the store could not take before, once it answers again. Called every loop
    /// turn; does nothing until the next attempt is due.
    func retryStoreBacklog(now: Date) {
        guard !storeBacklog.isEmpty, now >= storeBacklog.nextAttempt else { return }
        var backlog = storeBacklog
        do {
            for confirmation in backlog.confirmations {
                _ = try store.confirm(recipient: confirmation.recipient, ids: confirmation.ids, at: now)
            }
            backlog.confirmations.removeAll()
            if !backlog.sent.isEmpty || !backlog.withheld.isEmpty || !backlog.audit.isEmpty {
                try store.recordDeliveries(sent: backlog.sent, withheld: backlog.withheld, audit: backlog.audit, at: now)
                backlog.sent.removeAll()
                backlog.withheld.removeAll()
                backlog.audit.removeAll()
            }
            if !backlog.unreadMailboxes.isEmpty {
                // Nothing above touched the store: ask it something cheap before saying it
                // answers, or a store that is still down would be read on every turn.
                _ = try store.nextReferralDeadline()
            }
            vitals.store(healthy: true)
            // Read again from the start: what was in flight when the store failed may still
            // be unconfirmed.
            for person in backlog.unreadMailboxes {
                sessions.readAgain(person)
            }
            backlog.unreadMailboxes.removeAll()
            logger.notice("the store answers again; what it could not take is written and waiting mailboxes are read")
        } catch {
            backlog.nextAttempt = now.addingTimeInterval(1)
        }
        storeBacklog = backlog
    }
}
