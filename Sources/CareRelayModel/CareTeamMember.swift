/// A member of a patient's care team: a whole team, or one person. On the wire and in the
/// store it is the text "team:ID" or "person:ID".
public enum CareTeamMember: Hashable, Sendable, Codable, CustomStringConvertible {
    case person(PersonID)
    case team(TeamID)

    /// "person:ID" or "team:ID".
    public init?(_ text: String) {
        if text.hasPrefix("person:") {
            self = .person(PersonID(String(text.dropFirst(7))))
        } else if text.hasPrefix("team:") {
            self = .team(TeamID(String(text.dropFirst(5))))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .person(let id): "person:\(id)"
        case .team(let id): "team:\(id)"
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let member = CareTeamMember(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not team:ID or person:ID")
        }
        self = member
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
