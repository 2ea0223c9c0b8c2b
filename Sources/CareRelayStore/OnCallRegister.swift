import CareRelayModel
import Foundation
import GRDB

/// On-call chains (OnCallChain) as records: started with the message that needs someone (an
/// urgent check-in, an escalated referral), moved on by the broker whose timer falls due, and
/// ended by an acknowledgement. Each change is saved only from the step it was read at, so two
/// brokers sharing a store never tell the same person twice for one step.
public protocol OnCallRegister {
    /// Open chains whose next step is due.
    func dueOnCallChains(at now: Date) throws -> [OnCallChain]
    /// When the next open chain falls due, so the broker knows when to wake.
    func nextOnCallDeadline() throws -> Date?
    func onCallChains(message: String) throws -> [OnCallChain]
    func onCallChain(id: String) throws -> OnCallChain?
    /// Saves `chain`, changed from a record that was open with `told` people told, with the
    /// notifications and audit lines of the change, in one transaction; false (nothing saved)
    /// if the record had moved on meanwhile.
    func saveOnCall(_ chain: OnCallChain, expectingTold told: Int, notifications: [NotificationRecord], audit: [AuditEntry]) throws -> Bool
}

enum OnCallColumns {
    static let sqliteTable = """
        CREATE TABLE oncall (
            id TEXT PRIMARY KEY,
            message TEXT NOT NULL,
            state TEXT NOT NULL,
            next_at REAL,
            told INTEGER NOT NULL,
            document BLOB NOT NULL
        );
        CREATE INDEX oncall_due ON oncall(state, next_at);
        CREATE INDEX oncall_message ON oncall(message);
        """

    static func document(_ chain: OnCallChain) throws -> Data { try JSONEncoder().encode(chain) }
    static func chain(_ document: Data) throws -> OnCallChain { try JSONDecoder().decode(OnCallChain.self, from: document) }
}

extension SQLiteStore: OnCallRegister {
    public func dueOnCallChains(at now: Date) throws -> [OnCallChain] {
        try reading { db in
            try Data.fetchAll(
                db, sql: "SELECT document FROM oncall WHERE state = 'open' AND next_at <= ? ORDER BY next_at LIMIT 500",
                arguments: [now.timeIntervalSince1970]
            ).map(OnCallColumns.chain)
        }
    }

    public func nextOnCallDeadline() throws -> Date? {
        try reading { db in
            try Double.fetchOne(db, sql: "SELECT MIN(next_at) FROM oncall WHERE state = 'open'").map(Date.init(timeIntervalSince1970:))
        }
    }

    public func onCallChains(message: String) throws -> [OnCallChain] {
        try reading { db in
            try Data.fetchAll(db, sql: "SELECT document FROM oncall WHERE message = ? ORDER BY id", arguments: [message]).map(OnCallColumns.chain)
        }
    }

    public func onCallChain(id: String) throws -> OnCallChain? {
        try reading { db in try Data.fetchOne(db, sql: "SELECT document FROM oncall WHERE id = ?", arguments: [id]).map(OnCallColumns.chain) }
    }

    public func saveOnCall(_ chain: OnCallChain, expectingTold told: Int, notifications: [NotificationRecord], audit: [AuditEntry]) throws -> Bool {
        let document = try OnCallColumns.document(chain)
        return try writingAudit(audit) { db in
            try db.execute(
                sql: "UPDATE oncall SET state = ?, next_at = ?, told = ?, document = ? WHERE id = ? AND state = 'open' AND told = ?",
                arguments: [chain.state.rawValue, chain.nextAt?.timeIntervalSince1970, chain.told, document, chain.id, told])
            guard db.changesCount == 1 else { return false }
            for notification in notifications {
                try db.cachedStatement(sql: NotificationColumns.sqliteInsert).execute(
                    arguments: StatementArguments(NotificationColumns.values(notification)))
            }
            return true
        }
    }

    static func startOnCall(_ chains: [OnCallChain], _ db: Database) throws {
        for chain in chains {
            try db.execute(
                sql: "INSERT OR IGNORE INTO oncall (id, message, state, next_at, told, document) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    chain.id, chain.message, chain.state.rawValue, chain.nextAt?.timeIntervalSince1970, chain.told, try OnCallColumns.document(chain),
                ])
        }
    }
}
