import Foundation

/// Why a message body was refused: where in the document (`items[2].patient`) and why, in
/// words a clinician or an integrator can act on.
public struct MessageValidationError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// What kind of mistake it is, so that a receiver can answer it without reading `reason`.
    public enum Kind: Hashable, Sendable {
        /// The body does not have the shape or values its schema allows.
        case schemaViolation
        /// An NHS number is not ten digits or fails its check digit.
        case invalidNHSNumber
    }

    /// A JSON path in dotted form with list indices in brackets, e.g. `sections[1].labels[0]`;
    /// `(body)` for the document as a whole.
    public let path: String
    /// A plain-English explanation.
    public let reason: String
    public let kind: Kind

    public init(path: String, reason: String, kind: Kind = .schemaViolation) {
        self.path = path
        self.reason = reason
        self.kind = kind
    }

    init(_ codingPath: [any CodingKey], _ reason: String, kind: Kind = .schemaViolation) {
        self.init(path: Self.render(codingPath), reason: reason, kind: kind)
    }

    public var description: String { "\(path): \(reason)" }

    static func render(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out.isEmpty ? "(body)" : out
    }

    /// Turns whatever a `JSONDecoder` threw into a `MessageValidationError`.
    static func from(_ error: any Error) -> MessageValidationError {
        if let error = error as? MessageValidationError { return error }
        guard let error = error as? DecodingError else {
            return MessageValidationError(path: "(body)", reason: "the body could not be read: \(error)")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return MessageValidationError(context.codingPath + [key], "this required field is missing")
        case .valueNotFound(_, let context):
            return MessageValidationError(context.codingPath, "a value is required here, not null")
        case .typeMismatch(let type, let context):
            return MessageValidationError(context.codingPath, "expected \(jsonTypeName(type))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return MessageValidationError(path: "(body)", reason: "the body is not valid JSON")
            }
            return MessageValidationError(
                context.codingPath, context.debugDescription,
                kind: error.isInvalidNHSNumber ? .invalidNHSNumber : .schemaViolation)
        @unknown default:
            return MessageValidationError(path: "(body)", reason: "the body could not be read: \(error)")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "text in quotes"
        case is Int.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is [Any].Type: return "a list"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Dictionary") { return "an object" }
            if name.hasPrefix("Array") { return "a list" }
            return "a value of a different type"
        }
    }
}

/// A coding key for any field name, used to see which keys an object really has.
struct AnyCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(_ string: String) { stringValue = string; intValue = nil }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
    static func index(_ i: Int) -> AnyCodingKey { AnyCodingKey(intValue: i) ?? AnyCodingKey("\(i)") }
}

extension Decoder {
    /// A keyed container that refuses any field its `CodingKeys` does not name, as the
    /// schemas do with `additionalProperties: false`.
    public func strictContainer<K: CodingKey & CaseIterable>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
        let everything = try container(keyedBy: AnyCodingKey.self)
        // The common case, every key known, costs one lookup per key; only a refusal sorts.
        if everything.allKeys.contains(where: { K(stringValue: $0.stringValue) == nil }) {
            let unknown = everything.allKeys.filter { K(stringValue: $0.stringValue) == nil }
                .sorted { $0.stringValue < $1.stringValue }
            let allowed = K.allCases.map(\.stringValue).sorted()
            if let key = unknown.first {
                throw MessageValidationError(
                    codingPath + [key],
                    "unknown field \"\(key.stringValue)\"; allowed here: \(allowed.joined(separator: ", "))")
            }
        }
        return try container(keyedBy: K.self)
    }

    func fail(_ reason: String) -> MessageValidationError { MessageValidationError(codingPath, reason) }
}

/// Bounds shared by every schema.
enum Limits {
    /// Free text: reasons, notes, section text.
    static let text = 4000
    /// Short text: titles, locations, names, activity descriptions.
    static let short = 200
    static let codeLength = 64
    static let messageIDLength = 128
    /// One part of a person's name (a prefix, a given name, a family name).
    static let namePart = 100
    /// A patient's communication or access needs.
    static let communicationNeeds = 1000
}

