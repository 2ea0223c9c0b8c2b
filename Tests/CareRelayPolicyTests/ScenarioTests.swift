import CareRelayModel
import CareRelayPolicy
import Foundation
import Testing

/// One row of the scenario table: a situation from docs/domain.md and the decision it must get.
struct Scenario: Sendable, CustomTestStringConvertible {
    var description: String
    var request: ConsentRequest
    var recipient: ConsentRecipient
    var directives: [ConsentDirective] = []
    /// Nil: the default policy.
    var policyYAML: String? = nil
    var outcome: ConsentOutcome
    var rule: String
    /// Rule ids expected for particular parts.
    var partRules: [String: String] = [:]
    var override = false

    var testDescription: String { description }
}

/// Policy variants used by rows that change a default through YAML.
enum Policies {
    /// A site that lists its own category, substance-misuse, as sensitive.
    static let substanceMisuseSensitive = ConsentPolicy.defaultYAML.replacingOccurrences(
        of: "  - safeguarding\n", with: "  - safeguarding\n  - substance-misuse\n")

    /// One locality lets voluntary sector brokers in the care team receive on implied consent.
    static let westVoluntaryImplied = ConsentPolicy.defaultYAML.replacingOccurrences(
        of: "  - id: R7-explicit-only\n",
        with: """
              - id: L1-west-voluntary-implied
                kind: implied-consent
                localities: [sunderland-west]
                roles: [voluntary-sector-broker]
                relationships: [care-team]
              - id: R7-explicit-only

            """)
}

