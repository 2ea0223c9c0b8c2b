@testable import CareRelayBridge
@testable import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// A copy the broker takes back (CRP.md section 10.5) leaves the bridge's store and the
/// carer's page; what is left says what was taken back and when.
@Suite struct RevocationTests {
    func intake(_ fixture: RouteFixture) -> DeliveryIntake {
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        return DeliveryIntake(store: fixture.store, hub: fixture.hub, gatewayID: "bridge", logger: logger, now: { fixture.clock.now() })
    }

    func revocation(of message: String, parts: [String]? = nil, id: String = UUID().uuidString) -> Delivery {
        let text =
            parts == nil
            ? "Care plan 'Living well at home' version 3, shared with you on 25 November 2026, is taken back: the patient's consent no longer covers you seeing it."
            : "The section 'Medication' of care plan 'Living well at home' version 3 is taken back: the patient's consent no longer covers you seeing it."
        let notice = BrokerNotice(notice: .revoked, message: message, by: "nurse.ali", patient: ellis, text: text, parts: parts)
        return Delivery(
            header: DeliverHeader(
                id: "n-\(id)", recipient: "carer.ellis", kind: .notice, from: "carerelay", fromName: "CareRelay", to: [.person("carer.ellis")],
                patient: ellis, priority: .urgent, labels: nil, correlation: message, sentAt: Timestamp(Date()).text, redacted: nil,
                override: nil, topic: nil, attempt: 1),
            body: notice.encode())
    }

    @Test func aRevokedSectionLeavesThePlanAndARevokedPlanLeavesThePage() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3, id: "v3")
        let intake = intake(fixture)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let before = try await visitor.get("/people/9434765919")
            #expect(before.text.contains(#"data-part="m-v3/medication""#))
            #expect(before.text.contains("Alendronic acid"))

            // One section taken back: the plan stays, without it, in the store and on the page.
            try intake.store(revocation(of: "m-v3", parts: ["medication"]))
            let stored = try #require(try fixture.store.messages(for: "carer.ellis", kind: .carePlanShare).first)
            let plan = try CarePlanShare.decode(json: stored.body)
            #expect(!plan.sections.contains { $0.id == "medication" })
            let partly = try await visitor.get("/people/9434765919")
            #expect(!partly.text.contains("Alendronic acid"))
            #expect(partly.text.contains("Daily living"))
            #expect(partly.text.contains("Taken back on"))
            #expect(partly.text.contains("The section &#39;Medication&#39;") || partly.text.contains("The section 'Medication'"))

            // The whole copy taken back: nothing of it is left but the notice.
            try intake.store(revocation(of: "m-v3"))
            #expect(try fixture.store.messages(for: "carer.ellis", kind: .carePlanShare).isEmpty)
            let after = try await visitor.get("/people/9434765919")
            #expect(!after.text.contains("Daily living"))
            #expect(after.text.contains("No care plan has been shared with you for this person yet"))
            #expect(after.text.contains("is taken back"))
        }
    }

    @Test func theLiveUpdateNamesWhatLeavesThePage() throws {
        let fixture = try RouteFixture()
        let notice = revocation(of: "m-v3", parts: ["medication", "daily-living"])
        let html = fixture.bridge.liveFragment(notice.header, body: notice.body, patient: ellis)
        #expect(html.contains(#"data-revokes="m-v3/medication m-v3/daily-living""#))
        #expect(html.contains("Part taken back"))
        let whole = revocation(of: "m-v3")
        #expect(fixture.bridge.liveFragment(whole.header, body: whole.body, patient: ellis).contains(#"data-revokes="m-v3""#))
    }

    @Test func aRedeliveredRevocationChangesNothingMore() throws {
        let fixture = try RouteFixture()
        try fixture.deliverPlan(version: 3, id: "v3")
        let intake = intake(fixture)
        let notice = revocation(of: "m-v3", parts: ["medication"], id: "once")
        try intake.store(notice)
        try intake.store(notice)
        #expect(try fixture.store.messages(for: "carer.ellis", kind: .notice).count == 1)
        let plan = try CarePlanShare.decode(json: try #require(try fixture.store.messages(for: "carer.ellis", kind: .carePlanShare).first).body)
        #expect(plan.sections.map(\.id) == ["daily-living", "contingency"])
    }
}
