/// The body of a `broker.notice`: something the broker itself tells a person. Clients never
/// send this kind. Schema: Protocols/messages/broker.notice.schema.json.
public struct BrokerNotice: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .notice }

    public enum Notice: String, Hashable, Sendable, Codable, CaseIterable {
        /// Someone broke glass to reach a patient's information; the co-ordinator is told.
        case emergencyOverride = "emergency-override"
        /// A copy the recipient already received is taken back: the patient's consent no
        /// longer covers it (all of it, or the `parts` listed).
        case revoked
    }

    public var notice: Notice
    /// The broker message id the notice is about.
    public var message: String
    /// Who acted: the person who broke glass, or who recorded the consent change.
    public var by: PersonID
    public var patient: NHSNumber
    public var text: String
    /// For `revoked`: the parts taken back (care plan section ids, `item-N` agenda items);
    /// absent when the whole copy is.
    public var parts: [String]?
    /// For `revoked`: the kind of the message taken back, so a client knows where it shows it.
    public var kind: MessageKind?

    public init(
        notice: Notice, message: String, by: PersonID, patient: NHSNumber, text: String, parts: [String]? = nil, kind: MessageKind? = nil
    ) {
        self.notice = notice
        self.message = message
        self.by = by
        self.patient = patient
        self.text = text
        self.parts = parts
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case notice, message, by, patient, text, parts, kind }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        notice = try c.choice(.notice, as: Notice.self)
        message = try c.messageID(.message)
        by = try c.identifier(.by)
        patient = try c.decode(NHSNumber.self, forKey: .patient)
        text = try c.text(.text, max: 1000)
        parts = try c.listIfPresent(.parts, count: 1...50)
        kind = try c.choiceIfPresent(.kind)
        if let parts {
            for (index, part) in parts.enumerated() {
                if let problem = Check.identifier(part) {
                    throw MessageValidationError(c.codingPath + [CodingKeys.parts, AnyCodingKey.index(index)], problem)
                }
            }
        }
    }
}
