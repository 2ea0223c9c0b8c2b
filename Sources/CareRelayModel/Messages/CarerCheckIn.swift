/// A carer's report on how the person they care for is, and how they themselves are
/// (`kind: carer.checkin`). Shaped after FHIR R4 `QuestionnaireResponse` (status, authored,
/// author) with `Observation`-like readings from home devices.
public struct CarerCheckIn: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .carerCheckIn }

    /// FHIR `QuestionnaireResponse.status` (subset).
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        case completed, amended
    }

    /// How soon the carer wants someone to respond. Out of hours the broker names the
    /// fallback (co-ordinator, then district nurses, then emergency services).
    public enum Urgency: String, Hashable, Sendable, Codable, CaseIterable {
        case routine, soon, urgent
    }

    /// How the person cared for is: 1 (very poorly) to 5 (very well), and in words.
    public struct PatientWellbeing: Hashable, Sendable, Codable {
        public var score: Int
        public var text: String

        public init(score: Int, text: String) {
            self.score = score
            self.text = text
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case score, text }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            score = try c.int(.score, in: 1...5)
            text = try c.text(.text)
        }
    }

    /// How the carer is: wellbeing 1 (struggling) to 5 (well), strain 0 (none) to 10 (cannot go on).
    public struct CarerWellbeing: Hashable, Sendable, Codable {
        public var wellbeing: Int
        public var strain: Int
        public var text: String?

        public init(wellbeing: Int, strain: Int, text: String? = nil) {
            self.wellbeing = wellbeing
            self.strain = strain
            self.text = text
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case wellbeing, strain, text }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            wellbeing = try c.int(.wellbeing, in: 1...5)
            strain = try c.int(.strain, in: 0...10)
            text = try c.textIfPresent(.text)
        }
    }

    /// A measurement taken at home (FHIR `Observation`: code, valueQuantity, effectiveDateTime).
    public struct Reading: Hashable, Sendable, Codable {
        public var code: Coding
        public var value: Double
        /// UCUM unit ("/min", "%", "Cel", "kg", "mmol/L").
        public var unit: String
        public var time: Timestamp

        public init(code: Coding, value: Double, unit: String, time: Timestamp) {
            self.code = code
            self.value = value
            self.unit = unit
            self.time = time
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case code, value, unit, time }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            code = try c.decode(Coding.self, forKey: .code)
            value = try c.finiteNumber(.value)
            unit = try c.text(.unit, max: 32)
            time = try c.decode(Timestamp.self, forKey: .time)
        }
    }

    public var status: Status
    /// The patient's NHS number. Must agree with the envelope.
    public var patient: NHSNumber
    /// The carer who reports (FHIR `QuestionnaireResponse.author`).
    public var carer: PersonID
    /// When the carer completed the check-in.
    public var authored: Timestamp
    public var patientWellbeing: PatientWellbeing
    public var carerWellbeing: CarerWellbeing
    /// Anything worrying, in the carer's words.
    public var concerns: String?
    public var urgency: Urgency
    public var readings: [Reading]?

    public init(
        status: Status = .completed, patient: NHSNumber, carer: PersonID, authored: Timestamp,
        patientWellbeing: PatientWellbeing, carerWellbeing: CarerWellbeing, concerns: String? = nil,
        urgency: Urgency, readings: [Reading]? = nil
    ) {
        self.status = status
        self.patient = patient
        self.carer = carer
        self.authored = authored
        self.patientWellbeing = patientWellbeing
        self.carerWellbeing = carerWellbeing
        self.concerns = concerns
        self.urgency = urgency
        self.readings = readings
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case status, patient, carer, authored, patientWellbeing, carerWellbeing, concerns, urgency, readings
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        status = try c.choice(.status)
        patient = try c.nhsNumber(.patient)
        carer = try c.identifier(.carer)
        authored = try c.decode(Timestamp.self, forKey: .authored)
        patientWellbeing = try c.decode(PatientWellbeing.self, forKey: .patientWellbeing)
        carerWellbeing = try c.decode(CarerWellbeing.self, forKey: .carerWellbeing)
        concerns = try c.textIfPresent(.concerns)
        urgency = try c.choice(.urgency)
        readings = try c.listIfPresent(.readings, count: 0...50)
    }
}
