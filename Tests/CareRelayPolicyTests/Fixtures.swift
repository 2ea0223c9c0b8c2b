import CareRelayModel
import CareRelayPolicy
import Foundation

/// Shared people, teams, patients and builders for the policy tests.
enum F {
    static let now = Date(timeIntervalSince1970: 1_740_830_400)  // 2025-03-01T12:00:00Z
    static let day: TimeInterval = 86_400

    /// The NHS number with this 9-digit prefix and its check digit; nil when the check digit
    /// would be 10 (no valid number has that prefix).
    static func nhs(prefix: Int) -> NHSNumber? {
        let digits = String(format: "%09d", prefix)
        let weighted = zip(digits, (2...10).reversed()).reduce(0) { $0 + $1.0.wholeNumberValue! * $1.1 }
        let r = 11 - weighted % 11
        guard r != 10 else { return nil }
        return try? NHSNumber(validating: digits + String(r == 11 ? 0 : r))
    }

    static let patientA = try! NHSNumber(validating: "9434765919")
    static let patientB = try! NHSNumber(validating: "4010232137")

    static let originTeam: TeamID = "sunderland-west.community-nursing"
    static let socialCareTeam: TeamID = "sunderland-west.social-care"
    static let practiceTeam: TeamID = "millfield.practice"

    static func careTeam(_ patients: NHSNumber...) -> [NHSNumber: Set<PatientRelationship>] {
        Dictionary(uniqueKeysWithValues: patients.map { ($0, [.careTeam]) })
    }

    static let gp = ConsentRecipient(
        person: "gp.khan", roles: [.gp], teams: [practiceTeam], organisation: "millfield-surgery",
        relationships: careTeam(patientA, patientB))
    static let strangerGP = ConsentRecipient(
        person: "gp.stranger", roles: [.gp], teams: ["elsewhere.practice"], organisation: "elsewhere-surgery")
    static let nurse = ConsentRecipient(
        person: "nurse.ali", roles: [.communityNurse], teams: [originTeam], organisation: "sunderland-chs",
        relationships: careTeam(patientA, patientB))
    static let socialWorker = ConsentRecipient(
        person: "sw.okafor", roles: [.socialWorker], teams: [socialCareTeam], organisation: "sunderland-council",
        relationships: careTeam(patientA))
    static let referralSocialWorker = ConsentRecipient(
        person: "sw.bell", roles: [.socialWorker], teams: [socialCareTeam], organisation: "sunderland-council",
        relationships: [patientA: [.referralTeam]])
    static let unrelatedSocialWorker = ConsentRecipient(
        person: "sw.okafor", roles: [.socialWorker], teams: [socialCareTeam], organisation: "sunderland-council")
    static let carer = ConsentRecipient(
        person: "carer.jones", roles: [.carer], relationships: [patientA: [.registeredCarer]])
    static let gateway = ConsentRecipient(
        person: "bridge", roles: [.gateway], relationships: [patientA: [.registeredCarer]])
    static let volunteer = ConsentRecipient(
        person: "vol.ageuk", roles: [.voluntarySectorBroker], teams: ["sunderland-west.mdt"],
        organisation: "age-uk-sunderland", relationships: careTeam(patientA))
    static let patientSelf = ConsentRecipient(person: "pt.a", roles: [.patient], nhsNumber: patientA)
    static let otherPatient = ConsentRecipient(person: "pt.b", roles: [.patient], nhsNumber: patientB)

    static func directive(
        _ id: String, _ type: ConsentProvisionType = .permit, objection: Bool = false, patient: NHSNumber = patientA,
        subjects: [ConsentSubject], categories: [DataCategory] = [], purposes: [ConsentPurpose] = [],
        start: Date = now.addingTimeInterval(-30 * day), end: Date? = nil, basis: ConsentBasis = .explicit,
        status: ConsentStatus = .active
    ) -> ConsentDirective {
        ConsentDirective(
            id: ConsentDirectiveID(id), patient: patient, status: status, type: type, isObjection: objection,
            subjects: subjects, categories: categories, purposes: purposes, period: ConsentPeriod(start: start, end: end),
            basis: basis, recordedBy: ConsentPerformer(person: "nurse.ali", role: .communityNurse),
            recordedAt: start)
    }

    static func part(_ id: String, _ categories: Set<DataCategory> = [.general], patient: NHSNumber = patientA, mdt: Bool = false) -> MessagePart {
        MessagePart(id: id, patient: patient, categories: categories, isMDTItem: mdt)
    }

    static func request(
        _ kind: MessageKind = .carePlanShare, purpose: ConsentPurpose = .directCare, origin: TeamID? = originTeam,
        locality: LocalityID? = "sunderland-west", parts: [MessagePart], mdt: Set<NHSNumber> = [],
        breakGlass: BreakGlassRequest? = nil
    ) -> ConsentRequest {
        ConsentRequest(
            now: now, kind: kind, purpose: purpose, originatingTeam: origin, locality: locality, parts: parts,
            mdtPermissions: mdt, breakGlass: breakGlass)
    }

    /// A care plan with a general section and a mental health section.
    static let planWithMentalHealth = [part("summary"), part("mental-health", [.mentalHealth])]

    static func glass(_ reason: String, by person: PersonID = "gp.khan", roles: Set<Role> = [.gp]) -> BreakGlassRequest {
        BreakGlassRequest(requestedBy: person, requesterRoles: roles, reason: reason)
    }

}
