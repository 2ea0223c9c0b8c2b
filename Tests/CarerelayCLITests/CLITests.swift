import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

/// Each test runs the built `carerelay` executable as a separate process against a broker
/// started in this process, and checks exit codes and what the user reads.
@Suite struct CLITests {
    // MARK: The first referral (docs/cli.md walks through exactly these commands)

    @Test func firstReferralFromEnrolmentToTracking() throws {
        // The GP and the social worker are in the directory without keys; each enrols with a
        // code the directory administrator gives them.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-walk-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        func home(_ name: String) throws -> CLI {
            let folder = scratch.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return CLI(environment: ["HOME": folder.path], workingDirectory: folder)
        }
        let gp = try home("khan")
        let social = try home("okafor")
        let system = try CareSystem(enrolling: ["gp.khan", "sw.okafor"])
        try system.start()
        let admin = try system.cli("admin.it")

        for (cli, person) in [(gp, "gp.khan"), (social, "sw.okafor")] {
            let issued = try admin.run(["admin", "enrol", person])
            #expect(issued.status == 0, "\(issued)")
            let code = try #require(capture(#"\): ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\n"#, in: issued.stdout), "no code printed: \(issued)")
            let enrolled = try cli.run(["enrol", code, "--endpoint", system.endpoint, "--broker-key", system.brokerKeyPath])
            #expect(enrolled.status == 0, "\(enrolled)")
            #expect(!enrolled.stdout.contains("secret key:"), "the secret key is never printed")
        }
        let identity = scratch.appendingPathComponent("khan/.config/carerelay/identity.key").path
        let mode = try FileManager.default.attributesOfItem(atPath: identity)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the identity key must be readable only by its owner")
        // Enrolling again must not overwrite the key silently.
        let again = try gp.run(["enrol", "AAAA-BBBB-CCCC", "--endpoint", system.endpoint, "--broker-key", system.brokerKeyPath])
        #expect(again.status == 64, "\(again)")

