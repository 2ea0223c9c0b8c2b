import ArgumentParser
import CareRelayBridge
import CareRelayClient
import CareRelayModel
import Foundation
import Hummingbird
import Logging
import ZeroMQ

private let environment = ProcessInfo.processInfo.environment

@main
struct BridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay-bridge",
        abstract: "The CareRelay web app for carers: care plans as they may see them, live updates, check-ins.",
        discussion: """
            Connects to the broker as one gateway identity (a directory entry with role gateway \
            and actsFor listing the carers it serves), stores what the broker delivers for each \
            carer before confirming it, and serves plain HTML pages. Carers sign in with a \
            one-time invitation code that a care co-ordinator sends as a carer.invite message \
            to person:<gateway id>; see docs/bridge.md.

            Every option can also be set in the environment (CARERELAY_BROKER, \
            CARERELAY_BROKER_KEY, CARERELAY_GATEWAY_KEY_FILE, CARERELAY_GATEWAY_ID, \
            CARERELAY_BRIDGE_STORE, CARERELAY_BRIDGE_HOST, CARERELAY_BRIDGE_PORT, \
            CARERELAY_BRIDGE_SECURE_COOKIES=1, CARERELAY_BRIDGE_TRUST_PROXY=1).

            Example:
              carerelay-bridge --broker tcp://127.0.0.1:5570 --broker-key var/broker.key.pub \\
                --key-file var/bridge.key --store var/bridge.sqlite --port 8080
            """)

    @Option(help: "The broker's ZeroMQ endpoint.")
    var broker = environment["CARERELAY_BROKER"] ?? "tcp://127.0.0.1:5570"

    @Option(help: "The broker's public key: 40 Z85 characters, or a file holding a 'public:' line.")
    var brokerKey = environment["CARERELAY_BROKER_KEY"] ?? "var/broker.key.pub"

    @Option(help: "The bridge's own CURVE key file (public and secret lines); its public key is in the directory.")
    var keyFile = environment["CARERELAY_GATEWAY_KEY_FILE"] ?? "var/bridge.key"

    @Option(help: "The bridge's directory id (role gateway).")
    var gatewayID = environment["CARERELAY_GATEWAY_ID"] ?? "bridge"

    @Option(help: "The bridge's SQLite store. Created on first start.")
    var store = environment["CARERELAY_BRIDGE_STORE"] ?? "var/bridge.sqlite"

    @Option(help: "HTTP address to listen on.")
    var host = environment["CARERELAY_BRIDGE_HOST"] ?? "127.0.0.1"

    @Option(help: "HTTP port to listen on.")
    var port = Int(environment["CARERELAY_BRIDGE_PORT"] ?? "") ?? 8080

    @Flag(help: "Mark cookies Secure. Use whenever carers reach the bridge over HTTPS (directly or through a TLS proxy).")
    var secureCookies = environment["CARERELAY_BRIDGE_SECURE_COOKIES"] == "1"

    @Flag(help: "Take the client's address from X-Forwarded-For (only behind a proxy you run), for sign-in rate limits.")
    var trustProxy = environment["CARERELAY_BRIDGE_TRUST_PROXY"] == "1"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        var logger = Logger(label: "carerelay.bridge")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        let brokerPublic: String
        if brokerKey.utf8.count == 40, !FileManager.default.fileExists(atPath: brokerKey) {
            brokerPublic = brokerKey
        } else {
            brokerPublic = try CurveKeyPair.load(path: brokerKey).publicKey
        }
        let loaded = try CurveKeyPair.load(path: keyFile)
        guard let secret = loaded.secretKey else { throw ValidationError("\(keyFile) holds no secret key; the bridge needs its own key pair") }
        let folder = (store as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        guard PersonID.isWellFormed(gatewayID) else { throw ValidationError("--gateway-id: '\(gatewayID)' is not a directory id") }
        if !secureCookies && host != "127.0.0.1" && host != "localhost" && host != "::1" {
            logger.warning("listening beyond loopback without --secure-cookies: serve carers over HTTPS and set --secure-cookies")
        }

        let log = logger
        let bridgeStore = try BridgeStore(path: store)
        let hub = LiveHub()
        let intake = DeliveryIntake(store: bridgeStore, hub: hub, gatewayID: PersonID(gatewayID), logger: logger)
        let gateway = BrokerGateway(
            configuration: ClientConfiguration(
                endpoint: broker, brokerPublicKey: brokerPublic,
                keys: CurveKeyPair(publicKey: loaded.publicKey, secretKey: secret),
                receive: true, clientName: "carerelay-bridge"),
            intake: intake, logger: logger)
        let bridge = Bridge(
            configuration: BridgeConfiguration(gatewayID: PersonID(gatewayID), secureCookies: secureCookies, trustForwardedFor: trustProxy),
            store: bridgeStore, link: gateway, hub: hub, logger: logger)
        let app = Application(
            router: bridge.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "carerelay-bridge"),
            onServerRunning: { channel in
                log.notice("carerelay-bridge listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
            },
            logger: logger)
        // Open live-update streams would hold a graceful shutdown up: end them on the same
        // signals that stop the server (the browsers reconnect to whatever comes next).
        var stops: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { hub.finishAll() }
            source.resume()
            stops.append(source)
        }
        defer {
            hub.finishAll()
            gateway.stop()
        }
        try await app.runService()
        withExtendedLifetime(stops) {}
    }
}
