import CareRelayModel
import CareRelayStore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The notification outbox on a connection of its own. `FOR UPDATE SKIP LOCKED` lets the
/// senders of several brokers claim from one queue without taking the same notification.
public final class PostgresOutbox: NotificationOutbox, Sendable {
    private let connection: Mutex<PostgresConnection?>
    private let location: PostgresLocation
    private let logger: Logger

    init(_ location: PostgresLocation) throws {
        var logger = Logger(label: "carerelay.store.postgres.outbox")
        logger.logLevel = .warning
        self.logger = logger
        self.location = location
        connection = Mutex(try PostgresStore.connect(location, logger: logger))
    }

    public func claimNotifications(dueBy now: Date, limit: Int, lease: TimeInterval) throws -> [ClaimedNotification] {
        let at = now.timeIntervalSince1970
        let rows = try run(
            """
            UPDATE notification SET claimed_until = \(at + lease), attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM notification
                WHERE state = 'queued' AND due_at <= \(at) AND (claimed_until IS NULL OR claimed_until <= \(at))
                ORDER BY urgent DESC, due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, message, recipient, channel, address, event, urgent, subject, body, link, created_at, due_at, digest, attempts, last_error
            """)
        var claimed: [ClaimedNotification] = []
        for row in rows {
            let c = try row.decode(
                (String, String, String, String, String, String, Bool, String, String, String?, Double, Double, Bool, Int, String?).self)
            if let record = NotificationColumns.record(
                id: c.0, message: c.1, recipient: c.2, channel: c.3, address: c.4, event: c.5, urgent: c.6,
                subject: c.7, body: c.8, link: c.9, createdAt: c.10, dueAt: c.11, digest: c.12)
            {
                claimed.append(ClaimedNotification(record: record, attempts: c.13, lastError: c.14))
            }
        }
        return claimed.sorted { ($0.record.urgent ? 0 : 1, $0.record.dueAt) < ($1.record.urgent ? 0 : 1, $1.record.dueAt) }
    }

    public func notificationsSent(_ ids: [String], at now: Date) throws {
        guard !ids.isEmpty else { return }
        try run(
            "UPDATE notification SET state = 'sent', sent_at = \(now.timeIntervalSince1970), claimed_until = NULL WHERE id = ANY(\(ids)::text[])")
    }

    public func notificationsFailed(_ ids: [String], error: String, retryAt: Date?, at now: Date) throws {
        guard !ids.isEmpty else { return }
        if let retryAt {
            try run(
                """
                UPDATE notification SET due_at = \(retryAt.timeIntervalSince1970), claimed_until = NULL, last_error = \(error)
                WHERE id = ANY(\(ids)::text[])
                """)
        } else {
            try run("UPDATE notification SET state = 'failed', claimed_until = NULL, last_error = \(error) WHERE id = ANY(\(ids)::text[])")
        }
    }

    public func nextNotificationDue() throws -> Date? {
        try run("SELECT MIN(GREATEST(due_at, COALESCE(claimed_until, 0))) FROM notification WHERE state = 'queued'")
            .first.flatMap { try $0.decode(Double?.self) }.map(Date.init(timeIntervalSince1970:))
    }

    /// One statement, reconnecting first if the connection was lost (PostgreSQL restarted).
    @discardableResult
    private func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try connection.withLock { connection in
            if connection == nil || connection?.isClosed == true {
                connection = try PostgresStore.connect(location, logger: logger)
            }
            guard let open = connection else { throw StoreError.unavailable("no connection to PostgreSQL") }
            do {
                guard let rows = try open.query(query, logger: logger).wait(atMost: location.timeout) else {
                    throw StoreError.unavailable("PostgreSQL did not answer within \(location.timeout)")
                }
                return rows
            } catch {
                try? open.close().wait()
                connection = nil
                throw error
            }
        }
    }

    deinit { connection.withLock { _ = try? $0?.close().wait() } }
}
