import CareRelayBridge
import CareRelayBroker
import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayProtocol
import Foundation
import Hummingbird
import Logging
import Testing
import ZeroMQ

/// A small care system with a real broker: the people of the broker tests' CareSystem that
/// this scenario needs, and the bridge acting for Jean Ellis.
final class BrokerSystem {
    let folder: URL
    let brokerKeys: CurveKeyPair
    var keys: [PersonID: CurveKeyPair] = [:]
    let server: BrokerServer

    static let people: [(PersonID, String, [Role], [TeamID], [PersonID]?)] = [
        ("gp.khan", "Dr Amina Khan", [.gp], ["west.gp"], nil),
        ("coord.patel", "Priya Patel", [.careCoordinator], ["west.social-care", "west.mdt"], nil),
        ("nurse.ali", "Yusuf Ali", [.communityNurse], ["west.nursing", "west.mdt"], nil),
        ("carer.ellis", "Jean Ellis", [.carer], [], nil),
        ("bridge", "Carer bridge", [.gateway], [], ["carer.ellis"]),
    ]

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("bridge-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        var keys: [PersonID: CurveKeyPair] = [:]
        for person in Self.people { keys[person.0] = try CurveKeyPair.generate() }
        self.keys = keys
        let directory = Directory(
            organisations: [.init(id: "sunderland-ccg", name: "Sunderland CCG")],
            localities: [.init(id: "west", name: "Sunderland West")],
            teams: [
                .init(id: "west.gp", name: "Pallion Health Centre", locality: "west"),
                .init(
                    id: "west.social-care", name: "West social care intake", locality: "west", coordinator: "coord.patel",
                    hours: "mon-fri 08:00-18:00", fallback: ["District nurses: 0191 555 0100", "Emergency: 999"]),
                .init(id: "west.nursing", name: "West community nursing", locality: "west"),
                .init(id: "west.mdt", name: "West Wednesday MDT", kind: .mdt, locality: "west", coordinator: "coord.patel"),
            ],
            people: Self.people.map { p in
                Directory.Person(
                    id: p.0, name: p.1, roles: p.2, organisation: "sunderland-ccg", teams: p.3,
                    key: keys[p.0]!.publicKey, actsFor: p.4)
            })
        var logger = Logger(label: "bridge-e2e.broker")
        logger.logLevel = .warning
        server = try BrokerServer.start(
            configuration: BrokerConfiguration(
                endpoint: "tcp://127.0.0.1:*", storePath: folder.appendingPathComponent("broker.sqlite").path,
                publicKey: brokerKeys.publicKey, secretKey: brokerKeys.secretKey, maxBodyBytes: 256 * 1024,
                heartbeatMilliseconds: 5_000, responseTargets: BrokerConfiguration.defaultResponseTargets, clock: { Date() }),
            directory: try DirectoryIndex(directory), logger: logger)
    }

    func configuration(_ person: PersonID, receive: Bool = true) -> ClientConfiguration {
        ClientConfiguration(
            endpoint: server.endpoint, brokerPublicKey: brokerKeys.publicKey, keys: keys[person]!,
            receive: receive, credit: 64, replyTimeout: .seconds(5), attempts: 2, clientName: "test")
    }

    func client(_ person: PersonID, receive: Bool = true) throws -> CareRelayClient {
        try CareRelayClient(configuration: configuration(person, receive: receive))
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Thread-confined use of a client from async tests: every call happens on one serial queue.
final class ClientOnQueue: @unchecked Sendable {
    private let queue = DispatchQueue(label: "bridge-e2e.client")
    private var client: CareRelayClient!

    init(_ make: @escaping () throws -> CareRelayClient) throws {
        var made: Result<CareRelayClient, any Error>!
        queue.sync { made = Result { try make() } }
        client = try made.get()
    }

    struct Unchecked<T>: @unchecked Sendable { let value: T }

    func run<T>(_ body: @escaping (CareRelayClient) throws -> T) async throws -> T {
        let work = Unchecked(value: body)
        let result: Unchecked<Result<T, any Error>> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Unchecked(value: Result { try work.value(self.client) })) }
        }
        return try result.value.get()
    }

    deinit {
        let client = self.client
        self.client = nil
        queue.sync { _ = client }
    }
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int?
    func set(_ port: Int?) { lock.lock(); value = port; lock.unlock() }
    var port: Int? { lock.lock(); defer { lock.unlock() }; return value }
}

