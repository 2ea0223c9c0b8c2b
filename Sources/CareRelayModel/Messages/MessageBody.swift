import Foundation

/// A decoded, validated message body: one case per kind this module handles.
public enum MessageBody: Hashable, Sendable {
    case referral(ReferralBody)
    case referralEvent(ReferralEvent)
    case mdtAgenda(MDTAgenda)
    case carePlanShare(CarePlanShare)
    case carerCheckIn(CarerCheckIn)
    case checkInAcknowledgement(CheckInAcknowledgement)
    case carerInvite(CarerInvite)
    case consent(ConsentBody)
    case notice(BrokerNotice)

    /// Decodes `json` as the body of a message of `kind`, refusing anything the kind's schema
    /// refuses (unknown fields, missing fields, bad values) with the path and the reason.
    public static func decode(kind: MessageKind, json: [UInt8]) throws(MessageValidationError) -> MessageBody {
        switch kind {
        case .referral: return .referral(try ReferralBody.decode(json: json))
        case .referralEvent: return .referralEvent(try ReferralEvent.decode(json: json))
        case .mdtAgenda: return .mdtAgenda(try MDTAgenda.decode(json: json))
        case .carePlanShare: return .carePlanShare(try CarePlanShare.decode(json: json))
        case .carerCheckIn: return .carerCheckIn(try CarerCheckIn.decode(json: json))
        case .checkInAcknowledgement: return .checkInAcknowledgement(try CheckInAcknowledgement.decode(json: json))
        case .carerInvite: return .carerInvite(try CarerInvite.decode(json: json))
        case .consent:
            do {
                return .consent(try JSONDecoder().decode(ConsentBody.self, from: Data(json)))
            } catch {
                throw MessageValidationError.from(error)
            }
        case .notice: return .notice(try BrokerNotice.decode(json: json))
        }
    }

    public var kind: MessageKind {
        switch self {
        case .referral: .referral
        case .referralEvent: .referralEvent
        case .mdtAgenda: .mdtAgenda
        case .carePlanShare: .carePlanShare
        case .carerCheckIn: .carerCheckIn
        case .checkInAcknowledgement: .checkInAcknowledgement
        case .carerInvite: .carerInvite
        case .consent: .consent
        case .notice: .notice
        }
    }

    /// Deterministic JSON (sorted keys, compact).
    public func encode() -> [UInt8] {
        switch self {
        case .referral(let body): body.encode()
        case .referralEvent(let body): body.encode()
        case .mdtAgenda(let body): body.encode()
        case .carePlanShare(let body): body.encode()
        case .carerCheckIn(let body): body.encode()
        case .checkInAcknowledgement(let body): body.encode()
        case .carerInvite(let body): body.encode()
        case .consent(let body): BodyCoding.encode(body)
        case .notice(let body): body.encode()
        }
    }

    /// The NHS numbers the body names, for checking against the envelope's patient. A
    /// referral event names none (it points at a referral); an agenda may name several.
    public var patients: [NHSNumber] {
        switch self {
        case .referral(let body): [body.subject]
        case .referralEvent: []
        case .mdtAgenda(let body): body.patients
        case .carePlanShare(let body): [body.patient]
        case .carerCheckIn(let body): [body.patient]
        case .checkInAcknowledgement(let body): [body.patient]
        case .carerInvite(let body): body.patients
        case .consent(let body): [body.patient]
        case .notice(let body): [body.patient]
        }
    }

    /// The sensitivity labels the body itself carries (plan sections, agenda items), for
    /// checking against the envelope's labels.
    public var sensitivityLabels: Set<DataCategory> {
        switch self {
        case .carePlanShare(let body): body.labels
        case .mdtAgenda(let body): Set(body.items.compactMap(\.item).flatMap { $0.sensitivity ?? [] })
        case .referral, .referralEvent, .carerCheckIn, .checkInAcknowledgement, .carerInvite, .consent, .notice: []
        }
    }
}
