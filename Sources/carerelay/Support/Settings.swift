import ArgumentParser
import CareRelayClient
import Foundation
import Yams
import ZeroMQ

/// Options every command takes: where the broker is, who we are, and how to print.
struct Globals: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("Configuration file (env CARERELAY_CONFIG; default ~/.config/carerelay/config.yaml).", valueName: "path"))
    var configPath: String?

    @Option(help: ArgumentHelp("Broker endpoint, e.g. tcp://carerelay.example.nhs.uk:5555 (env CARERELAY_ENDPOINT).", valueName: "endpoint"))
    var endpoint: String?

    @Option(
        name: .customLong("broker-key"),
        help: ArgumentHelp(
            "The broker's public key: 40 Z85 characters, or the path of broker.key.pub (env CARERELAY_BROKER_KEY).", valueName: "key-or-path"))
    var brokerKey: String?

    @Option(help: ArgumentHelp("Your identity key file (env CARERELAY_IDENTITY; default ~/.config/carerelay/identity.key).", valueName: "path"))
    var identity: String?

    @Option(
        name: .customLong("reply-timeout"),
        help: ArgumentHelp("Seconds to wait for each answer before trying again (env CARERELAY_TIMEOUT; default 5).", valueName: "seconds"))
    var timeout: Double?

    @Flag(help: "Print JSON for scripts instead of tables and text.")
    var json = false

    /// The environment, read once (tests run the binary with their own).
    var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func expand(_ path: String) -> String {
        if path == "~" { return home }
        if path.hasPrefix("~/") { return home + String(path.dropFirst(1)) }
        return path
    }

    static var home: String {
        ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
    }

    static var configFolder: String {
        if let xdg = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"], !xdg.isEmpty {
            return xdg + "/carerelay"
        }
        return home + "/.config/carerelay"
    }

    func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return value
    }

    /// Where the configuration file is, and what set it.
    var configFile: (path: String, source: String) {
        if let flag = nonEmpty(configPath) { return (Self.expand(flag), "--config") }
        if let env = nonEmpty(environment["CARERELAY_CONFIG"]) { return (Self.expand(env), "CARERELAY_CONFIG") }
        return (Self.configFolder + "/config.yaml", "default")
    }

    /// `mayBeMissing`: for a command that writes the file (`enrol`), a file named by flag or
    /// environment that does not exist yet is no mistake.
    func loadConfigFile(mayBeMissing: Bool = false) throws -> ConfigFile? {
        let (path, source) = configFile
        guard FileManager.default.fileExists(atPath: path) else {
            if source != "default" && !mayBeMissing {
                throw Failure(
                    Exit.config, "configuration file \(path) (from \(source)) does not exist",
                    hint: "Create it with carerelay config init --endpoint tcp://HOST:PORT --broker-key PATH.")
            }
            return nil
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Failure(Exit.config, "cannot read configuration file \(path): \(error.localizedDescription)")
        }
        do {
            return try YAMLDecoder().decode(ConfigFile.self, from: text)
        } catch {
            throw Failure(
                Exit.config, "configuration file \(path) is not valid: \(error)",
                hint: "It holds endpoint, brokerKey and identity; carerelay config init writes one.")
        }
    }

    /// Everything resolved: flag, then environment, then file, then default.
    func resolve(configMayBeMissing: Bool = false) throws -> Settings {
        let file = try loadConfigFile(mayBeMissing: configMayBeMissing)
        var sources: [String: String] = [:]
        func pick(_ name: String, flag: String?, env: String, file fileValue: String?) -> String? {
            if let v = nonEmpty(flag) { sources[name] = "flag"; return v }
            if let v = nonEmpty(environment[env]) { sources[name] = env; return v }
            if let v = nonEmpty(fileValue) { sources[name] = "config file"; return v }
            return nil
        }
        let endpoint = pick("endpoint", flag: self.endpoint, env: "CARERELAY_ENDPOINT", file: file?.endpoint)
        let brokerKey = pick("brokerKey", flag: self.brokerKey, env: "CARERELAY_BROKER_KEY", file: file?.brokerKey)
        var identity = pick("identity", flag: self.identity, env: "CARERELAY_IDENTITY", file: file?.identity).map(Self.expand)
        if identity == nil {
            identity = Self.configFolder + "/identity.key"
            sources["identity"] = "default"
        }
        var timeout = 5.0
        if let t = self.timeout {
            timeout = t
        } else if let text = nonEmpty(environment["CARERELAY_TIMEOUT"]) {
            guard let t = Double(text) else { throw Failure.usage("CARERELAY_TIMEOUT must be a number of seconds, not '\(text)'") }
            timeout = t
        } else if let t = file?.timeout {
            timeout = t
        }
        guard timeout > 0, timeout <= 600 else { throw Failure.usage("the timeout must be between 0 and 600 seconds") }
        return Settings(
            endpoint: endpoint, brokerKey: brokerKey, identityPath: identity ?? "", timeout: timeout,
            configPath: configFile.path, sources: sources)
    }

    /// Connects to the broker as the person whose identity key we hold.
    func connect(receive: Bool = false) throws -> CareRelayClient {
        let settings = try resolve()
        guard let endpoint = settings.endpoint else {
            throw Failure(
                Exit.config, "no broker endpoint is configured",
                hint: "Run carerelay config init --endpoint tcp://HOST:PORT --broker-key PATH, or set CARERELAY_ENDPOINT.")
        }
        guard endpoint.contains("://") else {
            throw Failure.usage("'\(endpoint)' is not a broker endpoint", hint: "Write it like tcp://carerelay.example.nhs.uk:5555.")
        }
        let brokerKey = try settings.brokerPublicKey()
        let keys = try settings.identityKeys()
        let attempts = Int(environment["CARERELAY_ATTEMPTS"] ?? "") ?? 2
        let configuration = ClientConfiguration(
            endpoint: endpoint, brokerPublicKey: brokerKey, keys: keys, receive: receive, credit: 64,
            replyTimeout: .milliseconds(Int(settings.timeout * 1000)), attempts: max(1, min(attempts, 10)),
            clientName: "carerelay-cli/\(CLIVersion.text)")
        do {
            return try CareRelayClient(configuration: configuration)
        } catch {
            throw Failure.from(error)
        }
    }
}

