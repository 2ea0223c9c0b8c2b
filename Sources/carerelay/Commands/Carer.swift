import ArgumentParser
import CareRelayClient
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
                SHA-256 hash travels to the bridge, which accepts it once, until it expires. The carer \
                sees only what the patient has explicitly agreed carers may see: record that first \
                (carerelay consent record --actor person:CARER ...).

                Example:
                  carerelay carer invite --carer carer.ellis --patient 9434765919 --days 7
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The carer's directory id.") var carer: String
        @Option(help: ArgumentHelp("The cared-for patient's NHS number; repeat for several.", valueName: "nhs-number")) var patient: [String]
        @Option(help: "The carer bridge's gateway id in the directory.") var gateway = "bridge"
        @Option(help: "Days until the code expires (1-30).") var days = 7

        func run() throws {
            guard !patient.isEmpty else { throw Failure.usage("name the cared-for person with --patient NHS-NUMBER") }
            guard (1...30).contains(days) else { throw Failure.usage("--days must be between 1 and 30") }
            guard PersonID.isWellFormed(carer), PersonID.isWellFormed(gateway) else {
                throw Failure.usage("--carer and --gateway are directory ids (a-z, 0-9, '.', '-', '_')")
            }
            let patients = try patient.map { try Input.nhsNumber($0) }
            let code = InvitationCode.generate()
            let expires = Date().addingTimeInterval(Double(days) * 86_400)
            let client = try globals.connect()
            let body: [String: Any] = [
                "carer": carer, "patients": patients.map(\.digits), "codeHash": InvitationCode.hash(code),
                "expires": Timestamp(expires).text, "issuedBy": client.welcome?.person.rawValue ?? "",
            ]
            let bytes = try Input.jsonBytes(body)
            _ = try Input.validate(kind: .carerInvite, bytes, source: "invitation")
            let header = Sender.header(kind: .carerInvite, to: [.person(PersonID(gateway))], key: nil)
            let accepted = try Sender.send(
                client, header, body: bytes, what: "Invitation for \(carer) sent to the carer bridge; message", json: globals.json)
            if !globals.json {
                Console.out(
                    """

                    Invitation code for \(carer): \(code)
                    It works once, until \(Timestamp(expires).text). Give it to the carer in person or by phone;
                    it is not stored anywhere but here.
                    """)
            }
            try Sender.finish(accepted)
        }
    }
}
