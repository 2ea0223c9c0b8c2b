import ArgumentParser
import CareRelayBroker
import Dispatch
import Foundation
import Logging
import ZeroMQ

@main
struct BrokerTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay-broker",
        abstract: "The CareRelay message broker for integrated health and social care.",
        discussion: "Run `carerelay-broker serve --help` for the broker's options (serve is the default).",
        version: CareRelayBroker.version,
        subcommands: [Serve.self, SampleSystem.self],
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

            Signals: SIGHUP reloads the directory file; SIGTERM or SIGINT stops cleanly after \
            the batch in hand is stored.
            """,
        version: CareRelayBroker.version)

    @Option(help: "Where to listen (ZeroMQ endpoint).")
    var endpoint = "tcp://127.0.0.1:5570"

    @Option(help: "The directory file (YAML) naming teams, people, roles and public keys.")
    var directory: String

    @Option(help: "The SQLite store. Created on first start.")
    var store = "var/carerelay.sqlite"

    @Option(help: "The broker's CURVE key file. Created with a new key pair if missing; its public key is also written to <key-file>.pub for clients.")
    var keyFile = "var/broker.key"

    @Option(help: "A consent policy file (YAML). Default: the documented defaults in Protocols/consent-policy.md.")
    var policy: String?

    @Option(help: "How often clients must show they are alive, in milliseconds.")
    var heartbeat = 5_000

    @Option(help: "Largest message body accepted, in bytes.")
    var maxBody = 1 << 20

    @Flag(help: ArgumentHelp(
        "For local development only: no CURVE. Clients connect with ZeroMQ PLAIN, the username naming a person id in the directory (password ignored).",
        discussion: "Nothing is encrypted or authenticated, so the broker refuses to start unless --endpoint is loopback (tcp://127.x.x.x, tcp://localhost, tcp://[::1], ipc://, inproc://)."))
    var insecureDevelopment = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "carerelay.broker")

        // Insecure development mode has no key pair: PLAIN does not use one.
        let keys = insecureDevelopment ? CurveKeyPair(publicKey: "", secretKey: "") : try loadOrCreateKeys(logger: logger)
        let index = try DirectoryFile.load(path: directory)
        let policyText = try policy.map { try String(contentsOfFile: $0, encoding: .utf8) }
        for folder in ([store] + (insecureDevelopment ? [] : [keyFile])).map({ URL(fileURLWithPath: $0).deletingLastPathComponent().path }) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let configuration = BrokerConfiguration(
            endpoint: endpoint, storePath: store, publicKey: keys.publicKey, secretKey: keys.secretKey,
            maxBodyBytes: maxBody, heartbeatMilliseconds: heartbeat, consentPolicyYAML: policyText,
            security: insecureDevelopment ? .insecureDevelopment : .curve)
        let server: BrokerServer
        do {
            server = try BrokerServer.start(configuration: configuration, directory: index, logger: logger)
        } catch let error as BrokerServer.StartError {
            // A clear sentence and a non-zero exit, not a stack of Swift error names.
            FileHandle.standardError.write(Data("carerelay-broker: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // Written unbuffered: scripts and tests wait for this line to know the broker is up.
        FileHandle.standardOutput.write(Data("""
            carerelay-broker \(CareRelayBroker.version) listening on \(server.endpoint) (libzmq \(ZMQLibrary.versionString))
            broker public key: \(insecureDevelopment ? "none: INSECURE DEVELOPMENT MODE (PLAIN, username = person id)" : keys.publicKey)

            """.utf8))

        signal(SIGHUP, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "carerelay.signals")
        let directoryPath = directory
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler {
            do {
                server.reload(directory: try DirectoryFile.load(path: directoryPath))
                logger.notice("directory reloaded on SIGHUP")
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
        server.wait()
        withExtendedLifetime((hup, stops)) {}
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
