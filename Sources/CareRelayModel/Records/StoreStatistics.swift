import Foundation

/// The store's figures an operator watches: how much is waiting, for how long, and which
/// referrals are past their response target. Counts only: nothing here identifies a patient.
public struct StoreStatistics: Sendable, Equatable, Codable {
    /// The database file with its write-ahead log.
    public var storeBytes: Int64
    /// Messages stored (a count: never deleted, and on PostgreSQL counted as they are stored,
    /// since its sequences skip numbers).
    public var messages: Int64
    /// Deliveries stored and not yet confirmed by their recipient.
    public var undelivered: Int64
    /// When the oldest of those was accepted; nil when nothing waits.
    public var oldestUndeliveredAcceptedAt: Date?
    /// Referrals waiting for a team to accept or decline them, by team.
    public var intakeWaiting: [String: Int64]
    /// Referrals still untaken past their response target.
    public var overdueReferrals: Int64
    public var auditRows: Int64
    /// Notifications (email, SMS, webhook) queued and not yet taken by their channel,
    /// digests included.
    public var notificationsWaiting: Int64
    /// Notifications that every retry failed to send: someone was not told.
    public var notificationsFailed: Int64
    public init(
        storeBytes: Int64, messages: Int64, undelivered: Int64, oldestUndeliveredAcceptedAt: Date?, intakeWaiting: [String: Int64],
        overdueReferrals: Int64, auditRows: Int64, notificationsWaiting: Int64 = 0, notificationsFailed: Int64 = 0
    ) {
        self.notificationsWaiting = notificationsWaiting
        self.notificationsFailed = notificationsFailed
        self.storeBytes = storeBytes
        self.messages = messages
        self.undelivered = undelivered
        self.oldestUndeliveredAcceptedAt = oldestUndeliveredAcceptedAt
        self.intakeWaiting = intakeWaiting
        self.overdueReferrals = overdueReferrals
        self.auditRows = auditRows
    }
}
