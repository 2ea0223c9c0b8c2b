import CareRelayModel
import Foundation
import GRDB

/// Putting a backup back. The backup is checked first (SQLite's integrity check and the
/// whole audit chain), so a damaged copy never replaces a store; the broker must be stopped
/// (the store's lock is taken for the duration).
public enum StoreRestore {
    public struct Report: Sendable {
        public var statistics: StoreStatistics
        public var auditRows: Int
    }

    /// Checks a backup file without changing it.
    public static func check(backup: String) throws -> Report {
        guard FileManager.default.fileExists(atPath: backup) else {
            throw StoreError.notFound("no backup at \(backup)")
        }
        var config = Configuration()
        config.readonly = true
        let copy = try DatabaseQueue(path: backup, configuration: config)
        defer { try? copy.close() }
        return try copy.read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            guard integrity == ["ok"] else {
                throw StoreError.unavailable("the backup failed SQLite's integrity check: \(integrity.prefix(3).joined(separator: "; "))")
            }
            switch try SQLiteStore.verifyAudit(db) {
            case .intact(let rows):
                return Report(statistics: try StoreStatistics.read(db, path: backup, at: Date()), auditRows: rows)
            case .broken(let row, let reason):
                throw StoreError.unavailable("the backup's audit trail is broken at row \(row): \(reason)")
            }
        }
    }

    /// Replaces the store at `store` with the backup. Refuses while a broker holds the store.
    /// The replaced store, if any, is kept beside it as `<store>.replaced-<time>`.
    @discardableResult
    public static func restore(backup: String, to store: String, now: Date = Date()) throws -> Report {
        let report = try check(backup: backup)
        let lock = try StoreLock(storePath: store)
        let files = FileManager.default
        if files.fileExists(atPath: store) {
            let stamp = Int(now.timeIntervalSince1970)
            // Fold the log into the file first so the kept copy is one self-contained file.
            let current = try DatabaseQueue(path: store)
            try current.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            try current.close()
            try files.moveItem(atPath: store, toPath: "\(store).replaced-\(stamp)")
        }
        for suffix in ["-wal", "-shm"] where files.fileExists(atPath: store + suffix) {
            try files.removeItem(atPath: store + suffix)
        }
        try files.copyItem(atPath: backup, toPath: store)
        // On disk before we say it is restored.
        if let copied = FileHandle(forUpdatingAtPath: store) {
            try copied.synchronize()
            try copied.close()
        }
        withExtendedLifetime(lock) {}
        return report
    }
}
