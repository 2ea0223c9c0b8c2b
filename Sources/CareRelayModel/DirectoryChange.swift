import Foundation

/// What an administrator may administer: everyone and every team of an organisation, or of a
/// locality. Written "organisation:ID" or "locality:ID".
public enum AdministrationScope: Hashable, Sendable, Codable, CustomStringConvertible {
    case organisation(OrganisationID)
    case locality(LocalityID)

    public init?(_ text: String) {
        if text.hasPrefix("organisation:"), case let id = String(text.dropFirst("organisation:".count)), OrganisationID.isWellFormed(id) {
            self = .organisation(OrganisationID(id))
        } else if text.hasPrefix("locality:"), case let id = String(text.dropFirst("locality:".count)), LocalityID.isWellFormed(id) {
            self = .locality(LocalityID(id))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .organisation(let id): "organisation:\(id)"
        case .locality(let id): "locality:\(id)"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let scope = AdministrationScope(text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "write organisation:ID or locality:ID, not '\(text)'"))
        }
        self = scope
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One change to the directory, as an administrator's command (CRP.md section 13,
/// `directory.change`) or an import carries it. A list of them is applied in order and
/// validated as a whole: all of it takes effect, or none.
public enum DirectoryChange: Sendable, Equatable, Codable {
    /// A new person. Their key is normally left out: they enrol with a code.
    case addPerson(Directory.Person)
    /// Changes some of a person's details; fields left nil stay as they are. Moving teams
    /// is a change of `teams`.
    case changePerson(PersonChange)
    /// Removes a person: their key stops working at once, on every broker.
    case removePerson(PersonID)
    case addTeam(Directory.Team)
    /// Changes some of a team's details; fields left nil stay as they are.
    case changeTeam(TeamChange)
    /// Sets (enrolment, rotation) or clears (a lost laptop) a person's key.
    case setKey(PersonID, key: String?)

    public struct PersonChange: Sendable, Equatable, Codable {
        public var id: PersonID
        public var name: String?
        public var roles: [Role]?
        public var organisation: OrganisationID?
        public var teams: [TeamID]?
        public var email: String?
        /// A mobile number for notifications by SMS.
        public var phone: String?

        public init(
            id: PersonID, name: String? = nil, roles: [Role]? = nil, organisation: OrganisationID? = nil, teams: [TeamID]? = nil,
            email: String? = nil, phone: String? = nil
        ) {
            self.phone = phone
            self.id = id
            self.name = name
            self.roles = roles
            self.organisation = organisation
            self.teams = teams
            self.email = email
        }

        /// Whether it changes nothing.
        public var isEmpty: Bool { name == nil && roles == nil && organisation == nil && teams == nil && email == nil && phone == nil }
    }

    public struct TeamChange: Sendable, Equatable, Codable {
        public var id: TeamID
        public var name: String?
        public var locality: LocalityID?
        public var organisation: OrganisationID?
        public var coordinator: PersonID?
        public var hours: String?
        public var fallback: [String]?
        public var membersMayDecline: Bool?
        /// The team's own mailbox, told of new referrals and urgent check-ins.
        public var email: String?
        /// A webhook endpoint named in the site's notification settings.
        public var webhook: String?
        public var onCall: [PersonID]?
        public var onCallOutOfHours: [PersonID]?
        public var escalateAfter: String?

        public init(
            id: TeamID, name: String? = nil, locality: LocalityID? = nil, organisation: OrganisationID? = nil, coordinator: PersonID? = nil,
            hours: String? = nil, fallback: [String]? = nil, membersMayDecline: Bool? = nil, email: String? = nil, webhook: String? = nil,
            onCall: [PersonID]? = nil, onCallOutOfHours: [PersonID]? = nil, escalateAfter: String? = nil
        ) {
            self.onCall = onCall
            self.onCallOutOfHours = onCallOutOfHours
            self.escalateAfter = escalateAfter
            self.email = email
            self.webhook = webhook
            self.id = id
            self.name = name
            self.locality = locality
            self.organisation = organisation
            self.coordinator = coordinator
            self.hours = hours
            self.fallback = fallback
            self.membersMayDecline = membersMayDecline
        }

        public var isEmpty: Bool {
            name == nil && locality == nil && organisation == nil && coordinator == nil && hours == nil && fallback == nil
                && membersMayDecline == nil && email == nil && webhook == nil && onCall == nil && onCallOutOfHours == nil && escalateAfter == nil
        }
    }

    /// The person or team it is about, as "person:ID" or "team:ID".
    public var subject: String {
        switch self {
        case .addPerson(let p): "person:\(p.id)"
        case .changePerson(let c): "person:\(c.id)"
        case .removePerson(let id), .setKey(let id, _): "person:\(id)"
        case .addTeam(let t): "team:\(t.id)"
        case .changeTeam(let c): "team:\(c.id)"
        }
    }