/// Checks shared by decoders and by the schemas (each comment gives the schema's rule).
enum Check {
    /// Unicode code points, as JSON Schema counts `maxLength`.
    static func length(_ text: String) -> Int { text.unicodeScalars.count }

    static func text(_ text: String, max: Int) -> String? {
        let n = length(text)
        if n == 0 { return "must not be empty" }
        if n > max { return "is \(n) characters long; at most \(max) are allowed" }
        return nil
    }

    /// `^[a-z0-9._-]{1,64}$`: person, team, organisation, locality, meeting and plan ids.
    static func identifier(_ text: String) -> String? {
        PersonID.isWellFormed(text)
            ? nil : "\"\(text.prefix(80))\" is not an identifier: use 1-64 characters of a-z, 0-9, '.', '-', '_'"
    }

    /// `^[a-z0-9-]{1,64}$`: a data category (sensitivity label).
    static func category(_ text: String) -> String? {
        let ok =
            !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        return ok ? nil : "\"\(text.prefix(80))\" is not a data category: use 1-64 characters of a-z, 0-9, '-'"
    }

    /// `^[A-Za-z0-9._:-]{1,128}$`: a broker message id.
    static func messageID(_ text: String) -> String? {
        let ok =
            !text.isEmpty && text.utf8.count <= Limits.messageIDLength
            && text.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39)
                    || $0 == 0x2E || $0 == 0x5F || $0 == 0x3A || $0 == 0x2D
            }
        return ok ? nil : "\"\(text.prefix(80))\" is not a message id: use 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'"
    }
}

extension KeyedDecodingContainer {
    private func path(_ key: Key) -> [any CodingKey] { codingPath + [key] }

    func fail(_ key: Key, _ reason: String, kind: MessageValidationError.Kind = .schemaViolation) -> MessageValidationError {
        MessageValidationError(path(key), reason, kind: kind)
    }

    func text(_ key: Key, max: Int = Limits.text) throws -> String {
        let value = try decode(String.self, forKey: key)
        if let problem = Check.text(value, max: max) { throw fail(key, problem) }
        return value
    }

    func textIfPresent(_ key: Key, max: Int = Limits.text) throws -> String? {
        guard contains(key) else { return nil }
        return try text(key, max: max)
    }

    func int(_ key: Key, in range: ClosedRange<Int>) throws -> Int {
        let value = try decode(Int.self, forKey: key)
        guard range.contains(value) else {
            let bound =
                range.upperBound == Int.max
                ? "at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
            throw fail(key, "\(value) is out of range: the value must be \(bound)")
        }
        return value
    }

    func intIfPresent(_ key: Key, in range: ClosedRange<Int>) throws -> Int? {
        guard contains(key) else { return nil }
        return try int(key, in: range)
    }

    func boolIfPresent(_ key: Key) throws -> Bool? {
        guard contains(key) else { return nil }
        return try decode(Bool.self, forKey: key)
    }

