import CareRelayModel
import CareRelayStore
import Foundation
import NIOCore
import PostgresNIO

/// The audit trail's reads on PostgreSQL, for the broker's store and for a reader on a
/// connection of its own (`PostgresReader`), given how to run a query.
enum PostgresAudit {
    static func audit(_ filter: AuditFilter, run: (PostgresQuery) throws -> PostgresQueryResult) throws -> [AuditRow] {
        try run(
            """
            SELECT seq, at_ms, actor, action, patient, message, recipient, decision, rule, detail, hash FROM audit
            WHERE (\(filter.patient ?? "")::text = '' OR patient = \(filter.patient ?? ""))
              AND (\(filter.person ?? "")::text = '' OR actor = \(filter.person ?? "") OR recipient = \(filter.person ?? ""))
              AND (\(filter.message ?? "")::text = '' OR message = \(filter.message ?? ""))
            ORDER BY seq LIMIT \(filter.limit)
            """
        ).map { row in
            let (seq, atMillis, actor, action, patient, message, recipient, decision, rule, detail, hash) =
                try row.decode((Int64, Int64, String, String, String?, String?, String?, String?, String?, String?, ByteBuffer).self)
            return AuditRow(
                seq: seq, atMillis: atMillis, actor: actor, action: action, patient: patient, message: message, recipient: recipient,
                decision: decision, rule: rule, detail: detail, hash: hash.readableBytesView)
        }
    }

    /// Reads the chain a page at a time, so a long trail is never held in memory whole. Other
    /// brokers may be appending meanwhile: the chain is checked up to the head as it was when
    /// the check began (every row up to it was committed with it).
    static func verify(run: (PostgresQuery) throws -> PostgresQueryResult) throws -> AuditVerification {
        let head = try run("SELECT seq FROM audit_head").first.map { try $0.decode(Int64.self) } ?? 0
        var verifier = AuditChain.Verifier()
        var last: Int64 = 0
        while last < head {
            let rows = try run(
                """
                SELECT seq, at_ms, actor, action, patient, message, recipient, decision, rule, detail, hash FROM audit
                WHERE seq > \(last) AND seq <= \(head) ORDER BY seq LIMIT 10000
                """)
            if rows.isEmpty { break }
            for row in rows {
                let (seq, atMillis, actor, action, patient, message, recipient, decision, rule, detail, hash) =
                    try row.decode((Int64, Int64, String, String, String?, String?, String?, String?, String?, String?, ByteBuffer).self)
                if let broken = verifier.check(
                    seq: seq, atMillis: atMillis, action: action, actor: actor, patient: patient, message: message,
                    recipient: recipient, decision: decision, rule: rule, detail: detail, hash: Array(hash.readableBytesView))
                {
                    return broken
                }
                last = seq
            }
        }
        // The head names the newest row written; a trail that stops short of it was truncated.
        if head != last {
            return .broken(atRow: last + 1, reason: "row \(last + 1) is missing: the trail ends before the chain's head (row \(head))")
        }
        return verifier.verdict
    }
}
