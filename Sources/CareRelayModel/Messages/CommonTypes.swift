import Foundation

/// Text that must have a shape (a date, a date and time): checked when decoded or built from
/// text, kept exactly as written so a body re-encodes byte for byte.
public protocol CheckedText: Hashable, Sendable, Codable {
    var text: String { get }
    /// Builds the value without checking: for text already checked or made by code.
    init(unchecked text: String)
    /// Why the text does not have the shape, in plain English; nil when it does.
    static func problem(_ text: String) -> String?
}

extension CheckedText {
    public init(validating text: String) throws(MessageValidationError) {
        if let problem = Self.problem(text) { throw MessageValidationError(path: "(value)", reason: problem) }
        self.init(unchecked: text)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if let problem = Self.problem(text) { throw decoder.fail(problem) }
        self.init(unchecked: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

/// An instant written in ISO 8601 / RFC 3339 form with seconds and an offset:
/// `2025-03-12T09:30:00Z`, `2025-03-12T21:47:10.250+00:00`.
///
/// The text is kept exactly as received so that a body re-encodes byte for byte. Beyond the
/// schema's pattern, the day must exist in its month (no 30 February).
public struct Timestamp: CheckedText, Comparable, CustomStringConvertible {
    public let text: String

    public init(unchecked text: String) { self.text = text }

    /// A timestamp for a moment, written in UTC with whole seconds.
    public init(_ date: Date) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        text = formatter.string(from: date)
    }

    /// The moment this names.
    public var date: Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions =
            text.contains(".")
            ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.date(from: text)
    }

    public var description: String { text }

    /// Compares as moments when both parse, otherwise as text.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        if let l = lhs.date, let r = rhs.date { return l < r }
        return lhs.text < rhs.text
    }

    /// Schema pattern: `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`
    public static func problem(_ text: String) -> String? {
        let shape = "\"\(text.prefix(40))\" is not a date and time like 2025-03-12T09:30:00Z (ISO 8601 with seconds and a Z or +hh:mm offset)"
        let b = Array(text.utf8)
        guard b.count >= 20, let dateCheck = CalendarDate.parse(b[0..<10]) else { return shape }
        if case .failure(let reason) = dateCheck { return reason.isEmpty ? shape : reason }
        guard b[10] == UInt8(ascii: "T"),
            let hour = Digits.value(b[11..<13]), hour <= 23, b[13] == UInt8(ascii: ":"),
            let minute = Digits.value(b[14..<16]), minute <= 59, b[16] == UInt8(ascii: ":"),
            let second = Digits.value(b[17..<19]), second <= 59
        else { return shape }
        var i = 19
        if b[i] == UInt8(ascii: ".") {
            var n = 0
            i += 1
            while i < b.count, Digits.isDigit(b[i]) { n += 1; i += 1 }
            guard (1...9).contains(n) else { return shape }
        }
        guard i < b.count else { return shape }
        if b[i] == UInt8(ascii: "Z") { return i + 1 == b.count ? nil : shape }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), b.count == i + 6,
            let oh = Digits.value(b[(i + 1)..<(i + 3)]), oh <= 23, b[i + 3] == UInt8(ascii: ":"),
            let om = Digits.value(b[(i + 4)..<(i + 6)]), om <= 59
        else { return shape }
        return nil
    }
}

/// A calendar date, `YYYY-MM-DD` (FHIR `date` at day precision). The day must exist.
public struct CalendarDate: CheckedText, Comparable, CustomStringConvertible {
    public let text: String

    public init(unchecked text: String) { self.text = text }

    public var description: String { text }
    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool { lhs.text < rhs.text }

    /// Schema pattern: `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`
    public static func problem(_ text: String) -> String? {
        let shape = "\"\(text.prefix(40))\" is not a date like 2025-03-12 (YYYY-MM-DD)"
        let b = Array(text.utf8)
        guard b.count == 10, let result = parse(b[0..<10]) else { return shape }
        if case .failure(let reason) = result { return reason.isEmpty ? shape : reason }
        return nil
    }

    enum Parsed { case success, failure(String) }

    /// nil: wrong shape; `.failure(reason)`: right shape, impossible date.
    static func parse(_ b: ArraySlice<UInt8>) -> Parsed? {
        let s = b.startIndex
        guard b.count == 10,
            let year = Digits.value(b[s..<(s + 4)]), b[s + 4] == UInt8(ascii: "-"),
            let month = Digits.value(b[(s + 5)..<(s + 7)]), b[s + 7] == UInt8(ascii: "-"),
            let day = Digits.value(b[(s + 8)..<(s + 10)])
        else { return nil }
        guard (1...12).contains(month), (1...31).contains(day) else { return .failure("") }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= lengths[month - 1] else {
            return .failure("\(String(decoding: b, as: UTF8.self)) does not exist: that month has \(lengths[month - 1]) days")
        }
        return .success
    }
}

enum Digits {
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func value(_ b: ArraySlice<UInt8>) -> Int? {
        var n = 0
        for c in b {
            guard isDigit(c) else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return b.isEmpty ? nil : n
    }
}

/// A code from a terminology (FHIR `Coding`): SNOMED CT, LOINC or a local code system.
public struct Coding: Hashable, Sendable, Codable {
    /// The code system, usually a URI such as `http://snomed.info/sct` or `http://loinc.org`.
    public var system: String
    public var code: String
    public var display: String?

    public init(system: String, code: String, display: String? = nil) {
        self.system = system
        self.code = code
        self.display = display
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case system, code, display }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        system = try c.text(.system, max: Limits.short)
        code = try c.text(.code, max: Limits.codeLength)
        display = try c.textIfPresent(.display, max: Limits.short)
    }
}

/// Who does something: a person, a team, a role, or a combination (at least one), with the
/// name people know them by (FHIR `Reference.display`) for those outside the directory.
public struct PerformerReference: Hashable, Sendable, Codable {
    public var person: PersonID?
    public var team: TeamID?
    public var role: Role?
    /// "Sunderland Home Care", "Li Ng, community pharmacist".
    public var display: String?

    public init(person: PersonID? = nil, team: TeamID? = nil, role: Role? = nil, display: String? = nil) {
        self.person = person
        self.team = team
        self.role = role
        self.display = display
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case person, team, role, display }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        person = try c.identifierIfPresent(.person)
        team = try c.identifierIfPresent(.team)
        role = try c.choiceIfPresent(.role)
        display = try c.textIfPresent(.display, max: Limits.short)
        if person == nil && team == nil && role == nil {
            throw decoder.fail("name at least one of person, team or role")
        }
    }
}
