import CareRelayModel
import CareRelayPolicy
import Foundation
import Testing

/// A small seeded generator (SplitMix64) so property tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RegistryTests {
    @Test func hundredThousandPatients() throws {
        var registry = ConsentRegistry()
        registry.reserveCapacity(100_000)
        var patients: [NHSNumber] = []
        patients.reserveCapacity(100_000)
        var prefix = 100_000_000
        while patients.count < 100_000 {
            if let n = F.nhs(prefix: prefix) { patients.append(n) }
            prefix += 7
        }
        for (i, patient) in patients.enumerated() {
            // Every patient: a carer permit. Every third: an objection too. Every fifth: a
            // second, expired permit.
            registry.record(F.directive("cd-\(i)-carer", patient: patient, subjects: [.relationship(.carer)]))
            if i % 3 == 0 {
                registry.record(F.directive("cd-\(i)-obj", .deny, objection: true, patient: patient, subjects: [.everyone]))
            }
            if i % 5 == 0 {
                registry.record(F.directive("cd-\(i)-old", patient: patient, subjects: [.everyone], end: F.now - F.day))
            }
        }
        #expect(registry.patientCount == 100_000)
        #expect(registry.directiveCount == 100_000 + 33_334 + 20_000)

        let engine = ConsentEngine()
        for i in stride(from: 0, to: 100_000, by: 997) {
            let patient = patients[i]
            #expect(registry.directives(for: patient).count == 1 + (i % 3 == 0 ? 1 : 0) + (i % 5 == 0 ? 1 : 0))
            let carer = ConsentRecipient(person: PersonID("carer.\(i)"), roles: [.carer], relationships: [patient: [.registeredCarer]])
            let request = F.request(parts: [F.part("summary", patient: patient)])
            let decision = engine.decide(request, for: carer, directives: registry)
            if i % 3 == 0 {
                #expect(decision.ruleID == "R1-objection")
                #expect(decision.parts[0].directiveIDs == [ConsentDirectiveID("cd-\(i)-obj")])
            } else {
                #expect(decision.outcome == .deliver)
                #expect(decision.parts[0].directiveIDs == [ConsentDirectiveID("cd-\(i)-carer")])
            }
        }
        // Withdrawal and housekeeping.
        let first = registry.withdraw("cd-1-carer", patient: patients[1])
        let second = registry.withdraw("cd-1-carer", patient: patients[1])
        #expect(first && !second)
        #expect(registry.directives(for: patients[1]).isEmpty)
        let dropped = registry.removeExpired(asOf: F.now)
        #expect(dropped == 20_000)
        #expect(registry.directives(for: patients[0]).count == 2)
    }

    @Test func recordReplacesSameID() {
        var registry = ConsentRegistry()
        registry.record(F.directive("cd-1", subjects: [.everyone]))
        registry.record(F.directive("cd-1", .deny, subjects: [.everyone]))
        #expect(registry.directiveCount == 1)
        #expect(registry.directives(for: F.patientA).first?.type == .deny)
        registry.record(F.directive("cd-1", subjects: [.everyone], status: .inactive))
        #expect(registry.directiveCount == 0)
        #expect(registry.patientCount == 0)
    }

    @Test func decisionsForSeveralRecipientsShareLookups() {
        let decisions = ConsentEngine().decide(
            F.request(parts: F.planWithMentalHealth), recipients: [F.nurse, F.socialWorker, F.carer, F.patientSelf],
            directives: [ConsentDirective]())
        #expect(decisions.map(\.outcome.name) == ["deliver", "deliver-redacted", "withhold", "deliver"])
        #expect(decisions.map(\.recipient) == ["nurse.ali", "sw.okafor", "carer.jones", "pt.a"])
    }
}

@Suite struct PropertyTests {
    static let recipients = [
        F.gp, F.nurse, F.socialWorker, F.referralSocialWorker, F.unrelatedSocialWorker, F.carer, F.volunteer, F.strangerGP, F.gateway,
    ]
    static let subjects: [ConsentSubject] = [
        .everyone, .person("gp.khan"), .person("sw.okafor"), .person("carer.jones"), .role(.gp), .role(.socialWorker),
        .team(F.socialCareTeam), .team(F.originTeam), .organisation("sunderland-council"), .relationship(.carer),
        .relationship(.voluntarySector), .relationship(.careTeam),
    ]
    static let categories: [DataCategory] = [.general, .socialCare, .mentalHealth, .safeguarding, .medication]
    static let purposes: [ConsentPurpose] = [.directCare, .mdtDiscussion, .carerSupport]

