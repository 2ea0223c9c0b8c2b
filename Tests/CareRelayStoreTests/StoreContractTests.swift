import CareRelayModel
import CareRelayPostgres
import Foundation
import Testing
@testable import CareRelayStore

/// The contract `MessageStore` states, checked on each store the broker can run on: SQLite
/// always, PostgreSQL when Scripts/test has started a server (CARERELAY_TEST_POSTGRES).
/// SharedStoreTests adds what only several writers on one database can show.
@Suite struct StoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }

        static let available: [Kind] = postgresServer == nil ? [.sqlite] : [.sqlite, .postgres]
        static let postgresServer = ProcessInfo.processInfo.environment["CARERELAY_TEST_POSTGRES"].flatMap { try? PostgresLocation(url: $0) }

        /// A new, empty store of this kind.
        func open() throws -> any MessageStore { try provider().open() }

        /// Where a new, empty store of this kind is: open it before anything else.
        func provider() throws -> any StoreProvider {
            switch self {
            case .sqlite:
                return SQLiteStoreProvider(
                    path: FileManager.default.temporaryDirectory
                        .appendingPathComponent("contract-\(UUID().uuidString).sqlite").path)
            case .postgres:
                let server = try #require(Self.postgresServer)
                return PostgresStoreProvider(
                    try server.creatingDatabase(
                        "carerelay_contract_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")))
            }
        }
    }

    static let patient = try! NHSNumber(validating: "9434765919")

    func message(
        _ id: String, key: String, body: String = "{}", kind: MessageKind = .referral, patient: NHSNumber? = nil,
        referral: ReferralRecord? = nil, expecting: ReferralRecord.Status? = nil
    ) -> NewMessage {
        let now = Date()
        return NewMessage(
            id: id, key: key, kind: kind, sender: "gp.khan", envelope: Array("{}".utf8), patient: patient, correlation: nil,
            body: Array(body.utf8), bodyHash: Array((key + body).utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: "sw.lee", decision: .deliver, rule: "R6-implied-consent")],
            referral: referral, referralExpectedStatus: expecting,
            audit: [AuditEntry(at: now, actor: "gp.khan", action: .accept, message: id)])
    }

    @Test("the migrations build the one schema StoreSchema defines", arguments: Kind.available)
    func schema(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        let built: [String: [String]] =
            switch store {
            case let sqlite as SQLiteStore: try sqlite.tablesAndColumns()
            case let postgres as PostgresStore: try postgres.tablesAndColumns()
            default: [:]
            }
        var expected = StoreSchema.tables
        if kind == .postgres { expected.merge(StoreSchema.postgresOnly) { $1 } }
        #expect(Set(built.keys) == Set(expected.keys))
        for (table, columns) in expected {
            #expect(Set(built[table] ?? []) == Set(columns), "table \(table)")
        }
    }

    @Test("the directory is saved only on top of the revision it was made from; a code is used once", arguments: Kind.available)
    func directoryRevisionsAndCodes(kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        #expect(try store.storedDirectory() == nil)
        var directory = Directory(
            organisations: [.init(id: "org", name: "Org")], localities: [.init(id: "west", name: "West")],
            teams: [.init(id: "west.gp", name: "GP", locality: "west")],
            people: [.init(id: "gp.khan", name: "Dr Khan", roles: [.gp], organisation: "org", teams: ["west.gp"], key: nil)])
        let now = Date()
        let audit = [AuditEntry(at: now, actor: "admin.it", action: .directory, detail: "seed")]
        #expect(try store.saveDirectory(directory, after: nil, audit: audit, usingCode: nil, at: now) == 1)
        // A second writer that read no directory, or an older revision, is refused.
        #expect(throws: DirectoryStoreError.changedMeanwhile(stored: 1)) {
            try store.saveDirectory(directory, after: nil, audit: audit, usingCode: nil, at: now)
        }
        directory.people[0].key = String(repeating: "k", count: 40)
        let code = EnrolmentCode(
            hash: String(repeating: "ab", count: 32), person: "gp.khan", issuedBy: "admin.it", issuedAt: now, expiresAt: now + 3_600)
        try store.issueEnrolmentCode(code, audit: audit)
        let read = try #require(try store.enrolmentCode(hash: code.hash))
        #expect(read.person == "gp.khan" && read.issuedBy == "admin.it" && read.usedAt == nil)
        #expect(abs(read.expiresAt.timeIntervalSince(code.expiresAt)) < 0.001)
        #expect(try store.saveDirectory(directory, after: 1, audit: audit, usingCode: code.hash, at: now) == 2)
        #expect(try store.storedDirectory() == StoredDirectory(revision: 2, directory: directory))
        #expect(try store.enrolmentCode(hash: code.hash)?.usedAt != nil)
        #expect(throws: DirectoryStoreError.codeUsed) {
            try store.saveDirectory(directory, after: 2, audit: audit, usingCode: code.hash, at: now)
        }
        #expect(try store.storedDirectory()?.revision == 2)
        // Issuing another code for the person replaces the one not yet used.
        let first = EnrolmentCode(
            hash: String(repeating: "cd", count: 32), person: "gp.khan", issuedBy: "admin.it", issuedAt: now, expiresAt: now + 60)
        let second = EnrolmentCode(
            hash: String(repeating: "ef", count: 32), person: "gp.khan", issuedBy: "admin.it", issuedAt: now, expiresAt: now + 60)
        try store.issueEnrolmentCode(first, audit: audit)
        try store.issueEnrolmentCode(second, audit: audit)
        #expect(try store.enrolmentCode(hash: first.hash) == nil)
        #expect(try store.enrolmentCode(hash: second.hash) != nil)
        // Two saves and three codes; the refused saves wrote nothing.
        #expect(try store.audit(AuditFilter(person: "admin.it", limit: 20)).count == 5)
        #expect(try store.verifyAudit() == .intact(rows: 5))
    }

    @Test("a (sender, key) pair is stored once: the same content is a duplicate, other content a conflict", arguments: Kind.available)
    func idempotency(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        let first = try store.accept([message("m1", key: "k")], confirming: [], at: Date())
        #expect(first.count == 1)
        guard case .stored = first.first else { Issue.record("not stored: \(first)"); return }
        let delivery = PlannedDelivery(recipient: "sw.lee", decision: .deliver, rule: "R6-implied-consent")
        #expect(try store.accept([message("m2", key: "k")], confirming: [], at: Date()) == [.duplicate(id: "m1", deliveries: [delivery])])
        #expect(try store.accept([message("m3", key: "k", body: "{\"other\":1}")], confirming: [], at: Date()) == [.conflict(id: "m1")])
        #expect(try store.earlierSends([("gp.khan", "k")])[idempotencyKey("gp.khan", "k")]?.id == "m1")
        #expect(try store.statistics(at: Date()).messages == 1)
    }

    @Test("a referral changes only from the status it was read in", arguments: Kind.available)
    func referralChangedMeanwhile(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        let now = Date()
        let sent = ReferralRecord(
            messageID: "r1", referrer: "gp.khan", team: "west.social-care", patient: Self.patient,
            status: .sent, deadline: now.addingTimeInterval(3_600), updatedAt: now)
        _ = try store.accept([message("r1", key: "k-r1", patient: Self.patient, referral: sent)], confirming: [], at: now)
        #expect(try store.statistics(at: now).intakeWaiting == ["west.social-care": 1])
        var taken = sent
        taken.status = .accepted
        taken.takenBy = "sw.lee"
        let accept = try store.accept(
            [message("e1", key: "k-e1", kind: .referralEvent, referral: taken, expecting: .sent)],
            confirming: [], at: now)
        guard case .stored = accept.first else { Issue.record("not stored: \(accept)"); return }
        var other = sent
        other.status = .declined
        let late = try store.accept(
            [message("e2", key: "k-e2", kind: .referralEvent, referral: other, expecting: .sent)],
            confirming: [], at: now)
        guard case .referralChanged(let current) = late.first else { Issue.record("expected referralChanged: \(late)"); return }
        #expect(current.status == .accepted && current.takenBy == "sw.lee")
        #expect(try store.referral(id: "r1")?.status == .accepted)
        #expect(try store.statistics(at: now).intakeWaiting.isEmpty)
    }

    @Test(
        "an intake's referrals: its teams' and the person's own, by status, earliest deadline first, with the person's copy",
        arguments: Kind.available)
    func referralsForAWorklist(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        let now = Date()
        func referral(_ id: String, team: TeamID?, minutes: Double, status: ReferralStatus = .sent) -> NewMessage {
            let record = ReferralRecord(
                messageID: id, referrer: "gp.khan", team: team, patient: Self.patient, status: status,
                deadline: now.addingTimeInterval(minutes * 60), updatedAt: now)
            return message(id, key: "k-\(id)", patient: Self.patient, referral: record)
        }
        _ = try store.accept(
            [
                referral("late", team: "west.social-care", minutes: 240), referral("soon", team: "west.social-care", minutes: 30),
                referral("elsewhere", team: "east.social-care", minutes: 10), referral("named", team: nil, minutes: 60),
                referral("closed", team: "west.social-care", minutes: 5, status: .declined),
            ], confirming: [], at: now)
        let open: Set<ReferralStatus> = [.sent, .accepted, .allocated]
        // Every message above was delivered to sw.lee, so the referral to persons is theirs.
        let lee = try store.referrals(to: ["west.social-care"], orPerson: "sw.lee", statuses: open, limit: 10)
        #expect(lee.map(\.record.messageID) == ["soon", "named", "late"])
        #expect(lee.allSatisfy { $0.ownDecision == "deliver" && $0.ownState == "pending" && $0.message.kind == .referral })
        let okafor = try store.referrals(to: ["west.social-care"], orPerson: "sw.okafor", statuses: open, limit: 10)
        #expect(okafor.map(\.record.messageID) == ["soon", "late"], "a referral to someone else by name is not theirs")
        #expect(okafor.allSatisfy { $0.ownDecision == nil })
        #expect(
            try store.referrals(to: ["west.social-care"], orPerson: "sw.okafor", statuses: [.declined], limit: 10).map(\.record.messageID) == [
                "closed"
            ])
        #expect(try store.referrals(to: [], orPerson: "sw.okafor", statuses: open, limit: 10).isEmpty)
        #expect(try store.referrals(to: ["west.social-care"], orPerson: "sw.lee", statuses: open, limit: 1).count == 1)
    }

    @Test("mailboxes are in commit order; confirmations empty them and are harmless repeated", arguments: Kind.available)
    func mailboxesAndConfirmations(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        _ = try store.accept((1...4).map { message("m\($0)", key: "k\($0)") }, confirming: [], at: Date())
        let all = try store.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10)
        #expect(all.map(\.id) == ["m1", "m2", "m3", "m4"])
        #expect(try store.mailbox(for: "sw.lee", after: all[0].seq, excluding: [all[2].seq], limit: 10).map(\.id) == ["m2", "m4"])
        #expect(try store.confirm(recipient: "sw.lee", ids: ["m1", "m2", "unknown"], at: Date()).count == 2)
        #expect(try store.confirm(recipient: "sw.lee", ids: ["m1"], at: Date()).isEmpty)
        #expect(try store.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10).map(\.id) == ["m3", "m4"])
        #expect(try store.statistics(at: Date()).undelivered == 2)
        #expect(try store.tracking(id: "m1")?.recipients.first?.state == "confirmed")
    }

    @Test("care teams hold typed members", arguments: Kind.available)
    func careTeams(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        try store.link(patient: Self.patient, member: .team("west.nursing"), by: "nurse.ali", at: Date())
        try store.link(patient: Self.patient, member: .person("gp.khan"), by: "nurse.ali", at: Date())
        try store.link(patient: Self.patient, member: .person("gp.khan"), by: "nurse.ali", at: Date())
        #expect(Set(try store.careTeam(of: Self.patient)) == [.team("west.nursing"), .person("gp.khan")])
        try store.unlink(patient: Self.patient, member: .team("west.nursing"), by: "nurse.ali", at: Date())
        #expect(try store.careTeam(of: Self.patient) == [.person("gp.khan")])
    }

    @Test("consent records come back in the order they were accepted", arguments: Kind.available)
    func consentRecords(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        _ = try store.accept(
            [
                message("c1", key: "c1", kind: .consent, patient: Self.patient),
                message("x", key: "x"),
                message("c2", key: "c2", kind: .consent, patient: Self.patient),
            ], confirming: [], at: Date())
        let all = try store.consentRecords(after: 0)
        #expect(all.map(\.id) == ["c1", "c2"])
        #expect(try store.consentRecords(after: all[0].seq).map(\.id) == ["c2"])
        #expect(try store.consentRecords(patient: Self.patient).map(\.id) == ["c1", "c2"])
    }

    @Test("a patient's messages of one kind come back oldest first, and only theirs", arguments: Kind.available)
    func messagesAboutAPatient(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        _ = try store.accept(
            [
                message("p1", key: "p1", kind: .carePlanShare, patient: Self.patient),
                message("c1", key: "c1", kind: .consent, patient: Self.patient),
                message("p2", key: "p2", kind: .carePlanShare, patient: Self.patient),
                message("x", key: "x", kind: .carePlanShare),
            ], confirming: [], at: Date())
        #expect(try store.messages(about: Self.patient, kind: .carePlanShare).map(\.id) == ["p1", "p2"])
        #expect(try store.messages(about: Self.patient, kind: .consent).map(\.id) == ["c1"])
    }

    @Test("the audit trail is one hash chain that shows tampering", arguments: Kind.available)
    func auditChain(_ kind: Kind) throws {
        let store = try kind.open()
        defer { store.close() }
        _ = try store.accept((1...3).map { message("m\($0)", key: "k\($0)") }, confirming: [], at: Date())
        try store.appendAudit([AuditEntry(at: Date(), actor: "carerelay", action: .deliver, message: "m1", recipient: "sw.lee", rule: "R6")])
        #expect(try store.verifyAudit() == .intact(rows: 4))
        #expect(try store.audit(AuditFilter(message: "m1")).count == 2)
        switch store {
        case let sqlite as SQLiteStore: try sqlite.unsafeExecute("UPDATE audit SET detail = 'nothing to see' WHERE seq = 2")
        case let postgres as PostgresStore: try postgres.unsafeExecute("UPDATE audit SET detail = 'nothing to see' WHERE seq = 2")
        default: Issue.record("unknown store")
        }
        guard case .broken(let row, _) = try store.verifyAudit() else { Issue.record("tampering not detected"); return }
        #expect(row == 2)
    }
}
