@testable import CareRelayBroker
import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation
import Logging
import Testing

/// The broker's rules driven in-process: commands go straight into `BrokerCore` and what it
/// says is read from its outbox, with no socket, no thread and no CURVE handshake. The store is
/// real (SQLite, or PostgreSQL when Scripts/test sets CARERELAY_TEST_POSTGRES). The
/// socket-level suites (ReferralFlowTests, DeliveryTests, ...) stay as the end-to-end layer.
final class CoreHarness {
    let system: CareSystem
    let core: BrokerCore
    private let codec = CRPCodec(maxBodyBytes: 1 << 20)
    private var connections = 0
    /// What each connection was sent, in order.
    private(set) var received: [[UInt8]: [BrokerCommand]] = [:]
    /// Connections whose peer has gone: sending to them fails.
    var gone = Set<[UInt8]>()
    /// While set, reads beside the loop wait here instead of being run after each turn.
    var holdReads = false
    private(set) var heldReads: [ReadBesideTheLoop] = []

    /// The core's store, which a test can make fail (see `FailingStore`).
    let store: FailingStore

    convenience init() throws { try self.init(system: CareSystem()) }

    init(system: CareSystem) throws {
        self.system = system
        store = FailingStore(try system.store.open())
        var logger = Logger(label: "carerelay.test-core")
        logger.logLevel = .critical
        core = try BrokerCore(
            configuration: system.configuration, directory: system.directory, store: store,
            consent: try ConsentGate(policy: .default, store: store),
            vitals: BrokerVitals(startedAt: Date()), logger: logger)
    }

    deinit { store.close() }

    struct Connection {
        let routingID: [UInt8]
        let key: String?
    }

    /// A new connection for `person` that has said HELLO and been welcomed.
    func connect(_ person: PersonID, receive: Bool = true, credit: Int = 64) throws -> Connection {
        connections += 1
        let connection = Connection(routingID: Array("conn-\(connections)".utf8), key: system.keys[person]?.publicKey)
        let answers = run(connection, .hello(Hello(receive: receive, credit: credit)))
        guard case .welcome? = answers.first else { throw HarnessError.unexpected(answers) }
        return connection
    }

    /// Hands the core one command, then runs one turn of the loop.
    @discardableResult
    func run(_ connection: Connection, _ command: ClientCommand) -> [BrokerCommand] {
        take(connection, command)
        return turn()[connection.routingID] ?? []
    }

    /// Hands the core one command without ending the batch.
    func take(_ connection: Connection, _ command: ClientCommand) {
        core.receive(InboundMessage(routingID: connection.routingID, frames: codec.encode(command), userID: connection.key))
    }

    /// Raw frames, as a client with a broken encoder would send them.
    func takeRaw(_ connection: Connection, _ frames: [[UInt8]]) {
        core.receive(InboundMessage(routingID: connection.routingID, frames: frames, userID: connection.key))
    }

    /// One turn: the batch is committed, timers and deliveries run, the outbox is sent.
    /// Returns what each connection was sent in this turn.
    @discardableResult
    func turn() -> [[UInt8]: [BrokerCommand]] {
        core.commitBatch()
        core.housekeeping()
        heldReads += core.takeReadsBesideTheLoop()
        if !holdReads { runHeldReads() }
        var thisTurn: [[UInt8]: [BrokerCommand]] = [:]
        core.flush { outgoing in
            if gone.contains(outgoing.routingID) { return .peerGone }
            guard let command = try? codec.decodeBrokerCommand(outgoing.frames[...]) else { return .dropped }
            thisTurn[outgoing.routingID, default: []].append(command)
            received[outgoing.routingID, default: []].append(command)
            return nil
        }
        return thisTurn
    }

    /// Runs the reads beside the loop as the shell's reader thread does, on a reader of the
    /// store's own, and hands the answers back to the core.
    func runHeldReads() {
        // An answer may ask for a further read (an audit of one message reads the message first).
        while !heldReads.isEmpty {
            let reads = heldReads
            heldReads.removeAll()
            for read in reads {
                core.answer(read, with: Result { try read.read(try system.store.openReader()) })
            }
            heldReads += core.takeReadsBesideTheLoop()
        }
    }

    func deliveries(to connection: Connection) -> [DeliverHeader] {
        (received[connection.routingID] ?? []).compactMap { if case .deliver(let header, _) = $0 { header } else { nil } }
    }

