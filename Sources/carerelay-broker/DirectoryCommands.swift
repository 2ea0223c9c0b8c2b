import ArgumentParser
import CareRelayBroker
import CareRelayModel
import CareRelayStore
import Foundation

/// The directory file as a way in and out of the store: a site that keeps its directory under
/// version control imports it; anyone can export the store's directory to review or keep.
struct DirectoryTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "directory",
        abstract: "Import a directory file into the store, or export the store's directory as one.",
        subcommands: [Import.self, Export.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the store's directory with a directory file (as the next revision, audited).",
            discussion: """
                Every broker sharing a PostgreSQL store takes the new revision at once. A SQLite \
                store must not be open in a running broker: send that broker SIGHUP instead, or \
                stop it first. Keys enrolled since the file was exported are replaced by the \
                file's: export first if people have enrolled.

                Example:
                  carerelay-broker directory import directory.yaml --store var/carerelay.sqlite
                """)
        @Argument(help: "The directory file (YAML), as Protocols/directory.md describes it.") var file: String
        @Option(help: "The broker's store: a SQLite file or a postgres:// URL.") var store = "var/carerelay.sqlite"

        func run() throws {
            let index = try DirectoryFile.load(path: file)
            let opened = try Serve.storeProvider(store).open()
            defer { opened.close() }
            let current = try opened.storedDirectory()
            let now = Date()
            let revision = try opened.saveDirectory(
                index.directory, after: current?.revision,
                audit: [AuditEntry(at: now, actor: "operator", action: .directory, detail: "directory imported from \(file)")],
                usingCode: nil, at: now)
            print("imported \(file) as directory revision \(revision): \(index.directory.people.count) people, \(index.directory.teams.count) teams")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the store's directory as a directory file (YAML), enrolled keys included.",
            discussion: """
                Importing what this prints gives the same directory back.

                Example:
                  carerelay-broker directory export --store var/carerelay.sqlite > directory.yaml
                """)
        @Option(help: "The broker's store: a SQLite file or a postgres:// URL.") var store = "var/carerelay.sqlite"

        func run() throws {
            let stored: StoredDirectory?
            if store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") {
                let opened = try Serve.storeProvider(store).open()
                defer { opened.close() }
                stored = try opened.storedDirectory()
            } else {
                // Read-only, beside a running broker.
                stored = try StoreInspector(path: store).storedDirectory()
            }
            guard let stored else { throw ValidationError("\(store) holds no directory yet") }
            print("# CareRelay directory, revision \(stored.revision)")
            print(try DirectoryFile.encode(stored.directory), terminator: "")
        }
    }
}
