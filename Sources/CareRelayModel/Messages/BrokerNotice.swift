/// The body of a `broker.notice`: something the broker itself tells a person. Clients never
/// send this kind. Schema: Protocols/messages/broker.notice.schema.json.
public struct BrokerNotice: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .notice }

    public enum Notice: String, Hashable, Sendable, Codable, CaseIterable {
        /// Someone broke glass to reach a patient's information; the co-ordinator is told.
        case emergencyOverride = "emergency-override"
    }

    public var notice: Notice
    /// The broker message id the notice is about.
    public var message: String
    public var by: PersonID
    public var patient: NHSNumber
    public var text: String

    public init(notice: Notice, message: String, by: PersonID, patient: NHSNumber, text: String) {
        self.notice = notice
        self.message = message
        self.by = by
        self.patient = patient
        self.text = text
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case notice, message, by, patient, text }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        notice = try c.choice(.notice, as: Notice.self)
        message = try c.messageID(.message)
        by = try c.identifier(.by)
        patient = try c.decode(NHSNumber.self, forKey: .patient)
        text = try c.text(.text, max: 1000)
    }
}