    func send(
        _ connection: Connection, _ kind: MessageKind, to: [Address], patient: NHSNumber? = nil,
        key: String = UUID().uuidString, correlation: String? = nil, body: [UInt8]
    ) -> BrokerCommand? {
        run(connection, .send(SendHeader(key: key, kind: kind, to: to, patient: patient, correlation: correlation), body: body)).first
    }

    func query(_ connection: Connection, _ name: String, _ params: [String: String]) -> BrokerCommand? {
        run(connection, .query(Query(query: name, params: params))).first
    }

    enum HarnessError: Error { case unexpected([BrokerCommand]) }
}

extension BrokerCommand {
    var accepted: Accepted? { if case .accepted(let answer) = self { answer } else { nil } }
    var rejected: Rejected? { if case .rejected(let refusal) = self { refusal } else { nil } }
    var resultBody: [UInt8]? { if case .result(_, let body) = self { body } else { nil } }
}

/// A real store whose care-team reads can be made to fail, as a database that has just gone
/// away fails them; everything else passes through.
final class FailingStore: MessageStore {
    let inner: any MessageStore
    var careTeamReadsFail = false
    init(_ inner: any MessageStore) { self.inner = inner }

    func careTeam(of patient: NHSNumber) throws -> [CareTeamMember] {
        if careTeamReadsFail { throw StoreError.unavailable("the test stopped the store answering") }
        return try inner.careTeam(of: patient)
    }
    func nextReferralDeadline() throws -> Date? {
        if careTeamReadsFail { throw StoreError.unavailable("the test stopped the store answering") }
        return try inner.nextReferralDeadline()
    }

    func statistics(at now: Date) throws -> StoreStatistics { try inner.statistics(at: now) }
    var sharedChanges: SharedChanges? { inner.sharedChanges }
    func close() { inner.close() }
    func accept(_ batch: [NewMessage], confirming confirmations: [DeliveryConfirmation], at now: Date) throws -> [StoreOutcome] {
        try inner.accept(batch, confirming: confirmations, at: now)
    }
    func earlierSends(_ keys: [(sender: PersonID, key: String)]) throws -> [String: EarlierSend] { try inner.earlierSends(keys) }
    func mailbox(for recipient: PersonID, after: Int64, excluding inFlight: Set<Int64>, limit: Int) throws -> [MailItem] {
        try inner.mailbox(for: recipient, after: after, excluding: inFlight, limit: limit)
    }
    func recordDeliveries(
        sent: [(seq: Int64, recipient: PersonID)], withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)],
        audit: [AuditEntry], at now: Date
    ) throws {
        try inner.recordDeliveries(sent: sent, withheld: withheld, audit: audit, at: now)
    }
    func confirm(recipient: PersonID, ids: [String], at now: Date) throws -> [Int64] { try inner.confirm(recipient: recipient, ids: ids, at: now) }
    func deliveredCopies(about patient: NHSNumber) throws -> [MailItem] { try inner.deliveredCopies(about: patient) }
    func messages(about patient: NHSNumber, kind: MessageKind) throws -> [StoredMessage] { try inner.messages(about: patient, kind: kind) }
    func message(id: String) throws -> StoredMessage? { try inner.message(id: id) }
    func tracking(id: String) throws -> Tracking? { try inner.tracking(id: id) }
    func history(for person: PersonID, kind: MessageKind?, limit: Int) throws -> [InboxLine] {
        try inner.history(for: person, kind: kind, limit: limit)
    }
    func referrals(to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int) throws -> [ReferralEntry] {
        try inner.referrals(to: teams, orPerson: person, statuses: statuses, limit: limit)
    }
    func referral(id: String) throws -> ReferralRecord? { try inner.referral(id: id) }
    func dueOnCallChains(at now: Date) throws -> [OnCallChain] { try inner.dueOnCallChains(at: now) }
    func nextOnCallDeadline() throws -> Date? { try inner.nextOnCallDeadline() }
    func onCallChains(message: String) throws -> [OnCallChain] { try inner.onCallChains(message: message) }
    func onCallChain(id: String) throws -> OnCallChain? { try inner.onCallChain(id: id) }
    func saveOnCall(_ chain: OnCallChain, expectingTold told: Int, notifications: [NotificationRecord], audit: [AuditEntry]) throws -> Bool {
        try inner.saveOnCall(chain, expectingTold: told, notifications: notifications, audit: audit)
    }
    func overdueReferrals(at now: Date) throws -> [ReferralRecord] { try inner.overdueReferrals(at: now) }
    func link(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        try inner.link(patient: patient, member: member, by: actor, at: now)
    }
    func unlink(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        try inner.unlink(patient: patient, member: member, by: actor, at: now)
    }
    func consentRecords(after: Int64) throws -> [ConsentRecord] { try inner.consentRecords(after: after) }
    func consentRecords(patient: NHSNumber) throws -> [ConsentRecord] { try inner.consentRecords(patient: patient) }
    func appendAudit(_ entries: [AuditEntry]) throws { try inner.appendAudit(entries) }
    func audit(_ filter: AuditFilter) throws -> [AuditRow] { try inner.audit(filter) }
    func verifyAudit() throws -> AuditVerification { try inner.verifyAudit() }
    func storedDirectory() throws -> StoredDirectory? { try inner.storedDirectory() }
    func saveDirectory(_ directory: Directory, after revision: Int64?, audit: [AuditEntry], usingCode: String?, at now: Date) throws -> Int64 {
        try inner.saveDirectory(directory, after: revision, audit: audit, usingCode: usingCode, at: now)
    }
    func issueEnrolmentCode(_ code: EnrolmentCode, audit: [AuditEntry]) throws { try inner.issueEnrolmentCode(code, audit: audit) }
    func enrolmentCode(hash: String) throws -> EnrolmentCode? { try inner.enrolmentCode(hash: hash) }
}

