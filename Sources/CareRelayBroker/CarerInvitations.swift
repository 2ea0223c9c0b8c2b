import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

/// A care co-ordinator's invitation is all it takes to bring a carer in: no IT edit, no key.
/// A carer not yet in the directory (named with `carerName`) is added, without a key; the
/// gateway the invitation is addressed to acts for them from then on; and they are listed as
/// each patient's carer. Each of these is saved, audited, before the invitation is routed.
extension BrokerCore {
    func admit(_ invite: CarerInvite, header: SendHeader, by issuer: Directory.Person) throws(ProtocolError) {
        guard header.to.count == 1, case .person(let gatewayID) = header.to[0], let gateway = directory.person(gatewayID),
            gateway.roles.contains(.gateway)
        else {
            throw ProtocolError(.unknownAddress, "to: a carer.invite goes to the carer bridge's gateway identity alone (person:<gateway id>)")
        }
        // The issuer's standing comes first: nothing is added for someone outside the care team.
        guard invite.issuedBy == issuer.id else {
            throw ProtocolError(.notPermitted, "issuedBy: an invitation is issued by its sender (\(issuer.id)), not '\(invite.issuedBy)'")
        }
        for patient in invite.patients where !(try readStanding(of: issuer, toward: patient)).inCareTeam {
            throw ProtocolError(.notPermitted, "only members of the patient's care team may invite their carer")
        }
        let carer = try enterCarer(invite, gateway: gateway, by: issuer)
        for patient in invite.patients {
            let standing = try readStanding(of: carer, toward: patient)
            guard !standing.isRegisteredCarer else { continue }
            guard !standing.objected else {
                throw ProtocolError(.notPermitted, "carer: the patient has objected to \(carer.id); they cannot be listed as the patient's carer")
            }
            do {
                try store.link(patient: patient, member: .person(carer.id), by: issuer.id, at: configuration.clock())
            } catch {
                throw ProtocolError(
                    .storeUnavailable, "the broker could not list the carer in the care team; nothing was sent. Retry with the same key")
            }
            careTeamChanged(patient, member: .person(carer.id))
        }
        // The access policy has the last word, on the care team as it now stands.
        for patient in invite.patients {
            try AccessPolicy.enforce(
                consent.access.mayInvite(
                    issuer: issuer, issuedBy: invite.issuedBy, issuerStanding: try readStanding(of: issuer, toward: patient),
                    carerStanding: try readStanding(of: carer, toward: patient), carer: carer.id))
        }
    }

    /// The carer's directory entry, added or given to the gateway as the invitation needs.
    private func enterCarer(_ invite: CarerInvite, gateway: Directory.Person, by issuer: Directory.Person) throws(ProtocolError) -> Directory.Person {
        var after = directory.directory
        var what: String
        if let existing = directory.person(invite.carer) {
            guard existing.roles.contains(.carer) else {
                throw ProtocolError(.unknownAddress, "body carer: \(invite.carer) is in the directory but not as a carer")
            }
            if gateway.actsFor?.contains(existing.id) == true { return existing }
            what = "\(gateway.id) now acts for carer \(existing.id)"
        } else {
            guard let name = invite.carerName else {
                throw ProtocolError(
                    .unknownAddress, "body carer: \(invite.carer) is not in the directory; give carerName to add them as a new carer")
            }
            after.people.append(Directory.Person(id: invite.carer, name: name, roles: [.carer], teams: [], key: nil))
            what = "carer \(invite.carer) (\(name)) added by invitation; \(gateway.id) acts for them"
        }
        guard let index = after.people.firstIndex(where: { $0.id == gateway.id }) else {
            throw ProtocolError(.unknownAddress, "to: \(gateway.id) is not in the directory")
        }
        after.people[index].actsFor = (after.people[index].actsFor ?? []) + [invite.carer]
        let now = configuration.clock()
        switch save(after, audit: [AuditEntry(at: now, actor: issuer.id.rawValue, action: .directory, detail: what)], now: now) {
        case .saved:
            guard let carer = directory.person(invite.carer) else { throw ProtocolError(.storeUnavailable, "the carer was not saved; retry") }
            return carer
        case .changedMeanwhile:
            // Another broker changed the directory first; this one has it now: try once more.
            return try enterCarerOnce(invite, gateway: gateway, by: issuer)
        case .failed(let error):
            throw error
        }
    }

    private func enterCarerOnce(_ invite: CarerInvite, gateway: Directory.Person, by issuer: Directory.Person) throws(ProtocolError)
        -> Directory.Person
    {
        guard let gateway = directory.person(gateway.id) else { throw ProtocolError(.unknownAddress, "to: \(gateway.id) is not in the directory") }
        return try enterCarer(invite, gateway: gateway, by: issuer)
    }
}
