import CareRelayModel
import CareRelayPostgres
import CareRelayStore
import Foundation
import Testing

/// Two PostgresStore instances on one database, as two brokers hold them: what one writes the
/// other is told of, and neither can undo or duplicate the other's work. Runs when Scripts/test
/// has started a PostgreSQL server (CARERELAY_TEST_POSTGRES).
private let server = ProcessInfo.processInfo.environment["CARERELAY_TEST_POSTGRES"].flatMap { try? PostgresLocation(url: $0) }

@Suite(.enabled(if: server != nil, "needs a PostgreSQL server: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct SharedStoreTests {
    /// Two brokers' stores on a new database of their own.
    func twoBrokers() throws -> (PostgresStore, PostgresStore) {
        let location = try newDatabase()
        return (try PostgresStore(location), try PostgresStore(location))
    }

    /// A new database of this test's own.
    func newDatabase() throws -> PostgresLocation {
        try #require(server).creatingDatabase("carerelay_store_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
    }

    func message(
        _ id: String, key: String, to recipient: PersonID = "sw.lee", referral: ReferralRecord? = nil,
        expecting expected: ReferralRecord.Status? = nil
    ) -> NewMessage {
        let now = Date()
        return NewMessage(
            id: id, key: key, kind: referral == nil || expected == nil ? .referral : .referralEvent, sender: "gp.khan",
            envelope: Array("{}".utf8), patient: nil, correlation: nil, body: Array("{}".utf8), bodyHash: Array(key.utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: recipient, decision: .deliver, rule: "R6-implied-consent")],
            referral: referral, referralExpectedStatus: expected,
            audit: [AuditEntry(at: now, actor: "gp.khan", action: .accept, message: id)])
    }

    @Test func theConnectionIsEncryptedAndTheServerCheckedWhenAsked() throws {
        let root = try #require(ProcessInfo.processInfo.environment["CARERELAY_TEST_POSTGRES_CA"], "Scripts/test names the server's certificate")
        var location = try #require(server)
        location.security = .verifyFull(rootCertificate: root)
        let verified = try PostgresStore(location)
        defer { verified.close() }
        #expect(try verified.isEncrypted())
        location.security = .require
        let unverified = try PostgresStore(location)
        defer { unverified.close() }
        #expect(try unverified.isEncrypted())
        // The test server's certificate is its own root: without it, verification fails and
        // nothing is sent.
        location.security = .verifyFull(rootCertificate: nil)
        #expect(throws: (any Error).self) { _ = try PostgresStore(location) }
        location.security = .disable
        let plain = try PostgresStore(location)
        defer { plain.close() }
        #expect(try !plain.isEncrypted())
    }

    @Test func aMessageStoredByOneBrokerIsAnnouncedToTheOther() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        let arrived = DispatchSemaphore(value: 0)
        try #require(second.sharedChanges).onArrival { arrived.signal() }
        _ = try first.accept([message("m1", key: "k1")], confirming: [], at: Date())
        #expect(arrived.wait(timeout: .now() + 10) == .success, "no notification within 10 s")
        #expect(second.sharedChanges?.take() == [.mail("sw.lee")])
        // Its own writes are not announced back to the writer.
        #expect(first.sharedChanges?.take() == [])
        #expect(try second.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10).map(\.id) == ["m1"])
    }

    @Test func aKeyIsStoredOnceWhicheverBrokerItReaches() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        guard case .stored = try first.accept([message("m1", key: "k")], confirming: [], at: Date())[0] else {
            Issue.record("not stored"); return
        }
        let again = try second.accept([message("m2", key: "k")], confirming: [], at: Date())
        guard case .duplicate(let id, _) = again[0] else { Issue.record("resend through another broker was stored: \(again)"); return }
        #expect(id == "m1")
    }

    @Test func twoBrokersCannotBothTakeAReferral() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        let sent = ReferralRecord(
            messageID: "r1", referrer: "gp.khan", team: "west.social-care", patient: nil, status: .sent,
            deadline: Date().addingTimeInterval(3_600), updatedAt: Date())
        _ = try first.accept([message("r1", key: "r1", referral: sent)], confirming: [], at: Date())
        // Both brokers read "sent", and each applies an acceptance to it.
        var byLee = sent, byOkafor = sent
        byLee.status = .accepted
        byLee.takenBy = "sw.lee"
        byOkafor.status = .accepted
        byOkafor.takenBy = "sw.okafor"
        let leeOutcome = try first.accept([message("e1", key: "e1", referral: byLee, expecting: .sent)], confirming: [], at: Date())
        let okaforOutcome = try second.accept([message("e2", key: "e2", referral: byOkafor, expecting: .sent)], confirming: [], at: Date())
        guard case .stored = leeOutcome[0] else { Issue.record("first acceptance not stored"); return }
        guard case .referralChanged(let current) = okaforOutcome[0] else { Issue.record("second acceptance stored: \(okaforOutcome)"); return }
        #expect(current.takenBy == "sw.lee")
        #expect(try second.referral(id: "r1")?.takenBy == "sw.lee")
        #expect(try second.message(id: "e2") == nil)
    }

    @Test func anOverdueReferralIsEscalatedOnceThoughEveryBrokerTries() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        let sent = ReferralRecord(
            messageID: "r1", referrer: "gp.khan", team: "west.social-care", patient: nil, status: .sent,
            deadline: Date().addingTimeInterval(-1), updatedAt: Date())
        _ = try first.accept([message("r1", key: "r1", referral: sent)], confirming: [], at: Date())
        // Both brokers' timers find it overdue and build the same escalation (as the engine
        // does: the broker's identity, a key derived from the referral, expecting "sent").
        #expect(try first.overdueReferrals(at: Date()).map(\.messageID) == ["r1"])
        #expect(try second.overdueReferrals(at: Date()).map(\.messageID) == ["r1"])
        var escalated = sent
        escalated.escalatedAt = Date()
        func escalation(_ id: String) -> NewMessage {
            var message = message(id, key: "escalate-r1", to: "coord.patel", referral: escalated, expecting: .sent)
            message.sender = "carerelay"
            message.bodyHash = Array("escalation".utf8)
            return message
        }
        let outcomes = [
            try first.accept([escalation("x1")], confirming: [], at: Date())[0],
            try second.accept([escalation("x2")], confirming: [], at: Date())[0],
        ]
        #expect(outcomes.filter { if case .stored = $0 { true } else { false } }.count == 1)
        #expect(try first.overdueReferrals(at: Date()).isEmpty)
        #expect(try second.mailbox(for: "coord.patel", after: 0, excluding: [], limit: 10).count == 1)
    }

    /// PostgreSQL's sequences skip numbers (a rolled-back batch, a broker dying mid-batch), so
    /// the highest sequence is not a count: status reports what is stored.
    @Test func statusCountsMessagesThoughSequencesSkipNumbers() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        _ = try first.accept([message("c1", key: "c1")], confirming: [], at: Date())
        try first.unsafeExecute("SELECT nextval('message_seq_seq'), nextval('message_seq_seq')")
        _ = try second.accept([message("c2", key: "c2"), message("c2", key: "c2")], confirming: [], at: Date())
        #expect(try first.statistics(at: Date()).messages == 2)
        #expect(try second.statistics(at: Date()).messages == 2)
    }

    @Test func operatorsFiguresCountWhatWaits() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        let overdue = ReferralRecord(
            messageID: "r1", referrer: "gp.khan", team: "west.social-care", patient: nil, status: .sent,
            deadline: Date().addingTimeInterval(-60), updatedAt: Date())
        let later = ReferralRecord(
            messageID: "r2", referrer: "gp.khan", team: "west.nursing", patient: nil, status: .sent,
            deadline: Date().addingTimeInterval(3_600), updatedAt: Date())
        _ = try first.accept([message("r1", key: "r1", referral: overdue), message("r2", key: "r2", referral: later)], confirming: [], at: Date())
        _ = try second.confirm(recipient: "sw.lee", ids: ["r2"], at: Date())
        let figures = try first.statistics(at: Date())
        #expect(figures.messages == 2)
        #expect(figures.undelivered == 1)
        #expect(figures.oldestUndeliveredAcceptedAt != nil)
        #expect(figures.intakeWaiting == ["west.social-care": 1, "west.nursing": 1])
        #expect(figures.overdueReferrals == 1)
        #expect(figures.auditRows == 2)
        #expect(figures.storeBytes > 0)
        // The same through the operations endpoint's own connection (its scrapes never wait
        // in the broker's loop); the database's size may move between the two reads.
        var viaReader = try PostgresStoreProvider(first.location).openStatisticsReader().statistics(at: Date())
        viaReader.storeBytes = figures.storeBytes
        #expect(viaReader == figures)
    }

    /// Waits for a store's notifications, event by event, until `predicate` holds of them.
    final class Watch: @unchecked Sendable {
        let feed: SharedChanges
        let arrived = DispatchSemaphore(value: 0)
        var seen: [SharedChanges.Change] = []
        init(_ store: PostgresStore) throws {
            feed = try #require(store.sharedChanges)
            feed.onArrival { [arrived] in arrived.signal() }
        }
        func until(_ what: String, _ predicate: ([SharedChanges.Change]) -> Bool) {
            while true {
                seen += feed.take()
                if predicate(seen) { return }
                guard arrived.wait(timeout: .now() + 15) == .success else {
                    Issue.record("waited 15 s for \(what); saw \(seen)")
                    return
                }
            }
        }
    }

    @Test func aBrokerWhoseConnectionsTheServerDropsReconnectsAndIsToldToReadAgain() throws {
        let (first, second) = try twoBrokers()
        defer { first.close(); second.close() }
        let (toFirst, toSecond) = (try Watch(first), try Watch(second))
        // The server ends every connection to this database but the one asking.
        try first.unsafeExecute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        // Each broker hears that its notifications may have gaps (the connection that carried
        // them is gone), and again once it listens anew.
        for watch in [toFirst, toSecond] {
            watch.until("two calls to read everything again") { $0.count { $0 == .everything } >= 2 }
        }
        // The second broker's own connection was dropped: its next statement fails, and the
        // one after reconnects.
        _ = try? second.accept([message("lost", key: "lost")], confirming: [], at: Date())
        guard case .stored = try second.accept([message("m1", key: "m1", to: "sw.okafor")], confirming: [], at: Date())[0] else {
            Issue.record("not stored after reconnecting"); return
        }
        // And notifications flow again, over the rebuilt listener.
        toFirst.until("the new message announced") { $0.contains(.mail("sw.okafor")) }
    }

    @Test func writersInterleavedOnTwoBrokersKeepOneAuditChain() throws {
        let location = try newDatabase()
        let first = try PostgresStore(location)
        defer { first.close() }
        let group = DispatchGroup()
        let failures = Failures()
        for name in ["a", "b"] {
            group.enter()
            // Each writer opens its own store on its own thread, as each broker does.
            Thread {
                defer { group.leave() }
                do {
                    let store = try PostgresStore(location)
                    defer { store.close() }
                    for n in 0..<50 {
                        _ = try store.accept([message("\(name)\(n)", key: "\(name)\(n)")], confirming: [], at: Date())
                        try store.recordDeliveries(
                            sent: [], withheld: [], audit: [AuditEntry(at: Date(), actor: "carerelay", action: .deliver, message: "\(name)\(n)")],
                            at: Date())
                    }
                } catch { failures.add(error) }
            }.start()
        }
        group.wait()
        #expect(failures.all.isEmpty)
        #expect(try first.verifyAudit() == .intact(rows: 200))
        // Sequence numbers follow commit order: each broker's own messages come in its order.
        let seqs = try first.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 200)
        #expect(seqs.count == 100)
        #expect(seqs.filter { $0.id.hasPrefix("a") }.map(\.id) == (0..<50).map { "a\($0)" })
        // Tampering shows, as on SQLite.
        try first.unsafeExecute("UPDATE audit SET actor = 'someone-else' WHERE seq = 17")
        let second = try PostgresStore(location)
        defer { second.close() }
        #expect(
            try second.verifyAudit() == .broken(atRow: 17, reason: "row 17 does not match its hash: it was changed, or a row before it was removed"))
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func add(_ error: any Error) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [any Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