        let status = try gp.run(["status"])
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains("Dr Amina Khan (gp.khan)"))
        #expect(status.stdout.contains("Referrals past their response target: 0."), "\(status)")
        #expect(status.stdout.contains("Waiting for delivery: none."), "\(status)")

        let sent = try gp.run([
            "referral", "send", "--to", "team:west.social-care", "--patient", "943 476 5919",
            "--priority", "same-day", "--category", "social-care",
            "--service", "Social care assessment for a package of care at home",
            "--reason", "Two falls in three weeks; her husband, her main carer, was admitted to hospital yesterday",
            "--patient-agreed", "--title", "Mrs", "--given", "Margaret", "--family", "Ellis", "--born", "1940-06-14",
            "--address", "12 Harbour View, Pallion", "--town", "Sunderland", "--postcode", "sr46tj", "--phone", "0191 496 0123",
            "--language", "en", "--no-interpreter", "--needs", "Hard of hearing: speak on her left side",
        ])
        #expect(sent.status == 0, "\(sent)")
        let id = try #require(sentID(sent), "no referral id printed: \(sent)")
        #expect(sent.stdout.contains("sw.okafor"))

        let inbox = try social.run(["referral", "inbox"])
        #expect(inbox.status == 0, "\(inbox)")
        #expect(inbox.stdout.contains(id))
        #expect(inbox.stdout.contains("943 476 5919"))

        let show = try social.run(["referral", "show", id])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("Two falls in three weeks"))
        #expect(show.stdout.contains("Patient:   Mrs Margaret Ellis, NHS 943 476 5919 (agrees)"), "\(show)")
        #expect(show.stdout.contains("Born:      1940-06-14 ("), "\(show)")
        #expect(show.stdout.contains("Address:   12 Harbour View, Pallion, Sunderland SR4 6TJ"), "the postcode as Royal Mail writes it: \(show)")
        #expect(show.stdout.contains("Phone:     0191 496 0123"), "\(show)")
        #expect(show.stdout.contains("Language:  en, no interpreter needed"), "\(show)")
        #expect(show.stdout.contains("Needs:     Hard of hearing: speak on her left side"), "\(show)")

        let accept = try social.run(["referral", "accept", id])
        #expect(accept.status == 0, "\(accept)")
        #expect(accept.stdout.contains("gp.khan"), "the referrer is told: \(accept)")

        let track = try gp.run(["referral", "track", id])
        #expect(track.status == 0, "\(track)")
        #expect(track.stdout.contains("status:       accepted"), "\(track)")
        #expect(track.stdout.contains("taken by:     sw.okafor (Grace Okafor)"), "\(track)")
        #expect(track.stdout.contains("accepted by sw.okafor (Grace Okafor)"), "\(track)")
        #expect(track.stdout.contains("sent by gp.khan (Dr Amina Khan)"), "\(track)")

        // The id is one a person can read out: any case and spacing will do, a typo is caught here.
        #expect(id.count == 14, "a referral id is three groups of four: \(id)")
        let spoken = try gp.run(["referral", "track", id.lowercased().replacingOccurrences(of: "-", with: " ")])
        #expect(spoken.status == 0 && spoken.stdout.contains("status:       accepted"), "\(spoken)")
        var typo = Array(id)
        typo[1] = typo[1] == "7" ? "8" : "7"
        let mistyped = try gp.run(["referral", "track", String(typo)])
        #expect(mistyped.status == 64, "\(mistyped)")
        #expect(mistyped.stderr.contains("check character does not match"), "\(mistyped)")

        let json = try gp.run(["referral", "track", id, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let referral = try #require((object["tracking"] as? [String: Any])?["referral"] as? [String: Any])
        #expect(referral["takenBy"] as? String == "sw.okafor")
    }

    @Test func teamsAndPeopleCanBeLookedUpButNeverTheirKeys() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let teams = try gp.run(["directory", "teams", "--locality", "west"])
        #expect(teams.status == 0, "\(teams)")
        let intake = try #require(teams.stdout.split(separator: "\n").first { $0.hasPrefix("west.social-care ") }, "\(teams)")
        #expect(intake.contains("mon-fri 08:00-18:00") && intake.contains("30 min / 4 h / 8 h / 2 d"), "the team's own targets: \(intake)")
        #expect(intake.contains(" open ") || intake.contains(" closed "), "\(intake)")
        let mdt = try #require(teams.stdout.split(separator: "\n").first { $0.hasPrefix("west.mdt ") }, "\(teams)")
        #expect(mdt.hasSuffix("-"), "an MDT takes no referrals, so has no targets: \(mdt)")

        let show = try gp.run(["directory", "show", "team:west.social-care"])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("Co-ordinator: Priya Patel (coord.patel)"), "\(show)")
        #expect(show.stdout.contains("Responds:    emergency 30 min, urgent 4 h, same-day 8 h, routine 2 d"), "\(show)")
        #expect(show.stdout.contains("Grace Okafor (sw.okafor)"), "\(show)")
        #expect(show.stdout.contains("Out of hours: District nurses: 0191 555 0100; Emergency: 999"), "\(show)")

        let found = try gp.run(["directory", "people", "--search", "OKAFOR"])
        #expect(found.stdout.contains("sw.okafor") && !found.stdout.contains("sw.lee"), "\(found)")
        let person = try gp.run(["directory", "show", "sw.okafor"])
        #expect(person.stdout.contains("Teams:  West social care intake (west.social-care)"), "\(person)")

        let everything = try gp.run(["directory", "people", "--json"])
        #expect(everything.status == 0)
        for key in system.keys.values { #expect(!everything.stdout.contains(key.publicKey), "a key was listed") }
        let unknown = try gp.run(["directory", "show", "west.nowhere"])
        #expect(unknown.status == 64 && unknown.stderr.contains("not a team or person"), "\(unknown)")
    }

    /// docs/cli.md, "An intake's morning", command for command.
    @Test func anIntakesMorning() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        func refer(_ patient: String, _ priority: String, _ service: String, _ name: [String]) throws -> String {
            let sent = try gp.run(
                [
                    "referral", "send", "--to", "team:west.social-care", "--patient", patient, "--priority", priority,
                    "--category", "social-care", "--service", service, "--reason", service, "--patient-agreed",
                ] + name)
            #expect(sent.status == 0, "\(sent)")
            return try #require(sentID(sent), "\(sent)")
        }
        let routine = try refer("485 777 3457", "routine", "Help with shopping", ["--given", "Alan", "--family", "Shaw"])
        let urgent = try refer(robsonNHS, "urgent", "Carer breakdown: husband in hospital", ["--given", "George", "--family", "Robson"])
        let emergency = try refer(ellisNHS, "emergency", "No food or heating; found on the floor", ["--given", "Margaret", "--family", "Ellis"])

        // The co-ordinator's worklist, most urgent first.
        let patel = try system.cli("coord.patel")
        let morning = try patel.run(["referral", "inbox"])
        #expect(morning.status == 0, "\(morning)")
        let order = [emergency, urgent, routine].map { id in morning.stdout.range(of: id)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil } && order.compactMap { $0 } == order.compactMap { $0 }.sorted(), "\(morning.stdout)")
        #expect(morning.stdout.contains("Margaret Ellis, 943 476 5919") && morning.stdout.contains("Dr Amina Khan"), "\(morning.stdout)")
        #expect(morning.stdout.contains(" left"), "time left to respond: \(morning.stdout)")
        #expect(!morning.stdout.contains("\u{1B}["), "no colour in a pipe")

        #expect(try system.cli("sw.okafor").run(["referral", "accept", emergency]).status == 0)
        #expect(try patel.run(["referral", "allocate", urgent, "--to", "sw.lee"]).status == 0)
        let lee = try system.cli("sw.lee")
        #expect(try lee.run(["referral", "pass", routine, "--reason", "Not for me: shopping help is Age UK's"]).status == 0)
        let leeDeclines = try lee.run(["referral", "decline", routine, "--code", "wrong-service", "--reason", "Not social care"])
        #expect(leeDeclines.status == 65 && leeDeclines.stderr.contains("co-ordinator"), "a member passes, the co-ordinator declines: \(leeDeclines)")
        let declined = try patel.run([
            "referral", "decline", routine, "--code", "wrong-service", "--reason", "Shopping help is not social care",
            "--suggest", "Age UK Sunderland volunteers (team:west.voluntary)",
        ])
        #expect(declined.status == 0, "\(declined)")

        let mine = try lee.run(["referral", "inbox", "--mine"])
        #expect(mine.stdout.contains(urgent) && !mine.stdout.contains(emergency) && !mine.stdout.contains(routine), "\(mine.stdout)")
        let json = try patel.run(["referral", "inbox", "--status", "declined", "--json"])
        let lines = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], "\(json)")
        #expect(lines.map { $0["id"] as? String } == [routine])

        // What Dr Khan sees of each.
        let taken = try gp.run(["referral", "track", emergency])
        #expect(taken.stdout.contains("owner:        sw.okafor (Grace Okafor)"), "\(taken.stdout)")
        let allocated = try gp.run(["referral", "track", urgent])
        #expect(allocated.stdout.contains("owner:        sw.lee (Daniel Lee)"), "\(allocated.stdout)")
        #expect(allocated.stdout.contains("allocated to sw.lee (Daniel Lee) by coord.patel (Priya Patel)"), "\(allocated.stdout)")
        let turnedAway = try gp.run(["referral", "track", routine])
        #expect(turnedAway.stdout.contains("status:       declined"), "\(turnedAway.stdout)")
        #expect(turnedAway.stdout.contains("suggests:     Age UK Sunderland volunteers (team:west.voluntary)"), "\(turnedAway.stdout)")
        #expect(!turnedAway.stdout.contains("passed by"), "a member's pass is the team's business: \(turnedAway.stdout)")
    }

    @Test func emergenciesStandOutOnATerminalUnlessNoColourIsSet() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let sent = try gp.run([
            "referral", "send", "--to", "team:west.social-care", "--patient", ellisNHS, "--priority", "emergency", "--service", "Found on the floor",
            "--reason", "Found on the floor", "--patient-agreed",
        ])
        #expect(sent.status == 0, "\(sent)")
        let okafor = try system.cli("sw.okafor")
        // `script` gives the client a terminal of its own, as a person at a desk has.
        let onTerminal = try okafor.run(inTerminal: ["referral", "inbox"])
        #expect(
            onTerminal.stdout.contains("\u{1B}[1;31memergency"), "an emergency line is bold red on a terminal: \(onTerminal.stdout.debugDescription)")
        let plain = try okafor.run(inTerminal: ["referral", "inbox"], extra: ["NO_COLOR": "1"])
        #expect(plain.stdout.contains("emergency") && !plain.stdout.contains("\u{1B}[1;31m"), "NO_COLOR: \(plain.stdout.debugDescription)")
    }

    // MARK: Error paths

    @Test func patientDetailsThatCannotBeRightStopBeforeAnythingIsSent() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let referral = [
            "referral", "send", "--to", "team:west.social-care", "--patient", "943 476 5919", "--service", "Assessment",
            "--reason", "Falls", "--patient-agreed", "--given", "Margaret", "--family", "Ellis",
        ]
        let future = try gp.run(referral + ["--born", "2999-01-01"])
        #expect(future.status == 64, "\(future)")
        #expect(future.stderr.contains("patientDetails.birthDate"), "\(future)")
        #expect(future.stderr.contains("a date of birth is in the past"), "\(future)")
        let postcode = try gp.run(referral + ["--postcode", "SUNDERLAND"])
        #expect(postcode.status == 64, "\(postcode)")
        #expect(postcode.stderr.contains("is not a UK postcode"), "\(postcode)")
        let phone = try gp.run(referral + ["--phone", "0191 496"])
        #expect(phone.status == 64, "\(phone)")
        #expect(phone.stderr.contains("patientDetails.telecom[0].value"), "\(phone)")
        let nameless = try gp.run(Array(referral.dropLast(4)) + ["--born", "1940-06-14"])
        #expect(nameless.status == 64, "\(nameless)")
        #expect(nameless.stderr.contains("need the patient's name"), "\(nameless)")
        let sent = try gp.run(["referral", "list", "--sent"])
        #expect(sent.stdout.contains("No referrals."), "nothing was sent: \(sent)")
    }

    @Test func brokerDownExits69WithAClearMessage() throws {
        let system = try CareSystem()
        try system.start()
        let endpoint = system.endpoint
        system.stop()
        let cli = try system.cli("gp.khan", extra: ["CARERELAY_ENDPOINT": endpoint, "CARERELAY_TIMEOUT": "1"])
        let result = try cli.run(["status"])
        #expect(result.status == 69, "\(result)")
        #expect(result.stderr.contains("no answer from the broker at \(endpoint)"), "\(result)")
        #expect(result.stderr.contains("Check that the broker is running"), "\(result)")
    }

    @Test func aKeyTheDirectoryDoesNotKnowExits77AndABrokerKeyThatIsWrongExits69() throws {
        let system = try CareSystem()
        try system.start()
        let stranger = try system.cli("gp.khan", extra: ["CARERELAY_TIMEOUT": "1"])
        // A key nobody registered.
        let path = stranger.workingDirectory.appendingPathComponent("stranger.key").path
        try CurveKeyPair.generate().save(path: path, comment: "unknown")
        let result = try stranger.run(["status", "--identity", path])
        // The broker lets it in only to enrol, refuses its HELLO, and the client says so.
        #expect(result.status == 77, "\(result)")
        #expect(result.stderr.contains("refused your key: it is not in the directory"), "\(result)")
        #expect(result.stderr.contains("carerelay enrol CODE"), "\(result)")

        // A broker key that is not the broker's: also no answer.
        let wrongBroker = try CurveKeyPair.generate().publicKey
        let second = try system.cli("gp.khan", extra: ["CARERELAY_TIMEOUT": "1", "CARERELAY_BROKER_KEY": wrongBroker]).run(["status"])
        #expect(second.status == 69, "\(second)")
    }

    @Test func anInvalidNHSNumberStopsWith64BeforeContactingTheBroker() throws {
        let system = try CareSystem()
        // No broker at all: if the command tried to connect it would end 69, not 64.
        let cli = try system.cli("gp.khan", extra: ["CARERELAY_ENDPOINT": "tcp://127.0.0.1:9", "CARERELAY_TIMEOUT": "1"])
        let result = try cli.run([
            "referral", "send", "--to", "team:west.social-care", "--patient", "943 476 5918",
            "--service", "Assessment", "--reason", "Falls", "--patient-agreed",
        ])
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains("not a valid NHS number"), "\(result)")
        #expect(result.stderr.contains("check digit is 8 but should be 9"), "\(result)")
        #expect(result.stderr.contains("Nothing was sent"), "\(result)")

        let short = try cli.run(["careteam", "show", "--patient", "943476591"])
        #expect(short.status == 64, "\(short)")
        #expect(short.stderr.contains("10 digits"), "\(short)")
    }

    @Test func usageErrorsExit64AndHelpDocumentsExitCodes() throws {
        let system = try CareSystem()
        let cli = try system.cli("gp.khan", extra: ["CARERELAY_ENDPOINT": "tcp://127.0.0.1:9"])
        let noTo = try cli.run(["referral", "send", "--patient", ellisNHS, "--service", "x", "--reason", "y", "--patient-agreed"])
        #expect(noTo.status == 64, "\(noTo)")
        #expect(noTo.stderr.contains("--to"), "\(noTo)")
        let badAddress = try cli.run([
            "referral", "send", "--to", "west.social-care", "--patient", ellisNHS, "--service", "x", "--reason", "y", "--patient-agreed",
        ])
        #expect(badAddress.status == 64, "\(badAddress)")
        #expect(badAddress.stderr.contains("scheme:value"), "\(badAddress)")
        let unknownOption = try cli.run(["referral", "track", "m1-2", "--colour"])
        #expect(unknownOption.status == 64, "\(unknownOption)")

        let help = try cli.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("EXIT CODES"))
        #expect(help.stdout.contains("69"))
        for command in [
            ["referral", "send"], ["referral", "track"], ["mdt", "publish"], ["watch"], ["consent", "record"], ["audit", "verify"],
            ["keys", "generate"],
        ] {
            let page = try cli.run(command + ["--help"])
            #expect(page.status == 0)
            #expect(page.stdout.contains("carerelay \(command.joined(separator: " "))"), "no example in \(command) --help")
        }
    }

    @Test func missingConfigurationExits78WithWhatToDo() throws {
        let system = try CareSystem()
        let cli = try system.cli("gp.khan").with(["CARERELAY_ENDPOINT": "", "CARERELAY_IDENTITY": "/nonexistent/identity.key"])
        let result = try cli.run(["status"])
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("config init") || result.stderr.contains("keys generate"), "\(result)")
    }

    @Test func forbiddenActionsExit65WithTheBrokersCode() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let sent = try gp.run([
            "referral", "send", "--to", "team:west.social-care", "--patient", ellisNHS,
            "--service", "Assessment", "--reason", "Falls at home", "--no-patient-agreed",
        ])
        #expect(sent.status == 0, "\(sent)")
        let id = try #require(sentID(sent))

        // A nurse outside the social care team may not accept it.
        let nurse = try system.cli("nurse.ali").run(["referral", "accept", id])
        #expect(nurse.status == 65, "\(nurse)")
        #expect(nurse.stderr.contains("not-permitted"), "\(nurse)")

        // Once Grace Okafor took it, Daniel Lee is told who did.
        #expect(try system.cli("sw.okafor").run(["referral", "accept", id]).status == 0)
        let late = try system.cli("sw.lee").run(["referral", "accept", id])
        #expect(late.status == 65, "\(late)")
        #expect(late.stderr.contains("invalid-transition"), "\(late)")
        #expect(late.stderr.contains("sw.okafor"), "\(late)")

        // Only the referrer may withdraw; the allocation and completion go through.
        let withdraw = try system.cli("sw.okafor").run(["referral", "withdraw", id])
        #expect(withdraw.status == 65, "\(withdraw)")
        let allocate = try system.cli("sw.okafor").run(["referral", "allocate", id, "--to", "sw.lee"])
        #expect(allocate.status == 0, "\(allocate)")
        let track = try gp.run(["referral", "track", id])
        #expect(track.stdout.contains("owner:        sw.lee (Daniel Lee)"), "\(track)")
        #expect(track.stdout.contains("allocated to sw.lee (Daniel Lee) by sw.okafor (Grace Okafor)"), "\(track)")

        // A carer may not record consent.
        let carer = try system.cli("carer.ellis").run(["consent", "record", "--patient", ellisNHS, "--actor", "everyone"])
        #expect(carer.status == 65, "\(carer)")
        #expect(carer.stderr.contains("not-permitted"), "\(carer)")
    }

    @Test func declineAndCompleteAndList() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let first = try #require(
            sentID(
                try gp.run([
                    "referral", "send", "--to", "person:nurse.ali", "--patient", ellisNHS,
                    "--category", "community-nursing", "--service", "Wound care",
                    "--reason", "Leg ulcer", "--patient-agreed", "--priority", "urgent",
                ])))
        let nurse = try system.cli("nurse.ali")
        let decline = try nurse.run(["referral", "decline", first, "--reason", "No capacity this week", "--code", "no-capacity"])
        #expect(decline.status == 0, "\(decline)")
        let list = try gp.run(["referral", "list", "--sent"])
        #expect(list.stdout.contains(first), "\(list)")
        #expect(list.stdout.contains("declined"), "\(list)")
        let track = try gp.run(["referral", "track", first])
        #expect(track.stdout.contains("DECLINED for the team by nurse.ali (Yusuf Ali): No capacity this week [no-capacity]"), "\(track)")

        let second = try #require(
            sentID(
                try gp.run([
                    "referral", "send", "--to", "person:nurse.ali", "--patient", ellisNHS,
                    "--service", "Wound care", "--reason", "Leg ulcer", "--patient-agreed",
                ])))
        #expect(try nurse.run(["referral", "accept", second]).status == 0)
        let complete = try nurse.run(["referral", "complete", second, "--outcome", "Healed"])
        #expect(complete.status == 0, "\(complete)")
        let json = try gp.run(["referral", "list", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first { $0["id"] as? String == second }?["status"] as? String == "completed")
    }

    // MARK: Withheld deliveries

    @Test func aCarePlanToACarerWithoutConsentIsAcceptedButExits66() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        let plan = try Fixtures.carePlan(version: 1, wellbeingText: "Two calls a day.", in: nurse.workingDirectory)
        let result = try nurse.run(["careplan", "share", "--file", plan, "--to", "person:carer.ellis", "--to", "careteam:\(ellisNHS)"])
        #expect(result.status == 66, "\(result)")
        #expect(result.stdout.contains("WITHHELD"), "\(result)")
        #expect(result.stderr.contains("withheld from carer.ellis"), "\(result)")
    }

    @Test func breakingGlassIsConfirmedFirstThenDeliversAndIsAudited() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        let plan = try Fixtures.carePlan(version: 1, wellbeingText: "Two calls a day.", in: nurse.workingDirectory)
        let share = ["careplan", "share", "--file", plan, "--to", "person:gp.khan", "--break-glass", "Collapsed at home; the GP needs her plan now"]
        // Not at a terminal and not confirmed: nothing goes.
        let unconfirmed = try nurse.run(share)
        #expect(unconfirmed.status == 64 && unconfirmed.stderr.contains("needs confirming"), "\(unconfirmed)")
        #expect(unconfirmed.stderr.contains("goes into the audit trail"), "the warning says what happens: \(unconfirmed)")
        #expect(try nurse.run(["careplan", "versions", "--patient", ellisNHS]).stdout.contains("No care plans"), "nothing was sent")

        // Dr Khan is not in Mrs Ellis's care team: without the override the plan is withheld from him.
        let overridden = try nurse.run(share + ["--yes"])
        #expect(overridden.status == 0, "\(overridden)")
        #expect(overridden.stdout.contains("gp.khan") && overridden.stdout.contains("deliver"), "\(overridden)")
        #expect(overridden.stdout.contains("Emergency override"), "\(overridden)")
        let id = try #require(capture(#"version 1: ([0-9a-z-]+)\n"#, in: overridden.stdout) ?? sentID(overridden), "\(overridden)")
        let audit = try system.cli("admin.it").run(["audit", "query", "--message", id, "--json"])
        #expect(audit.stdout.contains("\"override\"") && audit.stdout.contains("Collapsed at home"), "audited with the reason: \(audit)")
        let stray = try nurse.run(["careplan", "versions", "--patient", ellisNHS, "--yes"])
        #expect(stray.status == 64, "--yes alone is not an option of this command: \(stray)")
    }

    // MARK: Care plans

    @Test func carePlanVersionsAndDiff() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "person:gp.khan"]).status == 0)
        let v1 = try Fixtures.carePlan(version: 1, wellbeingText: "Two calls a day.", in: nurse.workingDirectory)
        let v2 = try Fixtures.carePlan(version: 2, wellbeingText: "Three calls a day, with an evening visit.", in: nurse.workingDirectory)
        let first = try nurse.run(["careplan", "share", "--file", v1, "--to", "person:gp.khan"])
        #expect(first.status == 0, "\(first)")
        #expect(try nurse.run(["careplan", "share", "--file", v2, "--to", "person:gp.khan"]).status == 0)

        let versions = try nurse.run(["careplan", "versions", "--patient", ellisNHS])
        #expect(versions.status == 0, "\(versions)")
        #expect(versions.stdout.contains("cp.\(ellisNHS).home"))
        #expect(versions.stdout.components(separatedBy: "cp.\(ellisNHS).home").count == 3, "two versions: \(versions)")

        let diff = try nurse.run(["careplan", "diff", "--patient", ellisNHS])
        #expect(diff.status == 0, "\(diff)")
        #expect(diff.stdout.contains("version 1 -> 2"), "\(diff)")
        #expect(diff.stdout.contains("CHANGED daily-living"), "\(diff)")
        #expect(diff.stdout.contains("+ Three calls a day, with an evening visit."), "\(diff)")

        // A plan that fails validation is refused locally.
        let broken = nurse.workingDirectory.appendingPathComponent("broken.json")
        try Data(#"{"plan": "x", "version": 0}"#.utf8).write(to: broken)
        let refused = try nurse.run(["careplan", "share", "--file", broken.path, "--to", "person:gp.khan"])
        #expect(refused.status == 64, "\(refused)")
    }

    // MARK: MDT, consent and care teams

    @Test func mdtAgendaWithConsentAppliedPerAttendee() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        let mdt = try system.cli("mdt.jones")

        // Mrs Ellis agreed to be discussed at the MDT; Mr Robson was not asked.
        for patient in [ellisNHS, robsonNHS] {
            let link = try nurse.run(["careteam", "link", "--patient", patient, "--member", "team:west.mdt"])
            #expect(link.status == 0, "\(link)")
        }
        let team = try nurse.run(["careteam", "show", "--patient", ellisNHS])
        #expect(team.stdout.contains("team:west.mdt"), "\(team)")
        let consent = try nurse.run([
            "consent", "record", "--patient", ellisNHS, "--actor", "team:west.mdt",
            "--purpose", "mdt-discussion", "--id", "cd-ellis-mdt",
        ])
        #expect(consent.status == 0, "\(consent)")
        let history = try nurse.run(["consent", "show", "--patient", ellisNHS])
        #expect(history.stdout.contains("cd-ellis-mdt"), "\(history)")
        #expect(history.stdout.contains("mdt-discussion"), "\(history)")

        let draft = mdt.workingDirectory.appendingPathComponent("wed.json").path
        let start = Timestamp(Date().addingTimeInterval(2 * 86_400)).text
        let create = try mdt.run([
            "mdt", "create", "--team", "west.mdt", "--start", start, "--location", "Pallion HC room 2",
            "--meeting", "west.mdt.next", "--output", draft,
        ])
        #expect(create.status == 0, "\(create)")
        #expect(create.stdout.contains("nurse.ali"), "attendees come from the directory: \(create)")
        let item1 = try mdt.run([
            "mdt", "add-item", "--file", draft, "--patient", "943 476 5919", "--reason", "Two falls; carer in hospital",
            "--intervention", "Social care referral|gp.khan|Accepted by Grace Okafor", "--owner", "coord.patel",
        ])
        #expect(item1.status == 0, "\(item1)")
        let item2 = try mdt.run([
            "mdt", "add-item", "--file", draft, "--patient", robsonNHS, "--reason", "Leg ulcer review",
            "--owner", "nurse.ali", "--sensitivity", "medication",
        ])
        #expect(item2.status == 0, "\(item2)")
        let badItem = try mdt.run([
            "mdt", "add-item", "--file", draft, "--patient", ellisNHS, "--reason", "x", "--owner", "coord.patel",
            "--intervention", "only an action",
        ])
        #expect(badItem.status == 64, "\(badItem)")

        let publish = try mdt.run(["mdt", "publish", "--file", draft])
        #expect([0, 66].contains(publish.status), "\(publish)")
        let id = try #require(sentID(publish), "\(publish)")
        #expect(publish.stdout.contains("nurse.ali"), "\(publish)")
        #expect(publish.stdout.contains("redacted"), "Mr Robson's item is withheld from attendees: \(publish)")

        let asNurse = try mdt.run(["mdt", "show", id, "--as", "nurse.ali"])
        #expect(asNurse.status == 0, "\(asNurse)")
        #expect(asNurse.stdout.contains("943 476 5919"), "\(asNurse)")
        #expect(asNurse.stdout.contains("[WITHHELD]"), "\(asNurse)")
        #expect(!asNurse.stdout.contains("401 023 2137"), "\(asNurse)")

        // Only the publisher (and governance roles) may look as someone else.
        let nosy = try nurse.run(["mdt", "show", id, "--as", "coord.patel"])
        #expect(nosy.status == 65, "\(nosy)")

        let update = try mdt.run(["mdt", "update", "--file", draft])
        #expect([0, 66].contains(update.status), "\(update)")
        #expect(update.stdout.contains("version 2"), "\(update)")
        let list = try nurse.run(["mdt", "list"])
        #expect(list.status == 0, "\(list)")
        #expect(list.stdout.contains("west.mdt.next"), "\(list)")

        // Withdrawing the consent takes effect at once: the next look withholds that item too.
        let withdraw = try nurse.run(["consent", "withdraw", "--patient", ellisNHS, "--directive", "cd-ellis-mdt", "--reason", "patient asked"])
        #expect(withdraw.status == 0, "\(withdraw)")
        let after = try mdt.run(["mdt", "show", id, "--as", "nurse.ali", "--json"])
        #expect(!after.stdout.contains(ellisNHS), "\(after)")

        let unlink = try nurse.run(["careteam", "unlink", "--patient", robsonNHS, "--member", "team:west.mdt"])
        #expect(unlink.status == 0, "\(unlink)")
        #expect(unlink.stdout.contains("401 023 2137 has no care team yet"), "\(unlink)")
    }

    // MARK: watch

    @Test func watchPrintsAndConfirmsWhatArrives() throws {
        let system = try CareSystem()
        try system.start()
        let watcher = try system.cli("sw.okafor").start(["watch", "--count", "1", "--timeout", "60", "--topic", "referral/west/west.social-care"])
        #expect(watcher.waitFor { _, err in err.contains("Watching as Grace Okafor") }, "watch did not start: \(watcher.stderr)")

        let sent = try system.cli("gp.khan").run([
            "referral", "send", "--to", "team:west.social-care", "--patient", ellisNHS,
            "--service", "Assessment", "--reason", "Falls at home", "--patient-agreed",
        ])
        let id = try #require(sentID(sent), "\(sent)")
        let result = try watcher.finish()
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains(id), "\(result)")
        #expect(result.stdout.contains("from Dr Amina Khan (gp.khan)"), "\(result)")

        // It was confirmed: the broker's tracking says so.
        let track = try system.cli("gp.khan").run(["referral", "track", id, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(track.stdout.utf8)) as? [String: Any])
        let recipients = try #require((object["tracking"] as? [String: Any])?["recipients"] as? [[String: Any]])
        #expect(recipients.first { $0["person"] as? String == "sw.okafor" }?["state"] as? String == "confirmed", "\(track)")
    }

    @Test func watchStopsOnInterrupt() throws {
        let system = try CareSystem()
        try system.start()
        let watcher = try system.cli("nurse.ali").start(["watch", "--json"])
        #expect(watcher.waitFor { _, err in err.contains("Watching as") }, "watch did not start: \(watcher.stderr)")
        watcher.interrupt()
        let result = try watcher.finish(timeout: 30)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
    }

    @Test func watchingAForbiddenTopicExits65() throws {
        let system = try CareSystem()
        try system.start()
        let result = try system.cli("vsb.green").run(["watch", "--topic", "careplan/west/#", "--timeout", "5"])
        #expect(result.status == 65, "\(result)")
        #expect(result.stderr.contains("subscription-denied") || result.stderr.contains("not-permitted"), "\(result)")
    }

    // MARK: text from messages on a terminal

    /// Terminal controls a message could carry: a screen clear, a window-title change ended
    /// by BEL, an 8-bit CSI (C1), DEL, a right-to-left override, a lone carriage return and a
    /// line break followed by a forged label.
    static let hostile = "Falls at home\u{1B}[2J\u{1B}]0;owned\u{07}\u{9B}31m\u{7F} \u{202E}gnp.exe\u{202C}\rOVERWRITTEN\r\nTaken by: sw.forged"

    /// The control characters (and bidirectional overrides) in `text`, other than the line
    /// feeds the output's own lines end with.
    static func rawControls(_ text: String) -> [String] {
        text.unicodeScalars.filter { s in
            (s.value < 0x20 && s != "\n") || (0x7F...0x9F).contains(s.value) || (0x202A...0x202E).contains(s.value)
                || (0x2066...0x2069).contains(s.value)
        }.map { String(format: "U+%04X", $0.value) }
    }

    static func expectSafe(_ result: CLIResult, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 0, "\(what): \(result)", sourceLocation: sourceLocation)
        #expect(
            rawControls(result.stdout).isEmpty, "\(what) printed \(rawControls(result.stdout)) raw: \(result.stdout.debugDescription)",
            sourceLocation: sourceLocation)
        #expect(rawControls(result.stderr).isEmpty, "\(what) printed \(rawControls(result.stderr)) raw to stderr", sourceLocation: sourceLocation)
        #expect(
            !result.stdout.contains("\nTaken by: sw.forged"), "\(what): a line break in a message starts no line of its own",
            sourceLocation: sourceLocation)
    }

    @Test func escapeSequencesInACheckInNeverReachTheTerminalRaw() throws {
        let system = try CareSystem()
        try system.start()
        let coordinator = try system.cli("coord.patel")
        for member in ["team:west.social-care", "person:carer.ellis"] {
            let linked = try coordinator.run(["careteam", "link", "--patient", ellisNHS, "--member", member])
            #expect(linked.status == 0, "\(linked)")
        }
        // Jean Ellis checks in with the controls in what she typed.
        var checkIn = try Fixtures.example("carer.checkin", "valid-routine-evening.json")
        checkIn["carer"] = "carer.ellis"
        checkIn["patient"] = ellisNHS
        checkIn["concerns"] = Self.hostile
        var wellbeing = try #require(checkIn["patientWellbeing"] as? [String: Any])
        wellbeing["text"] = Self.hostile
        checkIn["patientWellbeing"] = wellbeing
        let body = [UInt8](try JSONSerialization.data(withJSONObject: checkIn))
        let carer = try CareRelayClient(
            configuration: ClientConfiguration(
                endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: try #require(system.keys["carer.ellis"])))
        func sendCheckIn() throws -> String {
            try carer.send(
                SendHeader(
                    key: UUID().uuidString, kind: .carerCheckIn, to: [.person("coord.patel")],
                    patient: try NHSNumber(validating: ellisNHS)), body: body
            ).id
        }

        let text = try coordinator.start(["watch", "--count", "1", "--timeout", "60"])
        #expect(text.waitFor { _, err in err.contains("Watching as") }, "watch did not start: \(text.stderr)")
        let first = try sendCheckIn()
        let printed = try text.finish()
        Self.expectSafe(printed, "watch")
        #expect(printed.stdout.contains(first), "\(printed)")
        #expect(printed.stdout.contains(#"concerns: Falls at home\u001B[2J\u001B]0;owned\u0007"#), "controls are shown, escaped: \(printed.stdout)")

        let json = try coordinator.start(["watch", "--json", "--count", "1", "--timeout", "60"])
        #expect(json.waitFor { _, err in err.contains("Watching as") }, "watch did not start: \(json.stderr)")
        let second = try sendCheckIn()
        let lines = try json.finish()
        Self.expectSafe(lines, "watch --json")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(lines.stdout.utf8)) as? [String: Any], "not JSON: \(lines)")
        #expect((line["header"] as? [String: Any])?["id"] as? String == second)
        let delivered = try #require((line["body"] as? String).flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(delivered["concerns"] as? String == Self.hostile, "JSON output keeps the value exactly")
    }

    @Test func escapeSequencesInAReferralAndAPlanNeverReachTheTerminalRaw() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let sent = try gp.run([
            "referral", "send", "--to", "team:west.social-care", "--patient", ellisNHS, "--service", "Assessment \(Self.hostile)",
            "--reason", Self.hostile, "--patient-agreed",
        ])
        let id = try #require(sentID(sent), "\(sent)")
        let social = try system.cli("sw.okafor")
        Self.expectSafe(try social.run(["referral", "inbox"]), "referral inbox")
        let show = try social.run(["referral", "show", id])
        Self.expectSafe(show, "referral show")
        #expect(show.stdout.contains(#"Reason:    Falls at home\u001B[2J"#), "\(show.stdout)")
        let showJSON = try social.run(["referral", "show", id, "--json"])
        Self.expectSafe(showJSON, "referral show --json")
        #expect((try? JSONSerialization.jsonObject(with: Data(showJSON.stdout.utf8))) != nil, "valid JSON: \(showJSON.stdout)")

        let declined = try system.cli("coord.patel").run(["referral", "decline", id, "--reason", Self.hostile, "--code", "no-capacity"])
        #expect(declined.status == 0, "\(declined)")
        let track = try gp.run(["referral", "track", id])
        Self.expectSafe(track, "referral track")
        #expect(track.stdout.contains("DECLINED for the team by coord.patel (Priya Patel): Falls at home\\u001B[2J"), "\(track.stdout)")
        let trackJSON = try gp.run(["referral", "track", id, "--json"])
        Self.expectSafe(trackJSON, "referral track --json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(trackJSON.stdout.utf8)) as? [String: Any], "\(trackJSON.stdout)")
        let timeline = try #require(report["timeline"] as? [[String: Any]])
        #expect(timeline.contains { ($0["what"] as? String)?.contains(Self.hostile) == true }, "JSON keeps the value exactly: \(timeline)")
        Self.expectSafe(try system.cli("coord.patel").run(["audit", "query", "--message", id]), "audit query")

        // A care plan whose change summary and section text carry the same.
        let nurse = try system.cli("nurse.ali")
        // The referral made the GP a member of the care team; a member adds the nurses.
        #expect(try system.cli("gp.khan").run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "person:gp.khan"]).status == 0)
        for version in [1, 2] {
            let path = try Fixtures.carePlan(version: version, wellbeingText: "\(version) \(Self.hostile)", in: nurse.workingDirectory)
            var plan = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            plan["changeSummary"] = Self.hostile
            try JSONSerialization.data(withJSONObject: plan).write(to: URL(fileURLWithPath: path))
            let shared = try nurse.run(["careplan", "share", "--file", path, "--to", "person:gp.khan"])
            #expect(shared.status == 0, "\(shared)")
        }
        Self.expectSafe(try gp.run(["careplan", "versions", "--patient", ellisNHS]), "careplan versions")
        let diff = try gp.run(["careplan", "diff", "--patient", ellisNHS])
        Self.expectSafe(diff, "careplan diff")
        #expect(diff.stdout.contains("Falls at home\\u001B[2J"), "\(diff.stdout)")
    }

    // MARK: audit, status, keys, config

    @Test func auditQueryAndVerify() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let id = try #require(
            sentID(
                try gp.run([
                    "referral", "send", "--to", "team:west.social-care", "--patient", ellisNHS,
                    "--service", "Assessment", "--reason", "Falls", "--patient-agreed",
                ])))
        // Accepted by the intake, Mrs Ellis is in the care of the co-ordinator's team.
        #expect(try system.cli("sw.okafor").run(["referral", "accept", id]).status == 0)
        let coordinator = try system.cli("coord.patel")
        let verify = try coordinator.run(["audit", "verify"])
        #expect(verify.status == 0, "\(verify)")
        #expect(verify.stdout.contains("Audit trail intact"), "\(verify)")
        let query = try coordinator.run(["audit", "query", "--patient", ellisNHS])
        #expect(query.status == 0, "\(query)")
        #expect(query.stdout.contains(id), "\(query)")
        let byMessage = try coordinator.run(["audit", "query", "--message", id, "--json"])
        #expect(byMessage.stdout.contains("\"recipient\" : \"sw.okafor\""), "\(byMessage)")

        let forbidden = try gp.run(["audit", "verify"])
        #expect(forbidden.status == 65, "\(forbidden)")
        #expect(forbidden.stderr.contains("not-permitted"), "\(forbidden)")
        let own = try gp.run(["audit", "query", "--person", "gp.khan"])
        #expect(own.status == 0, "\(own)")
    }

    @Test func statusKeysAndConfigShow() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.cli("gp.khan")
        let status = try gp.run(["status", "--json"])
        #expect(status.status == 0, "\(status)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect(object["person"] as? String == "gp.khan")

        let keys = try gp.run(["keys", "show"])
        #expect(keys.status == 0, "\(keys)")
        #expect(keys.stdout.contains(try #require(system.keys["gp.khan"]).publicKey))
        #expect(keys.stdout.contains(system.brokerKeys.publicKey))
        #expect(!keys.stdout.contains(try #require(system.keys["gp.khan"]).secretKey))

        // A config file named by CARERELAY_CONFIG, with the flag overriding it.
        let configPath = gp.workingDirectory.appendingPathComponent("elsewhere/config.yaml").path
        let fileOnly = gp.with(["CARERELAY_CONFIG": configPath, "CARERELAY_ENDPOINT": "", "CARERELAY_BROKER_KEY": ""])
        let initResult = try fileOnly.run(["config", "init", "--endpoint", "tcp://127.0.0.1:9", "--broker-key", system.brokerKeyPath])
        #expect(initResult.status == 0, "\(initResult)")
        let show = try fileOnly.run(["config", "show"])
        #expect(show.stdout.contains("tcp://127.0.0.1:9 (config file)"), "\(show)")
        let viaFlag = try fileOnly.run(["status", "--endpoint", system.endpoint])
        #expect(viaFlag.status == 0, "the flag wins over the file: \(viaFlag)")
    }
}
