import CareRelayBroker
import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayPostgres
import CareRelayProtocol
import CareRelayStore
import Foundation
import Logging
import Testing
import ZeroMQ

/// The directory kept in the store and changed by administrators' commands; people enrolling
/// with one-time codes (CRP.md section 13, access-policy.md rule 13). Over real CURVE
/// connections, on SQLite and (when Scripts/test runs it) PostgreSQL.
@Suite("Directory administration and enrolment")
struct DirectoryAdministrationTests {
    static let newcomer = Directory.Person(
        id: "sw.new", name: "Sam New", roles: [.socialWorker], organisation: "sunderland-ccg", teams: ["west.social-care"], key: nil,
        email: "sam.new@sunderland.example")

    func change(_ client: CareRelayClient, _ changes: [DirectoryChange], dryRun: Bool = false) throws -> DirectoryChangeResult {
        try client.query(DirectoryChangeRequest(changes: changes, dryRun: dryRun))
    }

    func refusal(_ body: () throws -> Void) -> ProtocolError? {
        do {
            try body()
            return nil
        } catch ClientError.rejected(let failure) {
            return failure
        } catch {
            return ProtocolError(.malformedMessage, "unexpected \(error)")
        }
    }

    func enrol(_ system: CareSystem, code: String, keys: CurveKeyPair) throws -> Enrolment {
        try CareRelayClient.enrol(
            ClientConfiguration(endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: keys, attempts: 1), code: code)
    }