    func nhsNumber(_ key: Key) throws -> NHSNumber {
        let value = try decode(String.self, forKey: key)
        guard value.utf8.count == 10, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw fail(key, "an NHS number is written as exactly 10 digits, without spaces, found \"\(value.prefix(40))\"", kind: .invalidNHSNumber)
        }
        do {
            return try NHSNumber(validating: value)
        } catch {
            throw fail(key, error.description, kind: .invalidNHSNumber)
        }
    }

    func identifier<T: DirectoryIdentifier>(_ key: Key, as type: T.Type = T.self) throws -> T {
        let value = try decode(String.self, forKey: key)
        if let problem = Check.identifier(value) { throw fail(key, problem) }
        return T(value)
    }

    func identifierIfPresent<T: DirectoryIdentifier>(_ key: Key, as type: T.Type = T.self) throws -> T? {
        guard contains(key) else { return nil }
        return try identifier(key, as: type)
    }

    func messageID(_ key: Key) throws -> String {
        let value = try decode(String.self, forKey: key)
        if let problem = Check.messageID(value) { throw fail(key, problem) }
        return value
    }

    /// A string enum: the error lists the allowed values.
    func choice<T: RawRepresentable & CaseIterable>(_ key: Key, as type: T.Type = T.self) throws -> T
    where T.RawValue == String {
        let value = try decode(String.self, forKey: key)
        guard let result = T(rawValue: value) else {
            let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw fail(key, "\"\(value.prefix(80))\" is not one of the allowed values: \(allowed)")
        }
        return result
    }

    func choiceIfPresent<T: RawRepresentable & CaseIterable>(_ key: Key, as type: T.Type = T.self) throws -> T?
    where T.RawValue == String {
        guard contains(key) else { return nil }
        return try choice(key, as: type)
    }

    /// A list with a size bound; elements decode (and validate) themselves.
    func list<T: Decodable>(_ key: Key, of type: T.Type = T.self, count range: ClosedRange<Int>) throws -> [T] {
        let values = try decode([T].self, forKey: key)
        guard range.contains(values.count) else {
            throw fail(key, "has \(values.count) entries; \(range.lowerBound) to \(range.upperBound) are allowed")
        }
        return values
    }

    func listIfPresent<T: Decodable>(_ key: Key, of type: T.Type = T.self, count range: ClosedRange<Int>) throws -> [T]? {
        guard contains(key) else { return nil }
        return try list(key, of: type, count: range)
    }

    /// Sensitivity labels: distinct data categories, `^[a-z0-9-]{1,64}$` each.
    func labels(_ key: Key, count range: ClosedRange<Int>) throws -> [DataCategory] {
        let values = try list(key, of: String.self, count: range)
        var seen = Set<String>()
        for (index, value) in values.enumerated() {
            let here = path(key) + [AnyCodingKey.index(index)]
            if let problem = Check.category(value) { throw MessageValidationError(here, problem) }
            guard seen.insert(value).inserted else {
                throw MessageValidationError(here, "\"\(value)\" is listed twice")
            }
        }
        return values.map { DataCategory($0) }
    }

    func labelsIfPresent(_ key: Key, count range: ClosedRange<Int>) throws -> [DataCategory]? {
        guard contains(key) else { return nil }
        return try labels(key, count: range)
    }

    func finiteNumber(_ key: Key) throws -> Double {
        let value = try decode(Double.self, forKey: key)
        guard value.isFinite else { throw fail(key, "must be a finite number") }
        return value
    }
}

/// Shared encoding and decoding for body types.
public protocol MessageBodyContent: Codable, Sendable, Equatable {
    /// The message kind whose body this is.
    static var kind: MessageKind { get }
}

extension MessageBodyContent {
    /// Decodes and validates a body; everything the kind's JSON Schema refuses is refused,
    /// plus the checks a schema cannot express (NHS number check digits, real calendar dates).
    public static func decode(json: [UInt8]) throws(MessageValidationError) -> Self {
        do {
            return try JSONDecoder().decode(Self.self, from: Data(json))
        } catch {
            throw MessageValidationError.from(error)
        }
    }

    /// Deterministic JSON: keys sorted, no insignificant whitespace, '/' unescaped.
    public func encode() -> [UInt8] {
        BodyCoding.encode(self)
    }

    /// Encodes and decodes again, so a body built in code is held to the same rules as one
    /// received from the wire.
    public func validate() throws(MessageValidationError) {
        _ = try Self.decode(json: encode())
    }
}

enum BodyCoding {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Non-finite numbers cannot come from the wire; built in code they encode as strings,
        // which `validate()` then refuses, rather than making `encode()` fail.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        guard let data = try? encoder.encode(value) else { return Array("{}".utf8) }
        return Array(data)
    }
}
