import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

@Suite struct ReferralFlowTests {
    @Test func referralToIntakeReachesAMemberAndTheReferrerLearnsWhoTookIt() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan")
        let social = try system.client("sw.okafor")

        let accepted = try gp.send(
            .referral, to: [.team("west.social-care")], patient: ellis, priority: .sameDay,
            body: try Bodies.referral())
        #expect(!accepted.duplicate)
        #expect(Set(accepted.recipients.map(\.person)) == ["sw.okafor", "sw.lee", "coord.patel"])
        #expect(accepted.recipients.allSatisfy { $0.decision == .deliver })

        let delivered = try social.expectDelivery()
        #expect(delivered.header.id == accepted.id)
        #expect(delivered.header.kind == .referral)
        #expect(delivered.header.from == "gp.khan")
        #expect(delivered.header.patient == ellis)

        let event = try social.send(
            .referralEvent, to: [], correlation: accepted.id,
            body: try Bodies.event("accepted", referral: accepted.id, by: "sw.okafor"))
        #expect(event.recipients.map(\.person).contains("gp.khan"))

        let news = try gp.expectDelivery()
        #expect(news.header.kind == .referralEvent)
        #expect(news.header.from == "sw.okafor")
        let body = try jsonObject(news.body)
        #expect(body["event"] as? String == "accepted")
        #expect(body["referral"] as? String == accepted.id)

        let tracking = try gp.query("track", ["id": accepted.id], as: Tracking.self)
        #expect(tracking.referral?.status == .accepted)
        #expect(tracking.referral?.takenBy == "sw.okafor")
        #expect(tracking.events.count == 1)
        #expect(tracking.recipients.first { $0.person == "sw.okafor" }?.state == "confirmed")