    /// One line of plain English, for a dry run and the audit trail. Never a key.
    public var summary: String {
        switch self {
        case .addPerson(let p):
            "add person \(p.id) (\(p.name)): \(p.roles.map(\.rawValue).joined(separator: ", "))"
                + (p.teams.isEmpty ? "" : "; teams \(p.teams.map(\.rawValue).joined(separator: ", "))")
                + (p.organisation.map { "; organisation \($0)" } ?? "")
        case .changePerson(let c):
            "change person \(c.id):"
                + [
                    c.name.map { " name \($0)" }, c.roles.map { " roles \($0.map(\.rawValue).joined(separator: ", "))" },
                    c.teams.map { " teams \($0.isEmpty ? "none" : $0.map(\.rawValue).joined(separator: ", "))" },
                    c.organisation.map { " organisation \($0)" }, c.email.map { " email \($0)" }, c.phone.map { " mobile \($0)" },
                ].compactMap { $0 }.joined(separator: ";")
        case .removePerson(let id): "remove person \(id)"
        case .addTeam(let t): "add team \(t.id) (\(t.name)), locality \(t.locality)"
        case .changeTeam(let c):
            "change team \(c.id):"
                + [
                    c.name.map { " name \($0)" }, c.locality.map { " locality \($0)" }, c.organisation.map { " organisation \($0)" },
                    c.coordinator.map { " co-ordinator \($0)" }, c.hours.map { " hours \($0)" },
                    c.fallback.map { " out of hours \($0.joined(separator: ", "))" },
                    c.membersMayDecline.map { " members may decline: \($0 ? "yes" : "no")" }, c.email.map { " mailbox \($0)" },
                    c.webhook.map { " webhook \($0)" }, c.onCall.map { " on call \($0.map(\.rawValue).joined(separator: ", "))" },
                    c.onCallOutOfHours.map { " on call out of hours \($0.map(\.rawValue).joined(separator: ", "))" },
                    c.escalateAfter.map { " escalate after \($0)" },
                ].compactMap { $0 }.joined(separator: ";")
        case .setKey(let id, let key): key == nil ? "revoke the key of \(id)" : "set the key of \(id)"
        }
    }

    // The wire form: {"op": "person.add", "person": {...}}, {"op": "person.change", "id": ...},
    // {"op": "person.remove", "id": ...}, {"op": "team.add", "team": {...}}, {"op": "team.change", "id": ...},
    // {"op": "key.set", "id": ..., "key": ...} ("key" absent to revoke).
    enum CodingKeys: String, CodingKey { case op, person, team, id, key }
    enum Op: String, Codable, CaseIterable {
        case personAdd = "person.add", personChange = "person.change", personRemove = "person.remove"
        case teamAdd = "team.add", teamChange = "team.change", keySet = "key.set"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decode(String.self, forKey: .op)
        guard let op = Op(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                forKey: .op, in: c, debugDescription: "unknown op '\(text)'; ops are \(Op.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        switch op {
        case .personAdd: self = .addPerson(try c.decode(Directory.Person.self, forKey: .person))
        case .personChange: self = .changePerson(try PersonChange(from: decoder))
        case .personRemove: self = .removePerson(try c.decode(PersonID.self, forKey: .id))
        case .teamAdd: self = .addTeam(try c.decode(Directory.Team.self, forKey: .team))
        case .teamChange: self = .changeTeam(try TeamChange(from: decoder))
        case .keySet: self = .setKey(try c.decode(PersonID.self, forKey: .id), key: try c.decodeIfPresent(String.self, forKey: .key))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .addPerson(let p):
            try c.encode(Op.personAdd, forKey: .op)
            try c.encode(p, forKey: .person)
        case .changePerson(let change):
            try c.encode(Op.personChange, forKey: .op)
            try change.encode(to: encoder)
        case .removePerson(let id):
            try c.encode(Op.personRemove, forKey: .op)
            try c.encode(id, forKey: .id)
        case .addTeam(let t):
            try c.encode(Op.teamAdd, forKey: .op)
            try c.encode(t, forKey: .team)
        case .changeTeam(let change):
            try c.encode(Op.teamChange, forKey: .op)
            try change.encode(to: encoder)
        case .setKey(let id, let key):
            try c.encode(Op.keySet, forKey: .op)
            try c.encode(id, forKey: .id)
            try c.encodeIfPresent(key, forKey: .key)
        }
    }
}

/// Why a list of changes was refused: which change (by its place in the list), and what is
/// wrong with it, in words an administrator can act on.
public struct DirectoryChangeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The change's index in the list; nil for the list as a whole.
    public var index: Int?
    public var reason: String
    public init(index: Int?, _ reason: String) {
        self.index = index
        self.reason = reason
    }
    public var description: String { index.map { "changes[\($0)]: \(reason)" } ?? reason }
}

extension Directory {
    /// The directory after `changes`, each applied in order and the result checked as a whole
    /// (`validate`). A person removed is also taken off every gateway's `actsFor`; a person who
    /// co-ordinates a team cannot be removed until the team names another co-ordinator.
    public func applying(_ changes: [DirectoryChange]) throws(DirectoryChangeError) -> Directory {
        var result = self
        for (index, change) in changes.enumerated() {
            do throws(DirectoryChangeError) { try result.apply(change) } catch { throw DirectoryChangeError(index: index, error.reason) }
            do throws(ValidationError) { try result.validate() } catch { throw DirectoryChangeError(index: index, error.reason) }
        }
        return result
    }