    @Test("a person added by an administrator enrols with a code, once, and then works like anyone else")
    func addAndEnrol() throws {
        let system = try CareSystem()
        try system.start()
        let admin = try system.client("admin.it", receive: false)
        let added = try change(admin, [.addPerson(Self.newcomer)])
        #expect(added.changes == ["add person sw.new (Sam New): social-worker; teams west.social-care; organisation sunderland-ccg"])

        let issued = try admin.query(EnrolmentIssue(person: "sw.new"))
        #expect(issued.name == "Sam New")
        #expect(abs(issued.expires.timeIntervalSince(system.clock.now().addingTimeInterval(48 * 3_600))) < 1)
        // A key nobody has enrolled may do nothing but enrol.
        let keys = try CurveKeyPair.generate()
        #expect(throws: ClientError.keyRefused(endpoint: system.endpoint)) { _ = try system.client("sw.new", keys: keys) }

        let enrolment = try enrol(system, code: issued.code.lowercased().replacingOccurrences(of: "-", with: " "), keys: keys)
        #expect(enrolment == Enrolment(person: "sw.new", name: "Sam New", roles: [.socialWorker], teams: ["west.social-care"]))
        // The same code from the key it enrolled (the first answer lost) is answered again.
        #expect(try enrol(system, code: issued.code, keys: keys).person == "sw.new")
        let sam = try system.client("sw.new", keys: keys)
        #expect(sam.welcome?.person == "sw.new")
        // A referral to the team reaches them.
        let gp = try system.client("gp.khan", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(try sam.expectDelivery().header.id == referral.id)

        // The same code again, from another new key: refused, and that key stays a stranger.
        let other = try CurveKeyPair.generate()
        let twice = refusal { _ = try enrol(system, code: issued.code, keys: other) }
        #expect(twice?.code == .enrolmentRefused && twice?.reason.contains("has been used") == true, "\(String(describing: twice))")
        #expect(throws: ClientError.keyRefused(endpoint: system.endpoint)) { _ = try system.client("sw.new", keys: other) }

        // Every step is an audit line naming who took it.
        let audit = try admin.query(AuditFilter(person: "admin.it", limit: 50))
        #expect(audit.contains { $0.entry.action == .directory && $0.entry.detail?.contains("add person sw.new") == true })
        #expect(audit.contains { $0.entry.action == .directory && $0.entry.detail?.contains("enrolment code issued for sw.new") == true })
        let own = try admin.query(AuditFilter(limit: 200))
        #expect(own.contains { $0.entry.actor == "sw.new" && $0.entry.detail?.contains("enrolled a key") == true })
        #expect(!own.contains { $0.entry.detail?.contains(issued.code) == true || $0.entry.detail?.contains(keys.publicKey) == true })
    }

    @Test("an expired code is refused, and a guessed one is throttled broker-wide")
    func expiredAndGuessedCodes() throws {
        let system = try CareSystem()
        try system.start()
        let admin = try system.client("admin.it", receive: false)
        _ = try change(admin, [.addPerson(Self.newcomer)])
        let issued = try admin.query(EnrolmentIssue(person: "sw.new", hours: 1))
        system.clock.advance(by: 3_601)
        let expired = refusal { _ = try enrol(system, code: issued.code, keys: try CurveKeyPair.generate()) }
        #expect(expired?.code == .enrolmentRefused && expired?.reason.contains("expired") == true, "\(String(describing: expired))")

        let fresh = try admin.query(EnrolmentIssue(person: "sw.new"))
        let guesser = try CurveKeyPair.generate()
        for _ in 0..<9 {
            #expect(refusal { _ = try enrol(system, code: InvitationCode.generate(), keys: guesser) }?.code == .enrolmentRefused)
        }
        // Ten wrong codes in a minute (the expired one counts): every attempt waits, the right code too.
        let throttled = refusal { _ = try enrol(system, code: fresh.code, keys: try CurveKeyPair.generate()) }
        #expect(throttled?.code == .throttled, "\(String(describing: throttled))")
        system.clock.advance(by: 61)
        #expect(try enrol(system, code: fresh.code, keys: try CurveKeyPair.generate()).person == "sw.new")
    }

    @Test("only administrators change the directory, each within what they administer")
    func administratorsWithinTheirScope() throws {
        let system = try CareSystem()
        let server = try system.start()
        // A locality's administrator: east only.
        var directory = system.directory.directory
        let eastAdmin = try CurveKeyPair.generate()
        directory.people.append(
            Directory.Person(
                id: "admin.east", name: "East IT", roles: [.administrator], teams: [], key: eastAdmin.publicKey, administers: [.locality("east")]))
        server.reload(directory: try DirectoryIndex(directory))

        let gp = try system.client("gp.khan", receive: false)
        let notAdmin = refusal { _ = try change(gp, [.addPerson(Self.newcomer)]) }
        #expect(notAdmin?.code == .notPermitted && notAdmin?.reason.contains("only a directory administrator") == true)
        #expect(refusal { _ = try gp.query(EnrolmentIssue(person: "sw.lee")) }?.code == .notPermitted)

        let east = try system.client("admin.east", receive: false, keys: eastAdmin)
        // Moving someone within east: allowed. Moving a west social worker: outside their scope.
        _ = try change(east, [.changePerson(.init(id: "sw.ahmed", teams: ["east.social-care", "east.gp"]))])
        let outside = refusal { _ = try change(east, [.changePerson(.init(id: "sw.lee", teams: ["east.social-care"]))]) }
        #expect(
            outside?.code == .notPermitted && outside?.reason.contains("outside what you administer (locality east)") == true,
            "\(String(describing: outside))")
        let moveOut = refusal { _ = try change(east, [.changePerson(.init(id: "sw.ahmed", teams: ["west.social-care"]))]) }
        #expect(moveOut?.code == .notPermitted && moveOut?.reason.contains("would move outside") == true, "\(String(describing: moveOut))")
        #expect(refusal { _ = try east.query(EnrolmentIssue(person: "sw.lee")) }?.code == .notPermitted)
        // Nor may an administrator set up a gateway, or give more than they hold.
        var gateway = Self.newcomer
        gateway.roles = [.gateway]
        gateway.teams = ["east.gp"]
        #expect(refusal { _ = try change(east, [.addPerson(gateway)]) }?.code == .notPermitted)
        var deputy = Self.newcomer
        deputy.roles = [.administrator]
        deputy.organisation = nil
        deputy.teams = ["east.gp"]
        deputy.administers = [.locality("west")]
        #expect(refusal { _ = try change(east, [.addPerson(deputy)]) }?.reason.contains("which you do not administer") == true)
    }

