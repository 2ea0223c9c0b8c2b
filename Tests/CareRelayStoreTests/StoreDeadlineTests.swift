import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayStore
import Foundation
import Testing

private let server = ProcessInfo.processInfo.environment["CARERELAY_TEST_POSTGRES"].flatMap { try? PostgresLocation(url: $0) }

/// A database that stops answering, as one does while it restarts or while the network to it
/// is lost: every store call gives up within its time-out instead of holding the broker's loop,
/// and the store carries on once the database answers again. Through a proxy the test can
/// freeze, so only this test's connections are affected.
@Suite(.enabled(if: server != nil, "needs a PostgreSQL server: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct StoreDeadlineTests {
    func message(_ id: String) -> NewMessage {
        let now = Date()
        return NewMessage(
            id: id, key: id, kind: .referral, sender: "gp.khan", envelope: Array("{}".utf8), patient: nil, correlation: nil,
            body: Array("{}".utf8), bodyHash: Array(id.utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: "sw.lee", decision: .deliver, rule: "R6-implied-consent")],
            referral: nil, audit: [AuditEntry(at: now, actor: "gp.khan", action: .accept, message: id)])
    }

    @Test func everyCallGivesUpWithinItsTimeoutAndTheStoreRecovers() throws {
        let database = try #require(server).creatingDatabase(
            "carerelay_deadline_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
        #expect(database.host.hasPrefix("127."), "the proxy listens on loopback, as the test server does")
        let proxy = try FreezingProxy(toLoopbackPort: database.port)
        defer { proxy.stop() }
        var location = database
        location.port = proxy.port
        location.timeout = .milliseconds(500)
        let store = try PostgresStore(location)
        defer { store.close() }
        _ = try store.accept([message("m1")], confirming: [], at: Date())

        proxy.freeze()
        // A write, then reads: the first gives up on its connection, the next ones on
        // reconnecting. None waits for the database for good.
        let calls: [(String, () throws -> Void)] = [
            ("accept", { _ = try store.accept([self.message("m2")], confirming: [], at: Date()) }),
            ("mailbox", { _ = try store.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10) }),
            ("confirm", { _ = try store.confirm(recipient: "sw.lee", ids: ["m1"], at: Date()) }),
            ("statistics", { _ = try store.statistics(at: Date()) }),
        ]
        for (name, call) in calls {
            let started = ContinuousClock.now
            #expect(throws: StoreError.self, "\(name) while the database does not answer") { try call() }
            // Generous: the bound is what matters (0.5 s per statement, twice that to connect).
            #expect(ContinuousClock.now - started < .seconds(5), "\(name) gave up in time")
        }

        proxy.thaw()
        // What was refused is resent and stored once; what was stored before is all there.
        _ = try store.accept([message("m2")], confirming: [], at: Date())
        #expect(try store.message(id: "m1") != nil)
        #expect(try store.message(id: "m2") != nil)
        #expect(try store.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10).map(\.id) == ["m1", "m2"])
        #expect(try store.verifyAudit() == .intact(rows: 2))
    }
}
