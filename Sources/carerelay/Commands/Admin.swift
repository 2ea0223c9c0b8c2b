import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import ZeroMQ

/// Directory administration: people, teams and enrolment codes, through `directory.change`
/// and `enrol.issue` (CRP.md section 13). The broker checks each change against what the
/// administrator administers (access-policy.md rule 13).
struct AdminCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Add, move and remove people and teams, and issue enrolment codes (directory administrators).",
        discussion: """
            Every change is saved by the broker as a new revision of the directory, with an audit \
            line naming you, and takes effect on every broker at once. --dry-run shows what would \
            change and saves nothing.

            Examples:
              carerelay admin person add --name "Sam New" --email sam.new@council.example --role social-worker --team west.social-care
              carerelay admin enrol sam.new
              carerelay admin person move sam.new --team west.mdt --team west.social-care
              carerelay admin person remove sam.new
              carerelay admin import staff.csv --dry-run
            """,
        subcommands: [PersonCommand.self, TeamCommand.self, EnrolCodes.self, KeyCommand.self, Import.self])

    /// Sends changes and prints what the broker did.
    static func apply(_ changes: [DirectoryChange], dryRun: Bool, globals: Globals, rows: [Int]? = nil) throws {
        let client = try globals.connect()
        let result: DirectoryChangeResult
        do throws(ClientError) {
            result = try client.query(DirectoryChangeRequest(changes: changes, dryRun: dryRun))
        } catch .rejected(let failure) {
            // Name the file's row rather than the change's place in the list.
            if let rows, let index = Self.changeIndex(in: failure.reason), rows.indices.contains(index) {
                throw Failure.from(.rejected(ProtocolError(failure.code, "row \(rows[index]): \(failure.reason)")))
            }
            throw Failure.from(.rejected(failure))
        } catch {
            throw Failure.from(error)
        }
        if globals.json { Console.json(result); return }
        if result.dryRun {
            Console.out("Dry run: nothing was saved. These \(result.changes.count) change(s) would be made:")
        } else {
            Console.out("Saved as directory revision \(result.revision):")
        }
        for line in result.changes { Console.out("  \(line)") }
    }

    /// "changes[12]: ..." gives 12.
    static func changeIndex(in reason: String) -> Int? {
        guard reason.hasPrefix("changes["), let close = reason.firstIndex(of: "]") else { return nil }
        return Int(reason[reason.index(reason.startIndex, offsetBy: 8)..<close])
    }

    static func roles(_ texts: [String]) throws -> [Role] {
        try texts.map { text in
            guard let role = Role(rawValue: text) else {
                throw Failure.usage("'\(text)' is not a role", hint: "Roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            return role
        }
    }

    static func id<T: DirectoryIdentifier>(_ text: String, _ what: String) throws -> T {
        guard T.isWellFormed(text) else { throw Failure.usage("\(what) '\(text)' is not a directory id (1-64 of a-z, 0-9, '.', '-', '_')") }
        return T(text)
    }

    struct PersonCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "person", abstract: "Add, change, move or remove a person.",
            subcommands: [Add.self, Change.self, Move.self, Remove.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a person; they then enrol with a code (carerelay admin enrol ID).",
                discussion: """
                    The id is taken from the email's local part (or the name) unless --id gives one.

                    Example:
                      carerelay admin person add --name "Sam New" --email sam.new@council.example \\
                          --role social-worker --team west.social-care --organisation west-council
                    """)
            @OptionGroup var globals: Globals
            @Option(help: "Their directory id (default: from the email or name).") var id: String?
            @Option(help: "Their name as colleagues know it.") var name: String
            @Option(help: "Their work email.") var email: String?
            @Option(help: "A role (gp, community-nurse, social-worker, care-coordinator, ...); repeat for several.") var role: [String]
            @Option(help: "A team they belong to; repeat for several.") var team: [String] = []
            @Option(help: "Their organisation's id.") var organisation: String?
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                guard !role.isEmpty else { throw Failure.usage("give at least one --role") }
                guard
                    let id = try id.map({ (text: String) throws -> PersonID in try AdminCommand.id(text, "--id") })
                        ?? Directory.suggestedID(name: name, email: email)
                else { throw Failure.usage("no id can be made from the name or email; give --id") }
                let person = Directory.Person(
                    id: id, name: name, roles: try AdminCommand.roles(role),
                    organisation: try organisation.map { try AdminCommand.id($0, "--organisation") },
                    teams: try team.map { try AdminCommand.id($0, "--team") }, key: nil, email: email)
                try AdminCommand.apply([.addPerson(person)], dryRun: dryRun, globals: globals)
                if !dryRun && !globals.json { Console.out("Next: carerelay admin enrol \(id) (a code for them to enrol with)") }
            }
        }

        struct Change: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Change a person's name, roles, email or organisation.",
                discussion: "Example:\n  carerelay admin person change sw.lee --role social-worker --role care-coordinator")
            @OptionGroup var globals: Globals
            @Argument(help: "Their directory id.") var id: String
            @Option(help: "Their new name.") var name: String?
            @Option(help: "Their roles, all of them; repeat for several.") var role: [String] = []
            @Option(help: "Their new work email.") var email: String?
            @Option(help: "Their new organisation's id.") var organisation: String?
            @Option(help: "Their mobile number for notifications by SMS.") var phone: String?
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                let change = DirectoryChange.PersonChange(
                    id: try AdminCommand.id(id, "person"), name: name, roles: role.isEmpty ? nil : try AdminCommand.roles(role),
                    organisation: try organisation.map { try AdminCommand.id($0, "--organisation") }, email: email, phone: phone)
                guard !change.isEmpty else { throw Failure.usage("say what to change: --name, --role, --email, --organisation or --phone") }
                try AdminCommand.apply([.changePerson(change)], dryRun: dryRun, globals: globals)
            }
        }

        struct Move: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set the teams a person belongs to (all of them); they receive as a member of those from the next message on.",
                discussion: "Example:\n  carerelay admin person move nurse.ali --team west.nursing --team west.mdt")
            @OptionGroup var globals: Globals
            @Argument(help: "Their directory id.") var id: String
            @Option(help: "A team they now belong to; repeat for several. --no-team for none.") var team: [String] = []
            @Flag(help: "They belong to no team.") var noTeam = false
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                guard !team.isEmpty || noTeam else { throw Failure.usage("give their teams with --team (repeat for several), or --no-team") }
                let change = DirectoryChange.PersonChange(
                    id: try AdminCommand.id(id, "person"), teams: try team.map { try AdminCommand.id($0, "--team") })
                try AdminCommand.apply([.changePerson(change)], dryRun: dryRun, globals: globals)
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a person who has left: their key stops working at once, on every broker.",
                discussion: """
                    Mail not yet delivered to them is held, not lost; referrals they held stay on \
                    their team's worklist for the co-ordinator to allocate (CRP.md section 13).

                    Example:
                      carerelay admin person remove sw.lee
                    """)
            @OptionGroup var globals: Globals
            @Argument(help: "Their directory id.") var id: String
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                try AdminCommand.apply([.removePerson(try AdminCommand.id(id, "person"))], dryRun: dryRun, globals: globals)
            }
        }
    }

    struct TeamCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "team", abstract: "Add or change a team.", subcommands: [Add.self, Change.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a team.",
                discussion: """
                    Example:
                      carerelay admin team add --id west.reablement --name "West reablement" --locality west \\
                          --organisation west-council --hours "mon-fri 08:00-18:00"
                    """)
            @OptionGroup var globals: Globals
            @Option(help: "The team's directory id.") var id: String
            @Option(help: "Its name.") var name: String
            @Option(help: "Its locality's id.") var locality: String
            @Option(help: "Its organisation's id.") var organisation: String?
            @Option(help: "service (takes referrals) or mdt.") var kind = "service"
            @Option(help: "Its co-ordinator's directory id.") var coordinator: String?
            @Option(help: "When it answers, e.g. \"mon-fri 08:00-18:00\".") var hours: String?
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                guard let kind = Directory.Team.Kind(rawValue: kind) else { throw Failure.usage("--kind is service or mdt") }
                let team = Directory.Team(
                    id: try AdminCommand.id(id, "--id"), name: name, kind: kind, locality: try AdminCommand.id(locality, "--locality"),
                    organisation: try organisation.map { try AdminCommand.id($0, "--organisation") },
                    coordinator: try coordinator.map { try AdminCommand.id($0, "--coordinator") }, hours: hours)
                try AdminCommand.apply([.addTeam(team)], dryRun: dryRun, globals: globals)
            }
        }

        struct Change: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Change a team's name, co-ordinator, hours, out-of-hours contacts, mailbox or on-call rota.",
                discussion: """
                    Examples:
                      carerelay admin team change west.social-care --coordinator sw.okafor
                      carerelay admin team change west.social-care --on-call sw.okafor --on-call sw.lee --escalate-after 15m
                    """)
            @OptionGroup var globals: Globals
            @Argument(help: "The team's directory id.") var id: String
            @Option(help: "Its new name.") var name: String?
            @Option(help: "Its new co-ordinator's directory id.") var coordinator: String?
            @Option(help: "When it answers, e.g. \"mon-fri 08:00-18:00\".") var hours: String?
            @Option(help: "An out-of-hours contact, in order; repeat for several (all of them).") var fallback: [String] = []
            @Option(help: "The team's own mailbox, told of new referrals and urgent check-ins.") var email: String?
            @Option(help: "Who is on call within its hours, in order; repeat for several (all of them).") var onCall: [String] = []
            @Option(help: "Who is on call outside its hours, in order; repeat for several (all of them).") var onCallOutOfHours: [String] = []
            @Option(help: "How long each on call has to acknowledge before the next is told (15m, 30s).") var escalateAfter: String?
            @Flag(help: "Show what would change; save nothing.") var dryRun = false

            func run() throws {
                let change = DirectoryChange.TeamChange(
                    id: try AdminCommand.id(id, "team"), name: name, coordinator: try coordinator.map { try AdminCommand.id($0, "--coordinator") },
                    hours: hours, fallback: fallback.isEmpty ? nil : fallback, email: email,
                    onCall: onCall.isEmpty ? nil : try onCall.map { try AdminCommand.id($0, "--on-call") },
                    onCallOutOfHours: onCallOutOfHours.isEmpty ? nil : try onCallOutOfHours.map { try AdminCommand.id($0, "--on-call-out-of-hours") },
                    escalateAfter: escalateAfter)
                guard !change.isEmpty else {
                    throw Failure.usage(
                        "say what to change: --name, --coordinator, --hours, --fallback, --email, --on-call, --on-call-out-of-hours or --escalate-after"
                    )
                }
                try AdminCommand.apply([.changeTeam(change)], dryRun: dryRun, globals: globals)
            }
        }
    }

    /// `admin enrol issue PERSON`, or `admin enrol PERSON` for short.
    struct EnrolCodes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enrol", abstract: "Issue a one-time enrolment code for a person.", subcommands: [Enrol.self],
            defaultSubcommand: Enrol.self)
    }

    struct Enrol: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue",
            abstract: "Issue a one-time enrolment code for a person, and print what they run with it.",
            discussion: """
                The code is shown here once; the broker keeps only its hash. Give it to the person in \
                person or by phone. It works once, until it expires (48 hours unless --hours), and \
                issuing another replaces it.

                Example:
                  carerelay admin enrol issue sam.new
                  carerelay admin enrol sam.new
                """)
        @OptionGroup var globals: Globals
        @Argument(help: "The person's directory id.") var person: String
        @Option(help: "Hours the code works (1-168).") var hours: Int?

        func run() throws {
            if let hours, !EnrolmentIssue.hours.contains(hours) { throw Failure.usage("--hours must be between 1 and 168") }
            let settings = try globals.resolve()
            let client = try globals.connect()
            let issued = try brokerCall { () throws(ClientError) in
                try client.query(EnrolmentIssue(person: try AdminCommand.idOrThrow(person), hours: hours))
            }
            if globals.json { Console.json(issued); return }
            let brokerKey = (try? settings.brokerPublicKey()) ?? "BROKER-PUBLIC-KEY"
            Console.out(
                """
                Enrolment code for \(issued.name) (\(issued.person)): \(issued.code)
                It works once, until \(Format.date(issued.expires)). Give it to them in person or by phone.
                On their own computer they run:
                  carerelay enrol \(issued.code) --endpoint \(settings.endpoint ?? "tcp://HOST:PORT") --broker-key '\(brokerKey)'
                """)
        }
    }

    static func idOrThrow(_ text: String) throws(ClientError) -> PersonID {
        guard PersonID.isWellFormed(text) else {
            throw .rejected(ProtocolError(.invalidHeader, "'\(text)' is not a directory id (1-64 of a-z, 0-9, '.', '-', '_')"))
        }
        return PersonID(text)
    }

    struct KeyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "key", abstract: "Revoke a person's key (a lost or stolen computer).", subcommands: [Revoke.self])

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Revoke a person's key: it stops working at once, on every broker. They enrol again with a new code.",
                discussion: "Example:\n  carerelay admin key revoke nurse.ali")
            @OptionGroup var globals: Globals
            @Argument(help: "The person's directory id.") var person: String

            func run() throws {
                try AdminCommand.apply([.setKey(try AdminCommand.id(person, "person"), key: nil)], dryRun: false, globals: globals)
            }
        }
    }
}

