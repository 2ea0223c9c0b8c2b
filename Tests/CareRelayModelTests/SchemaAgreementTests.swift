import Foundation
import Testing
@testable import CareRelayModel

/// The Swift types and the JSON Schemas must not drift apart: same fields, same enum values.
@Suite struct SchemaAgreementTests {
    static let messages = Example.root.deletingLastPathComponent().appendingPathComponent("messages")

    func schema(_ kind: MessageKind) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.messages.appendingPathComponent("\(kind.rawValue).schema.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func lookup(_ root: [String: Any], _ path: [String]) throws -> [String: Any] {
        var node = root
        for key in path { node = try #require(node[key] as? [String: Any], "no \(path) in schema") }
        return node
    }

    func properties(_ root: [String: Any], _ path: [String] = []) throws -> Set<String> {
        Set(try #require(try lookup(root, path)["properties"] as? [String: Any]).keys)
    }

    func enumValues(_ root: [String: Any], _ path: [String]) throws -> [String] {
        try #require(try lookup(root, path)["enum"] as? [String])
    }

    func names<K: CodingKey & CaseIterable>(_ type: K.Type) -> Set<String> { Set(K.allCases.map(\.stringValue)) }
    func raw<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> [String] where T.RawValue == String {
        T.allCases.map(\.rawValue)
    }

    @Test func fieldsAgree() throws {
        let referral = try schema(.referral)
        #expect(try properties(referral) == names(ReferralBody.CodingKeys.self))
        #expect(try properties(referral, ["properties", "requester"]) == names(ReferralBody.Requester.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "performer"]) == names(PerformerReference.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "coding"]) == names(Coding.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "patientDetails"]) == names(PatientDetails.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "patientDetails", "properties", "name"]) == names(PatientDetails.Name.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "patientDetails", "properties", "address"]) == names(PatientDetails.Address.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "phoneContact"]) == names(PatientDetails.ContactPoint.CodingKeys.self))
        #expect(try properties(referral, ["$defs", "emailContact"]) == names(PatientDetails.ContactPoint.CodingKeys.self))

        let event = try schema(.referralEvent)
        #expect(try properties(event) == names(ReferralEvent.CodingKeys.self))
        #expect(try properties(event, ["properties", "allocatedTo"]) == names(ReferralEvent.Allocation.CodingKeys.self))

        let agenda = try schema(.mdtAgenda)
        #expect(try properties(agenda) == names(MDTAgenda.CodingKeys.self))
        #expect(try properties(agenda, ["$defs", "attendee"]) == names(MDTAgenda.Attendee.CodingKeys.self))
        #expect(try properties(agenda, ["$defs", "intervention"]) == names(MDTAgenda.Intervention.CodingKeys.self))
        #expect(try properties(agenda, ["$defs", "item"]) == names(MDTAgenda.Item.CodingKeys.self))
        #expect(try properties(agenda, ["$defs", "withheldItem"]) == names(MDTAgenda.WithheldItem.CodingKeys.self))

        let plan = try schema(.carePlanShare)
        #expect(try properties(plan) == names(CarePlanShare.CodingKeys.self))
        #expect(try properties(plan, ["properties", "period"]) == names(CarePlanShare.Period.CodingKeys.self))
        #expect(try properties(plan, ["$defs", "section"]) == names(CarePlanShare.Section.CodingKeys.self))
        #expect(try properties(plan, ["$defs", "humanName"]) == names(PatientDetails.Name.CodingKeys.self))
        #expect(try properties(plan, ["$defs", "activity"]) == names(CarePlanShare.Activity.CodingKeys.self))

        let checkIn = try schema(.carerCheckIn)
        #expect(try properties(checkIn) == names(CarerCheckIn.CodingKeys.self))
        #expect(try properties(checkIn, ["properties", "patientWellbeing"]) == names(CarerCheckIn.PatientWellbeing.CodingKeys.self))
        #expect(try properties(checkIn, ["properties", "carerWellbeing"]) == names(CarerCheckIn.CarerWellbeing.CodingKeys.self))
        #expect(try properties(checkIn, ["$defs", "reading"]) == names(CarerCheckIn.Reading.CodingKeys.self))
    }

    @Test func enumsAgree() throws {
        let referral = try schema(.referral)
        #expect(try enumValues(referral, ["properties", "priority"]) == raw(Priority.self))
        #expect(try enumValues(referral, ["properties", "status"]) == raw(ReferralBody.Status.self))
        #expect(try enumValues(referral, ["properties", "intent"]) == raw(ReferralBody.Intent.self))
        #expect(try enumValues(referral, ["properties", "category"]) == raw(ReferralBody.Category.self))
        let systems = try ["phoneContact", "emailContact"].map {
            try #require(try lookup(referral, ["$defs", $0, "properties", "system"])["const"] as? String)
        }
        #expect(systems == raw(PatientDetails.ContactPoint.System.self))
        #expect(try enumValues(referral, ["$defs", "phoneContact", "properties", "use"]) == raw(PatientDetails.ContactPoint.Use.self))
        #expect(try enumValues(referral, ["$defs", "emailContact", "properties", "use"]) == raw(PatientDetails.ContactPoint.Use.self))
        for kind in [MessageKind.referral, .referralEvent, .mdtAgenda, .carePlanShare] {
            #expect(try enumValues(try schema(kind), ["$defs", "role"]) == raw(Role.self), "\(kind)")
        }
        let event = try schema(.referralEvent)
        #expect(try enumValues(event, ["properties", "event"]) == raw(ReferralEvent.EventType.self))
        #expect(try enumValues(event, ["properties", "reasonCode"]) == raw(ReferralEvent.DeclineCode.self))
        let agenda = try schema(.mdtAgenda)
        #expect(try enumValues(agenda, ["$defs", "attendee", "properties", "attendance"]) == raw(MDTAgenda.Attendance.self))
        let plan = try schema(.carePlanShare)
        #expect(try enumValues(plan, ["properties", "status"]) == raw(CarePlanShare.Status.self))
        #expect(try enumValues(plan, ["properties", "intent"]) == raw(CarePlanShare.Intent.self))
        #expect(try enumValues(plan, ["$defs", "section", "properties", "kind"]) == raw(CarePlanShare.SectionKind.self))
        #expect(try enumValues(plan, ["$defs", "activity", "properties", "status"]) == raw(CarePlanShare.ActivityStatus.self))
        let checkIn = try schema(.carerCheckIn)
        #expect(try enumValues(checkIn, ["properties", "status"]) == raw(CarerCheckIn.Status.self))
        #expect(try enumValues(checkIn, ["properties", "urgency"]) == raw(CarerCheckIn.Urgency.self))
    }

    @Test func everyObjectRefusesUnknownKeys() throws {
        func walk(_ node: Any, _ path: String) {
            if let object = node as? [String: Any] {
                if object["properties"] != nil {
                    #expect(object["additionalProperties"] as? Bool == false, "\(path) allows unknown keys")
                }
                for (key, value) in object { walk(value, "\(path)/\(key)") }
            } else if let array = node as? [Any] {
                for (i, value) in array.enumerated() { walk(value, "\(path)/\(i)") }
            }
        }
        for kind in MessageKind.allCases where kind != .consent {
            let root = try schema(kind)
            #expect(root["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
            // Objects are the ones with "type": "object"; if/then fragments also use "properties".
            for (name, def) in (root["$defs"] as? [String: Any] ?? [:]) {
                if (def as? [String: Any])?["type"] as? String == "object" { walk(def, "\(kind.rawValue)#/$defs/\(name)") }
            }
            #expect(root["additionalProperties"] as? Bool == false)
            for (name, prop) in (root["properties"] as? [String: Any] ?? [:]) {
                if (prop as? [String: Any])?["type"] as? String == "object" { walk(prop, "\(kind.rawValue)/\(name)") }
            }
        }
    }
}
