import CareRelayModel
import CareRelayStore
import Foundation
import NIOCore
import PostgresNIO

/// Looking records up on PostgreSQL (a message, its tracking, a person's history, referrals),
/// for the broker's store and for a reader on a connection of its own
/// (`PostgresReader`), given how to run a query.
enum PostgresRecords {
    typealias Run = (PostgresQuery) throws -> PostgresQueryResult

    static func message(id: String, run: Run) throws -> StoredMessage? {
        guard
            let row = try run(
                """
                SELECT seq, id, kind, sender, envelope, patient, body, accepted_at FROM message WHERE id = \(id)
                """
            ).first
        else { return nil }
        return storedMessage(try row.decode((Int64, String, String, String, ByteBuffer, String?, ByteBuffer, Double).self))
    }

    static func messages(about patient: NHSNumber, kind: MessageKind, run: Run) throws -> [StoredMessage] {
        try run(
            """
            SELECT seq, id, kind, sender, envelope, patient, body, accepted_at FROM message
            WHERE patient = \(patient.digits) AND kind = \(kind.rawValue) ORDER BY seq
            """
        ).compactMap { storedMessage(try $0.decode(MessageColumns.self)) }
    }

    /// The message columns, in the order `message(id:run:)` selects them.
    typealias MessageColumns = (Int64, String, String, String, ByteBuffer, String?, ByteBuffer, Double)

    private static func storedMessage(_ columns: MessageColumns) -> StoredMessage? {
        let (seq, id, kindText, sender, envelope, patient, body, acceptedAt) = columns
        guard let kind = MessageKind(rawValue: kindText) else { return nil }
        return StoredMessage(
            seq: seq, id: id, kind: kind, sender: PersonID(sender), envelope: Array(envelope.readableBytesView),
            patient: patient.flatMap { try? NHSNumber(validating: $0) }, body: Array(body.readableBytesView),
            acceptedAt: Date(timeIntervalSince1970: acceptedAt))
    }

    static func referrals(
        to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int, run: Run
    ) throws -> [ReferralEntry] {
        guard !statuses.isEmpty else { return [] }
        return try run(
            """
            SELECT m.seq, m.id, m.kind, m.sender, m.envelope, m.patient, m.body, m.accepted_at, r.record, d.decision, d.state
            FROM referral r JOIN message m ON m.id = r.message_id
            LEFT JOIN delivery d ON d.message_seq = m.seq AND d.recipient = \(person.rawValue)
            WHERE r.status = ANY(\(statuses.map(\.rawValue).sorted())::text[])
              AND (r.team = ANY(\(teams.map(\.rawValue))::text[]) OR (r.team IS NULL AND d.recipient IS NOT NULL))
            ORDER BY r.deadline IS NULL, r.deadline, m.seq LIMIT \(limit)
            """
        ).compactMap { row in
            let (seq, id, kind, sender, envelope, patient, body, acceptedAt, record, decision, state) =
                try row.decode((Int64, String, String, String, ByteBuffer, String?, ByteBuffer, Double, String, String?, String?).self)
            guard let message = storedMessage((seq, id, kind, sender, envelope, patient, body, acceptedAt)) else { return nil }
            return ReferralEntry(
                record: try JSONDecoder().decode(ReferralRecord.self, from: Data(record.utf8)), message: message, ownDecision: decision,
                ownState: state)
        }
    }

    static func tracking(id: String, run: Run) throws -> Tracking? {
        guard let row = try run("SELECT seq, kind, sender, accepted_at FROM message WHERE id = \(id)").first else { return nil }
        let (seq, kindText, sender, acceptedAt) = try row.decode((Int64, String, String, Double).self)
        guard let kind = MessageKind(rawValue: kindText) else { return nil }
        let recipients = try run(
            """
            SELECT recipient, decision, state, delivered_at, confirmed_at FROM delivery WHERE message_seq = \(seq) ORDER BY recipient
            """
        ).map { row in
            let (person, decision, state, deliveredAt, confirmedAt) = try row.decode((String, String, String, Double?, Double?).self)
            return Tracking.Recipient(recipient: person, decision: decision, state: state, deliveredAt: deliveredAt, confirmedAt: confirmedAt)
        }
        let events = try run("SELECT id FROM message WHERE correlation = \(id) ORDER BY seq").map { try $0.decode(String.self) }
        return Tracking(
            id: id, kind: kind, sender: PersonID(sender), acceptedAt: Date(timeIntervalSince1970: acceptedAt),
            recipients: recipients, referral: try referrals([id], run: run)[id], events: events)
    }

    static func history(for person: PersonID, kind: MessageKind?, limit: Int, run: Run) throws -> [InboxLine] {
        try run(
            """
            SELECT m.id, m.kind, m.sender, m.accepted_at, d.state FROM message m
            LEFT JOIN delivery d ON d.message_seq = m.seq AND d.recipient = \(person.rawValue)
            WHERE (m.sender = \(person.rawValue) OR d.recipient IS NOT NULL)
              AND (\(kind?.rawValue ?? "")::text = '' OR m.kind = \(kind?.rawValue ?? ""))
            ORDER BY m.seq DESC LIMIT \(limit)
            """
        ).compactMap { row in
            let (id, kind, sender, acceptedAt, state) = try row.decode((String, String, String, Double, String?).self)
            return InboxLine(id: id, kind: kind, sender: sender, acceptedAt: acceptedAt, state: state)
        }
    }

    /// The referral records of these messages, keyed by message id.
    static func referrals(_ ids: [String], run: Run) throws -> [String: ReferralRecord] {
        guard !ids.isEmpty else { return [:] }
        var found: [String: ReferralRecord] = [:]
        for row in try run("SELECT record FROM referral WHERE message_id = ANY(\(ids)::text[])") {
            let record = try JSONDecoder().decode(ReferralRecord.self, from: Data(try row.decode(String.self).utf8))
            found[record.messageID] = record
        }
        return found
    }
}
