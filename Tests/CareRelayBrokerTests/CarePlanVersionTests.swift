import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// A plan's versions only go forward, and one version number means one plan: two people who
/// edited the same version at once cannot both send it.
@Suite struct CarePlanVersionTests {
    @Test func aVersionIsNeverReplacedNorOvertakenByAnOlderOne() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.linkCareTeam(of: ellis, ["person:nurse.ali", "person:gp.khan", "team:west.social-care"])
        let plan = try jsonObject(try Bodies.carePlan())  // version 3
        try nurse.send(.carePlanShare, to: [.person("gp.khan")], patient: ellis, body: try Bodies.json(plan))
        // The same version, unchanged, to someone more: fine.
        try nurse.send(.carePlanShare, to: [.person("sw.okafor")], patient: ellis, body: try Bodies.json(plan))

        // A colleague edited version 3 at the same time and sends another version 3.
        var rival = plan
        rival["changeSummary"] = "Evening call moved to 19:00."
        let gp = try system.client("gp.khan", receive: false)
        #expect(
            throws: ClientError.rejected(
                ProtocolError(
                    .invalidTransition,
                    "version: version 3 of cp.9434765919.home was already shared by nurse.ali with other content; fetch the latest and make yours version 4"
                ))
        ) { try gp.send(.carePlanShare, to: [.person("sw.okafor")], patient: ellis, body: try Bodies.json(rival)) }
        // An older version would overtake nothing.
        var older = plan
        older["version"] = 2
        #expect(
            refusal { try gp.send(.carePlanShare, to: [.person("sw.okafor")], patient: ellis, body: try Bodies.json(older)) } == .invalidTransition)
        // The next version goes.
        rival["version"] = 4
        try gp.send(.carePlanShare, to: [.person("sw.okafor")], patient: ellis, body: try Bodies.json(rival))
        // Another plan of the same patient keeps its own numbers.
        var falls = plan
        falls["plan"] = "cp.9434765919.falls"
        falls["version"] = 1
        try gp.send(.carePlanShare, to: [.person("sw.okafor")], patient: ellis, body: try Bodies.json(falls))
    }

    @Test("two plans under one version number in the same batch: the second is refused before either is stored")
    func oneVersionNumberInOneBatch() throws {
        let harness = try CoreHarness()
        let nurse = try harness.connect("nurse.ali", receive: false)
        let gp = try harness.connect("gp.khan", receive: false)
        for member in ["person:nurse.ali", "person:gp.khan", "team:west.social-care"] {
            _ = harness.query(nurse, "careteam.link", ["patient": ellis.digits, "member": member])
        }
        let plan = try jsonObject(try Bodies.carePlan())
        var rival = plan
        rival["changeSummary"] = "Evening call moved to 19:00."
        func share(_ body: [String: Any]) throws -> ClientCommand {
            .send(SendHeader(key: UUID().uuidString, kind: .carePlanShare, to: [.person("sw.okafor")], patient: ellis), body: try Bodies.json(body))
        }
        // Both read off the socket before the batch is committed.
        harness.take(nurse, try share(plan))
        harness.take(gp, try share(rival))
        let answers = harness.turn()
        #expect(answers[nurse.routingID]?.first?.accepted != nil)
        #expect(answers[gp.routingID]?.first?.rejected?.code == ErrorCode.invalidTransition.rawValue)
        // And the same version, unchanged, twice in one batch is fine.
        harness.take(nurse, try share(plan))
        harness.take(gp, try share(plan))
        #expect(harness.turn().values.allSatisfy { $0.first?.accepted != nil })
    }
}