    static func randomDirective(_ i: Int, _ g: inout SeededGenerator, type: ConsentProvisionType? = nil) -> ConsentDirective {
        let t = type ?? (Bool.random(using: &g) ? .permit : .deny)
        let start = F.now + Double(Int.random(in: -40...2, using: &g)) * F.day
        let end: Date? = Bool.random(using: &g) ? nil : start + Double(Int.random(in: 1...60, using: &g)) * F.day
        return F.directive(
            "cd-\(i)", t, objection: t == .deny && Bool.random(using: &g),
            subjects: (0..<Int.random(in: 1...2, using: &g)).map { _ in subjects.randomElement(using: &g)! },
            categories: Bool.random(using: &g) ? [] : [categories.randomElement(using: &g)!],
            purposes: Bool.random(using: &g) ? [] : [purposes.randomElement(using: &g)!],
            start: start, end: end, basis: ConsentBasis.allCases.randomElement(using: &g)!)
    }

    static func randomRequest(_ g: inout SeededGenerator) -> ConsentRequest {
        let parts = (0..<Int.random(in: 1...3, using: &g)).map { i in
            F.part(
                "p\(i)", Set((0..<Int.random(in: 1...2, using: &g)).map { _ in categories.randomElement(using: &g)! }),
                mdt: Bool.random(using: &g))
        }
        return F.request(
            [.carePlanShare, .mdtAgenda, .referral].randomElement(using: &g)!, purpose: purposes.randomElement(using: &g)!,
            parts: parts, mdt: Bool.random(using: &g) ? [F.patientA] : [])
    }

    /// Whether `d` is a deny in force that names `recipient` and covers `part` for `purpose`.
    static func denies(_ d: ConsentDirective, _ recipient: ConsentRecipient, _ part: MessagePart, _ purpose: ConsentPurpose) -> Bool {
        guard d.type == .deny, d.isInForce(at: F.now), d.covers(purpose), part.categories.contains(where: { d.covers($0) }) else { return false }
        let rels = recipient.relationships(to: part.patient)
        return d.subjects.contains { s in
            switch s {
            case .everyone: return true
            case .person(let p): return p == recipient.person
            case .role(let r): return recipient.roles.contains(r)
            case .team(let t): return recipient.teams.contains(t)
            case .organisation(let o): return recipient.organisation == o
            case .relationship(.carer): return rels.contains(.registeredCarer)
            case .relationship(.voluntarySector): return recipient.roles.contains(.voluntarySectorBroker)
            case .relationship(.careTeam): return rels.contains(.careTeam)
            }
        }
    }

    @Test func denyAlwaysBeatsPermit() {
        var g = SeededGenerator(seed: 20_250_301)
        let engine = ConsentEngine()
        var denied = 0
        for round in 0..<600 {
            let request = Self.randomRequest(&g)
            let recipient = Self.recipients.randomElement(using: &g)!
            var directives = (0..<Int.random(in: 0...4, using: &g)).map { Self.randomDirective($0, &g, type: .permit) }
            directives += (0..<Int.random(in: 1...3, using: &g)).map { Self.randomDirective(100 + $0, &g) }
            let decision = engine.decide(request, for: recipient, directives: directives)
            for (part, result) in zip(request.parts, decision.parts)
            where directives.contains(where: { Self.denies($0, recipient, part, request.purpose) }) {
                denied += 1
                #expect(!result.delivered, "round \(round): part \(part.id) delivered despite a deny")
                #expect(["R1-objection", "R2-explicit-deny"].contains(result.ruleID), "round \(round)")
            }
        }
        #expect(denied > 50)  // the generator does exercise denies
    }

    @Test func decisionNeverDependsOnDirectiveOrder() {
        var g = SeededGenerator(seed: 42)
        let engine = ConsentEngine()
        for _ in 0..<400 {
            let request = Self.randomRequest(&g)
            let recipient = Self.recipients.randomElement(using: &g)!
            let directives = (0..<Int.random(in: 0...8, using: &g)).map { Self.randomDirective($0, &g) }
            let reference = engine.decide(request, for: recipient, directives: directives)
            for _ in 0..<3 {
                #expect(engine.decide(request, for: recipient, directives: directives.shuffled(using: &g)) == reference)
            }
            #expect(engine.decide(request, for: recipient, directives: ConsentRegistry(directives: directives.shuffled(using: &g))) == reference)
        }
    }

    @Test func breakGlassIsFlaggedOnlyWhenItChangedSomething() {
        var g = SeededGenerator(seed: 7)
        let engine = ConsentEngine()
        for _ in 0..<200 {
            var request = Self.randomRequest(&g)
            let recipient = Self.recipients.randomElement(using: &g)!
            let directives = (0..<Int.random(in: 0...5, using: &g)).map { Self.randomDirective($0, &g) }
            let plain = engine.decide(request, for: recipient, directives: directives)
            request.breakGlass = F.glass("patient collapsed, emergency team needs history")
            let glass = engine.decide(request, for: recipient, directives: directives)
            if plain.outcome == .deliver || !recipient.isRegisteredProfessional {
                #expect(glass == plain)
            } else {
                #expect(glass.outcome == .deliver && glass.override && glass.ruleID == "R9-break-glass")
            }
        }
    }
}
