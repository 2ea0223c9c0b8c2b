@testable import CareRelayBroker
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// Which notifications the broker queues, for whom and in what words, driven in-process on the
/// real store (both stores in Scripts/test). NotificationDeliveryTests sends them for real.
@Suite struct NotificationPlanningTests {
    /// The care system with email addresses, a mobile number and a team mailbox, and a site
    /// that has set up email and SMS.
    static func harness(site: NotificationSite? = NotificationSite(channels: [.email, .sms]), _ adjust: (inout Directory) -> Void = { _ in })
        throws -> CoreHarness
    {
        let system = try CareSystem()
        var directory = system.directory.directory
        for index in directory.people.indices {
            directory.people[index].email = "\(directory.people[index].id)@care.example"
        }
        if let lee = directory.people.firstIndex(where: { $0.id == "sw.lee" }) {
            directory.people[lee].phone = "07700 900123"
            directory.people[lee].notify = NotificationChoices(email: [.referralNew, .referralAllocated], sms: [.checkInUrgent])
        }
        if let intake = directory.teams.firstIndex(where: { $0.id == "west.social-care" }) {
            directory.teams[intake].email = "west-intake@care.example"
        }
        adjust(&directory)
        system.directory = try DirectoryIndex(directory)
        system.notifications = site
        let harness = try CoreHarness(system: system)
        // Mrs Ellis's care team: the nurse, the social care intake and Jean, her carer.
        let nurse = try harness.connect("nurse.ali")
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            _ = try #require(harness.query(nurse, "careteam.link", ["patient": ellis.digits, "member": member])?.resultBody)
        }
        return harness
    }

    /// Everything queued so far, digests included, in the order they would go.
    static func queued(_ harness: CoreHarness) throws -> [NotificationRecord] {
        let outbox = try harness.system.store.openOutbox()
        // Held for a year: the next call sees only what was queued since.
        return try outbox.claimNotifications(dueBy: Date().addingTimeInterval(3 * 86_400), limit: 1_000, lease: 365 * 86_400).map(\.record)
    }

    /// What identifies Mrs Ellis in the bodies the tests send: none of it may leave by email,
    /// SMS or webhook.
    static let patientIdentifiers = [
        ellis.digits, ellis.formatted, robson.digits, robson.formatted, "Margaret", "Ellis", "Harbour View", "SR4 6TJ", "0191 496 0123",
        "1940", "falls", "confused", "slept", "husband",
    ]

    static func expectNoPatientInformation(_ records: [NotificationRecord], sourceLocation: SourceLocation = #_sourceLocation) {
        for record in records {
            for text in [record.subject, record.text, record.link ?? ""] {
                for identifier in patientIdentifiers {
                    #expect(!text.contains(identifier), "\(record.event.rawValue) says '\(identifier)': \(text)", sourceLocation: sourceLocation)
                }
            }
        }
    }

    @Test("a new urgent referral tells the co-ordinator, the member who asked and the team's mailbox, at once; nobody else")
    func newReferral() throws {
        let harness = try Self.harness()
        let gp = try harness.connect("gp.khan")
        let referral = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))?.accepted)
        let queued = try Self.queued(harness).filter { $0.event == .referralNew }
        let emails = Set(queued.filter { $0.channel == .email }.map(\.address))
        // sw.okafor has made no choice: the defaults leave intake arrivals to the co-ordinator.
        #expect(emails == ["coord.patel@care.example", "sw.lee@care.example", "west-intake@care.example"])
        #expect(queued.allSatisfy { $0.event == .referralNew && $0.urgent && !$0.digest && $0.message == referral.id })
        #expect(!queued.contains { $0.channel == .sms }, "Daniel Lee takes only urgent check-ins by SMS")
        let subject = try #require(queued.first?.subject)
        #expect(subject.hasPrefix("1 new urgent referral for West social care intake, respond by "))
        #expect(queued.first?.text.contains("Reference \(referral.id)") == true)
        #expect(queued.first?.link == "carerelay referral inbox --team west.social-care")
        Self.expectNoPatientInformation(queued)
    }

    @Test("a reminder is queued for when three quarters of the response time has gone, and cancelled when someone takes the referral")
    func dueSoonReminder() throws {
        let harness = try Self.harness()
        let gp = try harness.connect("gp.khan", receive: false)
        let now = harness.system.clock.now()
        let first = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))?.accepted)
        let second = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))?.accepted)
        // Taken before its reminder is due: the reminder is cancelled.
        let okafor = try harness.connect("sw.okafor", receive: false)
        _ = try #require(
            harness.send(
                okafor, .referralEvent, to: [], correlation: first.id, body: try Bodies.event("accepted", referral: first.id, by: "sw.okafor"))?
                .accepted)
        let reminders = try Self.queued(harness).filter { $0.event == .referralDueSoon }
        #expect(Set(reminders.map(\.message)) == [second.id], "the first was taken, so its reminder went")
        #expect(Set(reminders.map(\.recipient)) == ["person:coord.patel", "team:west.social-care"])
        let target = try #require(harness.system.configuration.responseTargets[.urgent])
        for reminder in reminders {
            #expect(abs(reminder.dueAt.timeIntervalSince(now) - target * 0.75) < 5)
            #expect(reminder.subject.hasPrefix("An urgent referral for West social care intake is due by "))
        }
        Self.expectNoPatientInformation(reminders)
    }

    @Test("an action agreed at an MDT is a reminder at 08:00 on its day for its owner; the agenda's next version replaces it")
    func mdtActionReminder() throws {
        let harness = try Self.harness()
        let chair = try harness.connect("mdt.jones", receive: false)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = ServiceHours.siteTimeZone
        func day(_ offset: Int) throws -> (text: String, morning: Date) {
            let date = try #require(calendar.date(byAdding: .day, value: offset, to: harness.system.clock.now()))
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let text = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            return (text, try #require(calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: parts.day, hour: 8))))
        }
        func publish(version: Int, due: String) throws {
            var agenda = try #require(try JSONSerialization.jsonObject(with: Data(try Bodies.agenda(items: [robson]))) as? [String: Any])
            var items = try #require(agenda["items"] as? [[String: Any]])
            items[0]["outcome"] = [
                "decision": "Agreed", "actions": [["description": "Arrange the second call", "owner": "coord.patel", "due": due]],
            ]
            agenda["items"] = items
            agenda["version"] = version
            _ = try #require(harness.send(chair, .mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.json(agenda))?.accepted)
        }
        let first = try day(2), second = try day(3)
        try publish(version: 1, due: first.text)
        // Held for a year by the helper: look at the store's own rows instead.
        let outbox = try harness.system.store.openOutbox()
        let planned = try outbox.claimNotifications(dueBy: first.morning, limit: 100, lease: 1).map(\.record).filter { $0.event == .mdtActionDue }
        #expect(planned.map(\.recipient) == ["person:coord.patel"])
        #expect(planned.first?.dueAt == first.morning)
        #expect(planned.first?.subject == "An MDT action of yours is due today")
        try publish(version: 2, due: second.text)
        let later = try outbox.claimNotifications(dueBy: second.morning, limit: 100, lease: 3_600).map(\.record).filter { $0.event == .mdtActionDue }
        #expect(later.map(\.dueAt) == [second.morning], "the first version's reminder was cancelled")
    }

    @Test("a member the patient objected to is not told of her referral either")
    func objectionHoldsForNotifications() throws {
        let harness = try Self.harness()
        let nurse = try harness.connect("nurse.ali")
        let gp = try harness.connect("gp.khan")
        _ = try #require(
            harness.send(
                nurse, .consent, to: [],
                body: try Bodies.consent(id: "ellis-objects-lee", type: "deny", actor: ["role": "person", "reference": "sw.lee"], action: "object")
            )?.accepted)
        _ = try Self.queued(harness)
        _ = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))?.accepted)
        let told = Set(try Self.queued(harness).map(\.recipient))
        #expect(!told.contains("person:sw.lee"))
        #expect(told.contains("person:coord.patel"))
    }

    @Test("an urgent check-in goes by SMS to whoever chose it, and by email to the rest")
    func urgentCheckIn() throws {
        let harness = try Self.harness()
        let carer = try harness.connect("carer.ellis")
        let accepted = try #require(
            harness.send(carer, .carerCheckIn, to: [.team("west.social-care")], patient: ellis, body: try Bodies.checkIn())?.accepted)
        let queued = try Self.queued(harness)
        #expect(queued.allSatisfy { $0.event == .checkInUrgent && $0.urgent && $0.message == accepted.id })
        let sms = queued.filter { $0.channel == .sms }
        #expect(sms.map(\.address) == ["+447700900123"])
        #expect(queued.contains { $0.address == "west-intake@care.example" })
        #expect(queued.first?.subject == "A carer check-in marked urgent for West social care intake")
        Self.expectNoPatientInformation(queued)
    }

    @Test("an urgent check-in sent to the co-ordinator, as the carer bridge sends them, is told to her team's mailbox too")
    func checkInToTheCoordinator() throws {
        let harness = try Self.harness()
        let carer = try harness.connect("carer.ellis", receive: false)
        _ = try #require(harness.send(carer, .carerCheckIn, to: [.person("coord.patel")], patient: ellis, body: try Bodies.checkIn())?.accepted)
        let queued = try Self.queued(harness)
        #expect(Set(queued.map(\.address)) == ["coord.patel@care.example", "west-intake@care.example"])
        #expect(queued.first { $0.address == "west-intake@care.example" }?.subject == "A carer check-in marked urgent for West social care intake")
    }

    @Test("allocation tells the allocatee; acceptance tells the referrer; neither tells the one who acted")
    func allocationAndOutcome() throws {
        let harness = try Self.harness()
        let gp = try harness.connect("gp.khan")
        let coordinator = try harness.connect("coord.patel")
        let referral = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())?.accepted)
        _ = try Self.queued(harness)
        _ = try #require(
            harness.send(
                coordinator, .referralEvent, to: [], correlation: referral.id,
                body: try Bodies.event("allocated", referral: referral.id, by: "coord.patel", extra: ["allocatedTo": ["person": "sw.okafor"]])
            )?.accepted)
        let allocated = try Self.queued(harness)
        #expect(allocated.map(\.recipient) == ["person:sw.okafor"])
        #expect(allocated.first?.event == .referralAllocated)
        #expect(allocated.first?.link == "carerelay referral show \(referral.id)")
        let okafor = try harness.connect("sw.okafor")
        _ = try #require(
            harness.send(
                okafor, .referralEvent, to: [], correlation: referral.id, body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))?
                .accepted)
        let outcome = try Self.queued(harness)
        #expect(outcome.map(\.recipient) == ["person:gp.khan"])
        #expect(outcome.first?.subject == "Your referral to West social care intake was accepted")
        Self.expectNoPatientInformation(allocated + outcome)
    }

    @Test("someone who takes a digest gets routine news at the digest time and urgent news at once")
    func digest() throws {
        let harness = try Self.harness { directory in
            if let index = directory.people.firstIndex(where: { $0.id == "coord.patel" }) {
                directory.people[index].notify = NotificationChoices(digest: "07:30")
            }
        }
        let gp = try harness.connect("gp.khan")
        let now = harness.system.clock.now()
        _ = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .routine))?.accepted)
        _ = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .emergency))?.accepted)
        let patel = try Self.queued(harness).filter { $0.recipient == "person:coord.patel" && $0.event == .referralNew }
        #expect(patel.count == 2)
        let routine = try #require(patel.first { !$0.urgent })
        let emergency = try #require(patel.first { $0.urgent })
        #expect(routine.digest && routine.dueAt > now && routine.dueAt <= now.addingTimeInterval(86_400))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = ServiceHours.siteTimeZone
        #expect(calendar.dateComponents([.hour, .minute], from: routine.dueAt) == DateComponents(hour: 7, minute: 30))
        #expect(!emergency.digest && emergency.dueAt <= harness.system.clock.now())
    }

    @Test("no notification is planned when the site has set none up")
    func nothingWithoutSettings() throws {
        let plain = try Self.harness(site: nil)
        let gp = try plain.connect("gp.khan")
        _ = try #require(
            plain.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))?.accepted)
        #expect(try Self.queued(plain).isEmpty)
    }

    @Test("every event's words, with every fact filled in, name no patient")
    func everyTemplate() throws {
        let system = try CareSystem()
        var directory = system.directory.directory
        for index in directory.people.indices { directory.people[index].email = "\(directory.people[index].id)@care.example" }
        let planner = NotificationPlanner(
            site: NotificationSite(channels: [.email], bridgeAddress: "https://carers.example"), directory: try DirectoryIndex(directory))
        var records: [NotificationRecord] = []
        for event in NotificationEvent.allCases {
            let trigger = NotificationTrigger(
                event: event, message: "7KD4-QXM2-P9R3", people: ["coord.patel", "carer.ellis", "gp.khan", "sw.okafor"], urgent: true,
                team: "west.social-care", priority: .urgent, respondBy: Date().addingTimeInterval(7_200), reference: "7KD4-QXM2-P9R3",
                detail: "Priya Patel")
            let planned = planner.plan(trigger, at: Date())
            #expect(!planned.isEmpty, "\(event.rawValue) plans something")
            records += planned
        }
        Self.expectNoPatientInformation(records)
        for record in records where record.event == .planShared || record.event == .checkInAcknowledged {
            #expect(record.link == "https://carers.example")
        }
    }
}
