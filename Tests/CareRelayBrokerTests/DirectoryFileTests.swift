import CareRelayBroker
import CareRelayHarness
import CareRelayModel
import Foundation
import Testing

/// The directory file as Protocols/directory.md documents it.
@Suite struct DirectoryFileTests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocols/directory.md")

    @Test func theDocumentsExampleLoadsWithItsHoursAndTargets() throws {
        let text = try String(contentsOf: Self.document, encoding: .utf8)
        let start = try #require(text.range(of: "```yaml\n"))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let index = try DirectoryFile.parse(String(text[start.upperBound..<end.lowerBound]), path: "Protocols/directory.md")
        let intake = try #require(index.team("west.social-care"))
        #expect(intake.serviceHours?.spans.count == 1)
        #expect(intake.responseTargets?[.urgent]?.seconds == 3_600)
        #expect(intake.responseTargets?[.routine]?.seconds == 172_800)
        #expect(intake.responseTargets?[.emergency] == nil)
    }

    @Test func hoursOrTargetsThatDoNotReadAreRefusedNamingTheTeam() throws {
        let base = """
            organisations: []
            localities: [{id: west, name: West}]
            people: []
            teams:
              - id: west.intake
                name: Intake
                kind: service
                locality: west

            """
        #expect(throws: DirectoryFile.LoadError.self) { try DirectoryFile.parse(base + "    hours: weekdays\n") }
        do {
            _ = try DirectoryFile.parse(base + "    responseTargets: {urgent: soon}\n")
            Issue.record("a target that does not read was taken")
        } catch {
            #expect(error.reason.contains("'soon' is not a response time"), "\(error)")
        }
        _ = try DirectoryFile.parse(base + "    hours: mon-fri 08:00-18:00\n    responseTargets: {same-day: 6h}\n")
    }
}

/// `carerelay-broker directory import` and `export`, with the real executable: what export
/// prints, imported again, is the same directory.
@Suite struct DirectoryImportExportTests {
    func broker(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = BrokerProcess.executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }

    @Test("a directory exported and imported again is the same, to the field")
    func roundTrip() throws {
        let system = try CareSystem()
        var directory = system.directory.directory
        // Every optional field a person may have: no key, an email, a scope.
        directory.people.append(
            Directory.Person(
                id: "admin.east", name: "East IT", roles: [.administrator], organisation: "sunderland-ccg", teams: [], key: nil,
                email: "east.it@sunderland.example", administers: [.locality("east"), .organisation("sunderland-ccg")]))
        let folder = system.folder
        let file = folder.appendingPathComponent("directory.yaml").path
        try DirectoryFile.encode(directory).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try DirectoryFile.load(path: file).directory == directory)

        let store = folder.appendingPathComponent("export.sqlite").path
        let imported = try broker(["directory", "import", file, "--store", store])
        #expect(imported.status == 0, "\(imported)")
        #expect(imported.out.contains("as directory revision 1"), "\(imported)")
        let exported = try broker(["directory", "export", "--store", store])
        #expect(exported.status == 0, "\(exported)")
        #expect(try DirectoryFile.parse(exported.out).directory == directory)
        // Importing the export makes the next revision, unchanged.
        let again = folder.appendingPathComponent("again.yaml").path
        try exported.out.write(toFile: again, atomically: true, encoding: .utf8)
        #expect(try broker(["directory", "import", again, "--store", store]).out.contains("as directory revision 2"))
        #expect(try DirectoryFile.parse(try broker(["directory", "export", "--store", store]).out).directory == directory)
        // A file that does not validate is refused, naming it, and the store keeps its directory.
        try "organisations: []\nlocalities: []\nteams: []\npeople: [{id: x, name: X, roles: [], teams: []}]\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        let refused = try broker(["directory", "import", file, "--store", store])
        #expect(refused.status != 0 && refused.err.contains("has no roles"), "\(refused)")
        #expect(try broker(["directory", "export", "--store", store]).out.contains("# CareRelay directory, revision 2"))
    }
}
