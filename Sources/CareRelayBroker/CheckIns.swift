import CareRelayModel
import CareRelayProtocol
import CareRelayStore

/// Acknowledging a carer's check-in: only someone it was delivered to may say they read it,
/// and the acknowledgement goes to the carer and to the check-in's other recipients, so the
/// carer learns who read it and colleagues do not pick up what someone already has.
extension BrokerCore {
    func acknowledgementRecipients(_ acknowledgement: CheckInAcknowledgement, actor: Directory.Person) throws(ProtocolError) -> [PersonID] {
        guard acknowledgement.by == actor.id else {
            throw ProtocolError(.notPermitted, "body by: an acknowledgement is made by its sender (\(actor.id)), not '\(acknowledgement.by)'")
        }
        let message: StoredMessage?
        let tracking: Tracking?
        do {
            message = try store.message(id: acknowledgement.checkIn)
            tracking = try store.tracking(id: acknowledgement.checkIn)
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read the check-in; nothing was accepted. Retry with the same key")
        }
        let delivered = tracking?.recipients.filter { $0.decision != "withheld" && $0.state != "withheld" }.map(\.person) ?? []
        let objected: Bool
        do {
            objected = try message?.patient.map { try standing(of: actor, toward: $0).objected } ?? false
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read care teams; nothing was accepted. Retry with the same key")
        }
        // One answer whether the check-in does not exist, was not the sender's to read, or is
        // about a patient who objected to them since (access-policy.md, rule 1), so asking
        // tells a stranger nothing.
        guard let message, message.kind == .carerCheckIn, delivered.contains(actor.id), !objected else {
            throw ProtocolError(.unknownMessage, "checkIn: no carer check-in \(acknowledgement.checkIn) was delivered to you")
        }
        guard message.patient == acknowledgement.patient else {
            throw ProtocolError(.schemaViolation, "patient: check-in \(acknowledgement.checkIn) is about another patient")
        }
        var recipients = [message.sender]
        for person in delivered where person != actor.id && !recipients.contains(person) { recipients.append(person) }
        return recipients
    }
}
