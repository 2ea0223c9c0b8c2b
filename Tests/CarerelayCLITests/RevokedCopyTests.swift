import Foundation
import Testing

/// A copy the broker took back is shown as taken back, never as if it were still there.
@Suite struct RevokedCopyTests {
    @Test func aPlanTakenBackIsListedAsRevoked() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        for member in ["person:nurse.ali", "team:west.social-care", "team:west.voluntary"] {
            #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", member]).status == 0)
        }
        // The volunteers see her plan only with her explicit consent.
        let consent = try nurse.run([
            "consent", "record", "--patient", ellisNHS, "--actor", "person:vsb.green", "--class", "general", "--class", "social-care",
            "--id", "cd-volunteers",
        ])
        #expect(consent.status == 0, "\(consent)")
        let file = try Fixtures.carePlan(version: 1, wellbeingText: "Managing at home", in: nurse.workingDirectory)
        let shared = try nurse.run(["careplan", "share", "--file", file, "--to", "person:vsb.green", "--to", "person:sw.okafor"])
        #expect(shared.status == 0, "\(shared)")
        let volunteer = try system.cli("vsb.green")
        #expect(try volunteer.run(["careplan", "versions", "--patient", ellisNHS]).stdout.contains("cp.9434765919"))
        // Received and confirmed: what a revocation takes back.
        #expect(try volunteer.run(["watch", "--count", "1", "--timeout", "10"]).status == 0)

        let withdraw = try nurse.run(["consent", "withdraw", "--patient", ellisNHS, "--directive", "cd-volunteers", "--reason", "patient asked"])
        #expect(withdraw.status == 0, "\(withdraw)")
        let live = try volunteer.run(["watch", "--count", "1", "--timeout", "10"])
        #expect(live.stdout.contains("REVOKED"), "\(live)")
        let after = try volunteer.run(["careplan", "versions", "--patient", ellisNHS])
        #expect(after.status == 0, "\(after)")
        #expect(after.stdout.contains("REVOKED"), "\(after)")
        #expect(after.stdout.contains("is taken back"), "\(after)")
        #expect(!after.stdout.contains("Managing at home"), "\(after)")
        // The social worker, whose copy rests on no consent that changed, keeps hers.
        let kept = try system.cli("sw.okafor").run(["careplan", "versions", "--patient", ellisNHS])
        #expect(kept.stdout.contains("cp.9434765919") && !kept.stdout.contains("REVOKED"), "\(kept)")
    }
}

/// Break glass on a read: the withheld sections of one's own copy, shown once confirmed, and
/// said to be audited.
@Suite struct BreakGlassReadTests {
    @Test func aSocialWorkerReadsTheWithheldSectionOnlyWithAReasonAndConfirmation() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        for member in ["person:nurse.ali", "team:west.social-care"] {
            #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", member]).status == 0)
        }
        let file = try Fixtures.carePlan(version: 1, wellbeingText: "Managing at home", in: nurse.workingDirectory)
        #expect(try nurse.run(["careplan", "share", "--file", file, "--to", "person:sw.okafor"]).status == 0)
        let social = try system.cli("sw.okafor")
        let ordinary = try social.run(["careplan", "show", "--patient", ellisNHS])
        #expect(ordinary.status == 0, "\(ordinary)")
        #expect(!ordinary.stdout.contains("PHQ-9"), "\(ordinary)")

        let reason = "Found collapsed at home; paramedics need her mental health history"
        let unconfirmed = try social.run(["careplan", "show", "--patient", ellisNHS, "--break-glass", reason])
        #expect(unconfirmed.status == 64, "\(unconfirmed)")
        #expect(unconfirmed.stderr.contains("nothing was read"), "\(unconfirmed)")
        let whole = try social.run(["careplan", "show", "--patient", ellisNHS, "--break-glass", reason, "--yes"])
        #expect(whole.status == 0, "\(whole)")
        #expect(whole.stdout.contains("PHQ-9"), "\(whole)")
        #expect(whole.stdout.contains("Emergency override: this read is an audit line with your reason"), "\(whole)")
        let audit = try system.cli("coord.patel").run(["audit", "query", "--patient", ellisNHS, "--action", "override"])
        #expect(audit.stdout.contains("sw.okafor") && audit.stdout.contains("read"), "\(audit)")
    }
}
