import CareRelayModel
import Foundation
import Testing

/// After the meeting: the chair records each item's outcome and actions, publishes the next
/// version, and each owner finds what is theirs to do.
@Suite struct MDTOutcomeTests {
    @Test func outcomesAndActionsArePublishedAndOwnersFindTheirs() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.mdt"]).status == 0)
        #expect(
            try nurse.run(["consent", "record", "--patient", ellisNHS, "--actor", "team:west.mdt", "--purpose", "mdt-discussion"]).status == 0)
        let mdt = try system.cli("mdt.jones")
        let draft = mdt.workingDirectory.appendingPathComponent("wed.json").path
        let start = Timestamp(Date().addingTimeInterval(-3600)).text
        #expect(
            try mdt.run([
                "mdt", "create", "--team", "west.mdt", "--start", start, "--location", "Pallion HC room 2", "--meeting", "west.mdt.today",
                "--output", draft,
            ]).status == 0)
        #expect(
            try mdt.run([
                "mdt", "add-item", "--file", draft, "--patient", ellisNHS, "--reason", "Two falls; carer in hospital", "--owner", "coord.patel",
            ]).status == 0)
        #expect(try mdt.run(["mdt", "publish", "--file", draft]).status == 0)

        let outcome = try mdt.run([
            "mdt", "outcome", "--file", draft, "--item", "1", "--decision", "Package of care increased to two calls a day",
            "--action", "Arrange the second daily call|coord.patel|2020-01-06", "--action", "Falls clinic referral|nurse.ali",
        ])
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stdout.contains("with 2 action(s)"), "\(outcome)")
        let update = try mdt.run(["mdt", "update", "--file", draft])
        #expect(update.status == 0, "\(update)")
        let id = try #require(sentID(update), "\(update)")

        let shown = try nurse.run(["mdt", "show", id])
        #expect(shown.stdout.contains("Outcome: Package of care increased to two calls a day"), "\(shown)")
        #expect(shown.stdout.contains("action: Falls clinic referral, nurse.ali"), "\(shown)")

        let mine = try system.cli("coord.patel").run(["mdt", "actions", "--mine"])
        #expect(mine.status == 0, "\(mine)")
        #expect(mine.stdout.contains("2020-01-06 OVERDUE"), "\(mine)")
        #expect(mine.stdout.contains("Arrange the second daily call"), "\(mine)")
        #expect(!mine.stdout.contains("Falls clinic referral"), "only her own: \(mine)")
        let all = try nurse.run(["mdt", "actions"])
        #expect(all.stdout.contains("Falls clinic referral"), "\(all)")
        #expect(all.stdout.contains("943 476 5919"), "\(all)")

        // Bad input is stopped with a reason: an item not on the agenda, a date that is not one,
        // an owner nobody knows (the broker refuses the whole agenda).
        #expect(try mdt.run(["mdt", "outcome", "--file", draft, "--item", "5", "--decision", "x"]).status == 64)
        #expect(
            try mdt.run(["mdt", "outcome", "--file", draft, "--item", "1", "--decision", "x", "--action", "Visit|gp.khan|next week"]).status == 64)
        #expect(try mdt.run(["mdt", "outcome", "--file", draft, "--item", "1", "--decision", "x", "--action", "Visit|nobody.here"]).status == 0)
        let refused = try mdt.run(["mdt", "update", "--file", draft])
        #expect(refused.status == 65, "\(refused)")
        #expect(refused.stderr.contains("nobody.here is not a person in the directory"), "\(refused)")
    }
}
