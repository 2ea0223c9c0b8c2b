import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation

/// A referral sent with the patient's agreement (`patientAgreed: true`) records that agreement
/// as what it is: an explicit consent for the team (or person) the referral is addressed to,
/// for the kinds of information the referral is labelled with, for the policy's purpose and
/// period (consent-policy.md, `patient-agreement`). Agreeing to a social care referral is not
/// agreeing to share mental health records with social care. It is decided
/// on with the referral and stored with it, in one transaction, as a `consent` message whose
/// performer is the referrer, so every broker's registry holds it from then on.
extension BrokerCore {
    struct PatientAgreement {
        let directive: ConsentDirective
        /// The `consent` message that records it, stored beside the referral; nil when an
        /// agreement in force already covers it (a patient referred to the same team again), so
        /// repeated referrals do not pile up directives that say the same thing.
        let message: NewMessage?

        /// What the referral's consent decisions must count beyond the registry: the new
        /// directive, or nothing when the agreement in force is already in the registry (counting
        /// it twice would decide the same, only slower).
        var unrecorded: [ConsentDirective] { message == nil ? [] : [directive] }
    }

    /// The agreement a referral carries, or nil: not agreed, the policy records none, or the
    /// referrer may not record consent (a voluntary sector broker, a carer).
    func patientAgreement(
        to header: SendHeader, body: MessageBody, referral id: String, actor: Directory.Person, now: Date
    ) -> PatientAgreement? {
        let policy = consent.engine.policy.patientAgreement
        guard policy.enabled, case .referral(let referral) = body, referral.patientAgreed, Self.maySend(.consent, roles: actor.roles)
        else { return nil }
        var subjects: [ConsentSubject] = []
        for address in header.to {
            switch address {
            case .team(let team), .role(let team, _): subjects.append(.team(team))
            case .person(let person): subjects.append(.person(person))
            case .careTeam, .mdt: break
            }
        }
        guard !subjects.isEmpty else { return nil }
        let role = actor.roles.first { $0.isRegisteredProfessional }
        let labels = header.labels ?? []
        let directive = ConsentDirective(
            id: ConsentDirectiveID("agreed-" + id.lowercased()), patient: referral.subject, type: .permit, subjects: subjects,
            categories: labels.isEmpty ? [.general] : labels, purposes: [policy.purpose],
            period: ConsentPeriod(start: now, end: now.addingTimeInterval(Double(policy.days) * 86_400)),
            basis: .explicit, recordedBy: ConsentPerformer(person: actor.id, role: role), recordedAt: now)
        if let recorded = consent.registry.directives(for: referral.subject).first(where: { Self.covers($0, directive, at: now) }) {
            return PatientAgreement(directive: recorded, message: nil)
        }
        let body = MessageBody.consent(.grant(directive)).encode()
        // Derived from the referral's key, so a resend racing on another broker stores it once.
        let key = "patient-agreement:" + header.key
        // No correlation: a referral's events are the steps of its life, and this is not one.
        let envelope = Envelope(SendHeader(key: key, kind: .consent, to: [], patient: referral.subject), fromName: actor.name)
        let consentID = MessageID.make(at: now)
        let message = NewMessage(
            id: consentID, key: key, kind: .consent, sender: actor.id, envelope: envelope.encoded(),
            patient: referral.subject, correlation: nil, body: body, bodyHash: Array(SHA256.hash(data: body)), acceptedAt: now,
            deliveries: [], referral: nil,
            audit: [
                AuditEntry(
                    at: now, actor: actor.id.rawValue, action: .accept, patient: referral.subject.digits, message: consentID,
                    detail:
                        "consent: the patient agreed to referral \(id); explicit consent for \(subjects.map(\.description).joined(separator: ", ")), \(directive.categories.map(\.rawValue).joined(separator: ", ")), \(policy.purpose), \(policy.days) days (directive \(directive.id))"
                )
            ])
        return PatientAgreement(directive: directive, message: message)
    }

    /// Whether `recorded` already says all that `agreement` would: an explicit permit in force
    /// for at least its subjects, categories and purposes.
    static func covers(_ recorded: ConsentDirective, _ agreement: ConsentDirective, at now: Date) -> Bool {
        recorded.type == .permit && !recorded.isObjection && recorded.basis == .explicit && recorded.isInForce(at: now)
            && Set(agreement.subjects).isSubset(of: recorded.subjects) && agreement.categories.allSatisfy(recorded.covers)
            && agreement.purposes.allSatisfy(recorded.covers)
    }

    /// A referral nobody it is addressed to may receive is refused before anything is stored:
    /// accepted, it would sit unread until it escalated. `recipients` are the addressed
    /// people's decisions (topic subscribers are not addressed).
    static func requireSomeoneToReceive(
        _ decisions: [PlannedDelivery], header: SendHeader, agreement: PatientAgreement?, body: MessageBody
    ) throws(ProtocolError) {
        let addressed = decisions.filter { $0.topic == nil }
        guard !addressed.isEmpty, addressed.allSatisfy({ $0.decision == .withheld }) else { return }
        let to = header.to.map(\.description).joined(separator: ", ")
        let why = addressed.first?.reason ?? "withheld under the patient's consent"
        var what: String
        if case .referral(let referral) = body, !referral.patientAgreed {
            what =
                "if the patient agrees to this referral, send it again with patientAgreed: true (their agreement is recorded as their consent for \(to)), or record their consent first"
        } else if agreement == nil {
            what =
                "the patient's agreement is recorded as consent only when a registered professional refers; ask one to record the patient's consent for \(to)"
        } else {
            what = "the patient's own directives stop it (an objection outweighs an agreement); check them with the consent query"
        }
        what += ". Nothing was stored"
        throw ProtocolError(.noPermittedRecipient, "nobody at \(to) may receive this referral under the patient's consent (\(why)): \(what)")
    }
}