enum CLIVersion {
    static let text = "0.1.0"
}

/// ~/.config/carerelay/config.yaml
struct ConfigFile: Codable {
    var endpoint: String?
    /// The broker's public key, or the path of its public key file.
    var brokerKey: String?
    var identity: String?
    var timeout: Double?

    /// Writes the file at `path`, its folder readable only by its owner; `command` is named in
    /// its first line.
    func write(to path: String, by command: String) throws {
        var text = "# CareRelay client configuration (\(command))\n"
        if let endpoint { text += "endpoint: \"\(endpoint)\"\n" }
        if let brokerKey { text += "brokerKey: \"\(brokerKey)\"\n" }
        if let identity { text += "identity: \"\(identity)\"\n" }
        if let timeout { text += "timeout: \(timeout)\n" }
        do {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw Failure(Exit.ioError, "cannot write \(path): \(error.localizedDescription)")
        }
    }
}

/// A new identity key pair, made on this machine.
func generateIdentityKeys() throws -> CurveKeyPair {
    do { return try CurveKeyPair.generate() } catch {
        throw Failure(Exit.software, "cannot generate a key: \(error) (is libzmq built with CURVE?)")
    }
}

struct Settings {
    var endpoint: String?
    var brokerKey: String?
    var identityPath: String
    var timeout: Double
    var configPath: String
    var sources: [String: String]

    static func isZ85Key(_ text: String) -> Bool {
        text.utf8.count == 40 && (try? Z85.decode(text))?.count == 32
    }

    func brokerPublicKey() throws -> String {
        guard let brokerKey else {
            throw Failure(
                Exit.config, "the broker's public key is not configured",
                hint:
                    "Get broker.key.pub from your CareRelay administrator, then run carerelay config init --broker-key PATH (or set CARERELAY_BROKER_KEY)."
            )
        }
        let path = Globals.expand(brokerKey)
        if FileManager.default.fileExists(atPath: path) {
            do { return try CurveKeyPair.load(path: path).publicKey } catch {
                throw Failure(Exit.config, "broker key: \(error.description)")
            }
        }
        guard Self.isZ85Key(brokerKey) else {
            throw Failure(Exit.config, "broker key '\(Format.oneLine(brokerKey, max: 50))' is neither a 40-character Z85 key nor an existing file")
        }
        return brokerKey
    }

    func identityKeys() throws -> CurveKeyPair {
        guard FileManager.default.fileExists(atPath: identityPath) else {
            throw Failure(
                Exit.config, "no identity key at \(identityPath)",
                hint: "Enrol first: carerelay enrol CODE, with the code and the line your directory administrator gives you.")
        }
        let loaded: (publicKey: String, secretKey: String?)
        do { loaded = try CurveKeyPair.load(path: identityPath) } catch {
            throw Failure(Exit.config, error.description)
        }
        guard let secret = loaded.secretKey else {
            throw Failure(
                Exit.config, "\(identityPath) holds only a public key; your identity file needs the secret key too",
                hint: "Point --identity at the file carerelay keys generate wrote.")
        }
        return CurveKeyPair(publicKey: loaded.publicKey, secretKey: secret)
    }
}

/// Runs a client call, turning client errors into failures with exit codes.
func brokerCall<T>(_ body: () throws(ClientError) -> T) throws -> T {
    do { return try body() } catch { throw Failure.from(error) }
}
