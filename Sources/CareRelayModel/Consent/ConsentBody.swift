import Foundation

/// The body of a `consent` message: record a directive (`grant`), record an objection
/// (`object`), or withdraw an earlier directive by id (`withdraw`).
///
/// The JSON shape is `Protocols/messages/consent.schema.json`, which borrows FHIR R4 Consent
/// field names (status, scope, patient, dateTime, performer, policyRule, provision with type,
/// period, actor, purpose, class). Decoding rejects unknown fields (the schema's
/// `additionalProperties: false`) and also checks what a schema cannot: the NHS number's check
/// digit, and that a period ends after it starts.
public enum ConsentBody: Hashable, Sendable, Codable {
    case grant(ConsentDirective)
    case object(ConsentDirective)
    case withdraw(ConsentWithdrawal)

    public var patient: NHSNumber {
        switch self {
        case .grant(let d), .object(let d): return d.patient
        case .withdraw(let w): return w.patient
        }
    }

    public var action: String {
        switch self {
        case .grant: return "grant"
        case .object: return "object"
        case .withdraw: return "withdraw"
        }
    }

    static let directiveKeys: Set<String> = [
        "action", "id", "status", "scope", "patient", "dateTime", "performer", "policyRule", "provision",
    ]
    static let withdrawKeys: Set<String> = ["action", "patient", "dateTime", "performer", "withdraws", "reason"]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        let action = try c.decode(String.self, forKey: "action")
        switch action {
        case "grant", "object":
            try c.rejectUnknownKeys(allowed: Self.directiveKeys)
            let status = try c.decode(ConsentStatus.self, forKey: "status")
            let scope = try c.decode(String.self, forKey: "scope")
            guard scope == "patient-privacy" else {
                throw DecodingError.dataCorruptedError(
                    forKey: "scope", in: c, debugDescription: "scope must be \"patient-privacy\"")
            }
            let provision = try c.decode(WireProvision.self, forKey: "provision")
            let directive = ConsentDirective(
                id: try c.decode(ConsentDirectiveID.self, forKey: "id"),
                patient: try c.decode(NHSNumber.self, forKey: "patient"),
                status: status,
                type: provision.type,
                isObjection: action == "object",
                subjects: provision.actor,
                categories: provision.class ?? [],
                purposes: provision.purpose ?? [],
                period: ConsentPeriod(start: provision.period.start.date, end: provision.period.end?.date),
                basis: try c.decode(ConsentBasis.self, forKey: "policyRule"),
                recordedBy: try c.decode(ConsentPerformer.self, forKey: "performer"),
                recordedAt: try c.decode(WireDate.self, forKey: "dateTime").date)
            do {
                try directive.validate()
                if status != .active { throw ConsentValidationError.grantMustBeActive }
            } catch {
                // A rule of the whole directive: said as such, not as JSON that does not parse.
                throw MessageValidationError(c.codingPath, "invalid consent directive: \(error)")
            }
            self = action == "grant" ? .grant(directive) : .object(directive)
        case "withdraw":
            try c.rejectUnknownKeys(allowed: Self.withdrawKeys)
            self = .withdraw(
                ConsentWithdrawal(
                    directive: try c.decode(ConsentDirectiveID.self, forKey: "withdraws"),
                    patient: try c.decode(NHSNumber.self, forKey: "patient"),
                    recordedBy: try c.decode(ConsentPerformer.self, forKey: "performer"),
                    recordedAt: try c.decode(WireDate.self, forKey: "dateTime").date,
                    reason: try c.decodeIfPresent(String.self, forKey: "reason")))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: "action", in: c,
                debugDescription: "action must be one of grant, object, withdraw; found \"\(action)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(action, forKey: "action")
        switch self {
        case .grant(let d), .object(let d):
            try c.encode(d.id, forKey: "id")
            try c.encode(d.status, forKey: "status")
            try c.encode("patient-privacy", forKey: "scope")
            try c.encode(d.patient, forKey: "patient")
            try c.encode(WireDate(d.recordedAt), forKey: "dateTime")
            try c.encode(d.recordedBy, forKey: "performer")
            try c.encode(d.basis, forKey: "policyRule")
            try c.encode(WireProvision(d), forKey: "provision")
        case .withdraw(let w):
            try c.encode(w.patient, forKey: "patient")
            try c.encode(WireDate(w.recordedAt), forKey: "dateTime")
            try c.encode(w.recordedBy, forKey: "performer")
            try c.encode(w.directive, forKey: "withdraws")
            try c.encodeIfPresent(w.reason, forKey: "reason")
        }
    }
}

