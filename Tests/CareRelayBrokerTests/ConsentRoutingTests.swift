import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// Consent wired into routing and delivery, end to end through a real broker.
@Suite struct ConsentRoutingTests {
    /// Mrs Ellis's care team: the social care intake team, a community nurse and her carer.
    func careTeam(_ system: CareSystem) throws {
        let nurse = try system.client("nurse.ali", receive: false)
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
    }

    @Test func oneCarePlanArrivesWholeForOneRedactedForAnotherAndWithheldForAThird() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali")
        // The patient agreed explicitly that her nurse may see her mental health information.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-ellis-1", actor: ["role": "person", "reference": "nurse.ali"], categories: ["mental-health"]))

        // Her community psychiatric nurse (in her care team, outside its teams) shares the plan.
        _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": "person:cpn.brown"])
        let cpn = try system.client("cpn.brown", receive: false)
        let accepted = try cpn.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.carePlan())
        let outcome = Dictionary(uniqueKeysWithValues: accepted.recipients.map { ($0.person, $0) })
        #expect(outcome["nurse.ali"]?.decision == .deliver)
        #expect(outcome["sw.okafor"]?.decision == .redacted)
        #expect(outcome["carer.ellis"]?.decision == .withheld)
        // The sender hears why, without the patient's directives being disclosed.
        let reason = try #require(outcome["carer.ellis"]?.reason)
        #expect(reason.contains("explicit consent"))
        #expect(!reason.contains("cd-ellis"))

        let whole = try nurse.expectDelivery()
        #expect(whole.header.redacted == nil)
        let wholeSections = try #require(try jsonObject(whole.body)["sections"] as? [[String: Any]])
        #expect(wholeSections.count == 4)
        #expect(wholeSections.contains { $0["id"] as? String == "mood" })

        let social = try system.client("sw.okafor")
        let redacted = try social.expectDelivery()
        #expect(redacted.header.redacted == ["mood"])
        let redactedSections = try #require(try jsonObject(redacted.body)["sections"] as? [[String: Any]])
        #expect(!redactedSections.contains { $0["id"] as? String == "mood" })
        #expect(redactedSections.count == wholeSections.count - 1)
        #expect(!String(decoding: redacted.body, as: UTF8.self).contains("PHQ-9"))
        // Nor does the free-text change summary give the removed section away.
        #expect(!String(decoding: redacted.body, as: UTF8.self).contains("talking therapies"))
        #expect(String(decoding: whole.body, as: UTF8.self).contains("talking therapies"))
        // It says instead what changed in the sections she sees, from their own notes.
        let summary = try #require(try jsonObject(redacted.body)["changeSummary"] as? String)
        #expect(summary.contains("Daily living: Evening call added"))
        #expect(summary.contains("Medication: Alendronic acid stopped"))
        #expect(!summary.contains("Mood"))

        let carer = try system.client("carer.ellis")
        #expect(try carer.nextDelivery(timeout: .milliseconds(500)) == nil)

        // The audit names all three decisions and the rule that made each.
        let coordinator = try system.client("coord.patel", receive: false)
        let audit = try coordinator.query(AuditFilter(message: accepted.id))
        func line(_ person: String, _ action: AuditEntry.Action) -> AuditEntry? {
            audit.first { $0.entry.recipient == person && $0.entry.action == action }?.entry
        }
        func rule(_ person: String, _ action: AuditEntry.Action) -> String? { line(person, action)?.rule }
        // Whole for the nurse: general sections on implied consent, the mental health section
        // on her explicit consent; the audit names the rule for each part.
        #expect(rule("nurse.ali", .deliver) == "R6-implied-consent")
        #expect(line("nurse.ali", .deliver)?.detail?.contains("mood=R5-explicit-consent") == true)
        #expect(rule("sw.okafor", .redact) == "R4-sensitive-explicit")
        #expect(rule("carer.ellis", .withhold) == "R7-explicit-only")
        #expect(audit.contains { $0.entry.action == .accept })
    }

    @Test func withdrawingConsentStopsAMessageAlreadyQueued() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-carer", actor: ["role": "relationship", "reference": "carer"], categories: ["general", "social-care", "medication"]))
        let gp = try system.client("gp.khan", receive: false)
        let plan = try gp.send(.carePlanShare, to: [.person("carer.ellis")], patient: ellis, body: try Bodies.carePlan())
        #expect(plan.recipients.first?.decision == .redacted, "the carer may see some sections, not mental health")

        // Before the carer connects, the patient withdraws that consent.
        let formatter = ISO8601DateFormatter()
        try nurse.send(
            .consent, to: [],
            body: try Bodies.json([
                "action": "withdraw", "patient": ellis.digits, "dateTime": formatter.string(from: Date()),
                "performer": ["person": "nurse.ali", "role": "community-nurse"], "withdraws": "cd-carer",
                "reason": "Mrs Ellis asked that her daughter-in-law no longer receives updates",
            ]))
        let carer = try system.client("carer.ellis")
        #expect(try carer.nextDelivery(timeout: .milliseconds(800)) == nil)

        let tracking = try gp.query("track", ["id": plan.id], as: Tracking.self)
        #expect(tracking.recipients.first?.state == "withheld")
        let coordinator = try system.client("coord.patel", receive: false)
        let audit = try coordinator.query(AuditFilter(message: plan.id))
        #expect(audit.contains { $0.entry.action == .withhold && $0.entry.decision == "deliver:withheld" })
    }

    @Test func aWithdrawalOrObjectionTakesBackCopiesAlreadyDelivered() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali")
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-carer", actor: ["role": "relationship", "reference": "carer"], categories: ["general", "social-care", "medication"]))
        let gp = try system.client("gp.khan", receive: false)
        let plan = try gp.send(
            .carePlanShare, to: [.person("carer.ellis"), .person("sw.okafor"), .person("nurse.ali")], patient: ellis,
            body: try Bodies.carePlan())
        let carer = try system.client("carer.ellis")
        let social = try system.client("sw.okafor")
        #expect(try carer.expectDelivery().header.redacted == ["mood"])
        #expect(try social.expectDelivery().header.redacted == ["mood"])
        #expect(try nurse.expectDelivery().header.redacted == ["mood"])
        // Both copies are recorded as received before the patient changes her mind.
        let deadline = ContinuousClock.now + .seconds(15)
        var states: [String] = []
        repeat {
            states = try gp.query("track", ["id": plan.id], as: Tracking.self).recipients.map(\.state)
        } while states.contains("pending") && ContinuousClock.now < deadline
        #expect(states == ["confirmed", "confirmed", "confirmed"])

        // She objects to social care seeing her medication: the social worker's copy loses
        // that section, and only that.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-no-meds", type: "deny", actor: ["role": "person", "reference": "sw.okafor"], categories: ["medication"],
                action: "object"))
        let partly = try social.expectDelivery()
        #expect(partly.header.kind == .notice)
        #expect(partly.header.correlation == plan.id)
        let partNotice = try BrokerNotice.decode(json: partly.body)
        #expect(partNotice.notice == .revoked)
        #expect(partNotice.message == plan.id)
        #expect(partNotice.parts == ["medication"])
        #expect(partNotice.kind == .carePlanShare)
        #expect(partNotice.by == "nurse.ali")
        #expect(partNotice.text.hasPrefix("The section 'Medication' of care plan 'Living well at home' version 3, shared with you on "))
        #expect(partNotice.text.contains(", is taken back: the patient's consent no longer covers you seeing it."))
        #expect(!partNotice.text.contains("cd-no-meds"), "the notice never discloses the directive")
        // Her copy, asked for again, comes without the section.
        let again = try social.query("message", ["id": plan.id], as: MessageView.self)
        #expect(again.header?.redacted?.contains("medication") == true)

        // She withdraws her consent for her carer: the carer's whole copy is taken back.
        let formatter = ISO8601DateFormatter()
        let withdrawal = try Bodies.json([
            "action": "withdraw", "patient": ellis.digits, "dateTime": formatter.string(from: Date()),
            "performer": ["person": "nurse.ali", "role": "community-nurse"], "withdraws": "cd-carer",
            "reason": "Mrs Ellis asked that her daughter-in-law no longer receives updates",
        ])
        let withdrawn = try nurse.send(.consent, to: [], key: "withdraw-cd-carer", body: withdrawal)
        let whole = try carer.expectDelivery()
        let wholeNotice = try BrokerNotice.decode(json: whole.body)
        #expect(wholeNotice.notice == .revoked)
        #expect(wholeNotice.message == plan.id)
        #expect(wholeNotice.parts == nil)
        #expect(wholeNotice.text.hasPrefix("Care plan 'Living well at home' version 3, shared with you on "))
        // A resend of the same withdrawal is a duplicate: no second notice.
        #expect(try nurse.send(.consent, to: [], key: "withdraw-cd-carer", body: withdrawal).duplicate)
        #expect(try carer.nextDelivery(timeout: .milliseconds(500)) == nil)
        // Nobody else lost anything: the nurse and the social worker hear nothing more.
        #expect(try nurse.nextDelivery(timeout: .milliseconds(200)) == nil)
        #expect(try social.nextDelivery(timeout: .milliseconds(200)) == nil)

        // Each revocation is an audit line on the plan, naming the change that caused it.
        let coordinator = try system.client("coord.patel", receive: false)
        let revoked = try coordinator.query(AuditFilter(message: plan.id)).filter { $0.entry.action == .revoke }.map(\.entry)
        #expect(revoked.count == 2)
        #expect(revoked.contains { $0.recipient == "sw.okafor" && $0.decision == "revoked-parts" && $0.detail?.contains("parts medication") == true })
        #expect(revoked.contains { $0.recipient == "carer.ellis" && $0.decision == "revoked" && $0.detail?.contains(withdrawn.id) == true })
    }

    @Test func breakingGlassToReadOnesOwnCopyIsAuditedAndTheCoordinatorTold() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        let plan = try nurse.send(.carePlanShare, to: [.person("sw.okafor"), .person("carer.ellis")], patient: ellis, body: try Bodies.carePlan())
        let social = try system.client("sw.okafor", receive: false)
        let ordinary = try social.query("message", ["id": plan.id], as: MessageView.self)
        #expect(ordinary.header?.redacted == ["mood"])

        let reason = "Found collapsed at home; need her mental health history for the paramedics"
        let whole = try social.query("message", ["id": plan.id, "breakGlass": reason], as: MessageView.self)
        #expect(whole.header?.override == true)
        #expect(whole.header?.redacted == nil)
        #expect(whole.body?.contains("PHQ-9") == true)

        // The override is an audit line with the reason, and the co-ordinator hears of it.
        let coordinator = try system.client("coord.patel")
        let notice = try BrokerNotice.decode(json: try coordinator.expectDelivery().body)
        #expect(notice.notice == .emergencyOverride)
        #expect(notice.by == "sw.okafor")
        #expect(notice.text.contains("to read information about patient 943 476 5919"))
        let audit = try coordinator.query(AuditFilter(message: plan.id)).map(\.entry)
        #expect(audit.contains { $0.action == .override && $0.actor == "sw.okafor" && $0.decision == "read" && $0.detail == reason })

        // Refused: a reason too short, a carer, someone it was never sent to, and reading as another.
        #expect(refusal { _ = try social.query("message", ["id": plan.id, "breakGlass": "urgent"]) } == .notPermitted)
        let carer = try system.client("carer.ellis", receive: false)
        #expect(refusal { _ = try carer.query("message", ["id": plan.id, "breakGlass": reason]) } == .notPermitted)
        let gp = try system.client("gp.khan", receive: false)
        #expect(refusal { _ = try gp.query("message", ["id": plan.id, "breakGlass": reason]) } == .unknownMessage)
        #expect(refusal { _ = try nurse.query("message", ["id": plan.id, "breakGlass": reason, "as": "sw.okafor"]) } == .invalidHeader)
        // Nothing withheld, nothing overridden: the sender's own plan reads as it is, unaudited.
        let audited = try coordinator.query(AuditFilter(message: plan.id)).filter { $0.entry.action == .override }.count
        _ = try nurse.query("message", ["id": plan.id, "breakGlass": reason])
        #expect(try coordinator.query(AuditFilter(message: plan.id)).filter { $0.entry.action == .override }.count == audited)
    }

    @Test func attendeesLearnOfAMeetingEvenWhenEveryItemIsWithheld() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.client("nurse.ali")
        _ = try nurse.query("careteam.link", ["patient": robson.digits, "member": "team:west.mdt"])
        let chair = try system.client("mdt.jones", receive: false)
        // Mr Robson was not asked whether he may be discussed: his is the only item.
        let agenda = try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.agenda(items: [robson]))
        #expect(!agenda.recipients.isEmpty)
        #expect(agenda.recipients.allSatisfy { $0.decision == .redacted })
        let copy = try nurse.expectDelivery()
        #expect(copy.header.redacted == ["item-1"])
        let body = try jsonObject(copy.body)
        #expect(body["location"] as? String != nil)
        #expect(body["start"] as? String != nil)
        #expect((body["attendees"] as? [[String: Any]])?.isEmpty == false)
        #expect((body["items"] as? [[String: Any]])?.first?["withheld"] as? Bool == true)
        #expect(!String(decoding: copy.body, as: UTF8.self).contains(robson.digits))
    }

    @Test func anOutcomeAndItsActionsTravelWithTheirItem() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali")
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(id: "cd-mdt", actor: ["role": "team", "reference": "west.mdt"], purposes: ["mdt-discussion"]))
        _ = try nurse.query("careteam.link", ["patient": robson.digits, "member": "team:west.mdt"])
        var agenda = try jsonObject(try Bodies.agenda(items: [ellis, robson]))
        var items = try #require(agenda["items"] as? [[String: Any]])
        for index in items.indices {
            items[index]["outcome"] = [
                "decision": index == 0 ? "Two calls a day from Monday" : "Memory clinic referral agreed",
                "actions": [["description": "Arrange the second call", "owner": "coord.patel", "due": "2026-12-04"]],
            ]
        }
        agenda["items"] = items
        let chair = try system.client("mdt.jones", receive: false)
        try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.json(agenda))
        let copy = try String(decoding: nurse.expectDelivery().body, as: UTF8.self)
        #expect(copy.contains("Two calls a day from Monday"))
        #expect(!copy.contains("Memory clinic referral agreed"), "Mr Robson's outcome is withheld with his item")

        // An action for someone nobody knows is refused, naming where it is.
        items[1]["outcome"] = ["decision": "Agreed", "actions": [["description": "Visit", "owner": "nobody.here"]]]
        agenda["items"] = items
        #expect(
            throws: ClientError.rejected(
                ProtocolError(.unknownAddress, "body items[1].outcome.actions[0].owner: nobody.here is not a person in the directory"))
        ) {
            try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.json(agenda))
        }
        // Nor one for someone the agenda does not reach: they would never hear of it.
        items[1]["outcome"] = ["decision": "Agreed", "actions": [["description": "Visit", "owner": "gp.khan"]]]
        agenda["items"] = items
        #expect(
            throws: ClientError.rejected(
                ProtocolError(
                    .unknownAddress,
                    "body items[1].outcome.actions[0].owner: gp.khan is not a member of west.mdt, so the agenda would never tell them; give the action to a member, who can pass it on"
                ))
        ) {
            try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.json(agenda))
        }
    }

    @Test func anMDTItemWithoutPermissionReachesAttendeesAsItemWithheld() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali")
        // Mrs Ellis said yes to being discussed; Mr Robson was not asked.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-mdt", actor: ["role": "team", "reference": "west.mdt"], purposes: ["mdt-discussion"]))
        _ = try nurse.query("careteam.link", ["patient": robson.digits, "member": "team:west.mdt"])
        let chair = try system.client("mdt.jones", receive: false)
        let agenda = try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.agenda(items: [ellis, robson]))
        #expect(agenda.recipients.allSatisfy { $0.decision == .redacted })

        let copy = try nurse.expectDelivery()
        #expect(copy.header.redacted == ["item-2"])
        let items = try #require(try jsonObject(copy.body)["items"] as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items[0]["patient"] as? String == ellis.digits)
        #expect(items[1]["withheld"] as? Bool == true)
        #expect(items[1]["notice"] as? String == "item withheld: no consent recorded")
        #expect(items[1]["patient"] == nil)
        #expect(!String(decoding: copy.body, as: UTF8.self).contains(robson.digits))
    }

    @Test func breakingGlassDeliversAuditsAndTellsTheCoordinator() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let outsider = try system.client("gp.east", receive: false)
        // Without a relationship, the out-of-area GP may not read the care team, and the plan
        // to the GP is withheld...
        #expect(refusal { _ = try outsider.query("careteam", ["patient": ellis.digits]) } == .notPermitted)
        let denied = try outsider.send(.carePlanShare, to: [.person("gp.khan")], patient: robson, body: try Bodies.carePlan(patient: robson))
        #expect(denied.recipients.first?.decision == .withheld)
        // ...until they break glass with a reason.
        let override = try outsider.send(
            .carePlanShare, to: [.person("gp.khan")], patient: robson,
            breakGlass: "Patient unconscious in A&E, need medication list now",
            body: try Bodies.carePlan(patient: robson))
        #expect(override.recipients.first?.decision == .deliver)
        let gp = try system.client("gp.khan")
        let delivered = try gp.expectDelivery()
        #expect(delivered.header.override == true)

        // A reason too short to mean anything is refused outright.
        #expect {
            try outsider.send(
                .carePlanShare, to: [.person("gp.khan")], patient: robson, breakGlass: "urgent",
                body: try Bodies.carePlan(patient: robson))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .notPermitted
        }

        // Mr Robson has no care team, so no co-ordinator governs him: information governance
        // (the administrator) reads the override in the audit trail.
        let governance = try system.client("admin.it", receive: false)
        let audit = try governance.query(AuditFilter(message: override.id))
        #expect(audit.contains { $0.entry.action == .override && $0.entry.rule == "R9-break-glass" })
        #expect(refusal { _ = try system.client("coord.patel", receive: false).query("audit", ["message": override.id]) } == .unknownMessage)
    }

    @Test func theCoordinatorIsToldOfAnOverrideOnTheirPatient() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let outsider = try system.client("gp.east", receive: false)
        let coordinator = try system.client("coord.patel")
        let override = try outsider.send(
            .carePlanShare, to: [.person("gp.khan")], patient: ellis,
            breakGlass: "Found collapsed at home, ambulance crew asking for her plan",
            body: try Bodies.carePlan())
        let notice = try coordinator.expectDelivery()
        #expect(notice.header.kind == .notice)
        let body = try jsonObject(notice.body)
        #expect(body["notice"] as? String == "emergency-override")
        #expect(body["message"] as? String == override.id)
        #expect(body["by"] as? String == "gp.east")
    }

    @Test func editingOrDeletingAnAuditRowIsDetectedAndNamed() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let gp = try system.client("gp.khan", receive: false)
        for index in 0..<3 {
            try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(reason: "number \(index)"))
        }
        let coordinator = try system.client("coord.patel", receive: false)
        guard case .intact(let rows) = try coordinator.query(AuditVerifyQuery()) else {
            Issue.record("the audit trail is broken before anyone touched it")
            return
        }
        #expect(rows > 10)

        // Someone with access to the database file edits a decision...
        try system.tamper("UPDATE audit SET recipient = 'vsb.green' WHERE seq = 7")
        let edited = try coordinator.query(AuditVerifyQuery())
        guard case .broken(let editedRow, _) = edited else { Issue.record("an edited row was not noticed: \(edited)"); return }
        #expect(editedRow == 7)

        // ...or deletes a row to hide a disclosure.
        let fresh = try CareSystem()
        try fresh.start()
        let gp2 = try fresh.client("gp.khan", receive: false)
        for index in 0..<3 {
            try gp2.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(reason: "number \(index)"))
        }
        try fresh.tamper("DELETE FROM audit WHERE seq = 4")
        let deleted = try fresh.client("coord.patel", receive: false).query(AuditVerifyQuery())
        guard case .broken(let deletedRow, let reason) = deleted else { Issue.record("a deleted row was not noticed: \(deleted)"); return }
        #expect(deletedRow == 4)
        #expect(reason.contains("missing"))
    }

    // MARK: The patient's agreement to a referral

    @Test func aReferralThePatientAgreedToReachesAVoluntarySectorTeamAndRecordsTheirConsent() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.client("nurse.ali", receive: false)
        let green = try system.client("vsb.green")
        let sent = try nurse.send(
            .referral, to: [.team("west.voluntary")], patient: ellis, labels: ["social-care"],
            body: try Bodies.referral(from: "nurse.ali", role: .communityNurse, team: "west.voluntary"))
        #expect(sent.recipients.map(\.decision) == [.deliver], "\(sent.recipients)")
        #expect(try green.expectDelivery().header.id == sent.id)

        // Recorded as the patient's explicit consent, by the referrer, for the team and what the referral is about.
        let record = try nurse.query(ConsentQuery(patient: ellis))
        let agreement = try #require(record.first { $0.record.contains("agreed-\(sent.id.lowercased())") }, "\(record)")
        #expect(agreement.recordedBy == "nurse.ali")
        let directive = try jsonObject(Array(agreement.record.utf8))
        let provision = try #require(directive["provision"] as? [String: Any])
        #expect(provision["class"] as? [String] == ["social-care"])
        #expect(provision["purpose"] as? [String] == ["direct-care"])
        #expect(directive["policyRule"] as? String == "explicit")

        // Referred again to the same team for the same kind of need: the agreement in force
        // already says so, and no second directive piles up beside it.
        let again = try nurse.send(
            .referral, to: [.team("west.voluntary")], patient: ellis, labels: ["social-care"],
            body: try Bodies.referral(from: "nurse.ali", role: .communityNurse, team: "west.voluntary"))
        #expect(again.recipients.map(\.decision) == [.deliver], "\(again.recipients)")
        #expect(try nurse.query(ConsentQuery(patient: ellis)).filter { $0.record.contains("agreed-") }.count == 1)

        // It covers what the patient agreed to, not everything: a mental health referral to the
        // same team without a new agreement reaches nobody, so it is refused.
        #expect {
            try nurse.send(
                .referral, to: [.team("west.voluntary")], patient: ellis, labels: ["mental-health"],
                body: try Bodies.referral(from: "nurse.ali", role: .communityNurse, team: "west.voluntary", patientAgreed: false))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .noPermittedRecipient
        }
    }

    @Test func aReferralNobodyAddressedMayReceiveIsRefusedAndNothingIsStored() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.client("nurse.ali", receive: false)
        let before = try nurse.query(StatusQuery()).store.messages
        #expect {
            try nurse.send(
                .referral, to: [.team("west.voluntary")], patient: ellis,
                body: try Bodies.referral(from: "nurse.ali", role: .communityNurse, team: "west.voluntary", patientAgreed: false))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .noPermittedRecipient && failure.reason.contains("patientAgreed: true")
                && failure.reason.contains("Nothing was stored")
        }
        #expect(try nurse.query(StatusQuery()).store.messages == before)
    }

    @Test func anAgreementDoesNotOutweighAnObjectionNorCountFromSomeoneWhoMayNotRecordConsent() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        // Mrs Ellis objected to the volunteers' team.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-ellis-no-volunteers", type: "deny", actor: ["role": "team", "reference": "west.voluntary"], action: "object"))
        #expect {
            try nurse.send(
                .referral, to: [.team("west.voluntary")], patient: ellis,
                body: try Bodies.referral(from: "nurse.ali", role: .communityNurse, team: "west.voluntary"))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .noPermittedRecipient && failure.reason.contains("an objection outweighs an agreement")
        }

        // Robson has no objection, but a carer's word that he agreed is not a professional's record of consent.
        let carer = try system.client("carer.ellis", receive: false)
        #expect {
            try carer.send(
                .referral, to: [.team("west.voluntary")], patient: robson,
                body: try Bodies.referral(patient: robson, from: "carer.ellis", role: .carer, team: "west.voluntary"))
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .noPermittedRecipient && failure.reason.contains("only when a registered professional refers")
        }
    }

    // MARK: A message's purpose

    @Test func aStatedPurposeIsWhatADirectiveForThatPurposeCoversAtRoutingAndAtDelivery() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        // Mrs Ellis lets her carer see her information to support him as her carer, for nothing else.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(id: "cd-carer-support", actor: ["role": "person", "reference": "carer.ellis"], purposes: ["carer-support"]))
        let plan = try Bodies.carePlan()
        let ordinary = try nurse.send(.carePlanShare, to: [.person("carer.ellis")], patient: ellis, body: plan)
        #expect(ordinary.recipients.map(\.decision) == [.withheld], "direct care, the default, is not what she agreed to")
        let support = try nurse.send(.carePlanShare, to: [.person("carer.ellis")], patient: ellis, purpose: .carerSupport, body: plan)
        #expect(support.recipients.map(\.decision) != [.withheld], "\(support.recipients)")
        // The purpose is kept with the message, so the decision at delivery is the same one.
        let carer = try system.client("carer.ellis")
        #expect(try carer.expectDelivery().header.id == support.id)
        #expect(try carer.nextDelivery(timeout: .milliseconds(300)) == nil)
    }

    @Test func aPurposeMustBeOneTheProtocolNamesAndMdtDiscussionIsAnAgendas() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        for (purpose, why) in [("research", "is not a purpose"), ("mdt-discussion", "only an MDT agenda")] {
            #expect {
                try nurse.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, purpose: ConsentPurpose(purpose), body: try Bodies.carePlan())
            } throws: { error in
                guard case ClientError.rejected(let failure) = error else { return false }
                return failure.code == .invalidHeader && failure.reason.contains(why)
            }
        }
    }

    @Test func aSitesRuleFilteredByPurposeAppliesOnlyToThatPurpose() throws {
        // Sunderland lets voluntary sector brokers in a care team receive on implied consent,
        // but only to co-ordinate care.
        var policy = try String(
            contentsOf: Bodies.examples.deletingLastPathComponent().appendingPathComponent("consent-policy.default.yaml"), encoding: .utf8)
        policy = policy.replacingOccurrences(
            of: "  - id: R7-explicit-only\n",
            with: """
                  - id: L1-voluntary-coordination
                    kind: implied-consent
                    purposes: [care-coordination]
                    roles: [voluntary-sector-broker]
                    relationships: [care-team]
                  - id: R7-explicit-only

                """)
        let system = try CareSystem()
        system.consentPolicyYAML = policy
        try system.start()
        try careTeam(system)
        let nurse = try system.client("nurse.ali", receive: false)
        _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": "person:vsb.green"])
        let plan = try Bodies.carePlan()
        let direct = try nurse.send(.carePlanShare, to: [.person("vsb.green")], patient: ellis, body: plan)
        #expect(direct.recipients.first?.decision == .withheld, "direct care: the site's rule does not apply")
        let coordination = try nurse.send(.carePlanShare, to: [.person("vsb.green")], patient: ellis, purpose: .careCoordination, body: plan)
        #expect(coordination.recipients.first?.decision != .withheld, "\(coordination.recipients)")
    }
}
