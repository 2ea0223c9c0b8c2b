import Foundation

/// Who is who: organisations, localities, teams and people with their roles, team memberships
/// and CURVE public keys. Loaded by the broker from the directory file; the broker takes every
/// identity and role from here, keyed by the public key a client authenticated with.
public struct Directory: Sendable, Equatable, Codable {
    public struct Organisation: Sendable, Equatable, Codable {
        public var id: OrganisationID
        public var name: String
        public init(id: OrganisationID, name: String) {
            self.id = id
            self.name = name
        }
    }

    public struct Locality: Sendable, Equatable, Codable {
        public var id: LocalityID
        public var name: String
        public init(id: LocalityID, name: String) {
            self.id = id
            self.name = name
        }
    }

    public struct Team: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable { case service, mdt }
        public var id: TeamID
        public var name: String
        public var kind: Kind
        public var locality: LocalityID
        public var organisation: OrganisationID?
        /// The person who allocates intake work and receives escalations.
        public var coordinator: PersonID?
        /// When the team answers, e.g. "mon-fri 08:00-18:00". Outside these hours an urgent
        /// carer check-in is answered with the fallback contacts.
        public var hours: String?
        /// Who to contact out of hours, in order (co-ordinator, district nurses, 999).
        public var fallback: [String]?
        /// How soon the team undertakes to take a referral, by priority; the broker's defaults
        /// for any it does not set.
        public var responseTargets: ResponseTargets?
        /// Whether any member may decline a referral for the team; otherwise only its
        /// co-ordinator may (a member may still pass one).
        public var membersMayDecline: Bool?
        /// The team's own mailbox (an intake inbox several people read): told of new
        /// referrals and urgent check-ins for the team, never of what is in them.
        public var email: String?
        /// The name of a webhook endpoint in the site's notification settings (which hold its
        /// address and signing secret): the team's own system is told what the mailbox is.
        public var webhook: String?
        /// Who is told of urgent work nobody has picked up, one after another, within `hours`
        /// (OnCallChain).
        public var onCall: [PersonID]?
        /// The same outside `hours`.
        public var onCallOutOfHours: [PersonID]?
        /// How long each person on call has to acknowledge before the next is told ("15m",
        /// "30s"); 15 minutes if not set.
        public var escalateAfter: String?

        /// `hours`, read (`validate` has checked that it reads).
        public var serviceHours: ServiceHours? { hours.flatMap { try? ServiceHours(parsing: $0) } }

