import CareRelayModel
import Foundation
import Testing
@testable import CareRelayStore

/// The notification outbox's contract on each store: queued with the message in one
/// transaction, claimed once while held, retried when asked, failed for good when told.
@Suite struct NotificationOutboxTests {
    typealias Kind = StoreContractTests.Kind

    static func notification(_ id: String, message: String, urgent: Bool = false, dueIn: TimeInterval = 0, at now: Date) -> NotificationRecord {
        NotificationRecord(
            id: id, message: message, recipient: "person:coord.patel", channel: .email, address: "coord.patel@care.example",
            event: .referralNew, urgent: urgent, subject: "1 new referral for West social care intake", text: "A referral has arrived.",
            link: "carerelay referral inbox", createdAt: now, dueAt: now.addingTimeInterval(dueIn), digest: dueIn > 0)
    }

    func message(_ id: String, notifications: [NotificationRecord], at now: Date) -> NewMessage {
        var message = NewMessage(
            id: id, key: "key-\(id)", kind: .referral, sender: "gp.khan", envelope: Array("{}".utf8), patient: nil, correlation: nil,
            body: Array("{}".utf8), bodyHash: Array(id.utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: "coord.patel", decision: .deliver, rule: "R6-implied-consent")], referral: nil,
            audit: [AuditEntry(at: now, actor: "gp.khan", action: .accept, message: id)])
        message.notifications = notifications
        return message
    }

    @Test("notifications are stored with their message, once, and claimed by one sender at a time", arguments: Kind.available)
    func claimedOnce(_ kind: Kind) throws {
        let provider = try kind.provider()
        let store = try provider.open()
        defer { store.close() }
        // Whole seconds: times are stored as seconds, compared here exactly.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let first = Self.notification("m1.referral.new.person-coord.patel.email", message: "m1", at: now)
        let urgent = Self.notification("m2.referral.new.person-coord.patel.email", message: "m2", urgent: true, at: now)
        let digest = Self.notification("m3.referral.new.person-coord.patel.email", message: "m3", dueIn: 3_600, at: now)
        _ = try store.accept(
            [
                message("m1", notifications: [first], at: now), message("m2", notifications: [urgent], at: now),
                message("m3", notifications: [digest], at: now),
            ],
            confirming: [], at: now)
        // The same message again (a resend): nothing more is queued.
        _ = try store.accept([message("m1", notifications: [first], at: now)], confirming: [], at: now)
        #expect(try store.statistics(at: now).notificationsWaiting == 3)

        let one = try provider.openOutbox()
        let other = try provider.openOutbox()
        let claimed = try one.claimNotifications(dueBy: now, limit: 10, lease: 60)
        // Urgent first; the digest is not due yet.
        #expect(claimed.map(\.record.id) == [urgent.id, first.id])
        #expect(claimed.map(\.attempts) == [1, 1])
        #expect(claimed.first?.record == urgent)
        #expect(try other.claimNotifications(dueBy: now, limit: 10, lease: 60).isEmpty, "held by the first sender")
        #expect(try other.nextNotificationDue() == now.addingTimeInterval(60), "the lease runs out before the digest is due")

        try one.notificationsSent([urgent.id], at: now)
        try one.notificationsFailed([first.id], error: "451 try again later", retryAt: now.addingTimeInterval(30), at: now)
        #expect(try other.claimNotifications(dueBy: now.addingTimeInterval(29), limit: 10, lease: 60).isEmpty)
        let again = try other.claimNotifications(dueBy: now.addingTimeInterval(30), limit: 10, lease: 60)
        #expect(again.map(\.record.id) == [first.id])
        #expect(again.first?.attempts == 2)
        #expect(again.first?.lastError == "451 try again later")
        try other.notificationsFailed([first.id], error: "gave up", retryAt: nil, at: now)

        let statistics = try store.statistics(at: now)
        #expect(statistics.notificationsWaiting == 1, "the digest")
        #expect(statistics.notificationsFailed == 1)
        // A sender that died holding one: it is claimed again when the lease runs out.
        let held = try one.claimNotifications(dueBy: now.addingTimeInterval(3_600), limit: 10, lease: 60)
        #expect(held.map(\.record.id) == [digest.id])
        #expect(try other.claimNotifications(dueBy: now.addingTimeInterval(3_659), limit: 10, lease: 60).isEmpty)
        #expect(try other.claimNotifications(dueBy: now.addingTimeInterval(3_660), limit: 10, lease: 60).map(\.record.id) == [digest.id])
    }
}
