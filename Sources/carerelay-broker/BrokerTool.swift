import ArgumentParser
import CareRelayBroker
import CareRelayNotify
import CareRelayOperations
import CareRelayPostgres
import CareRelayStore
import Dispatch
import Foundation
import Logging
import Prometheus
import ZeroMQ

@main
struct BrokerTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay-broker",
        abstract: "The CareRelay message broker for integrated health and social care.",
        discussion: "Run `carerelay-broker serve --help` for the broker's options (serve is the default).",
        version: CareRelayBroker.version,
        subcommands: [Serve.self, DirectoryTool.self, Backup.self, Restore.self, GenerateKey.self, RotateKey.self, SampleSystem.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the broker.",
        discussion: """
            Stores every message durably before acknowledging it, routes referrals, MDT agendas, \
            care plan shares and carer check-ins to the right people, and decides per recipient, \
            from the patient's consent, what each may see. Clients authenticate with CURVE keys \
            listed in the directory file.

            Example:
              carerelay-broker --directory directory.yaml --store var/carerelay.sqlite \\
                --key-file var/broker.key --endpoint tcp://0.0.0.0:5570

            Signals: SIGHUP reloads the directory file (a key removed from it stops working at \
            once, even on an open connection); SIGTERM or SIGINT stops cleanly: the batch in \
            hand is stored and answered, anything still waiting is answered 503, then exit 0.

            Operations (HTTP, loopback by default): /metrics (Prometheus), /health/live, \
            /health/ready, /status. See docs/operations.md.
            """,
        version: CareRelayBroker.version)

    @Option(help: "Where to listen (ZeroMQ endpoint).")
    var endpoint = "tcp://127.0.0.1:5570"

    @Option(
        help:
            "A directory file (YAML) naming teams, people, roles and public keys: it seeds a store that holds no directory yet, and SIGHUP imports it again. Without it the store's directory is served."
    )
    var directory: String?

    @Option(
        help: ArgumentHelp(
            "The store: a SQLite file (created on first start), or a PostgreSQL URL postgres://USER@HOST[:PORT]/DATABASE that several brokers share.",
            discussion:
                "The PostgreSQL password comes from PGPASSWORD rather than the command line, where other users could read it. Off loopback the connection uses TLS and checks the server's certificate (add ?sslrootcert=FILE for a private root; ?sslmode=require or disable to relax it). See docs/scale-out.md."
        ))
    var store = "var/carerelay.sqlite"

    @Option(
        help: "The broker's CURVE key file. Created with a new key pair if missing; its public key is also written to <key-file>.pub for clients.")
    var keyFile = "var/broker.key"

    @Option(help: "A consent policy file (YAML). Default: the documented defaults in Protocols/consent-policy.md.")
    var policy: String?

    @Option(
        help: ArgumentHelp(
            "A notification settings file (YAML): the mail relay, SMS gateway and webhooks that tell people of new work. Default: none are sent.",
            discussion: "See docs/operations.md, Notifications.", valueName: "file"))
    var notifications: String?

    @Option(help: "How often clients must show they are alive, in milliseconds.")
    var heartbeat = 5_000

    @Option(help: "Largest message body accepted, in bytes.")
    var maxBody = 1 << 20

    @Option(
        help: ArgumentHelp(
            "Most messages queued from one connection before the broker stops reading it (ZMQ_RCVHWM).",
            discussion:
                "With the largest frame (2 x --max-body + 64 KiB) this bounds one connection's memory; TCP pushes back on a client that sends faster. See Protocols/CRP.md, security considerations."
        ))
    var receiveQueue = 32

    @Flag(
        help: ArgumentHelp(
            "For local development only: no CURVE. Clients connect with ZeroMQ PLAIN, the username naming a person id in the directory (password ignored).",
            discussion:
                "Nothing is encrypted or authenticated, so the broker refuses to start unless --endpoint is loopback (tcp://127.x.x.x, tcp://localhost, tcp://[::1], ipc://, inproc://)."
        ))
    var insecureDevelopment = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Info and above never carry patient details.")
    var logLevel = "info"

    @Option(help: "Log format: text (one line per event, key=value metadata) or json (one JSON object per line).")
    var logFormat = "text"

    @Option(help: "Where the operations endpoint (metrics, health, status) listens, host:port; 'off' for none. Keep it off the public network.")
    var operations = "127.0.0.1:5571"

    /// A PostgreSQL URL chooses the shared store; anything else is a SQLite file.
    static func storeProvider(_ store: String) throws -> any StoreProvider {
        guard store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") else { return SQLiteStoreProvider(path: store) }
        var location: PostgresLocation
        do { location = try PostgresLocation(url: store) } catch { throw ValidationError("--store: \(error)") }
        if location.password == nil { location.password = ProcessInfo.processInfo.environment["PGPASSWORD"] }
        return PostgresStoreProvider(location)
    }

    func run() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format: write text or json") }
        let operationsAddress = try operations == "off" ? nil : HostAndPort(operations)
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "carerelay.broker")

        // Insecure development mode has no key pair: PLAIN does not use one.
        let keys = insecureDevelopment ? CurveKeyPair(publicKey: "", secretKey: "") : try loadOrCreateKeys(logger: logger)
        let index = try directory.map { try DirectoryFile.load(path: $0) }
        let policyText = try policy.map { try String(contentsOfFile: $0, encoding: .utf8) }
        let storeProvider = try Self.storeProvider(store)
        let storeFiles = storeProvider is SQLiteStoreProvider ? [store] : []
        for folder in (storeFiles + (insecureDevelopment ? [] : [keyFile])).map({ URL(fileURLWithPath: $0).deletingLastPathComponent().path }) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let registry = PrometheusCollectorRegistry()
        var configuration = BrokerConfiguration(
            endpoint: endpoint, storePath: store, store: storeProvider, publicKey: keys.publicKey, secretKey: keys.secretKey,
            maxBodyBytes: maxBody, heartbeatMilliseconds: heartbeat, consentPolicyYAML: policyText,
            metricsFactory: OperationsEndpoint.metricsFactory(for: registry),
            security: insecureDevelopment ? .insecureDevelopment : .curve)
        configuration.receiveQueueMessages = receiveQueue
        var sender: NotificationSender?
        if let notifications {
            let settings = try NotificationSettings.load(path: notifications)
            configuration.notifications = settings.site
            var options = NotificationSender.Options()
            options.retry = settings.retry
            options.lease = settings.lease
            let outbox: @Sendable () throws -> any NotificationOutbox = { [storeProvider] in try storeProvider.openOutbox() }
            let made = NotificationSender(
                openOutbox: outbox, transports: settings.transports, options: options, logger: Logger(label: "carerelay.notify"),
                metrics: configuration.metricsFactory)
            configuration.notificationsQueued = { made.wake() }
            sender = made
        }
        let server: BrokerServer
        do {
            server = try BrokerServer.start(configuration: configuration, directory: index, logger: logger)
        } catch let error as BrokerServer.StartError {
            // A clear sentence and a non-zero exit, not a stack of Swift error names.
            FileHandle.standardError.write(Data("carerelay-broker: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // Signals are handled before anyone is told the broker is up: a SIGTERM sent as soon
        // as the line below appears must stop it cleanly, not be lost.
        signal(SIGHUP, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "carerelay.signals")
        let directoryPath = directory
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler {
            guard let directoryPath else {
                logger.notice("SIGHUP ignored: the broker was started without --directory, so there is no file to import")
                return
            }
            do {
                server.reload(directory: try DirectoryFile.load(path: directoryPath))
                logger.notice("directory imported from the file on SIGHUP")
            } catch {
                logger.error("directory reload failed; keeping the old one", metadata: ["error": "\(error)"])
            }
        }
        hup.resume()
        var stops: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                logger.notice("stopping on signal", metadata: ["signal": "\(sig)"])
                server.stop()
            }
            source.resume()
            stops.append(source)
        }
        // Before the broker says it is up: one whose health checks cannot reach it must not
        // look as if it were serving.
        let operationsService: OperationsServer?
        do {
            operationsService = try operationsAddress.map { address in
                try startOperations(at: address, registry: registry, server: server, logger: logger)
            }
        } catch {
            server.stop()
            FileHandle.standardError.write(Data("carerelay-broker: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // The broker has opened (and migrated) the store: the outbox is there.
        sender?.start()
        // Written unbuffered: scripts and tests wait for this line to know the broker is up.
        FileHandle.standardOutput.write(
            Data(
                """
                carerelay-broker \(CareRelayBroker.version) listening on \(server.endpoint) (libzmq \(ZMQLibrary.buildDescription))
                broker public key: \(insecureDevelopment ? "none: INSECURE DEVELOPMENT MODE (PLAIN, username = person id)" : keys.publicKey)

                """.utf8))
        server.wait()
        sender?.stop()
        operationsService?.stop()
        withExtendedLifetime((hup, stops)) {}
    }

    /// The HTTP endpoint for operators, on its own threads beside the broker's loop.
    private func startOperations(
        at address: HostAndPort, registry: PrometheusCollectorRegistry,
        server: BrokerServer, logger: Logger
    ) throws -> OperationsServer {
        let endpoint = try OperationsEndpoint(registry: registry, vitals: server.vitals, store: server.store)
        let host = address.host
        return try OperationsServer(endpoint: endpoint, host: host, port: address.port, logger: logger) { port in
            // Scripts and tests read the bound port from this line.
            FileHandle.standardOutput.write(
                Data("operations endpoint on http://\(host):\(port) (/metrics, /health/live, /health/ready, /status)\n".utf8))
        }
    }

    private func loadOrCreateKeys(logger: Logger) throws -> CurveKeyPair {
        if FileManager.default.fileExists(atPath: keyFile) {
            let loaded = try CurveKeyPair.load(path: keyFile)
            guard let secret = loaded.secretKey else {
                throw ValidationError("\(keyFile) holds no secret key; the broker needs its own key pair")
            }
            return CurveKeyPair(publicKey: loaded.publicKey, secretKey: secret)
        }
        let pair = try CurveKeyPair.generate()
        try pair.save(path: keyFile, comment: "CareRelay broker key pair")
        try pair.savePublic(path: keyFile + ".pub", comment: "CareRelay broker public key: give this to clients")
        logger.notice("generated a new broker key pair", metadata: ["file": "\(keyFile)"])
        return pair
    }
}
