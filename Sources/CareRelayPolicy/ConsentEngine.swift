import CareRelayModel
import Foundation

/// Where the engine gets a patient's current directives. `ConsentRegistry` is the broker's
/// in-memory index; an array of directives also works (it is filtered by patient).
public protocol ConsentDirectiveSource {
    func directives(for patient: NHSNumber) -> [ConsentDirective]
}

extension Array: ConsentDirectiveSource where Element == ConsentDirective {
    public func directives(for patient: NHSNumber) -> [ConsentDirective] { filter { $0.patient == patient } }
}

/// The consent policy engine: a pure, deterministic function of the policy, the request,
/// the recipient and the directives of the patients the message is about. No I/O, no clock
/// (`request.now` is an input), and the result does not depend on the order of directives.
///
/// For each part, the policy's rules are tried in order; a rule whose filters (localities,
/// message kinds, purposes, roles, relationships) do not match is skipped; the first rule
/// that decides (deliver or withhold) names the part's decision. The parts' decisions are
/// then combined: all delivered is `deliver`, none is `withhold`, some is
/// `deliverRedacted(removing:)`. A valid break-glass request then turns anything withheld into
/// delivered, flagged `override`.
public struct ConsentEngine: Sendable {
    public let policy: ConsentPolicy

    public init(policy: ConsentPolicy = .default) {
        self.policy = policy
    }

    /// Decides for every recipient (same order as given).
    public func decide(
        _ request: ConsentRequest, recipients: [ConsentRecipient], directives: some ConsentDirectiveSource
    ) -> [ConsentDecision] {
        var cache: [NHSNumber: [ConsentDirective]] = [:]
        return recipients.map {
            decide(
                request, for: $0,
                inForce: { patient in
                    if let hit = cache[patient] { return hit }
                    let list = Self.inForce(directives, patient, request.now)
                    cache[patient] = list
                    return list
                })
        }
    }

    /// Decides for one recipient.
    public func decide(
        _ request: ConsentRequest, for recipient: ConsentRecipient, directives: some ConsentDirectiveSource
    ) -> ConsentDecision {
        var cache: [NHSNumber: [ConsentDirective]] = [:]
        return decide(
            request, for: recipient,
            inForce: { patient in
                if let hit = cache[patient] { return hit }
                let list = Self.inForce(directives, patient, request.now)
                cache[patient] = list
                return list
            })
    }

    static func inForce(_ source: some ConsentDirectiveSource, _ patient: NHSNumber, _ now: Date) -> [ConsentDirective] {
        source.directives(for: patient).filter { $0.patient == patient && $0.isInForce(at: now) }
    }

    func decide(
        _ request: ConsentRequest, for recipient: ConsentRecipient, inForce: (NHSNumber) -> [ConsentDirective]
    ) -> ConsentDecision {
        // A break-glass request that the policy does not allow is refused outright: the
        // sender must resend without it or with a proper reason.
        if let glass = request.breakGlass, let refusal = breakGlassRefusal(glass) {
            let parts = request.parts.map {
                PartDecision(partID: $0.id, delivered: false, ruleID: policy.breakGlass.refusedRuleID, reason: refusal)
            }
            return ConsentDecision(
                recipient: recipient.person, outcome: .withhold, ruleID: policy.breakGlass.refusedRuleID,
                reason: refusal, parts: parts)
        }

        guard !request.parts.isEmpty else {
            let last = policy.rules[policy.rules.count - 1]
            return ConsentDecision(
                recipient: recipient.person, outcome: .withhold, ruleID: last.id,
                reason: "withheld: the message has no parts to decide on", parts: [])
        }

        var parts = request.parts.map { part in
            evaluate(part, request: request, recipient: recipient, directives: inForce(part.patient))
        }

        if let glass = request.breakGlass, parts.contains(where: { !$0.delivered }),
            policy.breakGlass.recipientRoles.matches(recipient.roles)
        {
            let reason =
                "delivered under emergency override (break glass): the patient's care co-ordinator must be told and the override is audited"
            for i in parts.indices where !parts[i].delivered {
                parts[i] = PartDecision(
                    partID: parts[i].partID, delivered: true, ruleID: policy.breakGlass.ruleID, reason: reason,
                    directiveIDs: parts[i].directiveIDs)
            }
            return ConsentDecision(
                recipient: recipient.person, outcome: .deliver, ruleID: policy.breakGlass.ruleID, reason: reason,
                parts: parts, override: true, notifyCareCoordinator: true, breakGlassReason: glass.reason)
        }

        let withheld = parts.filter { !$0.delivered }
        if withheld.isEmpty {
            return ConsentDecision(
                recipient: recipient.person, outcome: .deliver, ruleID: parts[0].ruleID, reason: parts[0].reason,
                parts: parts)
        }
        // An MDT agenda whose every item is withheld still goes, as placeholders: when and
        // where the meeting is, and who attends, is not about any patient, and an attendee
        // must learn of the meeting whatever is on it.
        if withheld.count == parts.count, !request.parts.allSatisfy(\.isMDTItem) {
            return ConsentDecision(
                recipient: recipient.person, outcome: .withhold, ruleID: withheld[0].ruleID,
                reason: withheld[0].reason, parts: parts)
        }
        return ConsentDecision(
            recipient: recipient.person, outcome: .deliverRedacted(removing: withheld.map(\.partID)),
            ruleID: withheld[0].ruleID,
            reason: "delivered with \(withheld.count) of \(parts.count) parts withheld (\(withheld[0].reason))",
            parts: parts)
    }

