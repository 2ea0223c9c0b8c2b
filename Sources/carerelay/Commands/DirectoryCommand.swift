import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

/// Looking a team or a person up, so an address can be checked before a referral goes: from
/// the protocol's `directory` query, which never carries keys.
struct DirectoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "directory",
        abstract: "Look up teams and people: hours, response targets, who is in a team (never keys).",
        discussion: """
            Examples:
              carerelay directory teams --locality west
              carerelay directory people --search okafor
              carerelay directory show west.social-care
            """,
        subcommands: [Teams.self, People.self, Show.self],
        defaultSubcommand: Teams.self)

    static func listing(_ globals: Globals) throws -> DirectoryListing {
        let client = try globals.connect()
        return try brokerCall { () throws(ClientError) in try client.query(DirectoryQuery()) }
    }

    /// "1 h / 4 h / 8 h / 3 d": the targets in priority order, emergency first.
    static func targets(_ team: DirectoryListing.Team) -> String {
        guard team.responseTargets != nil else { return "-" }
        return Priority.allCases.map { team.responseTarget($0).map(Self.span) ?? "-" }.joined(separator: " / ")
    }

    static func span(_ seconds: Int) -> String {
        if seconds % 86_400 == 0 { return "\(seconds / 86_400) d" }
        if seconds % 3_600 == 0 { return "\(seconds / 3_600) h" }
        return "\(seconds / 60) min"
    }

    /// Whether `search` (any case) is in the id or the name; true without one.
    static func matches(_ search: String?, id: String, name: String) -> Bool {
        guard let search else { return true }
        return id.localizedCaseInsensitiveContains(search) || name.localizedCaseInsensitiveContains(search)
    }

    /// Carers use the web page through the gateway and never enrol.
    static func enrolled(_ person: DirectoryListing.Person) -> String {
        if person.roles.contains(.carer) { return "web page" }
        return person.enrolled == true ? "yes" : "not yet"
    }

    static func open(_ team: DirectoryListing.Team) -> String {
        switch team.openNow {
        case true?: "open"
        case false?: "closed"
        case nil: "-"
        }
    }

    struct Teams: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Teams, with their hours, whether they are open now and their response targets.",
            discussion: "Targets are emergency / urgent / same-day / routine.\n\nExample:\n  carerelay directory teams --locality west")
        @OptionGroup var globals: Globals
        @Option(help: "Only teams in this locality.") var locality: String?
        @Option(help: "Only teams whose id or name contains this (any case).") var search: String?

        func run() throws {
            var teams = try DirectoryCommand.listing(globals).teams
            if let locality { teams.removeAll { $0.locality.rawValue != locality } }
            teams.removeAll { !DirectoryCommand.matches(search, id: $0.id.rawValue, name: $0.name) }
            if globals.json { Console.json(teams); return }
            guard !teams.isEmpty else {
                Console.out("No teams match.")
                return
            }
            Console.table(
                ["TEAM", "NAME", "KIND", "LOCALITY", "HOURS", "NOW", "TARGETS (E/U/S/R)"],
                teams.map {
                    [
                        $0.id.rawValue, $0.name, $0.kind.rawValue, $0.locality.rawValue, $0.hours ?? "-", DirectoryCommand.open($0),
                        DirectoryCommand.targets($0),
                    ]
                })
        }
    }

    struct People: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "People, with their roles and teams.",
            discussion: "Examples:\n  carerelay directory people --team west.social-care\n  carerelay directory people --role gp --search khan")
        @OptionGroup var globals: Globals
        @Option(help: "Only members of this team.") var team: String?
        @Option(help: "Only people with this role (gp, social-worker, ...).") var role: String?
        @Option(help: "Only people whose id or name contains this (any case).") var search: String?

        func run() throws {
            var people = try DirectoryCommand.listing(globals).people
            if let team { people.removeAll { !$0.teams.contains(TeamID(team)) } }
            if let role { people.removeAll { !$0.roles.map(\.rawValue).contains(role) } }
            people.removeAll { !DirectoryCommand.matches(search, id: $0.id.rawValue, name: $0.name) }
            if globals.json { Console.json(people); return }
            guard !people.isEmpty else {
                Console.out("No people match.")
                return
            }
            Console.table(
                ["PERSON", "NAME", "ROLES", "TEAMS", "ENROLLED"],
                people.map {
                    [
                        $0.id.rawValue, $0.name, $0.roles.map(\.rawValue).joined(separator: ", "),
                        $0.teams.isEmpty ? "-" : $0.teams.map(\.rawValue).joined(separator: ", "), DirectoryCommand.enrolled($0),
                    ]
                })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One team (with its members) or one person.",
            discussion: "Example:\n  carerelay directory show west.social-care\n  carerelay directory show person:sw.okafor")
        @OptionGroup var globals: Globals
        @Argument(help: ArgumentHelp("A team or person id, or team:ID / person:ID.", valueName: "id")) var id: String

        func run() throws {
            let listing = try DirectoryCommand.listing(globals)
            let wanted = id.split(separator: ":", maxSplits: 1).map(String.init)
            let (kind, name) = wanted.count == 2 ? (wanted[0], wanted[1]) : ("", id)
            if kind != "person", let team = listing.team(TeamID(name)) {
                let members = listing.people.filter { $0.teams.contains(team.id) }
                if globals.json {
                    Console.json(TeamView(team: team, members: members))
                    return
                }
                Console.out("Team:        \(team.name) (team:\(team.id))")
                Console.out("Kind:        \(team.kind.rawValue), locality \(team.locality)")
                if let coordinator = team.coordinator {
                    Console.out("Co-ordinator: \(listing.name(of: coordinator) ?? coordinator.rawValue) (\(coordinator))")
                }
                Console.out("Hours:       \(team.hours ?? "not set")\(team.openNow.map { $0 ? ", open now" : ", closed now" } ?? "")")
                if let fallback = team.fallback, !fallback.isEmpty {
                    Console.out("Out of hours: \(fallback.joined(separator: "; "))")
                }
                if team.responseTargets != nil {
                    let targets = Priority.allCases.map { priority in
                        "\(priority.rawValue) \(team.responseTarget(priority).map(DirectoryCommand.span) ?? "-")"
                    }
                    Console.out("Responds:    \(targets.joined(separator: ", "))")
                }
                Console.out("Members:     \(members.isEmpty ? "none" : members.map { "\($0.name) (\($0.id))" }.joined(separator: ", "))")
                return
            }
            if kind != "team", let person = listing.people.first(where: { $0.id.rawValue == name }) {
                if globals.json {
                    Console.json(person)
                    return
                }
                Console.out("Person: \(person.name) (person:\(person.id))")
                Console.out("Roles:  \(person.roles.map(\.rawValue).joined(separator: ", "))")
                let teams = person.teams.map { "\(listing.team($0)?.name ?? $0.rawValue) (\($0))" }
                Console.out("Teams:  \(teams.isEmpty ? "none" : teams.joined(separator: ", "))")
                return
            }
            throw Failure(
                Exit.usage, "'\(id)' is not a team or person in the directory", hint: "carerelay directory teams / people --search TEXT lists them")
        }
    }

    struct TeamView: Encodable {
        var team: DirectoryListing.Team
        var members: [DirectoryListing.Person]
    }
}
