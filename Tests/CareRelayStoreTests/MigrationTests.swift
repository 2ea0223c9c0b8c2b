import CareRelayModel
import Foundation
import GRDB
import Testing
@testable import CareRelayStore

/// Upgrades: a store written by an older broker is migrated at start-up, in order, once,
/// and keeps what it held.
@Suite struct MigrationTests {
    @Test func aStoreFromTheFirstReleaseIsMigratedAtStartAndKeepsItsQueue() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("old-store-\(UUID().uuidString).sqlite").path
        // The store as the first release left it: schema v1, one referral waiting for sw.lee.
        let old = try DatabaseQueue(path: path)
        try SQLiteStore.migrator.migrate(old, upTo: "v1")
        try old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO message (id, kind, sender, idempotency_key, body_hash, envelope, body, accepted_at)
                    VALUES ('m-old', 'referral', 'gp.khan', 'k1', x'00', '{}', '{}', 1795000000)
                    """)
            try db.execute(
                sql: """
                    INSERT INTO delivery (message_seq, recipient, state, decision, rule)
                    VALUES (1, 'sw.lee', 'pending', 'deliver', 'R6-implied-consent')
                    """)
        }
        #expect(try old.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) } == ["v1"])
        try old.close()

        let store = try SQLiteStore(path: path)
        #expect(try store.mailbox(for: "sw.lee", excluding: [], limit: 10).map(\.id) == ["m-old"])
        #expect(try store.statistics(at: Date()).undelivered == 1)
        store.close()

        let reopened = try DatabaseQueue(path: path)
        defer { try? reopened.close() }
        let applied = try reopened.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) }
        #expect(
            applied == [
                "v1", "v2-pending-deliveries", "v3-consent-records", "v4-referral-team", "v5-directory", "v6-notifications", "v7-oncall",
                "v8-notification-message",
            ])
        let indexes = try reopened.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'") }
        #expect(indexes.contains("delivery_pending"))
        #expect(indexes.contains("message_consent"))
        // Opening again applies nothing twice.
        let again = try SQLiteStore(path: path)
        again.close()
        #expect(try reopened.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) } == applied)
    }
}
