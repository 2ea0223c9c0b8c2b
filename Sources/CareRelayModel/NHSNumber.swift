/// A validated NHS number: ten digits whose last digit is the modulus 11 check digit.
///
/// Spaces and hyphens are accepted on input ("943 476 5919") because that is how people
/// write them; the stored form is the ten digits alone.
public struct NHSNumber: Hashable, Sendable, Codable, CustomStringConvertible {
    public let digits: String

    public enum ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
        case wrongLength(Int)
        case nonDigit(Character)
        case checkDigitMismatch(expected: Int?, found: Int)

        public var description: String {
            switch self {
            case .wrongLength(let n):
                return "an NHS number has 10 digits, this one has \(n)"
            case .nonDigit(let c):
                return "an NHS number contains only digits, found '\(c)'"
            case .checkDigitMismatch(nil, _):
                return "this number can never be a valid NHS number (its check digit would be 10)"
            case .checkDigitMismatch(let expected?, let found):
                return "the check digit is \(found) but should be \(expected): the number was probably mistyped"
            }
        }
    }

    public init(validating text: String) throws(ValidationError) {
        // Every message about a patient passes here two or three times, so the digits are
        // read as UTF-8 bytes; only input with something else in it is read as characters,
        // to name the offending character.
        var values: [Int] = []
        values.reserveCapacity(10)
        for byte in text.utf8 where byte != UInt8(ascii: " ") && byte != UInt8(ascii: "-") {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw .nonDigit(Self.firstNonDigit(in: text))
            }
            values.append(Int(byte - UInt8(ascii: "0")))
        }
        guard values.count == 10 else { throw .wrongLength(values.count) }
        let weighted = zip(values.prefix(9), (2...10).reversed()).reduce(0) { $0 + $1.0 * $1.1 }
        let remainder = 11 - weighted % 11
        let expected: Int? = remainder == 11 ? 0 : (remainder == 10 ? nil : remainder)
        guard let expected, expected == values[9] else {
            throw .checkDigitMismatch(expected: expected, found: values[9])
        }
        digits = text.utf8.count == 10 ? text : String(decoding: values.map { UInt8(ascii: "0") + UInt8($0) }, as: UTF8.self)
    }

    private static func firstNonDigit(in text: String) -> Character {
        text.first { $0 != " " && $0 != "-" && !($0.isASCII && $0.isWholeNumber) } ?? "?"
    }

    /// Starts the description of every decoding failure caused by a bad NHS number, so that
    /// a protocol layer can answer with its specific error code.
    public static let invalidMarker = "invalid NHS number"

    /// The conventional 3-3-4 grouping used on letters and screens.
    public var formatted: String {
        let d = Array(digits)
        return "\(String(d[0..<3])) \(String(d[3..<6])) \(String(d[6..<10]))"
    }

    public var description: String { formatted }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(validating: text)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: container.codingPath, debugDescription: "\(NHSNumber.invalidMarker): \(error.description)",
                    underlyingError: error))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(digits)
    }
}

extension DecodingError {
    /// Whether an NHS number failed validation: NHSNumber's decoder, and a careteam address's,
    /// name the validation error as the underlying one.
    public var isInvalidNHSNumber: Bool {
        guard case .dataCorrupted(let context) = self else { return false }
        if context.underlyingError is NHSNumber.ValidationError { return true }
        if case .invalidNHSNumber? = context.underlyingError as? Address.ParseError { return true }
        return false
    }
}
