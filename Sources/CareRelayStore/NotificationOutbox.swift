import CareRelayModel
import Foundation
import GRDB

/// The notifications waiting to leave: emails, texts and webhook calls, queued with the
/// message that caused each (`NewMessage.notifications`). The sender beside the broker's loop
/// works them on a connection of its own (`StoreProvider.openOutbox`), so a slow mail relay
/// never holds up routing.
///
/// A notification is claimed for a lease before it is sent and marked sent after. A sender
/// that dies in between leaves it to be claimed again when the lease runs out, and sent again
/// with the same id: at least once, and never twice unnoticed, since every channel carries
/// the id for the receiver to recognise. Several brokers sharing a store never claim the same
/// one at once.
public protocol NotificationOutbox: AnyObject {
    /// Up to `limit` notifications due by `now` that nobody holds, urgent first, each now held
    /// for `lease` seconds and its attempt counted.
    func claimNotifications(dueBy now: Date, limit: Int, lease: TimeInterval) throws -> [ClaimedNotification]
    func notificationsSent(_ ids: [String], at now: Date) throws
    /// An attempt failed: try again from `retryAt`, or, when nil, never (recorded as failed).
    func notificationsFailed(_ ids: [String], error: String, retryAt: Date?, at now: Date) throws
    /// When the next queued notification falls due (or its lease runs out), so the sender
    /// sleeps until then.
    func nextNotificationDue() throws -> Date?
}

public struct ClaimedNotification: Sendable, Equatable {
    public var record: NotificationRecord
    /// Attempts so far, this one included.
    public var attempts: Int
    public var lastError: String?

    public init(record: NotificationRecord, attempts: Int, lastError: String? = nil) {
        self.record = record
        self.attempts = attempts
        self.lastError = lastError
    }
}

/// The notification table's columns, written and read alike by both stores.
public enum NotificationColumns {
    public static let written = [
        "id", "message", "recipient", "channel", "address", "event", "urgent", "subject", "body", "link", "created_at", "due_at", "digest",
    ]

    static let sqliteTable = """
        CREATE TABLE notification (
            id TEXT PRIMARY KEY,
            message TEXT NOT NULL,
            recipient TEXT NOT NULL,
            channel TEXT NOT NULL,
            address TEXT NOT NULL,
            event TEXT NOT NULL,
            urgent INTEGER NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            link TEXT,
            created_at REAL NOT NULL,
            due_at REAL NOT NULL,
            digest INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            claimed_until REAL,
            sent_at REAL
        );
        CREATE INDEX notification_due ON notification(state, due_at);
        """

    static let sqliteInsert =
        "INSERT OR IGNORE INTO notification (\(written.joined(separator: ", "))) VALUES (\(written.map { _ in "?" }.joined(separator: ", ")))"

    /// Reminders that no longer apply: the referral was taken (or declined, or withdrawn), or
    /// the meeting's agenda was published again (its actions are planned again from it).
    public static let cancelEvents = [NotificationEvent.referralDueSoon.rawValue, NotificationEvent.mdtActionDue.rawValue]
    static let sqliteCancel =
        "UPDATE notification SET state = 'cancelled' WHERE message = ? AND state = 'queued' AND event IN ('\(cancelEvents.joined(separator: "', '"))')"

    /// The values of `written`, in order.
    static func values(_ n: NotificationRecord) -> [(any DatabaseValueConvertible)?] {
        [
            n.id, n.message, n.recipient, n.channel.rawValue, n.address, n.event.rawValue, n.urgent ? 1 : 0, n.subject, n.text, n.link,
            n.createdAt.timeIntervalSince1970, n.dueAt.timeIntervalSince1970, n.digest ? 1 : 0,
        ]
    }

    /// A record from its columns as text and numbers; nil for a row this version cannot read
    /// (an event or channel it does not know), which the sender then leaves alone.
    public static func record(
        id: String, message: String, recipient: String, channel: String, address: String, event: String, urgent: Bool, subject: String,
        body: String, link: String?, createdAt: Double, dueAt: Double, digest: Bool
    ) -> NotificationRecord? {
        guard let channel = NotificationChannelKind(rawValue: channel), let event = NotificationEvent(rawValue: event) else { return nil }
        return NotificationRecord(
            id: id, message: message, recipient: recipient, channel: channel, address: address, event: event, urgent: urgent, subject: subject,
            text: body, link: link, createdAt: Date(timeIntervalSince1970: createdAt), dueAt: Date(timeIntervalSince1970: dueAt), digest: digest)
    }
}

/// The outbox of a SQLite store, on a writing connection of its own beside the broker's. Its
/// transactions are a few rows each, so the broker's commits wait for them at most briefly.
public final class SQLiteOutbox: NotificationOutbox {
    private let db: DatabaseQueue

    public init(path: String) throws {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        db = try DatabaseQueue(path: path, configuration: config)
    }

    public func claimNotifications(dueBy now: Date, limit: Int, lease: TimeInterval) throws -> [ClaimedNotification] {
        try db.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    UPDATE notification SET claimed_until = ?, attempts = attempts + 1
                    WHERE id IN (
                        SELECT id FROM notification
                        WHERE state = 'queued' AND due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                        ORDER BY urgent DESC, due_at LIMIT ?)
                    RETURNING \(NotificationColumns.written.joined(separator: ", ")), attempts, last_error
                    """,
                arguments: [now.timeIntervalSince1970 + lease, now.timeIntervalSince1970, now.timeIntervalSince1970, limit])
            return rows.compactMap { row in
                NotificationColumns.record(
                    id: row["id"], message: row["message"], recipient: row["recipient"], channel: row["channel"], address: row["address"],
                    event: row["event"], urgent: row["urgent"], subject: row["subject"], body: row["body"], link: row["link"],
                    createdAt: row["created_at"], dueAt: row["due_at"], digest: row["digest"]
                ).map { ClaimedNotification(record: $0, attempts: row["attempts"], lastError: row["last_error"]) }
            }.sorted { ($0.record.urgent ? 0 : 1, $0.record.dueAt) < ($1.record.urgent ? 0 : 1, $1.record.dueAt) }
        }
    }

    public func notificationsSent(_ ids: [String], at now: Date) throws {
        try db.write { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE notification SET state = 'sent', sent_at = ?, claimed_until = NULL WHERE id = ?",
                    arguments: [now.timeIntervalSince1970, id])
            }
        }
    }

    public func notificationsFailed(_ ids: [String], error: String, retryAt: Date?, at now: Date) throws {
        try db.write { db in
            for id in ids {
                if let retryAt {
                    try db.execute(
                        sql: "UPDATE notification SET due_at = ?, claimed_until = NULL, last_error = ? WHERE id = ?",
                        arguments: [retryAt.timeIntervalSince1970, error, id])
                } else {
                    try db.execute(
                        sql: "UPDATE notification SET state = 'failed', claimed_until = NULL, last_error = ? WHERE id = ?", arguments: [error, id])
                }
            }
        }
    }

    public func nextNotificationDue() throws -> Date? {
        try db.read { db in
            try Double.fetchOne(
                db, sql: "SELECT MIN(MAX(due_at, COALESCE(claimed_until, 0))) FROM notification WHERE state = 'queued'"
            ).map(Date.init(timeIntervalSince1970:))
        }
    }
}
