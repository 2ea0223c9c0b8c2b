/// A professional's acknowledgement that they read a carer's check-in
/// (`kind: carer.checkin.ack`), with an optional note for the carer. The broker sends it to the
/// carer and to the check-in's other recipients, so the carer learns who read it and when, and
/// nobody else picks up what a colleague already has. Schema:
/// Protocols/messages/carer.checkin.ack.schema.json.
public struct CheckInAcknowledgement: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .checkInAcknowledgement }

    /// The broker message id of the check-in.
    public var checkIn: String
    /// The check-in's patient. Must agree with the envelope and with the check-in.
    public var patient: NHSNumber
    /// Who read it: always the sender.
    public var by: PersonID
    /// When they read it.
    public var at: Timestamp
    /// For the carer, in the reader's words ("Thank you, I will ring you this afternoon").
    public var note: String?

    public init(checkIn: String, patient: NHSNumber, by: PersonID, at: Timestamp, note: String? = nil) {
        self.checkIn = checkIn
        self.patient = patient
        self.by = by
        self.at = at
        self.note = note
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case checkIn, patient, by, at, note }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        checkIn = try c.messageID(.checkIn)
        patient = try c.nhsNumber(.patient)
        by = try c.identifier(.by)
        at = try c.decode(Timestamp.self, forKey: .at)
        note = try c.textIfPresent(.note, max: 1000)
    }
}