enum Artifacts {
    static var folder: URL {
        if let path = ProcessInfo.processInfo.environment["CARERELAY_ARTIFACTS"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/artifacts")
    }
}

func json(_ object: [String: Any]) throws -> [UInt8] {
    [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
}

@Suite(.serialized) struct BrowserEndToEndTests {
    @Test(
        .enabled(
            if: WebDriver.available, "chromium and chromedriver are not installed (apt-get install chromium chromium-driver): browser test skipped"),
        .timeLimit(.minutes(4)))
    func aCarerSignsInSeesThePlanGetsALiveUpdateAndChecksIn() async throws {
        let system = try BrokerSystem()
        let coordinator = try ClientOnQueue { try system.client("coord.patel") }

        // Priya's team looks after Mrs Ellis (so a check-in about her reaches Priya on implied
        // consent), and Jean is her carer in that care team (so she may check in about her).
        try await coordinator.run { client in
            _ = try client.query("careteam.link", ["patient": ellis.digits, "member": "team:west.social-care"])
            _ = try client.query("careteam.link", ["patient": ellis.digits, "member": "person:carer.ellis"])
        }
        // Mrs Ellis consents to Jean seeing her general, social care and medication information.
        let now = ISO8601DateFormatter()
        try await coordinator.run { client in
            _ = try client.send(
                SendHeader(key: UUID().uuidString, kind: .consent, to: [], patient: ellis),
                body: try json([
                    "action": "grant", "id": "cd-e2e-1", "status": "active", "scope": "patient-privacy", "patient": ellis.digits,
                    "dateTime": now.string(from: Date()), "performer": ["person": "coord.patel", "role": "care-coordinator"],
                    "policyRule": "explicit",
                    "provision": [
                        "type": "permit",
                        "period": [
                            "start": now.string(from: Date().addingTimeInterval(-86_400)),
                            "end": now.string(from: Date().addingTimeInterval(365 * 86_400)),
                        ],
                        "actor": [["role": "person", "reference": "carer.ellis"]],
                        "class": ["general", "social-care", "medication"],
                    ],
                ]))
        }

        // The bridge: its own store, the gateway thread, and the web app on an ephemeral port.
        var logger = Logger(label: "bridge-e2e")
        logger.logLevel = .warning
        let store = try BridgeStore(path: system.folder.appendingPathComponent("bridge.sqlite").path)
        let hub = LiveHub()
        let intake = DeliveryIntake(store: store, hub: hub, gatewayID: "bridge", logger: logger)
        let gateway = BrokerGateway(configuration: system.configuration("bridge"), intake: intake, logger: logger)
        defer { gateway.stop() }
        let bridge = Bridge(configuration: BridgeConfiguration(gatewayID: "bridge"), store: store, link: gateway, hub: hub, logger: logger)
        let portBox = PortBox()
        let app = Application(
            router: bridge.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portBox.set(channel.localAddress?.port) }, logger: logger)
        let serving = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer {
            hub.finishAll()
            serving.cancel()
        }

        // The co-ordinator issues an invitation: the code goes to Jean by hand, its hash to the bridge.
        let code = InvitationCode.generate()
        let invite = CarerInvite(
            carer: "carer.ellis", patients: [ellis], codeHash: InvitationCode.hash(code),
            expires: Timestamp(Date().addingTimeInterval(7 * 86_400)), issuedBy: "coord.patel")
        try await coordinator.run { client in
            _ = try client.send(SendHeader(key: "invite-\(UUID().uuidString)", kind: .carerInvite, to: [.person("bridge")]), body: invite.encode())
        }
        // And shares the care plan with Jean.
        var plan = try Examples.object("careplan.share", "valid-home-plan-with-mental-health-section.json")
        plan["team"] = "west.social-care"
        try await coordinator.run { client in
            _ = try client.send(
                SendHeader(key: UUID().uuidString, kind: .carePlanShare, to: [.person("carer.ellis")], patient: ellis),
                body: try json(plan))
        }
        try await waitUntil("the bridge stored the invitation and the plan") {
            (try? store.messages(for: "carer.ellis", patient: ellis, kind: .carePlanShare).count) == 1
        }
        try await waitUntil("the web app is listening") { portBox.port != nil }
        let site = "http://127.0.0.1:\(portBox.port!)"

        // Every page below is photographed for a reviewer, then checked by axe-core.
        let axe = try Axe.load()
        let shots = Artifacts.folder
        let driver = try WebDriver(logFolder: system.folder)
        do {
            try await driver.waitUntilReady()
            try await driver.startSession(width: 412, height: 1400)

            // Sign in, first without a code: the error summary's link leads to the field.
            try await driver.go("\(site)/sign-in")
            try await driver.waitFor("the sign-in page") { try await driver.source().contains("Sign in with your invitation code") }
            try await driver.screenshot(step: 1, "sign-in", in: shots)
            try await axe.check("the sign-in page", in: driver)
            try await driver.click("form[action='/sign-in'] button")
            try await driver.waitFor("the sign-in error") { try await driver.source().contains("There is a problem") }
            try await driver.screenshot(step: 2, "sign-in-error", in: shots)
            try await axe.check("the sign-in page showing an error", in: driver)
            try await expectEverySummaryLinkFocusesItsControl(driver, page: "the sign-in page")
            try await driver.type("#code", code.lowercased())
            try await driver.click("form[action='/sign-in'] button")
            try await driver.waitFor("the home page") { try await driver.source().contains("The people you care for") }
            try await driver.screenshot(step: 3, "home", in: shots)
            try await axe.check("the home page", in: driver)
            try await driver.click("a[href='/people/9434765919']")
            try await driver.waitFor("the care plan") { try await driver.source().contains("Care plan: Living well at home") }
            let page = try await driver.source()
            #expect(page.contains("Daily living"))
            #expect(page.contains("Morning call: personal care"))
            #expect(!page.contains("Mood and memory"), "the mental health section is not for the carer")

            // Wait for the live stream to be open, then share version 4.
            try await driver.waitFor("the live stream") { hub.listenerCount >= 1 }
            plan["version"] = 4
            plan["changeSummary"] = "Evening call moved to 18:00 so Jean can get home from work."
            try await coordinator.run { client in
                _ = try client.send(
                    SendHeader(key: UUID().uuidString, kind: .carePlanShare, to: [.person("carer.ellis")], patient: ellis),
                    body: try json(plan))
            }
            try await driver.waitFor("the live update", seconds: 20) {
                try await driver.text("#updates").contains("New care plan: version 4")
            }
            // The carer's copy is redacted, so its free-text change summary (which could describe
            // the removed section) is replaced by one made from the kept sections' own notes.
            #expect(try await driver.text("#updates").contains("Changes in the sections shared with you: Daily living: Evening call added"))
            #expect(try await driver.text("#updates").contains("Some sections are not shared with you"))
            #expect(!(try await driver.text("#updates").contains("Evening call moved to 18:00")))
            // Checked with the live update in it, so the update's markup is checked too.
            try await driver.screenshot(step: 4, "care-plan", in: shots)
            try await axe.check("the plan page", in: driver)

            // Check in: first sending it with only a reading that is not a number, so that
            // every kind of control (radio groups, a text area, the select, a text input) has
            // an error, each listed in the summary.
            try await driver.click("a[href='/people/9434765919/check-in']")
            try await driver.waitFor("the check-in form") { try await driver.source().contains("Check in about Margaret Ellis") }
            try await driver.screenshot(step: 5, "check-in", in: shots)
            try await axe.check("the check-in form", in: driver)
            try await driver.type("#pulse", "fast")
            try await driver.click("form[action='/people/9434765919/check-in'] button[type=submit]")
            try await driver.waitFor("the check-in's error summary") { try await driver.source().contains("There is a problem") }
            try await driver.screenshot(step: 6, "check-in-errors", in: shots)
            try await axe.check("the check-in form showing its error summary", in: driver)
            try await expectRadioGroupsShowTheirErrors(driver)
            try await expectEverySummaryLinkFocusesItsControl(driver, page: "the check-in form")

            // Now the answers, by keyboard-free clicks on the labelled controls.
            try await driver.click("label[for='patientScore-3']")
            try await driver.type("#patientText", "Tired today, but ate all her lunch.")
            try await driver.click("label[for='wellbeing-2']")
            try await driver.click("#strain option[value='7']")
            try await driver.type("#concerns", "She fell asleep in the chair twice this afternoon.")
            try await driver.click("label[for='urgency-soon']")
            try await driver.clear("#pulse")
            try await driver.type("#oxygen", "95")
            try await driver.click("form[action='/people/9434765919/check-in'] button[type=submit]")
            try await driver.waitFor("the confirmation") { try await driver.source().contains("Check-in sent") }
            #expect(try await driver.source().contains("Your check-in about Margaret Ellis is in Priya Patel"))
            try await driver.screenshot(step: 7, "check-in-sent", in: shots)
            try await axe.check("the check-in confirmation", in: driver)

            // The co-ordinator receives it, from Jean, through the broker.
            let delivered = try await coordinator.run { client -> Delivery? in
                while let delivery = try client.nextDelivery(timeout: .seconds(10)) {
                    try client.confirm([delivery.header.id], recipient: delivery.header.recipient)
                    if delivery.header.kind == .carerCheckIn { return delivery }
                }
                return nil
            }
            let checkIn = try #require(delivered, "the co-ordinator received no check-in")
            #expect(checkIn.header.from == "carer.ellis")
            #expect(checkIn.header.patient == ellis)
            let body = try CarerCheckIn.decode(json: checkIn.body)
            #expect(body.patientWellbeing.score == 3)
            #expect(body.carerWellbeing.strain == 7)
            #expect(body.urgency == .soon)
            #expect(body.readings?.first?.value == 95)
            #expect(body.concerns == "She fell asleep in the chair twice this afternoon.")

            // Back on the plan page, Jean sees Priya read her check-in, as it happens.
            try await driver.click("a[href='/people/9434765919']")
            try await driver.waitFor("the care plan again") { try await driver.source().contains("Care plan: Living well at home") }
            try await driver.waitFor("the live stream") { hub.listenerCount >= 1 }
            let read = CheckInAcknowledgement(
                checkIn: checkIn.header.id, patient: ellis, by: "coord.patel", at: Timestamp(Date()),
                note: "Thank you, Jean. I will ring you at 2pm about the afternoon naps.")
            try await coordinator.run { client in
                _ = try client.send(
                    SendHeader(key: UUID().uuidString, kind: .checkInAcknowledgement, to: [], patient: ellis), body: read.encode())
            }
            try await driver.waitFor("the acknowledgement, live", seconds: 20) {
                try await driver.text("#updates").contains("Priya Patel read your check-in")
            }
            try await driver.screenshot(step: 8, "check-in-read-live", in: shots)
            try await axe.check("the plan page with an acknowledgement", in: driver)
            try await driver.click("a[href='/people/9434765919/check-ins']")
            try await driver.waitFor("her check-ins") { try await driver.source().contains("Your check-ins about Margaret Ellis") }
            let checkIns = try await driver.text("main")
            #expect(checkIns.contains("Read by Priya Patel"), "\(checkIns)")
            #expect(checkIns.contains("I will ring you at 2pm about the afternoon naps."), "\(checkIns)")
            #expect(checkIns.contains("She fell asleep in the chair twice this afternoon."), "\(checkIns)")
            try await driver.screenshot(step: 9, "check-ins", in: shots)
            try await axe.check("the carer's check-ins page", in: driver)

            // Mrs Ellis withdraws her consent: the plan leaves Jean's open page at once.
            try await driver.click("a[href='/people/9434765919']")
            try await driver.waitFor("the care plan once more") { try await driver.source().contains("Care plan: Living well at home") }
            try await driver.waitFor("the live stream") { hub.listenerCount >= 1 }
            #expect(try await driver.text("main").contains("Daily living"))
            try await coordinator.run { client in
                _ = try client.send(
                    SendHeader(key: UUID().uuidString, kind: .consent, to: [], patient: ellis),
                    body: try json([
                        "action": "withdraw", "patient": ellis.digits, "dateTime": now.string(from: Date()),
                        "performer": ["person": "coord.patel", "role": "care-coordinator"], "withdraws": "cd-e2e-1",
                        "reason": "Mrs Ellis asked that Jean no longer receives her plan",
                    ]))
            }
            try await driver.waitFor("the plan taken off the page, live", seconds: 20) {
                let text = try await driver.text("main")
                return text.contains("Taken back: no longer shared with you") && !text.contains("Daily living")
            }
            #expect(!(try await driver.text("main").contains("Morning call: personal care")), "the contacts from the plan go with it")
            try await driver.screenshot(step: 10, "plan-taken-back-live", in: shots)
            try await axe.check("the plan page after a revocation", in: driver)
            // And from the bridge's store: a reload shows no plan.
            #expect(try store.messages(for: "carer.ellis", patient: ellis, kind: .carePlanShare).isEmpty)
            try await driver.go("\(site)/people/9434765919")
            try await driver.waitFor("the reloaded page") { try await driver.source().contains("No care plan has been shared") }
            #expect(try await driver.source().contains("is taken back"))
            await driver.quit()
        } catch {
            await driver.quit()
            throw error
        }
    }
}

func waitUntil(_ what: String, seconds: Double = 15, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if (try? condition()) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("timed out waiting until \(what)")
    throw WebDriver.Failure(description: "timed out waiting until \(what)")
}

/// Follows each link of the page's error summary in turn and expects focus on a form control
/// whose id is the link's target: a fieldset, a heading or nothing at all fails.
func expectEverySummaryLinkFocusesItsControl(_ driver: WebDriver, page: String, sourceLocation: SourceLocation = #_sourceLocation)
    async throws
{
    let hrefs =
        try await driver.execute(
            "return Array.from(document.querySelectorAll('.error-summary a')).map(function (a) { return a.getAttribute('href'); });")
        as? [String] ?? []
    #expect(!hrefs.isEmpty, "\(page) shows an error summary with links", sourceLocation: sourceLocation)
    for href in hrefs {
        guard href.hasPrefix("#"), href.count > 1 else {
            Issue.record("\(page): the error summary links to \(href), not to a control on the page", sourceLocation: sourceLocation)
            continue
        }
        let id = String(href.dropFirst())
        // The previous link's target has focus now, and targets differ, so only following
        // this link can put focus where it is expected.
        try await driver.click(".error-summary a[href='\(href)']")
        // Polled, with a deadline, in case the browser moves focus after answering the click;
        // on failure the message says where focus went instead.
        let focusedOn = "var e = document.activeElement; return e ? e.tagName.toLowerCase() + '#' + e.id : 'nothing';"
        let deadline = Date().addingTimeInterval(5)
        var focused = try await driver.execute(focusedOn) as? String ?? "nothing"
        while !focused.hasSuffix("#\(id)") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            focused = try await driver.execute(focusedOn) as? String ?? "nothing"
        }
        let controls = ["input#\(id)", "select#\(id)", "textarea#\(id)"]
        #expect(
            controls.contains(focused), "\(page): following the summary's link \(href) put focus on \(focused), not on a control with that id",
            sourceLocation: sourceLocation)
    }
}

/// Each radio group with an error carries the error class and shows the red left border
/// (5px solid #b10e1e), which the fieldset without an error (the readings) does not.
func expectRadioGroupsShowTheirErrors(_ driver: WebDriver, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let borders =
        try await driver.execute(
            """
            var answer = {};
            document.querySelectorAll('fieldset').forEach(function (f) {
              var radio = f.querySelector('input[type=radio]');
              var name = radio ? radio.name : 'readings';
              var style = getComputedStyle(f);
              answer[name] = (f.classList.contains('has-error') ? 'has-error ' : '') + style.borderLeftStyle + ' ' + style.borderLeftWidth + ' ' + style.borderLeftColor;
            });
            return answer;
            """) as? [String: String] ?? [:]
    for group in ["patientScore", "wellbeing", "urgency"] {
        #expect(
            borders[group] == "has-error solid 5px rgb(177, 14, 30)", "the \(group) group: \(borders[group] ?? "not on the page")",
            sourceLocation: sourceLocation)
    }
    #expect(
        borders["readings"]?.hasPrefix("none 0px") == true, "the readings, without an error: \(borders["readings"] ?? "not on the page")",
        sourceLocation: sourceLocation)
}