@Suite("Broker core, in-process")
struct BrokerCoreTests {
    @Test("a referral is acknowledged once stored, delivered within credit, and tracked as confirmed")
    func referralRoundTrip() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let okafor = try harness.connect("sw.okafor", credit: 1)

        let accepted = try #require(
            harness.send(
                gp, .referral, to: [.team("west.social-care")], patient: ellis,
                body: try Bodies.referral())?.accepted)
        #expect(Set(accepted.recipients.map(\.person)) == ["sw.okafor", "sw.lee", "coord.patel"])
        #expect(accepted.recipients.allSatisfy { $0.decision == .deliver })
        #expect(harness.deliveries(to: okafor).map(\.id) == [accepted.id])

        // Credit 1: a second referral waits until the first is confirmed.
        let second = try #require(
            harness.send(
                gp, .referral, to: [.team("west.social-care")], patient: ellis,
                body: try Bodies.referral(reason: "second"))?.accepted)
        #expect(harness.deliveries(to: okafor).map(\.id) == [accepted.id])
        harness.run(okafor, .confirm(Confirm(ids: [accepted.id])))
        #expect(harness.deliveries(to: okafor).map(\.id) == [accepted.id, second.id])

        let tracking = try decode(Tracking.self, try #require(harness.query(gp, "track", ["id": accepted.id])?.resultBody))
        #expect(tracking.recipients.first { $0.person == "sw.okafor" }?.state == "confirmed")
        #expect(tracking.recipients.first { $0.person == "sw.lee" }?.state == "pending")
    }

    @Test("a delivery whose connection has gone goes back to the mailbox, with one audit line, not two")
    func deliveryToAGoneConnection() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let first = try harness.connect("sw.okafor")
        harness.gone.insert(first.routingID)
        let accepted = try #require(
            harness.send(
                gp, .referral, to: [.team("west.social-care")], patient: ellis,
                body: try Bodies.referral())?.accepted)
        #expect(harness.core.sessions[first.routingID] == nil, "the session of a gone peer ends")

        let second = try harness.connect("sw.okafor")
        let delivery = try #require(harness.deliveries(to: second).first)
        #expect(delivery.id == accepted.id)
        #expect(delivery.attempt == 1, "a copy that never left is not counted as an attempt")
        let audit = try harness.core.store.audit(AuditFilter(patient: nil, person: nil, message: accepted.id, limit: 100))
        #expect(audit.filter { $0.entry.recipient == "sw.okafor" && $0.entry.decision?.hasPrefix("deliver:") == true }.count == 1)
    }

    @Test("a resend in the same batch is answered as a duplicate; the same key with new content is a conflict")
    func idempotencyWithinAndAcrossBatches() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let header = SendHeader(key: "k-1", kind: .referral, to: [.team("west.social-care")], patient: ellis)
        let body = try Bodies.referral()
        harness.take(gp, .send(header, body: body))
        harness.take(gp, .send(header, body: body))
        let answers = harness.turn()[gp.routingID] ?? []
        let first = try #require(answers.first?.accepted)
        let again = try #require(answers.last?.accepted)
        #expect(answers.count == 2 && !first.duplicate && again.duplicate && again.id == first.id)

        let conflict = harness.send(
            gp, .referral, to: [.team("west.social-care")], patient: ellis, key: "k-1",
            body: try Bodies.referral(reason: "different"))?.rejected
        #expect(conflict?.code == ErrorCode.idempotencyConflict.rawValue)
        // The referral once, and once the consent its patient's agreement records.
        #expect(try harness.core.store.statistics(at: Date()).messages == 2)
    }

    @Test("a referral is taken once: the second taker hears who took it")
    func referralTakenOnce() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let okafor = try harness.connect("sw.okafor", receive: false)
        let lee = try harness.connect("sw.lee", receive: false)
        let referral = try #require(
            harness.send(
                gp, .referral, to: [.team("west.social-care")], patient: ellis,
                body: try Bodies.referral())?.accepted)
        let taken = harness.send(
            okafor, .referralEvent, to: [], correlation: referral.id,
            body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))
        #expect(taken?.accepted != nil)
        let refused = try #require(
            harness.send(
                lee, .referralEvent, to: [], correlation: referral.id,
                body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))?.rejected)
        #expect(refused.code == ErrorCode.invalidTransition.rawValue)
        #expect(refused.reason.contains("held by sw.okafor"))
    }

    @Test("someone outside the referral cannot learn it exists")
    func strangersSeeNothing() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let stranger = try harness.connect("gp.east", receive: false)
        let referral = try #require(
            harness.send(
                gp, .referral, to: [.team("west.social-care")], patient: ellis,
                body: try Bodies.referral())?.accepted)
        #expect(harness.query(stranger, "track", ["id": referral.id])?.rejected?.code == ErrorCode.unknownMessage.rawValue)
        #expect(harness.query(stranger, "track", ["id": "no-such-id"])?.rejected?.code == ErrorCode.unknownMessage.rawValue)
    }

    @Test("commands from a key the directory no longer has, or before HELLO, are refused")
    func identityComesFromTheDirectory() throws {
        let harness = try CoreHarness()
        let intruder = CoreHarness.Connection(routingID: Array("intruder".utf8), key: "not-a-directory-key")
        #expect(harness.run(intruder, .ping(Empty())).first?.rejected?.code == ErrorCode.notPermitted.rawValue)
        let early = CoreHarness.Connection(routingID: Array("early".utf8), key: harness.system.keys["gp.khan"]?.publicKey)
        #expect(harness.run(early, .ping(Empty())).first?.rejected?.code == ErrorCode.helloRequired.rawValue)
    }

    @Test("a key that keeps sending malformed commands is throttled, then ignored")
    func malformedCommandsAreThrottled() throws {
        let harness = try CoreHarness()
        let noisy = try harness.connect("vsb.green")
        let burst = harness.core.refusals.limits.burst
        var codes: [Int] = []
        for _ in 0..<burst + 5 {
            harness.takeRaw(noisy, [Array("CRP01".utf8), Array("NONSENSE".utf8), Array("{}".utf8)])
            codes += (harness.turn()[noisy.routingID] ?? []).compactMap { $0.rejected?.code }
        }
        #expect(codes.contains(ErrorCode.throttled.rawValue))
        #expect(codes.count <= burst + 2, "once throttled, nothing more is answered")
        #expect(harness.core.sessions.sessions(of: "vsb.green").isEmpty)
    }

    @Test("the audit trail is read beside the loop: the broker answers others meanwhile")
    func auditReadBesideTheLoop() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let admin = try harness.connect("admin.it", receive: false)
        _ = try #require(harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())?.accepted)
        harness.holdReads = true
        #expect(harness.query(admin, "audit.verify", [:]) == nil, "not answered on the loop")
        #expect(harness.heldReads.map(\.query) == ["audit.verify"])
        guard case .pong? = harness.run(gp, .ping(Empty())).first else {
            Issue.record("PING not answered while the read waits")
            return
        }
        harness.holdReads = false
        let answer = try #require(harness.turn()[admin.routingID]?.first?.resultBody)
        guard case .intact(let rows) = try decode(AuditVerification.self, answer) else {
            Issue.record("the chain should be intact")
            return
        }
        #expect(rows > 1)
        // The access policy is still applied on the loop: a GP may not verify the trail.
        #expect(harness.query(gp, "audit.verify", [:])?.rejected?.code == ErrorCode.notPermitted.rawValue)
    }

    @Test("a message's tracking is read beside the loop, and who may see it is decided on the loop once it is read")
    func trackingReadBesideTheLoop() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let stranger = try harness.connect("gp.east", receive: false)
        let referral = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())?.accepted)
        harness.holdReads = true
        #expect(harness.query(gp, "track", ["id": referral.id]) == nil, "not answered on the loop")
        #expect(harness.query(stranger, "track", ["id": referral.id]) == nil)
        #expect(harness.heldReads.map(\.query) == ["track", "track"])
        guard case .pong? = harness.run(gp, .ping(Empty())).first else {
            Issue.record("PING not answered while the reads wait")
            return
        }
        harness.holdReads = false
        let answers = harness.turn()
        let tracking = try decode(Tracking.self, try #require(answers[gp.routingID]?.first?.resultBody))
        #expect(tracking.id == referral.id && tracking.referral?.status == .sent)
        #expect(answers[stranger.routingID]?.first?.rejected?.code == ErrorCode.unknownMessage.rawValue)
    }

    @Test("a care team the store cannot read leaves the copy pending, and it goes once the store answers")
    func undecidableDeliveryWaitsForTheStore() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        let okafor = try harness.connect("sw.okafor", credit: 0)
        let referral = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())?.accepted)
        harness.store.careTeamReadsFail = true
        harness.core.careTeams.removeAll()  // as after a lost notification connection
        harness.run(okafor, .credit(Credit(credit: 10)))
        #expect(harness.deliveries(to: okafor).isEmpty)
        #expect(try harness.store.inner.tracking(id: referral.id)?.recipients.first { $0.person == "sw.okafor" }?.state == "pending")

        harness.store.careTeamReadsFail = false
        harness.system.clock.advance(by: 2)  // past the backlog's next attempt
        harness.turn()
        #expect(harness.deliveries(to: okafor).map(\.id) == [referral.id])
    }

    @Test("once stopping, every command is answered 'shutting down' and nothing is stored")
    func shuttingDown() throws {
        let harness = try CoreHarness()
        let gp = try harness.connect("gp.khan", receive: false)
        harness.core.beginStopping()
        let refusal = harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())?.rejected
        #expect(refusal?.code == ErrorCode.shuttingDown.rawValue)
        #expect(try harness.core.store.statistics(at: Date()).messages == 0)
    }
}

