import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

extension BrokerCore {
    /// What a message changes about a patient's record, and every field in it that names a
    /// person or a team, checked against the authenticated sender (or the carer a gateway acts
    /// for) by the access policy, before it is routed. Referral events are checked with the
    /// referral they change (`applyReferralEvent`).
    func authorise(_ body: MessageBody, header: SendHeader, actor: Directory.Person) throws(ProtocolError) {
        switch body {
        case .referral(let referral):
            if let team = referral.requester.team, !actor.teams.contains(team) {
                throw ProtocolError(.notPermitted, "body requester.team: you (\(actor.id)) are not a member of team '\(team)'")
            }
        case .consent(let record):
            try AccessPolicy.enforce(
                consent.access.mayRecordConsent(
                    asker: actor, standing: try readStanding(of: actor, toward: record.patient), performer: record.performer))
        case .carerCheckIn(let checkIn):
            try AccessPolicy.enforce(
                consent.access.mayCheckIn(
                    carer: actor, standing: try readStanding(of: actor, toward: checkIn.patient), author: checkIn.carer))
        case .carerInvite(let invite):
            try admit(invite, header: header, by: actor)
        case .carePlanShare(let plan):
            try checkVersion(of: plan, sender: actor.id)
        case .mdtAgenda(let agenda):
            // An action is someone's to do, and they learn of it from the agenda: its owner must
            // be someone the agenda reaches (a member of the MDT), or it would never be done.
            let members = Set(directory.members(of: agenda.team))
            for (index, entry) in agenda.items.enumerated() {
                for (number, action) in (entry.item?.outcome?.actions ?? []).enumerated() {
                    let field = "body items[\(index)].outcome.actions[\(number)].owner"
                    guard directory.person(action.owner) != nil else {
                        throw ProtocolError(.unknownAddress, "\(field): \(action.owner) is not a person in the directory")
                    }
                    guard members.contains(action.owner) else {
                        throw ProtocolError(
                            .unknownAddress,
                            "\(field): \(action.owner) is not a member of \(agenda.team), so the agenda would never tell them; give the action to a member, who can pass it on"
                        )
                    }
                }
            }
        default:
            break
        }
    }

    /// A plan's versions only go forward: a version older than one already shared, or a version
    /// already shared with other content (two people who edited the same version at once), is
    /// refused, so nobody's copy is silently replaced by a different plan under the same number.
    /// The same version again, unchanged, may go to more people.
    private func checkVersion(of plan: CarePlanShare, sender: PersonID) throws(ProtocolError) {
        let stored: [StoredMessage]
        do {
            stored = try store.messages(about: plan.patient, kind: .carePlanShare)
        } catch {
            throw ProtocolError(
                .storeUnavailable, "the broker could not read the plan's earlier versions; nothing was accepted. Retry with the same key")
        }
        // Versions already stored, and those routed earlier in this batch (not stored yet).
        let earlier =
            stored.compactMap { message -> (sender: PersonID, plan: CarePlanShare)? in
                guard case .carePlanShare(let version)? = try? MessageBody.decode(kind: .carePlanShare, json: message.body), version.plan == plan.plan
                else { return nil }
                return (message.sender, version)
            } + (plansInBatch[plan.plan] ?? [])
        let latest = earlier.map(\.plan.version).max() ?? 0
        if let same = earlier.first(where: { $0.plan.version == plan.version && $0.plan != plan }) {
            throw ProtocolError(
                .invalidTransition,
                "version: version \(plan.version) of \(plan.plan) was already shared by \(same.sender) with other content; fetch the latest and make yours version \(latest + 1)"
            )
        }
        if plan.version < latest {
            throw ProtocolError(
                .invalidTransition,
                "version: \(plan.plan) is already at version \(latest); a plan's versions only go forward (fetch the latest and edit that)")
        }
        plansInBatch[plan.plan, default: []].append((sender, plan))
    }

    /// `standing(of:toward:)` for the routing path, where a store failure refuses the send.
    func readStanding(of person: Directory.Person, toward patient: NHSNumber) throws(ProtocolError) -> AccessPolicy.Standing {
        do {
            return try standing(of: person, toward: patient)
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read the care team; nothing was accepted. Retry with the same key")
        }
    }

    /// ACCEPTED lists who received a message. For a message addressed to a patient's care team,
    /// that list is the care team itself: only those who may read it see it.
    func mayListRecipients(to addresses: [Address], sender: Directory.Person) -> Bool {
        for case .careTeam(let patient) in addresses {
            guard let standing = try? standing(of: sender, toward: patient),
                consent.access.mayRead(.careTeam, asker: sender, standing: standing) == .allow
            else { return false }
        }
        return true
    }
}

extension ConsentBody {
    /// Who recorded the directive or the withdrawal.
    var performer: PersonID {
        switch self {
        case .grant(let directive), .object(let directive): directive.recordedBy.person
        case .withdraw(let withdrawal): withdrawal.recordedBy.person
        }
    }
}