extension AdminCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add and update people from the CSV file a workforce system exports; all of it, or nothing.",
            discussion: """
                Columns (in any order; the header names them): name, email, role, team, \
                organisation code, and optionally id. Several roles or teams go in one cell \
                separated by ';'. A person already in the directory is matched by email (else by \
                id) and updated where the file differs; anyone else is added, to enrol with a code. \
                Every row is checked first: a file with any bad row is refused whole, naming each \
                bad row and field. --remove-missing also removes the people of the file's \
                organisations whom it does not name.

                Example:
                  carerelay admin import staff.csv --dry-run
                  carerelay admin import staff.csv
                """)
        @OptionGroup var globals: Globals
        @Argument(help: "The CSV file.") var file: String
        @Flag(help: "Show what would change; save nothing.") var dryRun = false
        @Flag(help: "Remove people of the file's organisations whom it does not name.") var removeMissing = false

        func run() throws {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw Failure(Exit.ioError, "cannot read \(file): \(error.localizedDescription)")
            }
            let client = try globals.connect()
            let listing = try brokerCall { () throws(ClientError) in try client.query(DirectoryQuery()) }
            let existing = listing.people.map {
                DirectoryImport.Existing(id: $0.id, name: $0.name, email: $0.email, roles: $0.roles, teams: $0.teams, organisation: $0.organisation)
            }
            // Organisations the directory knows: those of its teams and people.
            let organisations = Set(listing.teams.compactMap(\.organisation) + listing.people.compactMap(\.organisation))
            let plan: DirectoryImport.Plan
            do {
                plan = try DirectoryImport.plan(
                    csv: text, existing: existing, teams: Set(listing.teams.map(\.id)), organisations: organisations,
                    removeMissing: removeMissing, importer: client.welcome?.person)
            } catch {
                throw Failure(Exit.usage, error.description)
            }
            guard !plan.changes.isEmpty else {
                if globals.json {
                    Console.json(DirectoryChangeResult(revision: 0, dryRun: dryRun, changes: []))
                } else {
                    Console.out("Nothing to change: the directory already holds the \(plan.unchanged) people in \(file) as they are.")
                }
                return
            }
            try AdminCommand.apply(plan.changes, dryRun: dryRun, globals: globals, rows: plan.rows)
            if !globals.json && plan.unchanged > 0 { Console.out("\(plan.unchanged) people in the file need no change.") }
        }
    }
}