/// Sessions, credit and cursors alone: the value the core keeps them in.
@Suite struct SessionTableTests {
    let lee = Array("lee".utf8), bridge = Array("bridge".utf8)

    func table() -> SessionTable {
        var table = SessionTable()
        table[lee] = Session(routingID: lee, person: "sw.lee", key: "k1", receives: true, credit: 2, lastHeard: Date())
        table[bridge] = Session(routingID: bridge, person: "bridge", key: "k2", receives: true, credit: 2, lastHeard: Date())
        return table
    }

    @Test func creditIsHeldUntilConfirmedOnTheConnectionThatHasIt() {
        var table = table()
        let key = DeliveryKey(seq: 5, recipient: "sw.lee")
        table.handedOut(key, id: "m5", via: lee, attempt: table.nextAttempt(key))
        #expect(table[lee]?.spareCredit == 1)
        table.confirmed(["m5"], for: "sw.lee", via: bridge)
        #expect(table[lee]?.spareCredit == 1, "a confirmation on another connection frees nothing here")
        table.confirmed(["m5"], for: "sw.lee", via: lee)
        #expect(table[lee]?.spareCredit == 2)
        #expect(table.nextAttempt(key) == 1)
    }

    @Test func aDeliveryThatDidNotLeaveIsNotAnAttemptAndIsOfferedAgain() {
        var table = table()
        let key = DeliveryKey(seq: 7, recipient: "sw.lee")
        table.read(7, of: "sw.lee")
        table.handedOut(key, id: "m7", via: lee, attempt: 1)
        _ = table.takeWaiting()
        table.notHandedOut(key, via: lee)
        #expect(table.nextAttempt(key) == 1)
        #expect(table.cursor(of: "sw.lee") == 0)
        #expect(table.waiting == ["sw.lee"])
    }

    @Test func endingASessionReturnsWhatItHeldForEveryoneItCarried() {
        var table = table()
        table.actFor(
            Directory(
                organisations: [], localities: [], teams: [],
                people: [
                    Directory.Person(
                        id: "bridge", name: "Bridge", roles: [.gateway], organisation: nil, teams: [], key: "k2",
                        actsFor: ["carer.ellis"])
                ]))
        #expect(table.connections(for: "carer.ellis") == [bridge])
        table.read(9, of: "carer.ellis")
        table.handedOut(DeliveryKey(seq: 9, recipient: "carer.ellis"), id: "m9", via: bridge, attempt: 1)
        _ = table.takeWaiting()
        #expect(table.end(bridge)?.person == "bridge")
        #expect(table.cursor(of: "carer.ellis") == 0)
        #expect(table.waiting == ["bridge", "carer.ellis"])
        #expect(table.connections(for: "carer.ellis").isEmpty)
    }
}