let scenarios: [Scenario] = {
    typealias D = ConsentDirective
    let A = F.patientA, B = F.patientB
    let carerPermitAll = F.directive("cd-carer", subjects: [.relationship(.carer)])
    return [
        // Legitimate relationships on implied consent.
        Scenario(
            description: "GP in the patient's care team receives a care plan on implied consent",
            request: F.request(parts: [F.part("summary")]), recipient: F.gp, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "social worker in the team a referral is addressed to receives it",
            request: F.request(.referral, parts: [F.part("referral", [.general, .socialCare])]),
            recipient: F.referralSocialWorker, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "professional with no relationship to the patient is withheld",
            request: F.request(parts: [F.part("summary")]), recipient: F.strangerGP, outcome: .withhold, rule: "R8-no-consent"),
        Scenario(
            description: "medication change reaches the GP in the care team",
            request: F.request(parts: [F.part("medication", [.medication])]), recipient: F.gp, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "medication change to a GP with no relationship is withheld",
            request: F.request(parts: [F.part("medication", [.medication])]), recipient: F.strangerGP, outcome: .withhold, rule: "R8-no-consent"),
        Scenario(
            description: "implied consent does not cover a purpose other than care (research)",
            request: F.request(purpose: "research", parts: [F.part("summary")]), recipient: F.gp, outcome: .withhold, rule: "R8-no-consent"),

        // Objections and denies.
        Scenario(
            description: "objection to all sharing overrides implied consent for the GP",
            request: F.request(parts: [F.part("summary")]), recipient: F.gp,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone])],
            outcome: .withhold, rule: "R1-objection"),
        Scenario(
            description: "objection to mental health sharing only: a general plan still reaches the GP",
            request: F.request(parts: [F.part("summary")]), recipient: F.gp,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone], categories: [.mentalHealth])],
            outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "objection to mental health sharing redacts that section even inside the originating team",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.nurse,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone], categories: [.mentalHealth])],
            outcome: .deliverRedacted(removing: ["mental-health"]), rule: "R1-objection",
            partRules: ["summary": "R6-implied-consent", "mental-health": "R1-objection"]),
        Scenario(
            description: "objection naming the referral's team withholds the referral",
            request: F.request(.referral, parts: [F.part("referral")]), recipient: F.referralSocialWorker,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.team(F.socialCareTeam)])],
            outcome: .withhold, rule: "R1-objection"),
        Scenario(
            description: "a deny for a specific person beats a permit for their team",
            request: F.request(parts: [F.part("summary")]), recipient: F.unrelatedSocialWorker,
            directives: [
                F.directive("cd-team", subjects: [.team(F.socialCareTeam)]),
                F.directive("cd-person", .deny, subjects: [.person("sw.okafor")]),
            ],
            outcome: .withhold, rule: "R2-explicit-deny"),
        Scenario(
            description: "the team permit alone reaches a social worker with no care relationship",
            request: F.request(parts: [F.part("summary")]), recipient: F.unrelatedSocialWorker,
            directives: [F.directive("cd-team", subjects: [.team(F.socialCareTeam)])],
            outcome: .deliver, rule: "R5-explicit-consent"),
        Scenario(
            description: "a deny for an organisation withholds from its member in the care team",
            request: F.request(parts: [F.part("summary")]), recipient: F.socialWorker,
            directives: [F.directive("cd-org", .deny, subjects: [.organisation("sunderland-council")])],
            outcome: .withhold, rule: "R2-explicit-deny"),
        Scenario(
            description: "a deny for an organisation does not touch another organisation",
            request: F.request(parts: [F.part("summary")]), recipient: F.gp,
            directives: [F.directive("cd-org", .deny, subjects: [.organisation("sunderland-council")])],
            outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "a deny beats an explicit permit for the same carer",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [carerPermitAll, F.directive("cd-deny", .deny, subjects: [.person("carer.jones")])],
            outcome: .withhold, rule: "R2-explicit-deny"),

        // Carers and the voluntary sector need explicit consent.
        Scenario(
            description: "carer without explicit consent is withheld",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer, outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "carer with explicit consent receives the plan",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer, directives: [carerPermitAll],
            outcome: .deliver, rule: "R5-explicit-consent"),
        Scenario(
            description: "carer consent limited to general: other sections are redacted",
            request: F.request(parts: [F.part("summary"), F.part("social-care", [.socialCare]), F.part("medication", [.medication])]),
            recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], categories: [.general])],
            outcome: .deliverRedacted(removing: ["social-care", "medication"]), rule: "R7-explicit-only",
            partRules: ["summary": "R5-explicit-consent"]),
        Scenario(
            description: "carer consent for carer support does not cover direct care messages",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], purposes: [.carerSupport])],
            outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "carer bridge gateway without consent is withheld",
            request: F.request(parts: [F.part("summary")]), recipient: F.gateway, outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "voluntary sector broker without consent is withheld even in the care team",
            request: F.request(.referral, parts: [F.part("referral")]), recipient: F.volunteer, outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "voluntary sector broker with explicit consent receives the referral",
            request: F.request(.referral, parts: [F.part("referral")]), recipient: F.volunteer,
            directives: [F.directive("cd-vol", subjects: [.relationship(.voluntarySector)])],
            outcome: .deliver, rule: "R5-explicit-consent"),

        // Sensitive categories.
        Scenario(
            description: "mental health section to a social worker outside the originating team is redacted",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.socialWorker,
            outcome: .deliverRedacted(removing: ["mental-health"]), rule: "R4-sensitive-explicit",
            partRules: ["summary": "R6-implied-consent"]),
        Scenario(
            description: "the same plan is delivered whole within the originating team",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.nurse, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "explicit consent covering mental health: the social worker gets the whole plan",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.socialWorker,
            directives: [F.directive("cd-mh", subjects: [.person("sw.okafor")], categories: [.mentalHealth])],
            outcome: .deliver, rule: "R6-implied-consent", partRules: ["mental-health": "R5-explicit-consent"]),
        Scenario(
            description: "implied-basis permit does not count as explicit consent for mental health",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.socialWorker,
            directives: [F.directive("cd-mh", subjects: [.person("sw.okafor")], categories: [.mentalHealth], basis: .implied)],
            outcome: .deliverRedacted(removing: ["mental-health"]), rule: "R4-sensitive-explicit"),
        Scenario(
            description: "sexual health section to the GP outside the originating team is redacted",
            request: F.request(parts: [F.part("summary"), F.part("sexual-health", [.sexualHealth])]), recipient: F.gp,
            outcome: .deliverRedacted(removing: ["sexual-health"]), rule: "R4-sensitive-explicit"),
        Scenario(
            description: "safeguarding section to a social worker outside the originating team is redacted",
            request: F.request(parts: [F.part("summary"), F.part("safeguarding", [.safeguarding])]), recipient: F.socialWorker,
            outcome: .deliverRedacted(removing: ["safeguarding"]), rule: "R4-sensitive-explicit"),
        Scenario(
            description: "safeguarding section within the originating team is delivered",
            request: F.request(parts: [F.part("summary"), F.part("safeguarding", [.safeguarding])]), recipient: F.nurse,
            outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "safeguarding shared on a legal duty reaches the social worker",
            request: F.request(parts: [F.part("safeguarding", [.safeguarding])]), recipient: F.socialWorker,
            directives: [F.directive("cd-duty", subjects: [.team(F.socialCareTeam)], categories: [.safeguarding], basis: .legalDuty)],
            outcome: .deliver, rule: "R5-explicit-consent"),
        Scenario(
            description: "no originating team known: a sensitive section needs explicit consent for everyone",
            request: F.request(origin: nil, parts: F.planWithMentalHealth), recipient: F.nurse,
            outcome: .deliverRedacted(removing: ["mental-health"]), rule: "R4-sensitive-explicit"),
        Scenario(
            description: "carer consent for general only: a mental health section is withheld as sensitive",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], categories: [.general])],
            outcome: .deliverRedacted(removing: ["mental-health"]), rule: "R4-sensitive-explicit"),

        // Time and withdrawal.
        Scenario(
            description: "expired consent is treated as absent",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], start: F.now - 60 * F.day, end: F.now - F.day)],
            outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "consent ending exactly now has expired",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], end: F.now)],
            outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "consent not yet started is treated as absent",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], start: F.now + F.day)],
            outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "an expired objection no longer blocks implied consent",
            request: F.request(parts: [F.part("summary")]), recipient: F.gp,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone], end: F.now - F.day)],
            outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "a withdrawn directive no longer counts",
            request: F.request(parts: [F.part("summary")]), recipient: F.carer,
            directives: [F.directive("cd-carer", subjects: [.relationship(.carer)], status: .inactive)],
            outcome: .withhold, rule: "R7-explicit-only"),

        // MDT agendas.
        Scenario(
            description: "MDT item without the patient's permission is withheld from the agenda",
            request: F.request(
                .mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true), F.part("item-b", patient: B, mdt: true)], mdt: [B]),
            recipient: F.gp, outcome: .deliverRedacted(removing: ["item-a"]), rule: "R3-mdt-permission",
            partRules: ["item-b": "R6-implied-consent"]),
        Scenario(
            description: "MDT item with permission recorded with the meeting is delivered",
            request: F.request(.mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true)], mdt: [A]),
            recipient: F.gp, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "MDT item with an mdt-discussion permit directive is delivered",
            request: F.request(.mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true)]),
            recipient: F.nurse,
            directives: [F.directive("cd-mdt", subjects: [.everyone], purposes: [.mdtDiscussion])],
            outcome: .deliver, rule: "R5-explicit-consent"),
        Scenario(
            description: "agenda with two patients, only one consenting by directive",
            request: F.request(.mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true), F.part("item-b", patient: B, mdt: true)]),
            recipient: F.nurse,
            directives: [F.directive("cd-mdt-b", patient: B, subjects: [.everyone], purposes: [.mdtDiscussion])],
            outcome: .deliverRedacted(removing: ["item-a"]), rule: "R3-mdt-permission"),
        Scenario(
            description: "agenda whose only item lacks permission still reaches the attendee, the item as a placeholder",
            request: F.request(.mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true)]),
            recipient: F.gp, outcome: .deliverRedacted(removing: ["item-a"]), rule: "R3-mdt-permission"),
        Scenario(
            description: "permission to discuss at the MDT does not override a patient's objection",
            request: F.request(.mdtAgenda, purpose: .mdtDiscussion, parts: [F.part("item-a", mdt: true)], mdt: [A]),
            recipient: F.gp, directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone])],
            outcome: .deliverRedacted(removing: ["item-a"]), rule: "R1-objection"),

        // Break glass.
        Scenario(
            description: "break glass by a registered professional with a reason delivers with override",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("unconscious in A&E, needs medication history")),
            recipient: F.strangerGP, outcome: .deliver, rule: "R9-break-glass", override: true),
        Scenario(
            description: "break glass overrides an objection and is flagged",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("collapsed at home, paramedic needs history")),
            recipient: F.gp, directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone])],
            outcome: .deliver, rule: "R9-break-glass", override: true),
        Scenario(
            description: "break glass without a reason is refused",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("   ")),
            recipient: F.strangerGP, outcome: .withhold, rule: "R10-break-glass-refused"),
        Scenario(
            description: "break glass with a too-short reason is refused",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("urgent")),
            recipient: F.strangerGP, outcome: .withhold, rule: "R10-break-glass-refused"),
        Scenario(
            description: "break glass by a carer is not allowed",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("I need to know what happened", by: "carer.jones", roles: [.carer])),
            recipient: F.strangerGP, outcome: .withhold, rule: "R10-break-glass-refused"),
        Scenario(
            description: "break glass is not needed when consent already allows: no override",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("out of hours emergency visit")),
            recipient: F.gp, outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "break glass does not extend to a carer recipient",
            request: F.request(parts: [F.part("summary")], breakGlass: F.glass("out of hours emergency visit")),
            recipient: F.carer, outcome: .withhold, rule: "R7-explicit-only"),

        // The patient.
        Scenario(
            description: "the patient receives their own plan, sensitive sections included",
            request: F.request(parts: F.planWithMentalHealth), recipient: F.patientSelf,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.everyone])],
            outcome: .deliver, rule: "R0-patient-self"),
        Scenario(
            description: "a patient never receives another patient's data",
            request: F.request(parts: [F.part("summary")]), recipient: F.otherPatient, outcome: .withhold, rule: "R8-no-consent"),

        // Policy YAML changes the decision.
        Scenario(
            description: "default policy: a site category is not sensitive",
            request: F.request(parts: [F.part("summary"), F.part("substance", ["substance-misuse"])]), recipient: F.socialWorker,
            outcome: .deliver, rule: "R6-implied-consent"),
        Scenario(
            description: "site policy lists substance-misuse as sensitive: redacted outside the team",
            request: F.request(parts: [F.part("summary"), F.part("substance", ["substance-misuse"])]), recipient: F.socialWorker,
            policyYAML: Policies.substanceMisuseSensitive,
            outcome: .deliverRedacted(removing: ["substance"]), rule: "R4-sensitive-explicit"),
        Scenario(
            description: "site policy: voluntary sector on implied consent in sunderland-west",
            request: F.request(.referral, parts: [F.part("referral")]), recipient: F.volunteer,
            policyYAML: Policies.westVoluntaryImplied, outcome: .deliver, rule: "L1-west-voluntary-implied"),
        Scenario(
            description: "the same site policy does not apply in sunderland-east",
            request: F.request(.referral, locality: "sunderland-east", parts: [F.part("referral")]), recipient: F.volunteer,
            policyYAML: Policies.westVoluntaryImplied, outcome: .withhold, rule: "R7-explicit-only"),
        Scenario(
            description: "the locality rule still loses to an objection",
            request: F.request(.referral, parts: [F.part("referral")]), recipient: F.volunteer,
            directives: [F.directive("cd-obj", .deny, objection: true, subjects: [.relationship(.voluntarySector)])],
            policyYAML: Policies.westVoluntaryImplied, outcome: .withhold, rule: "R1-objection"),
    ]
}()

