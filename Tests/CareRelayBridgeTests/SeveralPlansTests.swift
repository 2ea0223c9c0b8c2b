@testable import CareRelayBridge
import CareRelayModel
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// A person may have several care plans (a home plan, then a falls plan from a template): the
/// page shows one at a time, its own versions only, and links to the others.
@Suite struct SeveralPlansTests {
    @Test func eachPlanKeepsItsOwnVersionsAndTheOthersAreLinked() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 2, change: "Home plan, second version.", id: "home-2")
        try fixture.deliverPlan(version: 3, change: "Home plan, third version.", id: "home-3")
        let falls = try fixture.planDelivery(version: 1, change: "First version", id: "falls-1") { plan in
            plan["plan"] = "cp.9434765919.falls-prevention"
            plan["title"] = "Falls prevention at home"
        }
        try fixture.store.storeDelivery(falls.header, body: falls.body, now: fixture.clock.now())
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            // The plan shared last is shown; its history is its own, not the home plan's.
            let page = try await visitor.get("/people/9434765919")
            #expect(page.text.contains("Care plan: Falls prevention at home"))
            #expect(!page.text.contains("Earlier versions"), "the falls plan has one version")
            #expect(page.text.contains("Other care plans"))
            #expect(page.text.contains(#"href="/people/9434765919?plan=cp.9434765919.home">Living well at home</a>, version 3"#), "\(page.text)")
            // The home plan, with its own two versions.
            let home = try await visitor.get("/people/9434765919?plan=cp.9434765919.home")
            #expect(home.text.contains("Care plan: Living well at home"))
            #expect(home.text.contains("Version 3, shared by"))
            #expect(home.text.contains(#"href="/people/9434765919?plan=cp.9434765919.home&amp;version=2""#))
            #expect(!home.text.contains("version=1"), "the falls plan's version 1 is not a version of the home plan")
            #expect(home.text.contains(#"href="/people/9434765919?plan=cp.9434765919.falls-prevention">Falls prevention at home</a>, version 1"#))
        }
    }
}