    @Test("a list with one bad change is refused whole, naming it; a dry run saves nothing")
    func allOrNothing() throws {
        let system = try CareSystem()
        try system.start()
        let admin = try system.client("admin.it", receive: false)
        var second = Self.newcomer
        second.id = "sw.second"
        second.email = "second@sunderland.example"
        var bad = Self.newcomer
        bad.id = "sw.bad"
        bad.email = "bad@sunderland.example"
        bad.teams = ["west.no-such-team"]
        let refused = refusal { _ = try change(admin, [.addPerson(Self.newcomer), .addPerson(second), .addPerson(bad)]) }
        #expect(refused?.code == .invalidDirectoryChange, "\(String(describing: refused))")
        #expect(refused?.reason.hasPrefix("changes[2]: team 'west.no-such-team' of person 'sw.bad'") == true, "\(String(describing: refused))")
        let listing = try admin.query(DirectoryQuery())
        #expect(!listing.people.contains { $0.id == "sw.new" || $0.id == "sw.second" })

        let dry = try change(admin, [.addPerson(Self.newcomer), .addPerson(second)], dryRun: true)
        #expect(dry.dryRun && dry.changes.count == 2)
        #expect(!(try admin.query(DirectoryQuery())).people.contains { $0.id == "sw.new" })
        // A co-ordinator cannot be removed while their team names them.
        let coordinator = refusal { _ = try change(admin, [.removePerson("coord.patel")]) }
        #expect(coordinator?.code == .invalidDirectoryChange && coordinator?.reason.contains("name another co-ordinator") == true)
    }

    @Test("removing a person ends their open connection at once; their undelivered mail is held, their referrals reallocated")
    func removalEndsALiveConnection() throws {
        let system = try CareSystem()
        try system.start()
        let lee = try system.client("sw.lee", credit: 0)
        _ = try lee.query("status")
        let gp = try system.client("gp.khan", receive: false)
        // A referral Daniel Lee took for the team, and one waiting for him by name.
        let taken = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        try lee.send(.referralEvent, to: [], correlation: taken.id, body: try Bodies.event("accepted", referral: taken.id, by: "sw.lee"))
        let held = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        let admin = try system.client("admin.it", receive: false)
        _ = try change(admin, [.removePerson("sw.lee")])
        let ended = refusal { _ = try lee.query("status") }
        #expect(ended?.code == .notPermitted && ended?.reason.contains("not in the directory") == true, "\(String(describing: ended))")
        // Nobody can address them now; the co-ordinator gives what they held to someone else.
        #expect(refusal { _ = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral()) }?.code == .unknownAddress)
        let coordinator = try system.client("coord.patel", receive: false)
        let worklist = try coordinator.query(WorklistQuery())
        #expect(worklist.contains { $0.id == taken.id && $0.owner == "sw.lee" })
        try coordinator.send(
            .referralEvent, to: [], correlation: taken.id,
            body: try Bodies.event("allocated", referral: taken.id, by: "coord.patel", extra: ["allocatedTo": ["person": "sw.okafor"]]))
        #expect(try coordinator.query(TrackQuery(id: taken.id)).referral?.owner == "sw.okafor")
        // What waited for them is still in the store.
        system.stop()
        let store = try system.store.open()
        defer { store.close() }
        #expect(try store.mailbox(for: "sw.lee", after: 0, excluding: [], limit: 10).map(\.id) == [held.id])
    }

