import CareRelayModel
import CareRelayPolicy
import Foundation
import Testing

/// The access policy as a pure function, without a broker: the rules of
/// Protocols/access-policy.md one by one. AccessMatrixTests checks the whole table over CURVE.
@Suite struct AccessPolicyTests {
    let policy = AccessPolicy(engine: ConsentEngine())

    func person(_ recipient: ConsentRecipient) -> Directory.Person {
        Directory.Person(
            id: recipient.person, name: recipient.person.rawValue, roles: Array(recipient.roles),
            teams: Array(recipient.teams), key: String(repeating: "k", count: 40))
    }

    func standing(_ recipient: ConsentRecipient, _ directives: [ConsentDirective] = []) -> AccessPolicy.Standing {
        policy.standing(of: recipient, toward: F.patientA, directives: directives, now: F.now)
    }

    @Test func anObjectionByPersonRoleOrTeamClosesThePatientsRecord() {
        let subjects: [ConsentSubject] = [.person("sw.okafor"), .role(.socialWorker), .team(F.socialCareTeam), .relationship(.careTeam)]
        for subject in subjects {
            let objection = F.directive("o", .deny, objection: true, subjects: [subject])
            let worker = standing(F.socialWorker, [objection])
            #expect(worker.objected, "\(subject)")
            #expect(!worker.inCareTeam, "\(subject)")
            #expect(policy.mayRead(.careTeam, asker: person(F.socialWorker), standing: worker) != .allow, "\(subject)")
        }
        // Someone else in the care team is not touched by an objection naming the social worker.
        let nurse = standing(F.nurse, [F.directive("o", .deny, objection: true, subjects: [.person("sw.okafor")])])
        #expect(!nurse.objected && nurse.inCareTeam)
        #expect(policy.mayRead(.consentDirectives, asker: person(F.nurse), standing: nurse) == .allow)
    }

    @Test func aDenyLimitedToSomeCategoriesOrExpiredDoesNotCloseTheRecord() {
        let mentalHealthOnly = F.directive("d", .deny, subjects: [.person("sw.okafor")], categories: [.mentalHealth])
        let expired = F.directive(
            "e", .deny, objection: true, subjects: [.person("sw.okafor")],
            start: F.now.addingTimeInterval(-10 * F.day), end: F.now.addingTimeInterval(-F.day))
        let research = F.directive("r", .deny, objection: true, subjects: [.person("sw.okafor")], purposes: ["research"])
        #expect(!standing(F.socialWorker, [mentalHealthOnly, expired, research]).objected)
    }

    @Test func theRecordIsForRegisteredProfessionalsInTheCareTeam() {
        #expect(policy.mayRead(.careTeam, asker: person(F.gp), standing: standing(F.gp)) == .allow)
        #expect(policy.mayRead(.careTeam, asker: person(F.strangerGP), standing: standing(F.strangerGP)) != .allow)
        // In the care team, but not a registered professional.
        #expect(policy.mayRead(.careTeam, asker: person(F.volunteer), standing: standing(F.volunteer)) != .allow)
        #expect(policy.mayRead(.careTeam, asker: person(F.carer), standing: standing(F.carer)) != .allow)
        // A referral's team is related to the patient for deliveries, not for the record.
        #expect(policy.mayRead(.careTeam, asker: person(F.referralSocialWorker), standing: standing(F.referralSocialWorker)) != .allow)
    }

