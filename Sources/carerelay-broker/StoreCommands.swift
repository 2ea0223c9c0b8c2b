import ArgumentParser
import CareRelayStore
import Foundation
import ZeroMQ

/// host:port, as given on the command line.
struct HostAndPort {
    var host: String
    var port: Int

    init(_ text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ValidationError("'\(text)' is not host:port (e.g. 127.0.0.1:5571)")
        }
        host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
    }
}

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the store to a backup file while the broker keeps serving.",
        discussion: """
            Uses SQLite's online backup API on a read-only connection: the copy is one \
            consistent moment of the store, taken without stopping or slowing the broker. \
            Everything accepted before the backup started is in it. The copy is checked \
            (integrity and the whole audit chain) before this command reports success.

            Example:
              carerelay-broker backup --store var/carerelay.sqlite --to /backups/carerelay-$(date +%F).sqlite
            """)

    @Option(help: "The broker's store.")
    var store = "var/carerelay.sqlite"

    @Option(help: "The backup file to write. Must not exist.")
    var to: String

    func run() throws {
        try refusePostgres(store)
        let inspector = try StoreInspector(path: store)
        try inspector.backup(to: to)
        let report = try StoreRestore.check(backup: to)
        print(
            "backup written to \(to): \(report.statistics.messages) messages, \(report.statistics.undelivered) awaiting delivery, audit chain intact (\(report.auditRows) lines)"
        )
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a backup back as the broker's store (the broker must be stopped).",
        discussion: """
            Checks the backup first (SQLite integrity check and the whole audit chain) and \
            refuses a damaged one. Refuses while a broker has the store open. The store it \
            replaces is kept beside it as <store>.replaced-<unix time>; messages accepted \
            after the backup was taken are only there (see docs/operations.md).

            Example:
              carerelay-broker restore --from /backups/carerelay-2026-11-23.sqlite --store var/carerelay.sqlite
              carerelay-broker restore --from /backups/carerelay-2026-11-23.sqlite --check
            """)

    @Option(help: "The backup file.")
    var from: String

    @Option(help: "The broker's store to replace.")
    var store = "var/carerelay.sqlite"

    @Flag(help: "Only check the backup; change nothing.")
    var check = false

    func run() throws {
        try refusePostgres(store)
        if check {
            let report = try StoreRestore.check(backup: from)
            print("backup \(from) is sound: \(report.statistics.messages) messages, audit chain intact (\(report.auditRows) lines)")
            return
        }
        let report = try StoreRestore.restore(backup: from, to: store)
        print(
            "restored \(from) to \(store): \(report.statistics.messages) messages, \(report.statistics.undelivered) awaiting delivery, audit chain intact (\(report.auditRows) lines). Start the broker."
        )
    }
}

struct RotateKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Give the broker a new CURVE key pair (the old one is kept, not deleted).",
        discussion: """
            Writes a new key pair to --key-file and its public half to <key-file>.pub; the old \
            pair is moved to <key-file>.retired-<unix time>. Queued messages are untouched: \
            they belong to people, not to keys. Then: give clients the new public key \
            (brokerKey in their config.yaml, the bridge's --broker-key), and restart the broker.

            Example:
              carerelay-broker rotate-key --key-file var/broker.key
            """)

    @Option(help: "The broker's key file.")
    var keyFile = "var/broker.key"

    func run() throws {
        let files = FileManager.default
        guard files.fileExists(atPath: keyFile) else {
            throw ValidationError("\(keyFile) does not exist: the broker creates its first key pair itself at start")
        }
        let retired = "\(keyFile).retired-\(Int(Date().timeIntervalSince1970))"
        try files.moveItem(atPath: keyFile, toPath: retired)
        let pair = try CurveKeyPair.generate()
        try pair.save(path: keyFile, comment: "CareRelay broker key pair")
        if files.fileExists(atPath: keyFile + ".pub") { try files.removeItem(atPath: keyFile + ".pub") }
        try pair.savePublic(path: keyFile + ".pub", comment: "CareRelay broker public key: give this to clients")
        print(
            """
            new broker public key: \(pair.publicKey)
            written to \(keyFile) and \(keyFile).pub; the old pair is in \(retired)
            next: give clients the new public key, then restart the broker
            """)
    }
}

struct GenerateKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-key",
        abstract: "Make the broker's CURVE key pair before its first start (never overwrites one).",
        discussion: """
            Writes a new key pair to --key-file (readable by its owner only) and its public half             to <key-file>.pub. Several brokers sharing one PostgreSQL store must all have the same             pair: make it once, on one machine, and copy the key file to every node over a channel             you trust (scp, your configuration management's secrets), keeping it readable only by             the user the broker runs as; give clients the .pub. A single broker may skip this: it             makes its own pair at first start.

            Example:
              carerelay-broker generate-key --key-file var/broker.key
            """)

    @Option(help: "Where to write the broker's key pair.")
    var keyFile = "var/broker.key"

    func run() throws {
        guard !FileManager.default.fileExists(atPath: keyFile) else {
            throw ValidationError("\(keyFile) exists already: a key pair in use is replaced with rotate-key, never overwritten")
        }
        let pair = try CurveKeyPair.generate()
        try pair.save(path: keyFile, comment: "CareRelay broker key pair")
        try pair.savePublic(path: keyFile + ".pub", comment: "CareRelay broker public key: give this to clients")
        print(
            """
            broker public key: \(pair.publicKey)
            written to \(keyFile) (secret: copy it to every node, readable by the broker's user only) and \(keyFile).pub (for clients)
            """)
    }
}

/// Backup and restore here are SQLite's; a shared PostgreSQL store is backed up by PostgreSQL.
func refusePostgres(_ store: String) throws {
    guard store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") else { return }
    throw ValidationError(
        "--store: backup and restore here are for the SQLite store; back up a PostgreSQL store with pg_dump or base backups with WAL archiving (docs/scale-out.md)"
    )
}