    @Test("moving teams changes what a person receives from the next message on")
    func movingTeams() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.client("nurse.ali")
        let gp = try system.client("gp.khan", receive: false)
        let before = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        let admin = try system.client("admin.it", receive: false)
        _ = try change(admin, [.changePerson(.init(id: "nurse.ali", teams: ["west.social-care", "west.mdt"]))])
        let after = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(reason: "after the move"))
        let delivered = try nurse.expectDelivery()
        #expect(delivered.header.id == after.id)
        #expect(delivered.header.id != before.id)
        #expect(try nurse.nextDelivery(timeout: .milliseconds(300)) == nil)
    }
}

extension DirectoryAdministrationTests {
    @Test("a care co-ordinator's invitation alone brings a new carer in: no key, the bridge acts for them")
    func invitingANewCarer() throws {
        let system = try CareSystem()
        try system.start()
        try system.linkCareTeam(of: ellis, ["person:nurse.ali", "person:coord.patel"])
        let coordinator = try system.client("coord.patel", receive: false)
        let invite = CarerInvite(
            carer: "carer.alan.new", carerName: "Alan New", patients: [ellis], codeHash: InvitationCode.hash(InvitationCode.generate()),
            expires: Timestamp(system.clock.now().addingTimeInterval(86_400)), issuedBy: "coord.patel")
        try coordinator.send(.carerInvite, to: [.person("bridge")], body: invite.encode())

        let listing = try coordinator.query(DirectoryQuery())
        let carer = try #require(listing.people.first { $0.id == "carer.alan.new" })
        #expect(carer.name == "Alan New" && carer.roles == [.carer] && carer.enrolled == false)
        #expect(try coordinator.query(CareTeamQuery(patient: ellis)).contains(.person("carer.alan.new")))
        // The bridge acts for them from now on: their check-in goes through it.
        let bridge = try system.client("bridge", receive: false)
        let checkIn = try bridge.send(
            .carerCheckIn, to: [.careTeam(ellis)], patient: ellis, onBehalfOf: "carer.alan.new",
            body: try Bodies.checkIn(patient: ellis, carer: "carer.alan.new"))
        #expect(!checkIn.id.isEmpty)
        // Someone outside the patient's care team cannot bring a carer in.
        let outsider = try system.client("coord.east", receive: false)
        var stranger = invite
        stranger.carer = "carer.someone"
        stranger.carerName = "Some One"
        stranger.issuedBy = "coord.east"
        #expect(refusal { try outsider.send(.carerInvite, to: [.person("bridge")], body: stranger.encode()) }?.code == .notPermitted)
        #expect(!(try coordinator.query(DirectoryQuery())).people.contains { $0.id == "carer.someone" })
    }
}

/// Two brokers sharing one PostgreSQL store: a change made through one holds on the other.
@Suite(.enabled(if: CareSystem.postgres != nil, "needs a PostgreSQL server: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct SharedDirectoryTests {
    @Test("a person removed through one broker is refused by the other at once")
    func removalReachesEveryBroker() throws {
        let system = try CareSystem()
        let first = try system.start()
        var logger = Logger(label: "carerelay.test-broker")
        logger.logLevel = .warning
        let second = try BrokerServer.start(configuration: system.configuration, directory: nil, logger: logger)
        defer { second.stop() }
        let leeOnSecond = try system.client("sw.lee", receive: false, endpoint: second.endpoint)
        _ = try leeOnSecond.query("status")
        let admin = try system.client("admin.it", receive: false, endpoint: first.endpoint)
        _ = try admin.query(DirectoryChangeRequest(changes: [.removePerson("sw.lee")]))
        // The other broker hears of it by notification; within a moment its loop has the new revision.
        var refused: ClientError?
        for _ in 0..<100 where refused == nil {
            do throws(ClientError) { _ = try leeOnSecond.query("status") } catch { refused = error }
            if refused == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard case .rejected(let failure)? = refused else {
            Issue.record("the second broker still served the removed person: \(String(describing: refused))")
            return
        }
        #expect(failure.code == .notPermitted)
        #expect(throws: ClientError.keyRefused(endpoint: second.endpoint)) { _ = try system.client("sw.lee", endpoint: second.endpoint) }
    }
}