    /// Nil when the request may proceed; otherwise the reason (about the request, not the patient).
    func breakGlassRefusal(_ glass: BreakGlassRequest) -> String? {
        let settings = policy.breakGlass
        guard settings.enabled else { return "break glass refused: this site's policy does not allow emergency overrides" }
        guard settings.requesterRoles.matches(glass.requesterRoles) else {
            return "break glass refused: only registered health and social care professionals may override consent"
        }
        let reason = glass.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard reason.count >= settings.reasonMinLength else {
            return "break glass refused: a reason of at least \(settings.reasonMinLength) characters is required"
        }
        return nil
    }

    // MARK: - one part

    func evaluate(
        _ part: MessagePart, request: ConsentRequest, recipient: ConsentRecipient, directives: [ConsentDirective]
    ) -> PartDecision {
        let categories = part.effectiveCategories
        let relationships = recipient.relationships(to: part.patient)
        let mine = directives.filter { d in d.subjects.contains { matches($0, recipient, relationships) } }

        func decided(_ rule: ConsentRule, _ delivered: Bool, _ used: [ConsentDirective] = []) -> PartDecision {
            PartDecision(
                partID: part.id, delivered: delivered, ruleID: rule.id, reason: rule.reason,
                directiveIDs: Set(used.map(\.id)).sorted())
        }

        /// Explicit permits covering `category` for this recipient and purpose.
        func explicitPermits(_ rule: ConsentRule, _ category: DataCategory) -> [ConsentDirective] {
            mine.filter {
                $0.type == .permit && rule.explicitBases.contains($0.basis) && $0.covers(request.purpose)
                    && $0.covers(category)
            }
        }

        for rule in policy.rules where applies(rule, request, recipient, relationships) {
            switch rule.kind {
            case .patientSelf:
                if let own = recipient.nhsNumber, own == part.patient { return decided(rule, true) }
            case .objection, .explicitDeny:
                let wantObjection = rule.kind == .objection
                let hits = mine.filter { d in
                    d.type == .deny && d.isObjection == wantObjection && d.covers(request.purpose)
                        && categories.contains { d.covers($0) }
                }
                if !hits.isEmpty { return decided(rule, false, hits) }
            case .mdtPermission:
                guard part.isMDTItem, !request.mdtPermissions.contains(part.patient) else { continue }
                let permits = mine.filter { $0.type == .permit && $0.covers(rule.mdtPurpose) }
                if permits.isEmpty { return decided(rule, false) }
            case .sensitiveNeedsExplicit:
                let sensitive = categories.intersection(rule.categories ?? policy.sensitiveCategories)
                if sensitive.isEmpty { continue }
                if let team = request.originatingTeam, recipient.teams.contains(team) { continue }
                if sensitive.contains(where: { explicitPermits(rule, $0).isEmpty }) { return decided(rule, false) }
            case .explicitPermit:
                var used: [ConsentDirective] = []
                var all = true
                for category in categories {
                    let permits = explicitPermits(rule, category)
                    if permits.isEmpty { all = false; break }
                    used += permits
                }
                if all { return decided(rule, true, used) }
            case .impliedConsent:
                return decided(rule, true)
            case .withhold:
                return decided(rule, false)
            }
        }
        // The policy check guarantees an unfiltered final withhold; this is unreachable.
        let last = policy.rules[policy.rules.count - 1]
        return decided(last, false)
    }

    func applies(
        _ rule: ConsentRule, _ request: ConsentRequest, _ recipient: ConsentRecipient,
        _ relationships: Set<PatientRelationship>
    ) -> Bool {
        if let localities = rule.localities {
            guard let here = request.locality, localities.contains(here) else { return false }
        }
        if let kinds = rule.messageKinds, !kinds.contains(request.kind) { return false }
        if let purposes = rule.purposes, !purposes.contains(request.purpose) { return false }
        if let roles = rule.roles, !roles.matches(recipient.roles) { return false }
        if let wanted = rule.relationships {
            let ok =
                relationships.isEmpty
                ? wanted.contains(.none) : relationships.contains { wanted.contains(.relationship($0)) }
            if !ok { return false }
        }
        return true
    }

    func matches(_ subject: ConsentSubject, _ recipient: ConsentRecipient, _ relationships: Set<PatientRelationship>) -> Bool {
        switch subject {
        case .everyone: return true
        case .person(let p): return recipient.person == p
        case .role(let r): return recipient.roles.contains(r)
        case .team(let t): return recipient.teams.contains(t)
        case .organisation(let o): return recipient.organisation == o
        case .relationship(.carer): return relationships.contains(.registeredCarer)
        case .relationship(.voluntarySector): return recipient.roles.contains(.voluntarySectorBroker)
        case .relationship(.careTeam): return relationships.contains(.careTeam)
        }
    }
}
