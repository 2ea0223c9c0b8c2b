/// Where a message goes. The text form is `scheme:value`, as written on the wire and on the
/// command line:
///
/// - `person:gp.khan`: one person, wherever they are connected (or their mailbox).
/// - `team:west.social-care`: a team's intake queue, the single point of access. Every member
///   sees the item; one of them takes it, and the sender learns who.
/// - `role:west.ict/social-worker`: the holders of one role within a team.
/// - `careteam:9434765919`: everyone with a legitimate relationship to the patient.
/// - `mdt:west.mdt`: the members of a multidisciplinary team meeting.
public enum Address: Hashable, Sendable, Codable, CustomStringConvertible {
    case person(PersonID)
    case team(TeamID)
    case role(TeamID, Role)
    case careTeam(NHSNumber)
    case mdt(TeamID)

    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case missingScheme(String)
        case unknownScheme(String)
        case malformedIdentifier(String)
        case unknownRole(String)
        case invalidNHSNumber(String, NHSNumber.ValidationError)

        public var description: String {
            switch self {
            case .missingScheme(let text):
                return "'\(text)' is not an address: write scheme:value, e.g. person:gp.khan or team:west.social-care"
            case .unknownScheme(let scheme):
                return "unknown address scheme '\(scheme)': use person, team, role, careteam or mdt"
            case .malformedIdentifier(let text):
                return "'\(text)' is not a directory identifier (1-64 of a-z, 0-9, '.', '-', '_')"
            case .unknownRole(let text):
                return "unknown role '\(text)': roles are \(Role.allCases.map(\.rawValue).joined(separator: ", "))"
            case .invalidNHSNumber(let text, let error):
                return "careteam address '\(text)': \(NHSNumber.invalidMarker): \(error.description)"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        guard let colon = text.firstIndex(of: ":") else { throw .missingScheme(text) }
        let scheme = String(text[..<colon])
        let value = String(text[text.index(after: colon)...])
        func identifier(_ raw: String) throws(ParseError) -> String {
            guard TeamID.isWellFormed(raw) else { throw .malformedIdentifier(raw) }
            return raw
        }
        switch scheme {
        case "person": self = .person(PersonID(try identifier(value)))
        case "team": self = .team(TeamID(try identifier(value)))
        case "mdt": self = .mdt(TeamID(try identifier(value)))
        case "role":
            guard let slash = value.firstIndex(of: "/") else { throw .malformedIdentifier(value) }
            let team = TeamID(try identifier(String(value[..<slash])))
            let roleText = String(value[value.index(after: slash)...])
            guard let role = Role(rawValue: roleText) else { throw .unknownRole(roleText) }
            self = .role(team, role)
        case "careteam":
            do {
                self = .careTeam(try NHSNumber(validating: value))
            } catch {
                throw .invalidNHSNumber(value, error)
            }
        default: throw .unknownScheme(scheme)
        }
    }

    public var description: String {
        switch self {
        case .person(let id): "person:\(id)"
        case .team(let id): "team:\(id)"
        case .role(let team, let role): "role:\(team)/\(role.rawValue)"
        case .careTeam(let patient): "careteam:\(patient.digits)"
        case .mdt(let id): "mdt:\(id)"
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: container.codingPath, debugDescription: error.description, underlyingError: error))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Address {
    /// The team this address reaches as a team (`team:` or `role:`): a referral so addressed is
    /// that team's to handle, and consent treats its members as addressed.
    public var addressedTeam: TeamID? {
        switch self {
        case .team(let id), .role(let id, _): id
        default: nil
        }
    }

    /// The person this address names directly (`person:`).
    public var addressedPerson: PersonID? {
        if case .person(let id) = self { id } else { nil }
    }
}

extension Sequence<Address> {
    /// Every team addressed as a team (see `Address.addressedTeam`).
    public var addressedTeams: Set<TeamID> { Set(compactMap(\.addressedTeam)) }
    /// Every person addressed by name.
    public var addressedPeople: Set<PersonID> { Set(compactMap(\.addressedPerson)) }
}
