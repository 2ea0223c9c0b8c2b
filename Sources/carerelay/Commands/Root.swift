import ArgumentParser
import CareRelayClient
import CareRelayProtocol
import Foundation
import ZeroMQ

struct Carerelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay",
        abstract: "Send and follow referrals, MDT agendas, care plans and consent records through a CareRelay broker.",
        discussion: """
            Start with `carerelay enrol CODE --endpoint ... --broker-key ...`, as your directory \
            administrator gives it to you: it makes your key on this computer, registers it and \
            writes your configuration. docs/cli.md walks through a first referral.

            CONFIGURATION (first found wins: flag, environment, config file, default)
              flag             environment           config.yaml key
              --endpoint       CARERELAY_ENDPOINT    endpoint
              --broker-key     CARERELAY_BROKER_KEY  brokerKey
              --identity       CARERELAY_IDENTITY    identity
              --reply-timeout  CARERELAY_TIMEOUT     timeout (s, default 5)
              --config         CARERELAY_CONFIG      -
              CARERELAY_ATTEMPTS: tries before giving up (default 2)

            \(Exit.help)
            """,
        version: "carerelay \(CLIVersion.text) (libzmq \(ZMQLibrary.versionString))",
        subcommands: [
            EnrolCommand.self, Keys.self, ConfigCommand.self, Status.self, ReferralCommand.self, MDTCommand.self, CarePlanCommand.self,
            ConsentCommand.self, CareTeamCommand.self, CarerCommand.self, CheckInCommand.self, DirectoryCommand.self, Watch.self, AuditCommand.self,
            AdminCommand.self, NotifyCommand.self, OnCallCommand.self,
        ])
}

// MARK: keys

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create and show your identity key (your CURVE key pair).",
        subcommands: [Generate.self, Show.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create your identity key file (readable only by you) and print the public key.",
            discussion: """
                Most people never need this: `carerelay enrol CODE` makes your key and registers \
                it. This is for a site whose operator keeps keys in the directory file. The file \
                goes to ~/.config/carerelay/identity.key unless --identity or CARERELAY_IDENTITY \
                says otherwise. Never share the file itself.

                Example:
                  carerelay keys generate
                """)
        @OptionGroup var globals: Globals
        @Flag(help: "Replace an existing key file (the old key stops working once the directory is updated).")
        var force = false
        @Option(help: "A comment stored in the file, e.g. your name.")
        var comment: String?

        func run() throws {
            let settings = try globals.resolve()
            let path = settings.identityPath
            if FileManager.default.fileExists(atPath: path) && !force {
                throw Failure.usage(
                    "an identity key already exists at \(path)",
                    hint: "carerelay keys show prints its public key. Use --force to replace it.")
            }
            let pair = try generateIdentityKeys()
            do {
                try pair.save(path: path, comment: comment ?? "CareRelay identity key, created \(Format.date(Date()))")
            } catch {
                throw Failure(Exit.ioError, error.description)
            }
            if globals.json {
                Console.json(["path": path, "publicKey": pair.publicKey])
                return
            }
            Console.out("Wrote your identity key to \(path) (readable only by you).")
            Console.out("Your public key, for the directory administrator:")
            Console.out("  \(pair.publicKey)")
            Console.out("Next: carerelay config init --endpoint tcp://HOST:PORT --broker-key PATH-TO-broker.key.pub")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print your public key (never the secret one) and the broker's.",
            discussion: "Example:\n  carerelay keys show")
        @OptionGroup var globals: Globals

        func run() throws {
            let settings = try globals.resolve()
            let keys = try settings.identityKeys()
            let broker = try? settings.brokerPublicKey()
            if globals.json {
                Console.json(["identity": settings.identityPath, "publicKey": keys.publicKey, "brokerKey": broker ?? ""])
                return
            }
            Console.out("identity file:   \(settings.identityPath)")
            Console.out("your public key: \(keys.publicKey)")
            Console.out("broker key:      \(broker ?? "(not configured)")")
        }
    }
}

