import CareRelayBroker
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
