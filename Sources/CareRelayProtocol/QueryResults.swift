import CareRelayModel
import Foundation

// What each query answers (Protocols/CRP.md section 13), as the broker writes it and every
// client reads it. The broker encodes with sorted keys, unescaped slashes and ISO 8601 dates;
// absent optionals are left out. Some answers are model types the store also returns:
// `[InboxLine]` (inbox), `Tracking` (track), `[CareTeamMember]` (careteam), `[AuditRow]`
// (audit) and `AuditVerification` (audit.verify).

/// The `status` answer: the broker's vitals beside the store's figures. Counts and times
/// only, nothing about any patient.
public struct StatusReport: Codable, Sendable, Equatable {
    public var broker: String
    public var protocolVersion: Int
    public var startedAt: Date
    public var uptimeSeconds: Int
    public var connectedClients: Int
    public var storeHealthy: Bool
    public var stopping: Bool
    public var store: StoreStatistics
    /// The libzmq the broker runs on, e.g. "4.3.4, CareRelay patch 1" (Scripts/libzmq/build).
    public var libzmq: String?
    /// Keys being ignored for sending too many malformed commands.
    public var throttledKeys: Int?

    public init(
        broker: String, protocolVersion: Int, startedAt: Date, uptimeSeconds: Int, connectedClients: Int,
        storeHealthy: Bool, stopping: Bool, store: StoreStatistics, libzmq: String?, throttledKeys: Int?
    ) {
        self.broker = broker
        self.protocolVersion = protocolVersion
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.connectedClients = connectedClients
        self.storeHealthy = storeHealthy
        self.stopping = stopping
        self.store = store
        self.libzmq = libzmq
        self.throttledKeys = throttledKeys
    }
}

/// A message as one person receives it (`message`): the DELIVER header and the (possibly
/// redacted) body as JSON text; for the sender the body alone; or, for the sender asking as
/// a recipient it is withheld from, the plain-English reason.
public struct MessageView: Codable, Sendable, Equatable {
    public var header: DeliverHeader?
    public var body: String?
    public var withheld: String?

    public init(header: DeliverHeader?, body: String?, withheld: String?) {
        self.header = header
        self.body = body
        self.withheld = withheld
    }

    public var bodyBytes: [UInt8]? { body.map { Array($0.utf8) } }
}

/// One consent message in a patient's record (`consent`), oldest first. The registry in
/// force is what they add up to.
public struct ConsentLine: Codable, Sendable, Equatable {
    public var message: String
    public var recordedBy: PersonID
    public var acceptedAt: Date
    /// The consent body as JSON text.
    public var record: String

    public init(message: String, recordedBy: PersonID, acceptedAt: Date, record: String) {
        self.message = message
        self.recordedBy = recordedBy
        self.acceptedAt = acceptedAt
        self.record = record
    }
}

/// The directory without its keys (`directory`).
public struct DirectoryListing: Codable, Sendable, Equatable {
    public struct Person: Codable, Sendable, Equatable {
        public var id: PersonID
        public var name: String
        public var roles: [Role]
        public var teams: [TeamID]
        public var organisation: OrganisationID?
        public var email: String?
        /// Whether they hold a key (have enrolled); carers never do, the gateway acts for them.
        public var enrolled: Bool?

        public init(
            id: PersonID, name: String, roles: [Role], teams: [TeamID], organisation: OrganisationID? = nil, email: String? = nil,
            enrolled: Bool? = nil
        ) {
            self.id = id
            self.name = name
            self.roles = roles
            self.teams = teams
            self.organisation = organisation
            self.email = email
            self.enrolled = enrolled
        }
    }

    public struct Team: Codable, Sendable, Equatable {
        public var id: TeamID
        public var name: String
        public var kind: Directory.Team.Kind
        public var locality: LocalityID
        public var organisation: OrganisationID?
        public var coordinator: PersonID?
        public var hours: String?
        public var fallback: [String]?
        /// Whether the team is within its service hours as the broker answers (nil: no hours
        /// set, so none are promised).
        public var openNow: Bool?
        /// How long the team has to take a referral, in seconds, by priority (`emergency`,
        /// `urgent`, `same-day`, `routine`): its own targets, else the broker's.
        public var responseTargets: [String: Int]?

        public init(
            id: TeamID, name: String, kind: Directory.Team.Kind, locality: LocalityID, organisation: OrganisationID? = nil, coordinator: PersonID?,
            hours: String?, fallback: [String]?, openNow: Bool? = nil, responseTargets: [String: Int]? = nil
        ) {
            self.id = id
            self.name = name
            self.kind = kind
            self.locality = locality
            self.organisation = organisation
            self.coordinator = coordinator
            self.hours = hours
            self.fallback = fallback
            self.openNow = openNow
            self.responseTargets = responseTargets
        }

        /// The target for `priority`, in seconds.
        public func responseTarget(_ priority: Priority) -> Int? { responseTargets?[priority.rawValue] }
    }

    public var people: [Person]
    public var teams: [Team]

    public init(people: [Person], teams: [Team]) {
        self.people = people
        self.teams = teams
    }

    /// Everyone and every team, with organisations, work emails and whether each person has
    /// enrolled, but never keys or whom gateways act for; each
    /// service team with its response targets (`defaultTargets` where it sets none) and
    /// whether it is open `now`.
    public init(_ directory: Directory, defaultTargets: [Priority: TimeInterval], now: Date) {
        people = directory.people.map {
            Person(
                id: $0.id, name: $0.name, roles: $0.roles, teams: $0.teams, organisation: $0.organisation, email: $0.email, enrolled: $0.key != nil)
        }
        teams = directory.teams.map { team in
            var targets: [String: Int]?
            if team.kind == .service {
                targets = [:]
                for priority in Priority.allCases {
                    if let seconds = team.responseTargets?[priority]?.seconds ?? defaultTargets[priority] {
                        targets?[priority.rawValue] = Int(seconds)
                    }
                }
            }
            return Team(
                id: team.id, name: team.name, kind: team.kind, locality: team.locality, organisation: team.organisation,
                coordinator: team.coordinator,
                hours: team.hours, fallback: team.fallback, openNow: team.serviceHours?.isOpen(at: now), responseTargets: targets)
        }
    }

    public func name(of person: PersonID) -> String? { people.first { $0.id == person }?.name }
    public func team(_ id: TeamID) -> Team? { teams.first { $0.id == id } }
}

/// The answer to `directory.change`: the directory's new revision (unchanged for a dry run)
/// and each change in plain English.
public struct DirectoryChangeResult: Codable, Sendable, Equatable {
    public var revision: Int64
    public var dryRun: Bool
    public var changes: [String]
    public init(revision: Int64, dryRun: Bool, changes: [String]) {
        self.revision = revision
        self.dryRun = dryRun
        self.changes = changes
    }
}

/// The answer to `enrol.issue`.
public struct EnrolmentCodeIssued: Codable, Sendable, Equatable {
    public var person: PersonID
    public var name: String
    /// The code, shown once: give it to the person in person or by phone.
    public var code: String
    public var expires: Date
    public init(person: PersonID, name: String, code: String, expires: Date) {
        self.person = person
        self.name = name
        self.code = code
        self.expires = expires
    }
}

/// The answer to `enrol`: who the key now belongs to.
public struct Enrolment: Codable, Sendable, Equatable {
    public var person: PersonID
    public var name: String
    public var roles: [Role]
    public var teams: [TeamID]
    public init(person: PersonID, name: String, roles: [Role], teams: [TeamID]) {
        self.person = person
        self.name = name
        self.roles = roles
        self.teams = teams
    }
}
