import Foundation

/// Who the patient is and how to reach them, for the service a referral asks: the parts of a
/// FHIR UK Core Patient that an intake needs to make first contact (name, date of birth,
/// address with postcode, telephone, language and interpreter, communication or access needs).
/// Optional in a referral, so a referral of the earlier shape (NHS number only) still reads.
public struct PatientDetails: Hashable, Sendable, Codable {
    /// FHIR `HumanName`: prefix, given names, family name.
    public struct Name: Hashable, Sendable, Codable {
        public var prefix: String?
        public var given: [String]
        public var family: String

        public init(prefix: String? = nil, given: [String], family: String) {
            self.prefix = prefix
            self.given = given
            self.family = family
        }

        /// As a person is addressed: "Mrs Margaret Ellis".
        public var text: String { ([prefix].compactMap { $0 } + given + [family]).joined(separator: " ") }
        /// As family and friends say it: "Margaret Ellis".
        public var plain: String { (given + [family]).joined(separator: " ") }

        enum CodingKeys: String, CodingKey, CaseIterable { case prefix, given, family }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            prefix = try c.textIfPresent(.prefix, max: Limits.namePart)
            given = try c.list(.given, of: String.self, count: 1...5)
            for name in given where Check.text(name, max: Limits.namePart) != nil {
                throw c.fail(.given, "each given name is 1 to \(Limits.namePart) characters")
            }
            family = try c.text(.family, max: Limits.namePart)
        }
    }

    /// FHIR `Address` as the UK writes one: lines, town or city, postcode.
    public struct Address: Hashable, Sendable, Codable {
        public var line: [String]
        public var city: String?
        public var postalCode: UKPostcode

        public init(line: [String], city: String? = nil, postalCode: UKPostcode) {
            self.line = line
            self.city = city
            self.postalCode = postalCode
        }

        /// One line: "12 Harbour View, Pallion, Sunderland SR4 6TJ".
        public var text: String { (line + [[city, postalCode.text].compactMap { $0 }.joined(separator: " ")]).joined(separator: ", ") }

        enum CodingKeys: String, CodingKey, CaseIterable { case line, city, postalCode }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            line = try c.list(.line, of: String.self, count: 1...4)
            for text in line where Check.text(text, max: Limits.short) != nil {
                throw c.fail(.line, "each address line is 1 to \(Limits.short) characters")
            }
            city = try c.textIfPresent(.city, max: Limits.short)
            postalCode = try c.decode(UKPostcode.self, forKey: .postalCode)
        }
    }

    /// FHIR `ContactPoint`: a telephone number (landline or mobile) or an email address.
    public struct ContactPoint: Hashable, Sendable, Codable {
        public enum System: String, Hashable, Sendable, Codable, CaseIterable { case phone, email }
        public enum Use: String, Hashable, Sendable, Codable, CaseIterable { case home, mobile, work }

        public var system: System
        public var value: String
        public var use: Use?

        public init(system: System, value: String, use: Use? = nil) {
            self.system = system
            self.value = value
            self.use = use
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case system, value, use }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            system = try c.choice(.system)
            value = try c.text(.value, max: Limits.short)
            use = try c.choiceIfPresent(.use)
            let problem =
                switch system {
                case .phone: Self.telephoneProblem(value)
                case .email: Self.emailProblem(value)
                }
            if let problem { throw c.fail(.value, problem) }
        }

        /// A UK number as people write it: 0 or +44, then 9 or 10 digits; spaces, hyphens and
        /// brackets allowed between them ("0191 496 0123", "+44 7700 900123", "(01632) 960001").
        public static func telephoneProblem(_ text: String) -> String? {
            let shape = "\"\(text.prefix(40))\" is not a UK telephone number like 0191 496 0123 or +44 7700 900123"
            guard text.allSatisfy({ $0.isASCII && ($0.isNumber || " -()+".contains($0)) }) else { return shape }
            var digits = text.filter(\.isNumber)
            if text.hasPrefix("+") {
                guard digits.hasPrefix("44"), text.dropFirst().first?.isNumber == true else { return shape }
                digits = "0" + digits.dropFirst(2)
            } else if text.contains("+") {
                return shape
            }
            guard digits.hasPrefix("0"), (10...11).contains(digits.count) else { return shape }
            return nil
        }

        public static func emailProblem(_ text: String) -> String? {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
                !text.contains(where: \.isWhitespace)
            else { return "\"\(text.prefix(40))\" is not an email address like name@example.org" }
            return nil
        }
    }

    public var name: Name
    /// FHIR `birthDate`: on or before the day the referral was written.
    public var birthDate: CalendarDate?
    public var address: Address?
    /// Telephone numbers and email addresses, the preferred first.
    public var telecom: [ContactPoint]?
    /// The language the patient prefers (a BCP 47 tag: `en`, `pl`, `pa`, `bfi` for British Sign
    /// Language), as UK Core's `communication.language`.
    public var language: String?
    /// Whether an interpreter is needed (UK Core's NHS Communication extension).
    public var interpreterRequired: Bool?
    /// Communication or access needs, in words: "hard of hearing, speak on her left", "key safe
    /// by the back door", "large print".
    public var communicationNeeds: String?

    public init(
        name: Name, birthDate: CalendarDate? = nil, address: Address? = nil, telecom: [ContactPoint]? = nil, language: String? = nil,
        interpreterRequired: Bool? = nil, communicationNeeds: String? = nil
    ) {
        self.name = name
        self.birthDate = birthDate
        self.address = address
        self.telecom = telecom
        self.language = language
        self.interpreterRequired = interpreterRequired
        self.communicationNeeds = communicationNeeds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, birthDate, address, telecom, language, interpreterRequired, communicationNeeds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        name = try c.decode(Name.self, forKey: .name)
        birthDate = try c.decodeIfPresent(CalendarDate.self, forKey: .birthDate)
        address = try c.decodeIfPresent(Address.self, forKey: .address)
        telecom = try c.listIfPresent(.telecom, count: 1...5)
        language = try c.textIfPresent(.language, max: 35)
        if let language, Self.languageProblem(language) != nil {
            throw c.fail(.language, Self.languageProblem(language) ?? "")
        }
        interpreterRequired = try c.boolIfPresent(.interpreterRequired)
        communicationNeeds = try c.textIfPresent(.communicationNeeds, max: Limits.communicationNeeds)
    }

    /// Schema pattern: `^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`.
    static func languageProblem(_ text: String) -> String? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let first = parts[0]
        let fine =
            (2...3).contains(first.count) && first.allSatisfy { $0.isASCII && $0.isLowercase }
            && parts.dropFirst().allSatisfy { (2...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
        return fine ? nil : "\"\(text.prefix(40))\" is not a language tag like en, pl or bfi (British Sign Language)"
    }

    /// Why the date of birth cannot be right for a referral written on `authoredOn`; nil when
    /// it can. A date of birth is in the past, and nobody is older than 130.
    public func birthDateProblem(authoredOn: Timestamp) -> String? {
        guard let birthDate else { return nil }
        let written = String(authoredOn.text.prefix(10))
        if birthDate.text > written { return "\(birthDate) is after the referral was written (\(written)): a date of birth is in the past" }
        if let born = Int(birthDate.text.prefix(4)), let year = Int(written.prefix(4)), year - born > 130 {
            return "\(birthDate) would make the patient older than 130"
        }
        return nil
    }
}