// MARK: config

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Write or show the configuration file.",
        subcommands: [Init.self, Show.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the configuration file from --endpoint, --broker-key and --identity.",
            discussion: """
                Writes ~/.config/carerelay/config.yaml (or --config / CARERELAY_CONFIG).

                Example:
                  carerelay config init --endpoint tcp://carerelay.sunderland.nhs.uk:5555 \\
                      --broker-key ~/Downloads/broker.key.pub
                """)
        @OptionGroup var globals: Globals
        @Flag(help: "Replace an existing configuration file.")
        var force = false

        func run() throws {
            let settings = try? globals.resolve()
            let path = globals.configFile.path
            guard let endpoint = globals.endpoint ?? settings?.endpoint else {
                throw Failure.usage(
                    "config init needs --endpoint", hint: "Example: carerelay config init --endpoint tcp://HOST:5555 --broker-key broker.key.pub")
            }
            guard endpoint.contains("://") else {
                throw Failure.usage("'\(endpoint)' is not a broker endpoint", hint: "Write it like tcp://carerelay.example.nhs.uk:5555.")
            }
            guard var brokerKey = globals.brokerKey ?? settings?.brokerKey else {
                throw Failure.usage("config init needs --broker-key (the broker's public key, or the path of broker.key.pub)")
            }
            if !Settings.isZ85Key(brokerKey) {
                // A path: store it absolute, so the file works from any folder.
                let expanded = Globals.expand(brokerKey)
                guard FileManager.default.fileExists(atPath: expanded) else {
                    throw Failure.usage("--broker-key: \(brokerKey) is neither a 40-character key nor an existing file")
                }
                do { _ = try CurveKeyPair.load(path: expanded) } catch { throw Failure.usage("--broker-key: \(error.description)") }
                brokerKey = URL(fileURLWithPath: expanded).standardizedFileURL.path
            }
            if FileManager.default.fileExists(atPath: path) && !force {
                throw Failure.usage("\(path) already exists", hint: "Use --force to replace it, or edit it by hand.")
            }
            let identity = globals.identity.map { URL(fileURLWithPath: Globals.expand($0)).standardizedFileURL.path }
            try ConfigFile(endpoint: endpoint, brokerKey: brokerKey, identity: identity, timeout: globals.timeout)
                .write(to: path, by: "carerelay config init")
            if globals.json {
                Console.json(["path": path, "endpoint": endpoint, "brokerKey": brokerKey])
            } else {
                Console.out("Wrote \(path).")
                Console.out("Next: carerelay status (checks that the broker knows your key)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the settings in force and where each came from.",
            discussion: "Example:\n  carerelay config show")
        @OptionGroup var globals: Globals

        func run() throws {
            let s = try globals.resolve()
            if globals.json {
                Console.json([
                    "config": s.configPath, "endpoint": s.endpoint ?? "", "brokerKey": s.brokerKey ?? "",
                    "identity": s.identityPath, "timeout": "\(s.timeout)",
                ])
                return
            }
            func src(_ name: String) -> String { s.sources[name].map { "(\($0))" } ?? "" }
            Console.out("config file: \(s.configPath)\(FileManager.default.fileExists(atPath: s.configPath) ? "" : " (absent)")")
            Console.out("endpoint:    \(s.endpoint ?? "(not set)") \(src("endpoint"))")
            Console.out("broker key:  \(s.brokerKey ?? "(not set)") \(src("brokerKey"))")
            Console.out("identity:    \(s.identityPath) \(src("identity"))")
            Console.out("timeout:     \(s.timeout) s")
        }
    }
}

// MARK: status

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the connection: who the broker says you are, and the broker's state.",
        discussion: """
            Shows the broker's version and uptime, connected clients, the store's size and \
            health, messages waiting for delivery (and how long the oldest has waited), \
            referrals waiting at each team's intake, and referrals past their response target.

            Exit 69 means no answer: the broker is down or unreachable, or your broker key is \
            not the broker's. Exit 77 means the broker refused your key: it is not in the \
            directory.

            Example:
              carerelay status
            """)
    @OptionGroup var globals: Globals

    func run() throws {
        let client = try globals.connect()
        let status = try brokerCall { () throws(ClientError) in try client.query(StatusQuery()) }
        let welcome = client.welcome
        if globals.json {
            struct Out: Encodable { var person: String; var name: String; var roles: [String]; var teams: [String]; var status: StatusReport }
            Console.json(
                Out(
                    person: welcome?.person.rawValue ?? "", name: welcome?.name ?? "",
                    roles: welcome?.roles.map(\.rawValue) ?? [], teams: welcome?.teams.map(\.rawValue) ?? [], status: status))
            return
        }
        Console.out("Connected to \(client.connectedEndpoint) (CareRelay broker \(status.broker), protocol \(status.protocolVersion)).")
        if let welcome {
            Console.out(
                "You are \(welcome.name) (\(welcome.person)); roles: \(welcome.roles.map(\.rawValue).joined(separator: ", ")); teams: \(welcome.teams.map(\.rawValue).joined(separator: ", "))"
            )
        }
        Console.out(
            "Broker up \(Format.duration(TimeInterval(status.uptimeSeconds))), \(status.connectedClients) client(s) connected\(status.stopping ? ", shutting down" : "")."
        )
        let store = status.store
        Console.out(
            "Store: \(Format.bytes(store.storeBytes)), \(store.messages) message(s), \(store.auditRows) audit line(s)\(status.storeHealthy ? "" : "; STORE FAILING: new messages are refused")"
        )
        if let oldest = store.oldestUndeliveredAcceptedAt {
            Console.out("Waiting for delivery: \(store.undelivered), the oldest for \(Format.duration(Date().timeIntervalSince(oldest))).")
        } else {
            Console.out("Waiting for delivery: none.")
        }
        let intake = store.intakeWaiting.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        Console.out("Referrals waiting at team intakes: \(intake.isEmpty ? "none" : intake.joined(separator: ", ")).")
        Console.out("Referrals past their response target: \(store.overdueReferrals).")
        Console.out(
            "Notifications waiting to be sent: \(store.notificationsWaiting)"
                + (store.notificationsFailed > 0 ? "; FAILED after every retry: \(store.notificationsFailed) (see the broker's log)." : "."))
    }
}
