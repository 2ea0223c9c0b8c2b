import CareRelayModel
import Foundation
import GRDB

extension StoreStatistics {
    /// Every query here costs in proportion to what waits, not to the store's history: the
    /// broker answers `status` from its loop, so a count over a million rows would stall it.
    /// `escalated IN (0, 1)` lets waiting referrals be found through `referral_deadline`.
    static func read(_ db: Database, path: String, at now: Date) throws -> StoreStatistics {
        let oldest = try Double.fetchOne(
            db,
            sql: """
                SELECT m.accepted_at FROM delivery d JOIN message m ON m.seq = d.message_seq
                WHERE d.state = 'pending' ORDER BY d.message_seq LIMIT 1
                """)
        var intake: [String: Int64] = [:]
        // A store an older broker wrote, read here before a broker has migrated it, has the
        // team only inside the record.
        let team = try db.columns(in: "referral").contains { $0.name == "team" } ? "team" : "json_extract(record, '$.team')"
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT \(team) AS team, COUNT(*) AS waiting
                FROM referral WHERE escalated IN (0, 1) AND status = 'sent' GROUP BY team
                """)
        while let row = try rows.next() {
            intake[(row["team"] as String?) ?? "none"] = row["waiting"]
        }
        return StoreStatistics(
            storeBytes: fileBytes(path) + fileBytes(path + "-wal"),
            messages: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM message") ?? 0,
            undelivered: try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM delivery WHERE state = 'pending'") ?? 0,
            oldestUndeliveredAcceptedAt: oldest.map(Date.init(timeIntervalSince1970:)),
            intakeWaiting: intake,
            overdueReferrals: try Int64.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM referral WHERE escalated IN (0, 1) AND status = 'sent' AND deadline <= ?
                    """, arguments: [now.timeIntervalSince1970]) ?? 0,
            auditRows: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM audit") ?? 0,
            notificationsWaiting: try notifications(in: "queued", db),
            notificationsFailed: try notifications(in: "failed", db))
    }

    /// Zero for a store older than the notification table, read before a broker migrates it.
    private static func notifications(in state: String, _ db: Database) throws -> Int64 {
        guard try db.tableExists("notification") else { return 0 }
        return try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM notification WHERE state = ?", arguments: [state]) ?? 0
    }

    private static func fileBytes(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

extension SQLiteStore {
    public func statistics(at now: Date) throws -> StoreStatistics {
        try reading { db in try StoreStatistics.read(db, path: path, at: now) }
    }
}

/// A second, read-only connection to a store a running broker owns: for the metrics
/// endpoint and online backups, so neither waits in the broker's loop nor makes it wait
/// (WAL lets readers and the one writer proceed together).
public final class StoreInspector: StoreStatisticsReader, StoreReader {
    private let db: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        db = try DatabaseQueue(path: path, configuration: config)
    }

    public func statistics(at now: Date) throws -> StoreStatistics {
        try db.read { db in try StoreStatistics.read(db, path: path, at: now) }
    }

    public func audit(_ filter: AuditFilter) throws -> [AuditRow] {
        try db.read { db in try SQLiteStore.audit(filter, db) }
    }

    var records: DatabaseQueue { db }

    /// The directory as the broker last saved it.
    public func storedDirectory() throws -> StoredDirectory? {
        try db.read { db in
            // A store older than the directory's table holds none.
            guard try db.tableExists("directory") else { return nil }
            return try SQLiteStore.storedDirectory(db)
        }
    }

    /// Reads the chain through a cursor, beside the broker's own connection (WAL lets a
    /// reader and the writer work at once).
    public func verifyAudit() throws -> AuditVerification {
        try db.read { db in try SQLiteStore.verifyAudit(db) }
    }

    /// Copies the whole store, as of one moment, to `destination` with SQLite's online backup
    /// API: one consistent snapshot even while the broker keeps writing. The copy is a
    /// complete store (a restore is copying it back); `StoreRestore.check` verifies it.
    public func backup(to destination: String) throws {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw StoreError.unavailable("\(destination) already exists; a backup never overwrites a file")
        }
        let copy = try DatabaseQueue(path: destination)
        try db.backup(to: copy)
        // A backup is one self-contained file: no write-ahead log beside it.
        try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
        try copy.close()
    }
}

/// The lookups the broker's store and a reader beside it answer alike, each on its own
/// connection (`records`).
protocol SQLiteRecords: MessageRecords {
    var records: DatabaseQueue { get }
}

extension SQLiteRecords {
    public func message(id: String) throws -> StoredMessage? {
        try records.read { db in try SQLiteStore.message(id: id, db) }
    }

    public func tracking(id: String) throws -> Tracking? {
        try records.read { db in try SQLiteStore.tracking(id: id, db) }
    }

    public func history(for person: PersonID, kind: MessageKind?, limit: Int) throws -> [InboxLine] {
        try records.read { db in try SQLiteStore.history(for: person, kind: kind, limit: limit, db) }
    }

    public func referrals(to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int) throws -> [ReferralEntry] {
        try records.read { db in try SQLiteStore.referrals(to: teams, orPerson: person, statuses: statuses, limit: limit, db) }
    }
}

extension SQLiteStore: SQLiteRecords {}
extension StoreInspector: SQLiteRecords {}
