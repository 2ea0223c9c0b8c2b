import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

/// Break glass on the read door: a registered professional who received a message may read
/// their own copy whole in an emergency, whatever consent withheld of it, by stating why
/// (`breakGlass` on the `message` query). The policy's break-glass rules decide as they do for
/// a SEND (CRP.md section 10.3): an allowed override is audited with the reason and the
/// patient's care co-ordinators are told; a refused one is `410`. When nothing was withheld
/// the read is an ordinary one and nothing is overridden.
extension BrokerCore {
    func readWithOverride(_ read: MessageRead, person: Directory.Person, reason: String) throws -> MessageView {
        // Only the recipients of a message have a copy to override for; to anyone else it
        // does not exist, as on every read door.
        guard let stored = read.stored, let tracking = read.tracking, tracking.recipients.contains(where: { $0.person == person.id }),
            let envelope = Envelope.decode(stored.envelope)
        else { throw unknown(read.id) }
        let item = stored.copy(for: person.id)
        let decoded = Self.partsDecidedOneByOne(stored.kind) ? try? MessageBody.decode(kind: stored.kind, json: stored.body) : nil
        let now = configuration.clock()
        let glass = BreakGlassRequest(requestedBy: person.id, requesterRoles: Set(person.roles), reason: reason)
        let verdict: ConsentDecision?
        do {
            verdict = try consentDecision(for: item, envelope: envelope, body: decoded, to: person, now: now, breakGlass: glass)
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read the care team to decide; ask again in a moment")
        }
        var body = stored.body
        var redacted: [String]?
        if let verdict {
            if verdict.ruleID == consent.engine.policy.breakGlass.refusedRuleID {
                throw ProtocolError(.notPermitted, "breakGlass: \(verdict.reason)")
            }
            switch verdict.outcome {
            case .withhold:
                // The policy lets this recipient override nothing (their role may not).
                throw ProtocolError(.notPermitted, "breakGlass: \(verdict.reason)")
            case .deliverRedacted(let removing):
                redacted = removing
                body = redact(decoded, removing: Set(removing)) ?? body
            case .deliver:
                break
            }
            if verdict.override { try recordOverriddenRead(stored, by: person, reason: reason, rule: verdict.ruleID, now: now) }
        }
        let header = Self.deliverHeader(item, envelope: envelope, redacted: redacted, override: verdict?.override == true ? true : nil, attempt: 0)
        return MessageView(header: header, body: String(decoding: body, as: UTF8.self), withheld: nil)
    }

    /// The audit line of an overridden read, and the notice to each care co-ordinator of the
    /// patient (as for an overridden SEND). Nothing is shown unless the audit line is written.
    private func recordOverriddenRead(_ stored: StoredMessage, by person: Directory.Person, reason: String, rule: String, now: Date) throws {
        let patient = stored.patient
        do {
            try store.appendAudit([
                .override(
                    at: now, by: person.id, patient: patient, message: stored.id, recipient: person.id, decision: "read", rule: rule, reason: reason)
            ])
        } catch {
            throw ProtocolError(
                .storeUnavailable, "the broker could not write the override to the audit trail, so it shows nothing; ask again in a moment")
        }
        guard let patient else { return }
        for coordinator in coordinators(of: patient) where coordinator != person.id {
            notifyOverride(coordinator: coordinator, patient: patient, messageID: stored.id, by: person, now: now, reading: true)
        }
    }
}
