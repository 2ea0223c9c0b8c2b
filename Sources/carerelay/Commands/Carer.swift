import ArgumentParser
import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayProtocol
import Foundation

struct CarerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carer",
        abstract: "Invite a carer to the carer web page (care co-ordinators).",
        subcommands: [Invite.self])

    struct Invite: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a single-use invitation code for a carer and send its hash to the carer bridge.",
            discussion: """
                The code is printed here, once: give it to the carer in person or by phone. Only its \
                SHA-256 hash travels to the bridge, which accepts it once, until it expires. A carer \
                not yet in the directory is named with --name: the broker adds them (they need no key; \
                the bridge acts for them) and lists them as the patient's carer. The carer sees only \
                what the patient has explicitly agreed carers may see: record that too \
                (carerelay consent record --actor person:CARER ...).

                Examples:
                  carerelay carer invite --name "Jean Ellis" --patient 9434765919
                  carerelay carer invite --carer carer.ellis --patient 9434765919 --days 7
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The carer's directory id (default: from --name).") var carer: String?
        @Option(help: "The carer's name: adds a carer not yet in the directory.") var name: String?
        @Option(help: ArgumentHelp("The cared-for patient's NHS number; repeat for several.", valueName: "nhs-number")) var patient: [String]
        @Option(help: "The carer bridge's gateway id in the directory.") var gateway = "bridge"
        @Option(help: "Days until the code expires (1-30).") var days = 7

        func run() throws {
            guard !patient.isEmpty else { throw Failure.usage("name the cared-for person with --patient NHS-NUMBER") }
            guard (1...30).contains(days) else { throw Failure.usage("--days must be between 1 and 30") }
            guard carer != nil || name != nil else {
                throw Failure.usage("name the carer: --name \"THEIR NAME\" (or --carer ID if they are in the directory)")
            }
            guard carer.map(PersonID.isWellFormed) ?? true, PersonID.isWellFormed(gateway) else {
                throw Failure.usage("--carer and --gateway are directory ids (a-z, 0-9, '.', '-', '_')")
            }
            let patients = try patient.map { try Input.nhsNumber($0) }
            let code = InvitationCode.generate()
            let expires = Date().addingTimeInterval(Double(days) * 86_400)
            let client = try globals.connect()
            let (carer, newName) = try Self.carerEntry(id: carer, name: name, client: client)
            var body: [String: Any] = [
                "carer": carer.rawValue, "patients": patients.map(\.digits), "codeHash": InvitationCode.hash(code),
                "expires": Timestamp(expires).text, "issuedBy": client.welcome?.person.rawValue ?? "",
            ]
            body["carerName"] = newName
            let bytes = try Input.jsonBytes(body)
            _ = try Input.validate(kind: .carerInvite, bytes, source: "invitation")
            let header = Sender.header(kind: .carerInvite, to: [.person(PersonID(gateway))], key: nil)
            let accepted = try Sender.send(
                client, header, body: bytes, what: "Invitation for \(carer) sent to the carer bridge; message", json: globals.json)
            if !globals.json {
                Console.out(
                    """

                    Invitation code for \(carer)\(newName == nil ? "" : " (new in the directory; invite again with --carer \(carer))"): \(code)
                    It works once, until \(Timestamp(expires).text). Give it to the carer in person or by phone;
                    it is not stored anywhere but here.
                    """)
            }
            try Sender.finish(accepted)
        }

        /// The carer's id, and their name when the broker is to add them. By --name alone the
        /// carer is always new (two carers may share a name): a carer already in the directory
        /// is invited again by --carer ID.
        static func carerEntry(id: String?, name: String?, client: CareRelayClient) throws -> (PersonID, String?) {
            let listing = try brokerCall { () throws(ClientError) in try client.query(DirectoryQuery()) }
            if let id {
                let person = listing.people.first { $0.id.rawValue == id }
                guard person != nil || name != nil else {
                    throw Failure.usage("\(id) is not in the directory", hint: "Add --name \"THEIR NAME\" to add them as a new carer.")
                }
                return (PersonID(id), person == nil ? name : nil)
            }
            guard let name, let base = Directory.suggestedID(name: name, email: nil) else {
                throw Failure.usage("no directory id can be made from the name; give --carer ID")
            }
            // "carer.jean.ellis", then "carer.jean.ellis.2", ... past anyone with that id.
            for n in 1...99 {
                let candidate = PersonID("carer.\(base)" + (n == 1 ? "" : ".\(n)"))
                if !listing.people.contains(where: { $0.id == candidate }) { return (candidate, name) }
            }
            throw Failure.usage("too many people share the id carer.\(base); give --carer ID")
        }
    }
}
