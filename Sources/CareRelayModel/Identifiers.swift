/// A value that is a string on the wire: an identifier or an open vocabulary term (data
/// categories and consent purposes, which sites may extend). One Codable, comparable and
/// literal-friendly implementation serves them all.
public protocol StringValue: Hashable, Sendable, Codable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    var rawValue: String { get }
    init(_ rawValue: String)
}

extension StringValue {
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Identifiers used across CareRelay. Each is a distinct type so that a team id can never be
/// passed where a person id is expected. The text form is a lower-case slug chosen by the
/// directory administrator ("gp.khan", "sunderland-west.social-care").
public protocol DirectoryIdentifier: StringValue {}

extension DirectoryIdentifier {
    /// Whether the text is a usable identifier: 1-64 characters of a-z, 0-9, '.', '-', '_'.
    public static func isWellFormed(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x2D
                    || c == 0x5F
            }
    }
}

public struct PersonID: DirectoryIdentifier { public let rawValue: String; public init(_ r: String) { rawValue = r } }
public struct TeamID: DirectoryIdentifier { public let rawValue: String; public init(_ r: String) { rawValue = r } }
public struct OrganisationID: DirectoryIdentifier { public let rawValue: String; public init(_ r: String) { rawValue = r } }
public struct LocalityID: DirectoryIdentifier { public let rawValue: String; public init(_ r: String) { rawValue = r } }
public struct MeetingID: DirectoryIdentifier { public let rawValue: String; public init(_ r: String) { rawValue = r } }