extension ConsentPerformer: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        try c.rejectUnknownKeys(allowed: ["person", "role"])
        person = try c.decode(PersonID.self, forKey: "person")
        role = try c.decodeIfPresent(Role.self, forKey: "role")
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(person, forKey: "person")
        try c.encodeIfPresent(role, forKey: "role")
    }
}

extension ConsentSubject: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        try c.rejectUnknownKeys(allowed: ["role", "reference"])
        let kind = try c.decode(String.self, forKey: "role")
        if kind == "everyone" {
            guard !c.contains("reference") else {
                throw DecodingError.dataCorruptedError(
                    forKey: "reference", in: c, debugDescription: "an 'everyone' actor has no reference")
            }
            self = .everyone
            return
        }
        let reference = try c.decode(String.self, forKey: "reference")
        func bad(_ what: String) -> DecodingError {
            DecodingError.dataCorruptedError(
                forKey: "reference", in: c, debugDescription: "\"\(reference)\" is not a known \(what)")
        }
        switch kind {
        case "person": self = .person(PersonID(reference))
        case "team": self = .team(TeamID(reference))
        case "organisation": self = .organisation(OrganisationID(reference))
        case "role":
            guard let role = Role(rawValue: reference) else { throw bad("role") }
            self = .role(role)
        case "relationship":
            guard let rel = ConsentRelationshipSubject(rawValue: reference) else { throw bad("relationship") }
            self = .relationship(rel)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: "role", in: c,
                debugDescription:
                    "actor.role must be everyone, person, role, team, organisation or relationship; found \"\(kind)\"")
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(kindName, forKey: "role")
        try c.encodeIfPresent(reference, forKey: "reference")
    }
}

// MARK: - wire helpers

struct WireKey: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
    init(stringLiteral value: String) { stringValue = value }
}

extension KeyedDecodingContainer where Key == WireKey {
    func rejectUnknownKeys(allowed: Set<String>) throws {
        for key in allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath + [key], debugDescription: "unknown field \"\(key.stringValue)\""))
        }
    }
}

/// An ISO 8601 date-time on the wire, whatever date strategy the coder uses.
struct WireDate: Codable {
    let date: Date
    init(_ date: Date) { self.date = date }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let date = ConsentDates.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "\"\(text)\" is not an ISO 8601 date-time with a time zone")
        }
        self.date = date
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(ConsentDates.format(date))
    }
}

/// ISO 8601 date-times as the consent messages carry them.
public enum ConsentDates {
    public static func parse(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return d }
        return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}

struct WirePeriod: Codable {
    var start: WireDate
    var end: WireDate?
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        try c.rejectUnknownKeys(allowed: ["start", "end"])
        start = try c.decode(WireDate.self, forKey: "start")
        end = try c.decodeIfPresent(WireDate.self, forKey: "end")
    }
    init(_ p: ConsentPeriod) {
        start = WireDate(p.start)
        end = p.end.map(WireDate.init)
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(start, forKey: "start")
        try c.encodeIfPresent(end, forKey: "end")
    }
}

struct WireProvision: Codable {
    var type: ConsentProvisionType
    var period: WirePeriod
    var actor: [ConsentSubject]
    var purpose: [ConsentPurpose]?
    var `class`: [DataCategory]?

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        try c.rejectUnknownKeys(allowed: ["type", "period", "actor", "purpose", "class"])
        type = try c.decode(ConsentProvisionType.self, forKey: "type")
        period = try c.decode(WirePeriod.self, forKey: "period")
        actor = try c.decode([ConsentSubject].self, forKey: "actor")
        purpose = try c.decodeIfPresent([ConsentPurpose].self, forKey: "purpose")
        `class` = try c.decodeIfPresent([DataCategory].self, forKey: "class")
    }
    init(_ d: ConsentDirective) {
        type = d.type
        period = WirePeriod(d.period)
        actor = d.subjects
        purpose = d.purposes.isEmpty ? nil : d.purposes
        `class` = d.categories.isEmpty ? nil : d.categories
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(type, forKey: "type")
        try c.encode(period, forKey: "period")
        try c.encode(actor, forKey: "actor")
        try c.encodeIfPresent(purpose, forKey: "purpose")
        try c.encodeIfPresent(`class`, forKey: "class")
    }
}