/// `carerelay enrol CODE`: makes this person's key here, registers its public half with the
/// code, and writes their configuration. The secret key never leaves this machine.
struct EnrolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrol",
        abstract: "Enrol with the code your administrator gave you: makes your key here and registers it.",
        discussion: """
            Your administrator prints the whole command. It makes a new identity key on this \
            computer (the secret half never leaves it), registers the public half with the broker \
            using the code, and writes your configuration file.

            Example:
              carerelay enrol K7QM-4TXP-9WHD --endpoint tcp://carerelay.example.nhs.uk:5570 --broker-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
            """)
    @OptionGroup var globals: Globals
    @Argument(help: "The enrolment code.") var code: String
    @Flag(help: "Replace an identity key that already exists here (the old one stops working once you enrol).") var force = false

    func run() throws {
        let settings = try globals.resolve(configMayBeMissing: true)
        guard let endpoint = settings.endpoint else {
            throw Failure.usage("enrol needs --endpoint (your administrator gave it with the code)")
        }
        let brokerKey = try settings.brokerPublicKey()
        let path = settings.identityPath
        if FileManager.default.fileExists(atPath: path) && !force {
            throw Failure.usage(
                "an identity key already exists at \(path)",
                hint: "You may be enrolled already (carerelay status). To enrol a new key, use --force: the old key stops working.")
        }
        let pair = try generateIdentityKeys()
        // Written before it is registered, so a key the broker knows is never one this
        // machine has lost; moved into place only once the broker has taken it.
        let pending = path + ".enrolling"
        do {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            try pair.save(path: pending, comment: "CareRelay identity key, enrolled \(Format.date(Date()))")
        } catch {
            throw Failure(Exit.ioError, "cannot write \(pending): \(error)")
        }
        let configuration = ClientConfiguration(
            endpoint: endpoint, brokerPublicKey: brokerKey, keys: pair, replyTimeout: .milliseconds(Int(settings.timeout * 1000)),
            attempts: 2, clientName: "carerelay-cli/\(CLIVersion.text)")
        let enrolment: Enrolment
        do throws(ClientError) {
            enrolment = try CareRelayClient.enrol(configuration, code: code)
        } catch {
            try? FileManager.default.removeItem(atPath: pending)
            throw Failure.from(error)
        }
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: pending, toPath: path)
        } catch {
            throw Failure(Exit.ioError, "you are enrolled, but your key could not be moved from \(pending) to \(path): \(error); move it by hand")
        }
        let wroteConfig = try writeConfigurationIfAbsent(endpoint: endpoint, brokerKey: settings.brokerKey ?? brokerKey, identity: path)
        if globals.json {
            Console.json(enrolment)
            return
        }
        Console.out("Enrolled as \(enrolment.name) (\(enrolment.person)): \(enrolment.roles.map(\.rawValue).joined(separator: ", "))")
        if !enrolment.teams.isEmpty { Console.out("Teams: \(enrolment.teams.map(\.rawValue).joined(separator: ", "))") }
        Console.out("Your identity key is in \(path) (readable only by you); only its public half went to the broker.")
        if let wroteConfig { Console.out("Wrote \(wroteConfig).") }
        Console.out("Next: carerelay status")
    }

    /// Writes the configuration file unless one exists; returns its path when written.
    private func writeConfigurationIfAbsent(endpoint: String, brokerKey: String, identity: String) throws -> String? {
        let path = globals.configFile.path
        guard !FileManager.default.fileExists(atPath: path) else { return nil }
        let key = Settings.isZ85Key(brokerKey) ? brokerKey : URL(fileURLWithPath: Globals.expand(brokerKey)).standardizedFileURL.path
        try ConfigFile(endpoint: endpoint, brokerKey: key, identity: identity).write(to: path, by: "carerelay enrol")
        return path
    }
}