@Suite struct ScenarioTests {
    @Test func tableHasAtLeastFortyRows() {
        #expect(scenarios.count >= 40)
    }

    @Test(arguments: scenarios)
    func scenario(_ row: Scenario) throws {
        let policy = try row.policyYAML.map { try ConsentPolicy(yaml: $0, source: "test") } ?? .default
        let decision = ConsentEngine(policy: policy).decide(row.request, for: row.recipient, directives: row.directives)
        #expect(decision.outcome == row.outcome)
        #expect(decision.ruleID == row.rule)
        #expect(decision.override == row.override)
        #expect(decision.notifyCareCoordinator == row.override)
        #expect(decision.parts.count == row.request.parts.count)
        for (part, rule) in row.partRules {
            #expect(decision.ruleID(forPart: part) == rule, "part \(part)")
        }
        // Reasons never disclose directive contents: no directive ids, no people named.
        for text in [decision.reason] + decision.parts.map(\.reason) {
            for d in row.directives {
                #expect(!text.contains(d.id.rawValue))
                for s in d.subjects {
                    switch s {
                    case .person(let p): #expect(!text.contains(p.rawValue))
                    case .team(let t): #expect(!text.contains(t.rawValue))
                    case .organisation(let o): #expect(!text.contains(o.rawValue))
                    default: break
                    }
                }
            }
            #expect(!text.lowercased().contains("object"))
        }
    }
}
