/// Strict decoding: a document with a field the schema does not name is refused, so that a
/// typo ("prioirty") is reported instead of silently ignored.
public protocol StrictlyDecodable: Decodable {
    associatedtype FieldKeys: CodingKey & CaseIterable
}

extension Decoder {
    /// Throws `DecodingError.dataCorrupted` naming the first field not in `keys`.
    public func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        guard container.allKeys.contains(where: { Keys(stringValue: $0.stringValue) == nil }) else { return }
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { Keys(stringValue: $0) == nil }) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [AnyCodingKey(unknown)],
                debugDescription: "unknown field '\(unknown)'"))
        }
    }
}

/// Decodes `Value` after checking that the object has no fields `Value` does not know.
public struct Strict<Value: StrictlyDecodable>: Decodable {
    public let value: Value
    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(Value.FieldKeys.self)
        value = try Value(from: decoder)
    }
}
