import CareRelayModel
import Foundation
import Testing
@testable import CareRelayStore

@Suite struct StoreTests {
    func temporaryStore() throws -> (SQLiteStore, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite").path
        return (try SQLiteStore(path: path), path)
    }

    func message(_ id: String, key: String, body: String = "{}", to recipient: PersonID = "sw.lee") -> NewMessage {
        let now = Date()
        return NewMessage(
            id: id, key: key, kind: .referral, sender: "gp.khan", envelope: Array("{}".utf8), patient: nil, correlation: nil,
            body: Array(body.utf8), bodyHash: Array(body.utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: recipient, decision: .deliver, rule: "R6-implied-consent")], referral: nil,
            audit: [AuditEntry(at: now, actor: "gp.khan", action: .accept, message: id)])
    }

    @Test func idempotencyKeysAreKeptPerSender() throws {
        let (store, _) = try temporaryStore()
        let first = try store.accept([message("m1", key: "k")])
        guard case .stored = first[0] else { Issue.record("not stored"); return }
        #expect(
            try store.accept([message("m2", key: "k")]) == [
                .duplicate(id: "m1", deliveries: [PlannedDelivery(recipient: "sw.lee", decision: .deliver, rule: "R6-implied-consent")])
            ])
        #expect(try store.accept([message("m3", key: "k", body: "{\"other\":1}")]) == [.conflict(id: "m1")])
        #expect(try store.mailbox(for: "sw.lee", excluding: [], limit: 10).map(\.id) == ["m1"])
    }

    @Test func mailboxesAreInOrderAndConfirmationsEmptyThem() throws {
        let (store, path) = try temporaryStore()
        _ = try store.accept((1...5).map { message("m\($0)", key: "k\($0)") })
        let all = try store.mailbox(for: "sw.lee", excluding: [], limit: 10)
        #expect(all.map(\.id) == ["m1", "m2", "m3", "m4", "m5"])
        #expect(try store.mailbox(for: "sw.lee", after: all[1].seq, excluding: [all[3].seq], limit: 10).map(\.id) == ["m3", "m5"])
        #expect(try store.confirm(recipient: "sw.lee", ids: ["m1", "m2", "unknown"], at: Date()).count == 2)
        // A repeated confirmation is harmless.
        #expect(try store.confirm(recipient: "sw.lee", ids: ["m1"], at: Date()).isEmpty)
        // Durable: a new store on the same file sees the same mailbox.
        store.close()
        let reopened = try SQLiteStore(path: path)
        #expect(try reopened.mailbox(for: "sw.lee", excluding: [], limit: 10).map(\.id) == ["m3", "m4", "m5"])
    }

    @Test func theAuditChainSurvivesReopeningAndShowsTampering() throws {
        let (store, path) = try temporaryStore()
        _ = try store.accept((1...3).map { message("m\($0)", key: "k\($0)") })
        try store.appendAudit([AuditEntry(at: Date(), actor: "carerelay", action: .deliver, message: "m1", recipient: "sw.lee", rule: "R6")])
        #expect(try store.verifyAudit() == .intact(rows: 4))
        // A store opened again on the file continues the same chain.
        store.close()
        let reopened = try SQLiteStore(path: path)
        try reopened.appendAudit([AuditEntry(at: Date(), actor: "carerelay", action: .withhold, message: "m2", recipient: "carer.ellis", rule: "R7")])
        #expect(try reopened.verifyAudit() == .intact(rows: 5))
        try reopened.unsafeExecute("UPDATE audit SET detail = 'nothing to see' WHERE seq = 2")
        guard case .broken(let row, _) = try reopened.verifyAudit() else { Issue.record("tampering not detected"); return }
        #expect(row == 2)
    }

    @Test func oneWriterAtATime() throws {
        let (store, path) = try temporaryStore()
        // A second broker on the same file would fork the audit chain: refused.
        #expect(throws: StoreError.self) { _ = try SQLiteStore(path: path) }
        store.close()
        _ = try SQLiteStore(path: path)
    }

    @Test func hashesChangeWhenTextMovesBetweenFields() {
        let at = Date(timeIntervalSince1970: 0)
        let a = AuditEntry(at: at, actor: "ab", action: .accept, patient: "c")
        let b = AuditEntry(at: at, actor: "a", action: .accept, patient: "bc")
        #expect(
            AuditChain.hash(previous: AuditChain.genesis.hash, seq: 1, atMillis: 0, entry: a)
                != AuditChain.hash(previous: AuditChain.genesis.hash, seq: 1, atMillis: 0, entry: b))
    }
}