/// A UK postcode in its written form: outward code, one space, inward code (`SR4 6TJ`,
/// `EC1A 1BB`); capitals, as Royal Mail writes them.
public struct UKPostcode: CheckedText, CustomStringConvertible {
    public let text: String
    public init(unchecked text: String) { self.text = text }
    public var description: String { text }

    /// Schema pattern: `^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$`.
    public static func problem(_ text: String) -> String? {
        let shape = "\"\(text.prefix(40))\" is not a UK postcode like SR4 6TJ (capitals, one space before the last three characters)"
        let halves = text.split(separator: " ", omittingEmptySubsequences: false)
        guard halves.count == 2 else { return shape }
        let (outward, inward) = (Array(halves[0]), Array(halves[1]))
        let letters = outward.prefix { $0.isASCII && $0.isUppercase }
        let rest = outward.dropFirst(letters.count)
        guard (1...2).contains(letters.count), (1...2).contains(rest.count), rest.first?.isASCII == true, rest.first?.isNumber == true,
            rest.dropFirst().allSatisfy({ $0.isASCII && ($0.isNumber || $0.isUppercase) }),
            inward.count == 3, inward[0].isASCII, inward[0].isNumber, inward.dropFirst().allSatisfy({ $0.isASCII && $0.isUppercase })
        else { return shape }
        return nil
    }

    /// As people type it ("sr46tj", "sr4  6tj"): capitals, one space before the inward code.
    public static func normalising(_ typed: String) throws(MessageValidationError) -> UKPostcode {
        let squeezed = typed.uppercased().filter { !$0.isWhitespace }
        let written = squeezed.count > 3 ? "\(squeezed.dropLast(3)) \(squeezed.suffix(3))" : squeezed
        return try UKPostcode(validating: written)
    }
}