    private func personIndex(_ id: PersonID) throws(DirectoryChangeError) -> Int {
        guard let index = people.firstIndex(where: { $0.id == id }) else {
            throw DirectoryChangeError(index: nil, "no person '\(id)' in the directory")
        }
        return index
    }

    private func teamIndex(_ id: TeamID) throws(DirectoryChangeError) -> Int {
        guard let index = teams.firstIndex(where: { $0.id == id }) else { throw DirectoryChangeError(index: nil, "no team '\(id)' in the directory") }
        return index
    }

    private mutating func apply(_ change: DirectoryChange) throws(DirectoryChangeError) {
        switch change {
        case .addPerson(let person):
            guard !people.contains(where: { $0.id == person.id }) else {
                throw DirectoryChangeError(index: nil, "person '\(person.id)' is already in the directory (to change them, use person.change)")
            }
            if let email = person.email, let other = people.first(where: { $0.email?.lowercased() == email.lowercased() }) {
                throw DirectoryChangeError(index: nil, "email \(email) already belongs to person '\(other.id)'")
            }
            people.append(person)
        case .changePerson(let change):
            let index = try personIndex(change.id)
            guard !change.isEmpty else { throw DirectoryChangeError(index: nil, "person.change for '\(change.id)' changes nothing") }
            if let name = change.name { people[index].name = name }
            if let roles = change.roles { people[index].roles = roles }
            if let organisation = change.organisation { people[index].organisation = organisation }
            if let teams = change.teams { people[index].teams = teams }
            if let email = change.email {
                if let other = people.first(where: { $0.id != change.id && $0.email?.lowercased() == email.lowercased() }) {
                    throw DirectoryChangeError(index: nil, "email \(email) already belongs to person '\(other.id)'")
                }
                people[index].email = email
            }
            if let phone = change.phone { people[index].phone = phone }
        case .removePerson(let id):
            let index = try personIndex(id)
            if let team = teams.first(where: { $0.coordinator == id }) {
                throw DirectoryChangeError(
                    index: nil, "person '\(id)' co-ordinates team '\(team.id)': name another co-ordinator for the team (team.change) first")
            }
            people.remove(at: index)
            for other in people.indices where people[other].actsFor?.contains(id) == true {
                people[other].actsFor?.removeAll { $0 == id }
            }
            // Someone who has left is no longer on call.
            for team in teams.indices {
                teams[team].onCall?.removeAll { $0 == id }
                teams[team].onCallOutOfHours?.removeAll { $0 == id }
            }
        case .addTeam(let team):
            guard !teams.contains(where: { $0.id == team.id }) else {
                throw DirectoryChangeError(index: nil, "team '\(team.id)' is already in the directory (to change it, use team.change)")
            }
            teams.append(team)
        case .changeTeam(let change):
            let index = try teamIndex(change.id)
            guard !change.isEmpty else { throw DirectoryChangeError(index: nil, "team.change for '\(change.id)' changes nothing") }
            if let name = change.name { teams[index].name = name }
            if let locality = change.locality { teams[index].locality = locality }
            if let organisation = change.organisation { teams[index].organisation = organisation }
            if let coordinator = change.coordinator { teams[index].coordinator = coordinator }
            if let hours = change.hours { teams[index].hours = hours }
            if let fallback = change.fallback { teams[index].fallback = fallback }
            if let decline = change.membersMayDecline { teams[index].membersMayDecline = decline }
            if let email = change.email { teams[index].email = email }
            if let webhook = change.webhook { teams[index].webhook = webhook }
            if let onCall = change.onCall { teams[index].onCall = onCall }
            if let onCall = change.onCallOutOfHours { teams[index].onCallOutOfHours = onCall }
            if let after = change.escalateAfter { teams[index].escalateAfter = after }
        case .setKey(let id, let key):
            people[try personIndex(id)].key = key
        }
    }
}

extension Directory {
    /// A directory id for a new person: their email's local part ("sam.new@council.gov.uk"
    /// gives "sam.new"), else their name ("Sam New" gives "sam.new"), in the characters an id
    /// may have.
    public static func suggestedID(name: String, email: String?) -> PersonID? {
        let source = email.flatMap { $0.split(separator: "@").first.map(String.init) } ?? name
        var id = ""
        for character in source.lowercased() {
            if character.isASCII, character.isLetter || character.isNumber || character == "." || character == "-" || character == "_" {
                id.append(character)
            } else if character == " " || character == "'" {
                if !id.hasSuffix(".") && !id.isEmpty { id.append(".") }
            }
        }
        while id.hasSuffix(".") { id.removeLast() }
        id = String(id.prefix(64))
        return PersonID.isWellFormed(id) ? PersonID(id) : nil
    }
}

extension Directory.ValidationError {
    var reason: String {
        switch self {
        case .duplicate(let what): "\(what) would appear twice"
        case .unknownReference(let what): "\(what) is not in the directory"
        case .malformed(let what): what
        }
    }
}
