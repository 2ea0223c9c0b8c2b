import Foundation
import Testing
@testable import CareRelayModel

@Suite struct MessageBodyTests {
    func example(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Example.root.appendingPathComponent(path)))
    }

    func error(kind: MessageKind, _ json: String) -> MessageValidationError? {
        do {
            _ = try MessageBody.decode(kind: kind, json: Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func checkDigitErrorNamesPathAndDigits() throws {
        let bytes = try example("mdt.agenda/invalid-swiftonly-check-digit.json")
        let err = try #require(error(kind: .mdtAgenda, String(decoding: bytes, as: UTF8.self)))
        #expect(err.path == "items[2].patient")
        #expect(err.description.hasPrefix("items[2].patient: the check digit is 8 but should be 3"))
    }

    /// The broker answers 407 for a bad NHS number and 406 for anything else by the error's
    /// kind: set wherever an NHS number fails, in a body's own fields (referral, agenda),
    /// in a list (carer.invite) and through NHSNumber's decoder (consent).
    @Test func nhsNumberErrorsSayWhatTheyAre() throws {
        for (path, kind) in [
            ("mdt.agenda/invalid-swiftonly-check-digit.json", MessageKind.mdtAgenda),
            ("referral/invalid-nhs-number-nine-digits.json", .referral),
            ("carer.invite/invalid-swiftonly-check-digit.json", .carerInvite),
            ("consent/invalid-swiftonly-bad-nhs-check-digit.json", .consent),
        ] {
            let err = try #require(error(kind: kind, String(decoding: try example(path), as: UTF8.self)), "\(path)")
            #expect(err.kind == .invalidNHSNumber, "\(path): \(err)")
        }
        // Every other invalid example is a schema violation, exactly as when the broker read
        // the reason's words.
        for example in Example.invalid {
            guard let err = error(kind: example.kind, String(decoding: example.bytes, as: UTF8.self)) else { continue }
            let byWords = err.reason.contains("check digit") || err.reason.contains("NHS number")
            #expect((err.kind == .invalidNHSNumber) == byWords, "\(example.relativePath): \(err)")
        }
    }

    @Test func unknownKeyErrorListsAllowedFields() throws {
        let bytes = try example("carer.checkin/invalid-unknown-key.json")
        let err = try #require(error(kind: .carerCheckIn, String(decoding: bytes, as: UTF8.self)))
        #expect(err.path == "carerWellbeing.sleep")
        #expect(err.reason.contains("unknown field \"sleep\""))
        #expect(err.reason.contains("strain"))
    }

    @Test func reasonsAreReadable() throws {
        let cases: [(String, MessageKind, String)] = [
            ("carer.checkin/invalid-strain-out-of-range.json", .carerCheckIn, "11 is out of range: the value must be from 0 to 10"),
            ("referral/invalid-bad-priority.json", .referral, "\"high\" is not one of the allowed values"),
            ("referral/invalid-missing-subject.json", .referral, "required field is missing"),
            ("referral/invalid-oversize-reason.json", .referral, "at most 4000 are allowed"),
            ("referral/invalid-swiftonly-no-such-day.json", .referral, "does not exist: that month has 28 days"),
            ("careplan.share/invalid-swiftonly-duplicate-section-id.json", .carePlanShare, "used twice"),
        ]
        for (path, kind, fragment) in cases {
            let err = try #require(error(kind: kind, String(decoding: try example(path), as: UTF8.self)))
            #expect(err.reason.contains(fragment), "\(path): \(err)")
        }
    }

    @Test func notJSONAndNotAnObjectAreRefusedAtTheBody() {
        #expect(error(kind: .referral, "{\"status\": ")?.path == "(body)")
        #expect(error(kind: .referral, "[1, 2]")?.path == "(body)")
        #expect(error(kind: .carerCheckIn, "\"hello\"")?.path == "(body)")
    }

    @Test func consentBodiesDecodeThroughTheSameEntryPoint() {
        let err = error(kind: .consent, "{}")
        #expect(err?.path == "action")
        #expect(err?.reason.contains("missing") == true)
    }

    @Test func wrongTypeIsExplained() {
        let err = error(
            kind: .referralEvent,
            #"{"referral":"m1","event":"accepted","at":"2025-03-11T11:15:00Z","by":42}"#)
        #expect(err?.path == "by")
        #expect(err?.reason == "expected text in quotes")
    }

    @Test func encodingSortsKeysAndIsCompact() throws {
        let body = try MessageBody.decode(kind: .referral, json: try example("referral/valid-gp-to-social-care-intake.json"))
        let text = String(decoding: body.encode(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"authoredOn":"2025-03-11T10:42:00Z","category":"social-care""#))
        #expect(!text.contains("\n"))
        #expect(body.patients == [try NHSNumber(validating: "9434765919")])
    }

    @Test func referralEventBuiltInCodeRoundTrips() throws {
        let events: [ReferralEvent.Change] = [
            .accepted,
            .declined(reason: "No capacity until Friday", code: .noCapacity),
            .allocated(to: .init(person: "sw.bell", team: "sunderland-west.social-care", role: .socialWorker)),
            .completed(outcome: nil),
            .withdrawn(reason: "Admitted to hospital"),
        ]
        for change in events {
            let event = ReferralEvent(
                referral: "msg-1", change: change,
                at: try Timestamp(validating: "2025-03-11T11:15:00Z"), by: "sw.hughes")
            try event.validate()
            #expect(try ReferralEvent.decode(json: event.encode()) == event)
            let json = try JSONValue.parse(event.encode())
            guard case .object(let fields) = json else { Issue.record("not an object"); continue }
            #expect(fields["event"] == .string(change.type.rawValue))
        }
    }

    @Test func checkInBuiltInCodeRoundTripsAndValidateCatchesBadValues() throws {
        var checkIn = CarerCheckIn(
            patient: try NHSNumber(validating: "4010232137"), carer: "carer.wright",
            authored: Timestamp(Date(timeIntervalSince1970: 1_742_600_000)),
            patientWellbeing: .init(score: 3, text: "Quiet day"), carerWellbeing: .init(wellbeing: 4, strain: 2),
            urgency: .routine,
            readings: [
                .init(
                    code: Coding(system: "http://loinc.org", code: "8867-4", display: "Heart rate"),
                    value: 72, unit: "/min", time: try Timestamp(validating: "2025-03-21T23:10:00+00:00"))
            ])
        try checkIn.validate()
        #expect(try CarerCheckIn.decode(json: checkIn.encode()) == checkIn)
        #expect(checkIn.authored.text == "2025-03-21T23:33:20Z")

        checkIn.carerWellbeing.strain = 12
        #expect(
            throws: MessageValidationError(
                path: "carerWellbeing.strain",
                reason: "12 is out of range: the value must be from 0 to 10")
        ) {
            try checkIn.validate()
        }
        checkIn.carerWellbeing.strain = 2
        checkIn.readings?[0].value = .nan
        #expect(throws: MessageValidationError.self) { try checkIn.validate() }
    }

    @Test func timestampsAndDates() throws {
        #expect(try Timestamp(validating: "2024-02-29T23:59:59.123456789-05:30").date != nil)
        #expect(throws: MessageValidationError.self) { try Timestamp(validating: "2025-02-29T10:00:00Z") }
        #expect(throws: MessageValidationError.self) { try Timestamp(validating: "2025-03-01T24:00:00Z") }
        #expect(throws: MessageValidationError.self) { try Timestamp(validating: "2025-03-01T10:00:00") }
        #expect(throws: MessageValidationError.self) { try Timestamp(validating: "2025-03-01T10:00Z") }
        #expect(throws: MessageValidationError.self) { try Timestamp(validating: "2025-03-01T10:00:00.Z") }
        #expect(try Timestamp(validating: "2025-03-01T10:00:00Z") < Timestamp(validating: "2025-03-01T10:30:00+00:00"))
        #expect(try CalendarDate(validating: "2000-02-29").text == "2000-02-29")
        #expect(throws: MessageValidationError.self) { try CalendarDate(validating: "1900-02-29") }
        #expect(throws: MessageValidationError.self) { try CalendarDate(validating: "2025-13-01") }
    }

    @Test func lengthsCountCodePointsAsJSONSchemaDoes() {
        // "é" written as e + combining accent is one Character but two code points.
        let text = String(repeating: "e\u{301}", count: 2001)
        #expect(text.count == 2001)
        #expect(Check.text(text, max: 4000) != nil)
    }
}

@Suite struct RedactionTests {
    func load<T: MessageBodyContent>(_ type: T.Type, _ path: String) throws -> T {
        try T.decode(json: Array(try Data(contentsOf: Example.root.appendingPathComponent(path))))
    }

    @Test func agendaItemsAreWithheldInPlaceWithoutPatientDetails() throws {
        let agenda = try load(MDTAgenda.self, "mdt.agenda/valid-wednesday-mdt-sunderland-west.json")
        let hidden = try NHSNumber(validating: "9960308243")
        let redacted = agenda.withholdingItems { $0.sensitivity?.contains(.mentalHealth) == true }

        #expect(redacted.items.count == agenda.items.count)
        #expect(redacted.items[0] == agenda.items[0])
        #expect(redacted.items[2] == .withheld(.init()))
        #expect(!redacted.patients.contains(hidden))

        let bytes = redacted.encode()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains(hidden.digits))
        #expect(!text.contains("Low mood"))
        #expect(text.contains(#"{"notice":"item withheld: no consent recorded","withheld":true}"#))
        #expect(try MDTAgenda.decode(json: bytes) == redacted)

        // Withholding again changes nothing; a custom notice is carried.
        #expect(redacted.withholdingItems { $0.sensitivity?.contains(.mentalHealth) == true } == redacted)
        let all = agenda.withholdingItems(where: { _ in true }, notice: "item withheld for this recipient")
        #expect(all.patients.isEmpty)
        try all.validate()
        #expect(MessageBody.mdtAgenda(all).sensitivityLabels.isEmpty)
    }

    @Test func planSectionsAreRemovedAndCounted() throws {
        let plan = try load(CarePlanShare.self, "careplan.share/valid-home-plan-with-mental-health-section.json")
        #expect(plan.labels.contains(.mentalHealth))
        let forCarer = plan.removingSections { $0.labels.contains(.mentalHealth) }
        #expect(forCarer.sections.map(\.id) == ["daily-living", "medication", "contingency"])
        #expect(forCarer.sectionsWithheld == 1)
        #expect(!forCarer.labels.contains(.mentalHealth))
        let text = String(decoding: forCarer.encode(), as: UTF8.self)
        #expect(!text.contains("PHQ-9"))
        try forCarer.validate()

        // Matches the redacted example document exactly.
        let expected = try load(CarePlanShare.self, "careplan.share/valid-redacted-copy-for-carer.json")
        #expect(forCarer == expected)

        // Removing nothing leaves the plan as it was; removing everything is still a valid body.
        #expect(plan.removingSections { _ in false } == plan)
        let empty = forCarer.removingSections { _ in true }
        #expect(empty.sections.isEmpty)
        #expect(empty.sectionsWithheld == 4)
        try empty.validate()
    }

    @Test func aRedactedPlanSaysWhatChangedInTheSectionsItKeeps() throws {
        var plan = try load(CarePlanShare.self, "careplan.share/valid-home-plan-with-mental-health-section.json")
        let withoutMood = { (section: CarePlanShare.Section) in section.id == "mood" }
        #expect(
            plan.removingSections(where: withoutMood).changeSummary
                == "Changes in the sections shared with you: Daily living: Evening call added; "
                + "Medication: Alendronic acid stopped (swallowing problems). Some sections are not shared with you.")
        // Only the mood section changed: the others say nothing changed in them.
        for index in plan.sections.indices where plan.sections[index].id != "mood" { plan.sections[index].changeNote = nil }
        #expect(
            plan.removingSections(where: withoutMood).changeSummary
                == "Version 3: nothing changed in the sections shared with you. Some sections are not shared with you.")
        // A plan without notes cannot say what changed where.
        for index in plan.sections.indices { plan.sections[index].changeNote = nil }
        #expect(
            plan.removingSections(where: withoutMood).changeSummary
                == "Version 3 of this plan. Some sections are not shared with you.")
        plan.version = 1
        #expect(plan.removingSections(where: withoutMood).changeSummary == "First version. Some sections are not shared with you.")
        // A whole copy keeps the author's summary.
        #expect(plan.removingSections { _ in false }.changeSummary == plan.changeSummary)
    }

    @Test func aPlanWithNoSectionsAndNoRedactionIsRefused() throws {
        var plan = try load(CarePlanShare.self, "careplan.share/valid-first-version-open-period.json")
        plan.sections = []
        #expect(throws: MessageValidationError.self) { try plan.validate() }
    }
}

/// A body that parses but breaks a rule of the whole document says which rule, not that it
/// is not JSON.
@Suite struct WholeBodyErrorTests {
    @Test func aRuleOfTheWholeDocumentIsNamedAndOnlyUnparsableTextIsCalledNotJSON() throws {
        let objection = try Data(contentsOf: Example.root.appendingPathComponent("consent/invalid-objection-permits.json"))
        do {
            _ = try MessageBody.decode(kind: .consent, json: Array(objection))
            Issue.record("an objection that permits was taken")
        } catch {
            #expect(error.path == "(body)")
            #expect(!error.reason.contains("not valid JSON") && error.reason.contains("invalid consent directive"), "\(error)")
        }
        #expect(throws: MessageValidationError(path: "(body)", reason: "the body is not valid JSON")) {
            try MessageBody.decode(kind: .consent, json: Array("{\"action\": ".utf8))
        }
    }
}