        public init(
            id: TeamID, name: String, kind: Kind = .service, locality: LocalityID, organisation: OrganisationID? = nil,
            coordinator: PersonID? = nil, hours: String? = nil, fallback: [String]? = nil, responseTargets: ResponseTargets? = nil,
            membersMayDecline: Bool? = nil, email: String? = nil, webhook: String? = nil, onCall: [PersonID]? = nil,
            onCallOutOfHours: [PersonID]? = nil, escalateAfter: String? = nil
        ) {
            self.onCall = onCall
            self.onCallOutOfHours = onCallOutOfHours
            self.escalateAfter = escalateAfter
            self.id = id
            self.name = name
            self.kind = kind
            self.locality = locality
            self.organisation = organisation
            self.coordinator = coordinator
            self.hours = hours
            self.fallback = fallback
            self.responseTargets = responseTargets
            self.membersMayDecline = membersMayDecline
            self.email = email
            self.webhook = webhook
        }
    }

    public struct Person: Sendable, Equatable, Codable {
        public var id: PersonID
        public var name: String
        public var roles: [Role]
        public var organisation: OrganisationID?
        public var teams: [TeamID]
        /// CURVE public key, Z85 text (40 characters). Nil until the person enrols (`carerelay
        /// enrol CODE`), and for carers, who use the web page through the gateway: a person
        /// without a key cannot connect.
        public var key: String?
        /// Work email, as the workforce system holds it (what a CSV import matches people by).
        public var email: String?
        /// For a gateway (the carer bridge): the people it may act for.
        public var actsFor: [PersonID]?
        /// For an administrator: the organisations and localities whose people and teams they
        /// may change. Nil means their own organisation.
        public var administers: [AdministrationScope]?
        /// A mobile number for notifications by SMS (`07700 900123` or `+44 7700 900123`).
        public var phone: String?
        /// What reaches them outside CareRelay and how; nil takes the defaults.
        public var notify: NotificationChoices?

        public init(
            id: PersonID, name: String, roles: [Role], organisation: OrganisationID? = nil,
            teams: [TeamID], key: String?, email: String? = nil, actsFor: [PersonID]? = nil, administers: [AdministrationScope]? = nil,
            phone: String? = nil, notify: NotificationChoices? = nil
        ) {
            self.id = id
            self.name = name
            self.roles = roles
            self.organisation = organisation
            self.teams = teams
            self.key = key
            self.email = email
            self.actsFor = actsFor
            self.administers = administers
            self.phone = phone
            self.notify = notify
        }
    }

    public var organisations: [Organisation]
    public var localities: [Locality]
    public var teams: [Team]
    public var people: [Person]

    public init(organisations: [Organisation], localities: [Locality], teams: [Team], people: [Person]) {
        self.organisations = organisations
        self.localities = localities
        self.teams = teams
        self.people = people
    }

    public enum ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
        case duplicate(String)
        case unknownReference(String)
        case malformed(String)

        public var description: String {
            switch self {
            case .duplicate(let what): "directory: \(what) appears twice"
            case .unknownReference(let what): "directory: \(what) is not defined"
            case .malformed(let what): "directory: \(what)"
            }
        }
    }

    /// Checks that every reference resolves and every id and key is unique.
    public func validate() throws(ValidationError) {
        var seen = Set<String>()
        func unique(_ kind: String, _ id: String) throws(ValidationError) {
            guard PersonID.isWellFormed(id) else { throw .malformed("\(kind) id '\(id)' must be 1-64 of a-z, 0-9, '.', '-', '_'") }
            guard seen.insert("\(kind):\(id)").inserted else { throw .duplicate("\(kind) '\(id)'") }
        }
        for o in organisations { try unique("organisation", o.id.rawValue) }
        for l in localities { try unique("locality", l.id.rawValue) }
        for t in teams { try unique("team", t.id.rawValue) }
        var keys = Set<String>()
        for p in people {
            try unique("person", p.id.rawValue)
            if let key = p.key {
                guard key.utf8.count == 40 else { throw .malformed("person '\(p.id)': key must be 40 characters of Z85") }
                guard keys.insert(key).inserted else { throw .duplicate("the key of person '\(p.id)'") }
            }
            guard !p.roles.isEmpty else { throw .malformed("person '\(p.id)' has no roles") }
            guard !p.name.trimmingCharacters(in: .whitespaces).isEmpty, p.name.utf8.count <= 200 else {
                throw .malformed("person '\(p.id)': name must be 1-200 characters")
            }
            if let email = p.email, PatientDetails.ContactPoint.emailProblem(email) != nil {
                throw .malformed("person '\(p.id)': email '\(email)' is not an email address")
            }
            if let phone = p.phone, MobileNumber(phone) == nil {
                throw .malformed("person '\(p.id)': phone '\(phone)' is not a UK mobile number like 07700 900123")
            }
            if let digest = p.notify?.digest, p.notify?.digestMinute == nil {
                throw .malformed("person '\(p.id)': notify digest '\(digest)' is not a time like 07:30")
            }
        }
        let localityIDs = Set(localities.map(\.id)), teamIDs = Set(teams.map(\.id))
        let personIDs = Set(people.map(\.id)), organisationIDs = Set(organisations.map(\.id))
        for t in teams {
            guard localityIDs.contains(t.locality) else { throw .unknownReference("locality '\(t.locality)' of team '\(t.id)'") }
            if let c = t.coordinator, !personIDs.contains(c) { throw .unknownReference("co-ordinator '\(c)' of team '\(t.id)'") }
            if let o = t.organisation, !organisationIDs.contains(o) { throw .unknownReference("organisation '\(o)' of team '\(t.id)'") }
            if let hours = t.hours {
                do { _ = try ServiceHours(parsing: hours) } catch { throw .malformed("team '\(t.id)': hours \(error.description)") }
            }
            if let email = t.email, PatientDetails.ContactPoint.emailProblem(email) != nil {
                throw .malformed("team '\(t.id)': email '\(email)' is not an email address")
            }
            for p in (t.onCall ?? []) + (t.onCallOutOfHours ?? []) where !personIDs.contains(p) {
                throw .unknownReference("person '\(p)' on call for team '\(t.id)'")
            }
            if let after = t.escalateAfter, OnCallChain.seconds(after) == nil {
                throw .malformed("team '\(t.id)': escalateAfter '\(after)' is not a time like 15m or 30s")
            }
            if let webhook = t.webhook, !PersonID.isWellFormed(webhook) {
                throw .malformed("team '\(t.id)': webhook '\(webhook)' must name an endpoint: 1-64 of a-z, 0-9, '.', '-', '_'")
            }
        }
        for p in people {
            for t in p.teams where !teamIDs.contains(t) { throw .unknownReference("team '\(t)' of person '\(p.id)'") }
            if let o = p.organisation, !organisationIDs.contains(o) { throw .unknownReference("organisation '\(o)' of person '\(p.id)'") }
            for a in p.actsFor ?? [] where !personIDs.contains(a) { throw .unknownReference("person '\(a)' that '\(p.id)' acts for") }
            for scope in p.administers ?? [] {
                switch scope {
                case .organisation(let o) where !organisationIDs.contains(o):
                    throw .unknownReference("organisation '\(o)' that '\(p.id)' administers")
                case .locality(let l) where !localityIDs.contains(l):
                    throw .unknownReference("locality '\(l)' that '\(p.id)' administers")
                default: break
                }
            }
        }
    }
}

