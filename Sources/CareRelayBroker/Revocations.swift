import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation

/// A patient who withdraws consent, or objects, takes back what they no longer allow: every
/// copy already delivered that the registry, changed, would now withhold (whole, or the parts
/// it would now remove) is revoked. The broker sends each such recipient a `broker.notice` of
/// kind `revoked` (CRP.md section 10.5) and writes an audit line per copy. The notices are
/// decided with the consent message and stored with it, in one transaction, so a crash never
/// stores the change without them, and the broker that accepts the change is the one that
/// sends them.
///
/// Copies still waiting are not revoked: the delivery-time check withholds them.
extension BrokerCore {
    /// What one copy loses under the changed registry.
    enum Revocation: Equatable {
        case whole
        case parts([String])

        /// Nil when the copy keeps everything it had.
        static func between(before: ConsentOutcome, after: ConsentOutcome, parts: [String]) -> Revocation? {
            let had: Set<String>
            switch before {
            case .withhold: return nil
            case .deliver: had = Set(parts)
            case .deliverRedacted(let removing): had = Set(parts).subtracting(removing)
            }
            let keeps: Set<String>
            switch after {
            case .withhold: keeps = []
            case .deliver: return nil
            case .deliverRedacted(let removing): keeps = Set(parts).subtracting(removing)
            }
            let lost = had.subtracting(keeps)
            if lost.isEmpty { return nil }
            if keeps.isEmpty { return .whole }
            return .parts(parts.filter(lost.contains))
        }
    }

    /// The revocation notices a consent change calls for, as messages stored beside it.
    func revocations(
        after change: ConsentBody, recordedIn consentID: String, by actor: Directory.Person, now: Date
    ) throws(ProtocolError) -> [NewMessage] {
        // A grant only widens what the patient allows.
        if case .grant = change { return [] }
        var changed = consent.registry
        guard changed.apply(change) else { return [] }
        let copies: [MailItem]
        do {
            copies = try store.deliveredCopies(about: change.patient)
        } catch {
            throw ProtocolError(
                .storeUnavailable, "the broker could not read what was delivered about the patient; nothing was accepted. Retry with the same key")
        }
        var notices: [NewMessage] = []
        for copy in copies {
            guard let recipient = directory.person(copy.recipient), let sender = directory.person(copy.sender) ?? systemSender(copy.sender),
                let envelope = Envelope.decode(copy.envelope)
            else { continue }
            let body = Self.partsDecidedOneByOne(copy.kind) ? try? MessageBody.decode(kind: copy.kind, json: copy.body) : nil
            let before: ConsentDecision?, after: ConsentDecision?
            do {
                before = try consentDecision(for: copy, envelope: envelope, body: body, to: recipient, now: now)
                after = try consentDecision(for: copy, envelope: envelope, body: body, to: recipient, now: now, registry: changed)
            } catch {
                throw ProtocolError(.storeUnavailable, "the broker could not read care teams; nothing was accepted. Retry with the same key")
            }
            guard let before, let after else { continue }
            let parts = consentSubject(kind: copy.kind, header: envelope, body: body, sender: sender).parts.map(\.id)
            guard let revocation = Revocation.between(before: before.outcome, after: after.outcome, parts: parts) else { continue }
            notices.append(
                revocationNotice(
                    revocation, of: copy, body: body, patient: change.patient, rule: after.ruleID, consentID: consentID, actor: actor, now: now))
        }
        return notices
    }

    private func revocationNotice(
        _ revocation: Revocation, of copy: MailItem, body: MessageBody?, patient: NHSNumber, rule: String, consentID: String,
        actor: Directory.Person, now: Date
    ) -> NewMessage {
        let what = Self.describe(copy, body: body, senderName: directory.person(copy.sender)?.name ?? copy.sender.rawValue)
        let why = "the patient's consent no longer covers you seeing it. Remove it from view and delete any copy you kept."
        let text: String
        var parts: [String]?
        switch revocation {
        case .whole:
            text = what.prefix(1).uppercased() + what.dropFirst() + " is taken back: " + why
        case .parts(let ids):
            parts = ids
            text = "\(Self.partNames(ids, body: body)) of \(what) \(ids.count == 1 ? "is" : "are") taken back: " + why
        }
        let notice = BrokerNotice(notice: .revoked, message: copy.id, by: actor.id, patient: patient, text: text, parts: parts, kind: copy.kind)
            .encode()
        // One per copy and consent change: a resend of the change is answered as a duplicate
        // before this runs, so the key only has to tell the notices of one change apart.
        let key = "revoke:\(consentID):\(copy.id):\(copy.recipient)"
        let envelope = Envelope(
            SendHeader(key: key, kind: .notice, to: [.person(copy.recipient)], patient: patient, priority: .urgent, correlation: copy.id),
            fromName: "CareRelay")
        let id = MessageID.make(at: now)
        return NewMessage(
            id: id, key: key, kind: .notice, sender: BrokerCore.brokerIdentity, envelope: envelope.encoded(), patient: patient,
            correlation: copy.id, body: notice, bodyHash: Array(SHA256.hash(data: notice)), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: copy.recipient, decision: .deliver, rule: rule)], referral: nil,
            audit: [
                AuditEntry(
                    at: now, actor: BrokerCore.brokerIdentity.rawValue, action: .revoke, patient: patient.digits, message: copy.id,
                    recipient: copy.recipient.rawValue, decision: parts == nil ? "revoked" : "revoked-parts", rule: rule,
                    detail:
                        "after consent change \(consentID) recorded by \(actor.id)"
                        + (parts.map { "; parts \($0.joined(separator: ", "))" } ?? "") + "; notice \(id)")
            ])
    }

    /// The copy as its reader knows it ("care plan 'Living well at home' version 3, shared with
    /// you on 18 March 2025").
    static func describe(_ copy: MailItem, body: MessageBody?, senderName: String) -> String {
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_GB")
        day.timeZone = TimeZone(identifier: "Europe/London")
        day.dateFormat = "d MMMM yyyy"
        let date = day.string(from: copy.acceptedAt)
        let shared = "shared with you on \(date)", sent = "sent to you on \(date)"
        switch body {
        case .carePlanShare(let plan): return "care plan '\(plan.title)' version \(plan.version), \(shared),"
        case .mdtAgenda(let agenda): return "the agenda of '\(agenda.title)', \(shared),"
        default:
            switch copy.kind {
            case .referral: return "referral \(copy.id), \(sent),"
            case .referralEvent: return "an update to a referral, \(sent),"
            case .carerCheckIn: return "a carer's check-in, \(sent),"
            case .checkInAcknowledgement: return "\(senderName)'s acknowledgement of a check-in, \(sent),"
            default: return "message \(copy.id), \(sent),"
            }
        }
    }

    /// "The section 'Medication'", "Items 2 and 3": the parts as their reader knows them.
    static func partNames(_ ids: [String], body: MessageBody?) -> String {
        func list(_ names: [String]) -> String {
            names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " and " + (names.last ?? "")
        }
        switch body {
        case .carePlanShare(let plan):
            let titles = ids.map { id in "'\(plan.sections.first { $0.id == id }?.title ?? id)'" }
            return (ids.count == 1 ? "The section " : "The sections ") + list(titles)
        case .mdtAgenda:
            // Agenda parts are `item-N`, counting from 1 (agendaPartID).
            let numbers = ids.map { $0.hasPrefix("item-") ? String($0.dropFirst(5)) : $0 }
            return (ids.count == 1 ? "Item " : "Items ") + list(numbers)
        default:
            return "Parts " + list(ids)
        }
    }
}
