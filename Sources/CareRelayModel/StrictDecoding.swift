/// Strict decoding: a document with a field the schema does not name is refused, so that a
/// typo ("prioirty") is reported instead of silently ignored. Protocol headers use the same
/// check as message bodies (`Decoder.strictContainer`, in Messages/MessageValidation.swift).
public protocol StrictlyDecodable: Decodable {
    associatedtype FieldKeys: CodingKey & CaseIterable
}

/// Decodes `Value` after checking that the object has no fields `Value` does not know.
public struct Strict<Value: StrictlyDecodable>: Decodable {
    public let value: Value
    public init(from decoder: any Decoder) throws {
        _ = try decoder.strictContainer(keyedBy: Value.FieldKeys.self)
        value = try Value(from: decoder)
    }
}