/// The directory with lookups built once, so routing never scans lists.
public struct DirectoryIndex: Sendable {
    public let directory: Directory
    public let peopleByID: [PersonID: Directory.Person]
    public let peopleByKey: [String: Directory.Person]
    public let teamsByID: [TeamID: Directory.Team]
    public let membersByTeam: [TeamID: [PersonID]]
    /// The teams each person co-ordinates.
    public let teamsCoordinated: [PersonID: [TeamID]]

    public init(_ directory: Directory) throws(Directory.ValidationError) {
        try directory.validate()
        self.directory = directory
        peopleByID = Dictionary(uniqueKeysWithValues: directory.people.map { ($0.id, $0) })
        peopleByKey = Dictionary(uniqueKeysWithValues: directory.people.compactMap { person in person.key.map { ($0, person) } })
        teamsByID = Dictionary(uniqueKeysWithValues: directory.teams.map { ($0.id, $0) })
        var members: [TeamID: [PersonID]] = [:]
        for person in directory.people {
            for team in person.teams { members[team, default: []].append(person.id) }
        }
        membersByTeam = members
        var coordinated: [PersonID: [TeamID]] = [:]
        for team in directory.teams { if let coordinator = team.coordinator { coordinated[coordinator, default: []].append(team.id) } }
        teamsCoordinated = coordinated
    }

    /// Nobody: what a broker serves before it has read its store's directory.
    public static let empty: DirectoryIndex = {
        do { return try DirectoryIndex(Directory(organisations: [], localities: [], teams: [], people: [])) } catch {
            fatalError("an empty directory is valid")
        }
    }()

    public func person(_ id: PersonID) -> Directory.Person? { peopleByID[id] }
    public func team(_ id: TeamID) -> Directory.Team? { teamsByID[id] }
    public func members(of team: TeamID) -> [PersonID] { membersByTeam[team] ?? [] }
    public func teams(coordinatedBy person: PersonID) -> [TeamID] { teamsCoordinated[person] ?? [] }
}