    @Test func aCareTeamIsFoundedByLinkingYourselfAndThenChangedByItsMembers() {
        let stranger = person(F.strangerGP)
        let none = standing(F.strangerGP)
        #expect(policy.mayChangeCareTeam(asker: stranger, standing: none, careTeamIsEmpty: true, member: .person("gp.stranger")) == .allow)
        #expect(policy.mayChangeCareTeam(asker: stranger, standing: none, careTeamIsEmpty: true, member: .team("elsewhere.practice")) == .allow)
        #expect(policy.mayChangeCareTeam(asker: stranger, standing: none, careTeamIsEmpty: true, member: .person("carer.jones")) != .allow)
        #expect(policy.mayChangeCareTeam(asker: stranger, standing: none, careTeamIsEmpty: false, member: .person("gp.stranger")) != .allow)
        #expect(
            policy.mayChangeCareTeam(asker: person(F.gp), standing: standing(F.gp), careTeamIsEmpty: false, member: .person("carer.jones")) == .allow)
        let objected = standing(F.gp, [F.directive("o", .deny, objection: true, subjects: [.person("gp.khan")])])
        #expect(policy.mayChangeCareTeam(asker: person(F.gp), standing: objected, careTeamIsEmpty: false, member: .person("gp.khan")) != .allow)
        #expect(
            policy.mayChangeCareTeam(asker: person(F.carer), standing: standing(F.carer), careTeamIsEmpty: true, member: .person("carer.jones"))
                != .allow)
    }

    @Test func consentIsRecordedByTheCareTeamInTheRecordersOwnName() {
        let nurse = person(F.nurse)
        #expect(policy.mayRecordConsent(asker: nurse, standing: standing(F.nurse), performer: "nurse.ali") == .allow)
        #expect(policy.mayRecordConsent(asker: nurse, standing: standing(F.nurse), performer: "gp.khan") != .allow)
        #expect(policy.mayRecordConsent(asker: person(F.strangerGP), standing: standing(F.strangerGP), performer: "gp.stranger") != .allow)
        let objected = standing(F.nurse, [F.directive("o", .deny, objection: true, subjects: [.person("nurse.ali")])])
        #expect(policy.mayRecordConsent(asker: nurse, standing: objected, performer: "nurse.ali") != .allow)
    }

    @Test func checkInsAndInvitationsAreBoundToTheirAuthorsAndTheCareTeam() {
        let carer = person(F.carer)
        #expect(policy.mayCheckIn(carer: carer, standing: standing(F.carer), author: "carer.jones") == .allow)
        #expect(policy.mayCheckIn(carer: carer, standing: standing(F.carer), author: "someone.else") != .allow)
        #expect(policy.mayCheckIn(carer: carer, standing: .init(relationships: [], objected: false), author: "carer.jones") != .allow)
        // The patient's objection to their carer does not silence the carer.
        #expect(policy.mayCheckIn(carer: carer, standing: .init(relationships: [.registeredCarer], objected: true), author: "carer.jones") == .allow)

        let coordinator = Directory.Person(
            id: "coord.patel", name: "Priya", roles: [.careCoordinator], teams: [F.socialCareTeam],
            key: String(repeating: "k", count: 40))
        let inTeam = AccessPolicy.Standing(relationships: [.careTeam], objected: false)
        let carerListed = AccessPolicy.Standing(relationships: [.registeredCarer], objected: false)
        #expect(
            policy.mayInvite(issuer: coordinator, issuedBy: "coord.patel", issuerStanding: inTeam, carerStanding: carerListed, carer: "carer.jones")
                == .allow)
        #expect(
            policy.mayInvite(issuer: coordinator, issuedBy: "coord.shah", issuerStanding: inTeam, carerStanding: carerListed, carer: "carer.jones")
                != .allow)
        #expect(
            policy.mayInvite(
                issuer: coordinator, issuedBy: "coord.patel", issuerStanding: .init(relationships: [], objected: false),
                carerStanding: carerListed, carer: "carer.jones") != .allow)
        #expect(
            policy.mayInvite(
                issuer: coordinator, issuedBy: "coord.patel", issuerStanding: inTeam,
                carerStanding: .init(relationships: [], objected: false), carer: "carer.jones") != .allow)
    }

    @Test func aWithheldCopyIsConcealedNotRefused() {
        let related = AccessPolicy.Standing(relationships: [.careTeam], objected: false)
        let objected = AccessPolicy.Standing(relationships: [.careTeam], objected: true)
        #expect(policy.mayReadMessage(.sender, standing: objected) == .allow)
        #expect(policy.mayReadMessage(.recipient(withheld: false), standing: related) == .allow)
        #expect(policy.mayReadMessage(.recipient(withheld: true), standing: related) == .conceal)
        #expect(policy.mayReadMessage(.recipient(withheld: false), standing: objected) == .conceal)
        #expect(policy.mayReadMessage(.handler, standing: objected) == .conceal)
        #expect(policy.mayReadMessage(.none, standing: related) == .conceal)
        #expect(policy.mayActOnReferral(isHandler: true, ownCopyWithheld: true, standing: related) == .conceal)
        #expect(policy.mayActOnReferral(isHandler: true, ownCopyWithheld: false, standing: objected) == .conceal)
        #expect(policy.mayActOnReferral(isHandler: false, ownCopyWithheld: false, standing: related) != .allow)
        #expect(policy.mayActOnReferral(isHandler: true, ownCopyWithheld: false, standing: related) == .allow)
    }

    @Test func readingAsSomeoneElseIsForTheGatewayAndTheSender() {
        let gateway = Directory.Person(
            id: "bridge", name: "Bridge", roles: [.gateway], teams: [], key: String(repeating: "k", count: 40),
            actsFor: ["carer.jones"])
        #expect(policy.mayView(as: "carer.jones", asker: gateway, copy: .none) == .allow)
        #expect(policy.mayView(as: "nurse.ali", asker: gateway, copy: .none) != .allow)
        let coordinator = Directory.Person(
            id: "coord.patel", name: "Priya", roles: [.careCoordinator], teams: [], key: String(repeating: "k", count: 40))
        #expect(policy.mayView(as: "nurse.ali", asker: coordinator, copy: .recipient(withheld: false)) != .allow)
        #expect(policy.mayView(as: "nurse.ali", asker: coordinator, copy: .sender) == .allow)
    }

    @Test func theAuditTrailIsForGovernanceAndEachPersonsOwnRows() {
        let admin = Directory.Person(id: "admin.it", name: "IT", roles: [.administrator], teams: [], key: String(repeating: "k", count: 40))
        let coordinator = Directory.Person(
            id: "coord.patel", name: "Priya", roles: [.careCoordinator], teams: [], key: String(repeating: "k", count: 40))
        let related = AccessPolicy.Standing(relationships: [.careTeam], objected: false)
        let objected = AccessPolicy.Standing(relationships: [.careTeam], objected: true)
        #expect(policy.mayQueryAudit(asker: admin, scope: .everything) == (.allow, .full))
        #expect(policy.mayQueryAudit(asker: coordinator, scope: .patient(related)) == (.allow, .full))
        #expect(policy.mayQueryAudit(asker: coordinator, scope: .patient(objected)).0 != .allow)
        #expect(policy.mayQueryAudit(asker: coordinator, scope: .everything).0 != .allow)
        #expect(policy.mayQueryAudit(asker: coordinator, scope: .message(.conceal, related)) == (.allow, .full))
        #expect(policy.mayQueryAudit(asker: coordinator, scope: .message(.conceal, objected)).0 == .conceal)
        #expect(policy.mayQueryAudit(asker: person(F.gp), scope: .ownActions) == (.allow, .own))
        #expect(policy.mayQueryAudit(asker: person(F.gp), scope: .patient(related)).0 != .allow)
        #expect(policy.mayVerifyAudit(asker: person(F.gp)) != .allow)
        #expect(policy.mayVerifyAudit(asker: coordinator) == .allow)
    }
}