        // Accepting made the intake team part of Mrs Ellis's care team.
        let careTeam = try gp.query(CareTeamQuery(patient: ellis))
        #expect(careTeam.contains(.team("west.social-care")))
        #expect(careTeam.contains(.person("gp.khan")))
    }

    @Test func aSecondAcceptanceIsRefusedNamingWhoTookIt() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let okafor = try system.client("sw.okafor", receive: false)
        let lee = try system.client("sw.lee", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        try okafor.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))
        // Acting on the referral shows she has it, even from a connection that takes no deliveries.
        let tracked = try gp.query("track", ["id": referral.id], as: Tracking.self)
        #expect(tracked.recipients.first { $0.person == "sw.okafor" }?.state == "confirmed")
        #expect(tracked.recipients.first { $0.person == "sw.lee" }?.state == "pending")
        #expect {
            try lee.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .invalidTransition && failure.reason.contains("sw.okafor")
        }
    }

    @Test func anOfflineRecipientGetsTheReferralWhenTheyConnect() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let first = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "first"))
        let second = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "second"))

        let lee = try system.client("sw.lee")
        let a = try lee.expectDelivery()
        let b = try lee.expectDelivery()
        #expect([a.header.id, b.header.id] == [first.id, second.id], "mailbox order is the order accepted")
    }

    @Test func aResendWithTheSameKeyReturnsTheOriginalAndStoresNothingNew() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let body = try Bodies.referral()
        let first = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, key: "ref-2026-001", body: body)
        let again = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, key: "ref-2026-001", body: body)
        #expect(again.id == first.id)
        #expect(again.duplicate)
        #expect(!first.duplicate)
        #expect(Set(again.recipients.map(\.person)) == Set(first.recipients.map(\.person)))

        let inbox = try gp.query(InboxQuery())
        #expect(inbox.filter { $0.kind == .referral }.count == 1)

        // The same key for different content is a mistake the sender must hear about.
        #expect {
            try gp.send(
                .referral, to: [.team("west.social-care")], patient: ellis, key: "ref-2026-001",
                body: try Bodies.referral(reason: "something else entirely"))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .idempotencyConflict && failure.reason.contains(first.id)
        }

        // The recipient sees it once.
        let lee = try system.client("sw.lee")
        _ = try lee.expectDelivery()
        #expect(try lee.nextDelivery(timeout: .milliseconds(300)) == nil)
    }

    @Test func anUntakenReferralEscalatesToTheCoordinatorAndTheReferrerIsTold() throws {
        let system = try CareSystem(responseTargets: [.emergency: 3_600, .urgent: 14_400, .sameDay: 28_800, .routine: 259_200])
        try system.start()
        let gp = try system.client("gp.khan")
        let coordinator = try system.client("coord.patel")
        let referral = try gp.send(
            .referral, to: [.team("west.social-care")], patient: ellis, priority: .emergency,
            body: try Bodies.referral(priority: .emergency))
        let copy = try coordinator.expectDelivery()
        #expect(copy.header.id == referral.id)

        system.clock.advance(by: 3_601)
        let escalation = try coordinator.expectDelivery()
        #expect(escalation.header.kind == .referralEvent)
        #expect(escalation.header.from == "carerelay")
        #expect(try jsonObject(escalation.body)["event"] as? String == "escalated")
        let told = try gp.expectDelivery()
        #expect(told.header.correlation == referral.id)

        let tracking = try gp.query("track", ["id": referral.id], as: Tracking.self)
        #expect(tracking.referral?.escalatedAt != nil)
    }

    @Test func aTeamsOwnResponseTargetsSetTheDeadlineAndTheEscalation() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan")
        let east = try system.client("coord.east")
        let urgentWest = try gp.send(
            .referral, to: [.team("west.social-care")], patient: ellis, priority: .emergency, body: try Bodies.referral(priority: .emergency))
        let urgentEast = try gp.send(
            .referral, to: [.team("east.social-care")], patient: ellis, priority: .emergency,
            body: try Bodies.referral(team: "east.social-care", priority: .emergency))
        let routineEast = try gp.send(
            .referral, to: [.team("east.social-care")], patient: ellis, priority: .routine,
            body: try Bodies.referral(team: "east.social-care", priority: .routine))
        let sameDayEast = try gp.send(
            .referral, to: [.team("east.social-care")], patient: ellis, priority: .sameDay,
            body: try Bodies.referral(team: "east.social-care", priority: .sameDay))
        func deadline(_ id: String) throws -> TimeInterval? {
            let tracking = try gp.query("track", ["id": id], as: Tracking.self)
            return tracking.referral?.deadline.map { $0.timeIntervalSince(tracking.acceptedAt) }
        }
        #expect(try deadline(urgentWest.id) == 3_600, "a team without its own targets has the broker's")
        #expect(try deadline(urgentEast.id) == 1_800, "east answers an emergency within 30 minutes")
        #expect(try deadline(routineEast.id) == 2 * 86_400)
        #expect(try deadline(sameDayEast.id) == 8 * 3_600, "a priority the team does not set takes the broker's target")
        for _ in 0..<3 { _ = try east.expectDelivery() }

        system.clock.advance(by: 1_801)
        let escalation = try east.expectDelivery()
        #expect(escalation.header.kind == .referralEvent && escalation.header.correlation == urgentEast.id)
        #expect(try gp.query("track", ["id": urgentWest.id], as: Tracking.self).referral?.escalatedAt == nil, "west's hour is not up")
    }

    @Test func onlyTheTeamMayAcceptAndOnlyTheReferrerMayWithdraw() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let nurse = try system.client("nurse.ali", receive: false)
        let social = try system.client("sw.okafor", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(
            throws: ClientError.rejected(
                ProtocolError(
                    .notPermitted,
                    "only a member of the team the referral was sent to, its co-ordinator, or the person it was allocated to may accept it"))
        ) {
            try nurse.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "nurse.ali"))
        }
        #expect {
            try social.send(.referralEvent, to: [], body: try Bodies.event("withdrawn", referral: referral.id, by: "sw.okafor"))
        } throws: { ($0 as? ClientError).map { if case .rejected(let f) = $0 { f.code == .notPermitted } else { false } } ?? false }
        // The event is recorded as its sender: claiming to be someone else is refused.
        #expect {
            try social.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))
        } throws: { ($0 as? ClientError).map { if case .rejected(let f) = $0 { f.code == .notPermitted } else { false } } ?? false }
        try gp.send(.referralEvent, to: [], body: try Bodies.event("withdrawn", referral: referral.id, by: "gp.khan"))
        let tracking = try gp.query("track", ["id": referral.id], as: Tracking.self)
        #expect(tracking.referral?.status == .withdrawn)
    }

    // MARK: One lifecycle: owners, passes, declines for the team

    func rejection(_ body: () throws -> Void) -> ProtocolError? {
        do { try body() } catch ClientError.rejected(let failure) { return failure } catch { return nil }
        return nil
    }

    @Test func theCoordinatorAllocatesTheOwnerIsToldAndTakesItOnAndTheTimelineKeepsItsOrder() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let patel = try system.client("coord.patel", receive: false)
        let lee = try system.client("sw.lee")
        let okafor = try system.client("sw.okafor", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(try lee.expectDelivery().header.id == referral.id)

        let allocation = try patel.send(
            .referralEvent, to: [], correlation: referral.id,
            body: try Bodies.event("allocated", referral: referral.id, by: "coord.patel", extra: ["allocatedTo": ["person": "sw.lee"]]))
        let told = try lee.expectDelivery()
        #expect(told.header.id == allocation.id, "the person it was allocated to is told")
        var record = try #require(try gp.query(TrackQuery(id: referral.id)).referral)
        #expect(record.status == .allocated && record.owner == "sw.lee" && record.takenBy == "sw.lee", "\(record)")

        // Another member may not take it from its owner; its owner takes it on.
        let grab = rejection {
            try okafor.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))
        }
        #expect(grab?.code == .invalidTransition && grab?.reason.contains("held by sw.lee") == true, "\(String(describing: grab))")
        try lee.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))
        record = try #require(try gp.query(TrackQuery(id: referral.id)).referral)
        #expect(record.status == .accepted && record.owner == "sw.lee")
        #expect(record.history.map(\.event) == [.allocated, .accepted], "in the order they happened: \(record.history)")
        #expect(record.history.first?.allocatedTo == "sw.lee" && record.history.first?.by == "coord.patel")
        #expect(record.history.last?.message != nil)
    }

    @Test func aMemberPassesWithoutClosingItAndOnlyTheCoordinatorDeclinesForTheTeam() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan")
        let patel = try system.client("coord.patel")
        let lee = try system.client("sw.lee", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        _ = try patel.expectDelivery()

        let pass = try lee.send(
            .referralEvent, to: [], body: try Bodies.event("passed", referral: referral.id, by: "sw.lee", extra: ["reason": "On leave"]))
        #expect(pass.recipients.map(\.person) == ["coord.patel"], "a pass is the team's business")
        #expect(try patel.expectDelivery().header.id == pass.id)
        var record = try #require(try patel.query(TrackQuery(id: referral.id)).referral)
        #expect(record.status == .sent && record.passedBy == ["sw.lee"])
        // The referrer does not see a member's "not for me".
        let referrersView = try gp.query(TrackQuery(id: referral.id))
        #expect(referrersView.referral?.passedBy == [] && !referrersView.events.contains(pass.id))

        let memberDecline = rejection {
            try lee.send(
                .referralEvent, to: [],
                body: try Bodies.event(
                    "declined", referral: referral.id, by: "sw.lee", extra: ["reason": "Not ours", "reasonCode": "wrong-service"]))
        }
        #expect(memberDecline?.code == .notPermitted && memberDecline?.reason.contains("co-ordinator") == true)

        let decline = try patel.send(
            .referralEvent, to: [],
            body: try Bodies.event(
                "declined", referral: referral.id, by: "coord.patel",
                extra: ["reason": "Needs nursing, not social care", "reasonCode": "wrong-service", "suggestedService": "West community nursing"]))
        let toldReferrer = try gp.expectDelivery()
        #expect(toldReferrer.header.id == decline.id, "the referrer is told at once")
        record = try #require(try gp.query(TrackQuery(id: referral.id)).referral)
        let step = try #require(record.history.last)
        #expect(record.status == .declined && step.event == .declined)
        #expect(step.reasonCode == .wrongService && step.suggestedService == "West community nursing" && step.by == "coord.patel")
    }

    @Test func aTeamMayLetEveryMemberDeclineForIt() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        // East's directory entry sets membersMayDecline; Farah Ahmed is a social worker there.
        let ahmed = try system.client("sw.ahmed", receive: false)
        let referral = try gp.send(
            .referral, to: [.team("east.social-care")], patient: ellis, body: try Bodies.referral(team: "east.social-care"))
        try ahmed.send(
            .referralEvent, to: [],
            body: try Bodies.event("declined", referral: referral.id, by: "sw.ahmed", extra: ["reason": "Out of area", "reasonCode": "not-eligible"]))
        #expect(try gp.query(TrackQuery(id: referral.id)).referral?.status == .declined)
    }

    @Test func theWorklistIsTheTeamsMostUrgentFirstAndItsFiltersNarrowIt() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let okafor = try system.client("sw.okafor", receive: false)
        func refer(_ priority: Priority) throws -> String {
            try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, priority: priority, body: try Bodies.referral(priority: priority))
                .id
        }
        let routine = try refer(.routine)
        let emergency = try refer(.emergency)
        let urgent = try refer(.urgent)
        try okafor.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: urgent, by: "sw.okafor"))

        let all = try okafor.query(WorklistQuery())
        #expect(all.map(\.id) == [emergency, routine, urgent], "untaken first, earliest respond-by first, then the taken")
        let first = try #require(all.first)
        #expect(first.priority == .emergency && first.patientName == "Mrs Margaret Ellis" && first.referrerName == "Dr Amina Khan")
        #expect(try okafor.query(WorklistQuery(mine: true)).map(\.id) == [urgent])
        #expect(try okafor.query(WorklistQuery(priorities: [.routine, .urgent])).map(\.id) == [routine, urgent])
        #expect(try okafor.query(WorklistQuery(statuses: [.accepted])).map(\.id) == [urgent])
        #expect(try okafor.query(WorklistQuery(overdue: true)).isEmpty)
        system.clock.advance(by: 3_601)
        #expect(try okafor.query(WorklistQuery(overdue: true)).map(\.id) == [emergency], "past its hour, and not taken")

        let elsewhere = rejection { _ = try okafor.query(WorklistQuery(team: "east.social-care")) }
        #expect(elsewhere?.code == .notPermitted, "another team's worklist is not theirs")
        #expect(try gp.query(WorklistQuery()).isEmpty, "the referrer's team received none")
    }
}
