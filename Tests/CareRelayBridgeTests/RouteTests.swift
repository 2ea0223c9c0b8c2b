@testable import CareRelayBridge
@testable import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@Suite struct SignInTests {
    @Test func aValidCodeSignsInWithAStrictHttpOnlySessionCookie() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            let signIn = try await visitor.get("/sign-in")
            #expect(signIn.status == .ok)
            #expect(signIn.text.contains(#"<label for="code">Invitation code</label>"#))
            let answer = try await visitor.post("/sign-in", [("csrf", try #require(signIn.csrf)), ("code", code.lowercased())])
            #expect(answer.status == .seeOther)
            #expect(answer.location == "/")
            let session = try #require(visitor.lastSetCookies.first { $0.hasPrefix("crb_session=") })
            #expect(session.contains("HttpOnly"))
            #expect(session.contains("SameSite=Strict"))
            #expect(!session.contains("Secure"), "no Secure flag unless configured")
            let home = try await visitor.get("/")
            #expect(home.status == .ok)
            #expect(home.text.contains("/people/9434765919"))
            #expect(home.text.contains("943 476 5919"))
        }
    }

    @Test func secureCookiesWhenConfigured() async throws {
        let fixture = try RouteFixture(secureCookies: true)
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let session = try #require(visitor.lastSetCookies.first { $0.hasPrefix("crb_session=") })
            #expect(session.contains("; Secure"))
        }
    }

    @Test func aWrongCodeIsRefusedWithAClearMessageNextToTheField() async throws {
        let fixture = try RouteFixture()
        try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            let answer = try await visitor.signIn("AAAA-BBBB-CCCC")
            #expect(answer.status == .unauthorized)
            #expect(answer.text.contains("That code is not right"))
            #expect(answer.text.contains(#"id="code-error""#))
            #expect(answer.text.contains(#"aria-invalid="true""#))
            #expect(answer.text.contains(##"<a href="#code">"##), "the error summary links to the field")
            #expect(visitor.cookies["crb_session"] == nil)
            let home = try await visitor.get("/")
            #expect(home.status == .seeOther)
            #expect(home.location == "/sign-in")
        }
    }

    @Test func anEmptyCodeAsksForOne() async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            let answer = try await Visitor(client).signIn("  ")
            #expect(answer.status == .badRequest)
            #expect(answer.text.contains("Enter the invitation code"))
        }
    }

    @Test func aCodeWorksOnlyOnce() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let first = try await Visitor(client).signIn(code)
            #expect(first.status == .seeOther)
            let second = try await Visitor(client).signIn(code)
            #expect(second.status == .unauthorized)
            #expect(second.text.contains("already been used"))
        }
    }

    @Test func anExpiredCodeIsRefused() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite(expiresIn: 3600)
        fixture.clock.advance(by: 3601)
        try await fixture.app.test(.router) { client in
            let answer = try await Visitor(client).signIn(code)
            #expect(answer.status == .unauthorized)
            #expect(answer.text.contains("That code has expired"))
        }
    }

    @Test func theStoreKeepsOnlyTheHashOfTheCode() throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        let bytes =
            try Data(contentsOf: fixture.folder.appendingPathComponent("bridge.sqlite"))
            + ((try? Data(contentsOf: fixture.folder.appendingPathComponent("bridge.sqlite-wal"))) ?? Data())
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains(InvitationCode.normalise(code)))
        #expect(!text.contains(code))
        #expect(text.contains(InvitationCode.hash(code)))
    }

    @Test func signingOutEndsTheSession() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let token = try #require(visitor.cookies["crb_session"])
            let home = try await visitor.get("/")
            let out = try await visitor.post("/sign-out", [("csrf", try #require(home.csrf))])
            #expect(out.status == .seeOther)
            #expect(out.location == "/sign-in?signed-out=1")
            #expect(visitor.cookies["crb_session"] == nil, "the cookie is cleared")
            let page = try await visitor.get("/sign-in?signed-out=1")
            #expect(page.text.contains("You have signed out"))
            // The old token is dead on the server too.
            let replay = Visitor(client)
            replay.cookies["crb_session"] = token
            let again = try await replay.get("/")
            #expect(again.status == .seeOther)
            #expect(again.location == "/sign-in")
        }
    }

    @Test func sessionsExpire() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            #expect(try await visitor.get("/").status == .ok)
            fixture.clock.advance(by: 8 * 3600 + 1)
            #expect(try await visitor.get("/").status == .seeOther)
        }
    }
}

@Suite struct CSRFTests {
    @Test func signInWithoutTheFormTokenIsRefused() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            // No form cookie at all (a cross-site post would not carry the SameSite=Strict one).
            let bare = try await visitor.post("/sign-in", [("csrf", "forged"), ("code", code)])
            #expect(bare.status == .forbidden)
            #expect(bare.text.contains("This form has expired"))
            // A cookie, but a field that does not match it.
            _ = try await visitor.get("/sign-in")
            let mismatched = try await visitor.post("/sign-in", [("csrf", "forged"), ("code", code)])
            #expect(mismatched.status == .forbidden)
            // The code was not used up by the refused attempts.
            #expect(try await visitor.signIn(code).status == .seeOther)
        }
    }

    @Test func everySignedInPostChecksTheSessionToken() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            let valid = Self.checkIn(csrf: "not-the-token", key: try #require(form.key))
            let refused = try await visitor.post("/people/9434765919/check-in", valid)
            #expect(refused.status == .forbidden)
            #expect(fixture.link.sent.isEmpty, "nothing is sent on a forged post")
            let noToken = try await visitor.post("/sign-out", [])
            #expect(noToken.status == .forbidden)
            #expect(try await visitor.get("/").status == .ok, "still signed in")
            // The right token works.
            let sent = try await visitor.post("/people/9434765919/check-in", Self.checkIn(csrf: try #require(form.csrf), key: try #require(form.key)))
            #expect(sent.status == .ok)
            #expect(fixture.link.sent.count == 1)
        }
    }

    static func checkIn(csrf: String, key: String, urgency: String = "routine") -> [(String, String)] {
        [
            ("csrf", csrf), ("key", key), ("patientScore", "4"), ("patientText", "Ate well, walked to the gate."),
            ("wellbeing", "3"), ("strain", "5"), ("carerText", ""), ("concerns", ""), ("urgency", urgency),
            ("pulse", ""), ("oxygen", "96"), ("temperature", ""),
        ]
    }
}

@Suite struct RateLimitTests {
    @Test func afterFiveAttemptsFromOneAddressEvenTheRightCodeWaits() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            for n in 1...5 {
                let answer = try await visitor.signIn("WRNG-CODE-\(1000 + n)")
                #expect(answer.status == .unauthorized)
            }
            let limited = try await visitor.signIn(code)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.text.contains("Too many attempts"))
            #expect(visitor.cookies["crb_session"] == nil)
            // After the window the right code works (it was never used).
            fixture.clock.advance(by: 15 * 60 + 1)
            #expect(try await visitor.signIn(code).status == .seeOther)
        }
    }

    @Test func oneCodeTriedFromManyAddressesIsLimitedToo() async throws {
        let fixture = try RouteFixture(trustForwardedFor: true)
        try fixture.invite()
        try await fixture.app.test(.router) { client in
            for n in 1...5 {
                let answer = try await Visitor(client, address: "192.0.2.\(n)").signIn("GUES-SSED-CODE")
                #expect(answer.status == .unauthorized)
            }
            let limited = try await Visitor(client, address: "192.0.2.99").signIn("GUES-SSED-CODE")
            #expect(limited.status == .tooManyRequests)
            // Another address with another code is not affected.
            let other = try await Visitor(client, address: "192.0.2.100").signIn("OTHR-CODE-HERE")
            #expect(other.status == .unauthorized)
        }
    }
}

@Suite struct SignInFloodTests {
    /// 30,000 wrong codes, each different, each from its own address: the limiter remembers
    /// at most its bound, and still refuses beyond the overall limit until the window passes.
    @Test(.timeLimit(.minutes(8)))
    func distinctWrongCodesAndAddressesKeepTheLimiterWithinItsBound() async throws {
        let fixture = try RouteFixture(trustForwardedFor: true)
        let code = try fixture.invite()
        let limiter = fixture.bridge.limiter
        // Addresses and codes are each remembered up to this many, however many are tried.
        let bound = 2 * fixture.bridge.configuration.signInRemembered
        try await fixture.app.test(.live) { client in
            let visitor = Visitor(client)
            let csrf = try #require(try await visitor.get("/sign-in").csrf)
            var refusedOverall = 0
            for n in 0..<30_000 {
                visitor.address = "198.18.\(n / 256).\(n % 256)"
                // The form token is a double-submit one: the same value in cookie and field
                // stands for a visitor who kept the form open.
                visitor.cookies["crb_form"] = csrf
                let answer = try await visitor.post("/sign-in", [("csrf", csrf), ("code", InvitationCode.generate())])
                try #require(answer.status == .unauthorized || answer.status == .tooManyRequests, "attempt \(n): \(answer.status)")
                if answer.status == .tooManyRequests { refusedOverall += 1 }
                if n % 1_000 == 999 {
                    try #require(limiter.remembered <= bound, "after \(n + 1) codes the limiter holds \(limiter.remembered) entries")
                }
            }
            #expect(refusedOverall >= 30_000 - fixture.bridge.configuration.signInOverallLimit, "the overall limit holds")
            // Now even the right code, from an address never seen, waits for the window ...
            visitor.address = "192.0.2.1"
            #expect(try await visitor.signIn(code).status == .tooManyRequests)
            // ... after which it works (it was never used).
            fixture.clock.advance(by: 15 * 60 + 1)
            #expect(try await visitor.signIn(code).status == .seeOther)
        }
        #expect(limiter.remembered <= bound)
    }
}

@Suite struct PersonPageTests {
    @Test func thePlanAsTheCarerMaySeeItWithHistoryAndContacts() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 2, change: "First shared with Jean.")
        try fixture.deliverPlan(version: 3, change: "Evening call moved to 18:00.")
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let page = try await visitor.get("/people/9434765919")
            #expect(page.status == .ok)
            #expect(page.text.contains("Margaret Ellis: Living well at home"), "the name from the plan's patientName")
            // A heading is read aloud as it looks: the "If things change" tag is not part of it.
            #expect(page.text.contains(#"<h3 id="section-contingency">If things go wrong</h3>"#), "\(page.text)")
            #expect(page.text.contains("Version 3, shared by Priya Patel"))
            #expect(page.text.contains("Daily living"))
            #expect(!page.text.contains("Mood and memory"), "a section the carer may not see is simply absent")
            #expect(page.text.contains("Upcoming contacts"))
            #expect(page.text.contains("Morning call: personal care"))
            #expect(page.text.contains("Earlier versions"))
            #expect(page.text.contains(#"href="/people/9434765919?plan=cp.9434765919.home&amp;version=2""#))
            #expect(page.text.contains(#"<script src="/static/live.js" defer></script>"#))
            #expect(page.text.contains(#"data-events="/people/9434765919/events?after="#))
            let old = try await visitor.get("/people/9434765919?version=2")
            #expect(old.text.contains("You are looking at version 2"))
            #expect(old.text.contains("First shared with Jean."))
        }
    }

    @Test func anotherPersonsPageIsNotThere() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            #expect(try await visitor.get("/people/4010232137").status == .notFound)
            #expect(try await visitor.get("/people/not-a-number").status == .notFound)
            #expect(try await visitor.get("/people/4010232137/check-in").status == .notFound)
        }
    }

    @Test func pagesCarrySecurityHeaders() async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            let page = try await Visitor(client).get("/sign-in")
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            #expect(page.headers[.cacheControl] == "no-store")
        }
    }
}

@Suite struct CheckInTests {
    @Test func thePersonIsNamedFromThePlansPatientNameNeverFromItsTitle() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        let plan = try fixture.planDelivery(version: 2) { plan in
            plan["title"] = "Falls: prevention"
            plan.removeValue(forKey: "patientName")
        }
        try fixture.store.storeDelivery(plan.header, body: plan.body, now: fixture.clock.now())
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            #expect(form.text.contains("How is the person you care for today?"), "\(form.text)")
            #expect(!form.text.contains("prevention today"))
            let page = try await visitor.get("/people/9434765919")
            #expect(page.text.contains("Falls: prevention"), "the title is the plan's, shown as it is")
        }
    }

    @Test func peopleAndServicesOnThePlanAreNamedNeverGivenByDirectoryId() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        // One performer with the name the plan gives it, one with nothing but an id outside the directory.
        let plan = try fixture.planDelivery(version: 2) { plan in
            guard var sections = plan["sections"] as? [[String: Any]], var activities = sections[0]["activities"] as? [[String: Any]],
                activities.count >= 2
            else { return }
            activities[1]["performer"] = ["team": "sunderland-night-sitters"]
            sections[0]["activities"] = activities
            plan["sections"] = sections
        }
        try fixture.store.storeDelivery(plan.header, body: plan.body, now: fixture.clock.now())
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let page = try await visitor.get("/people/9434765919")
            #expect(page.text.contains("Sunderland Home Care"), "the plan's own name for the service")
            #expect(page.text.contains("another service"))
            #expect(!page.text.contains("sunderland-home-care") && !page.text.contains("sunderland-night-sitters") && !page.text.contains("pharm.ng"))
        }
    }

    @Test func anEmptyFormShowsEveryProblemNextToItsField() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            #expect(form.text.contains("How is Margaret Ellis today?"))
            #expect(form.text.contains("Your answers go to Priya Patel"))
            let answer = try await visitor.post(
                "/people/9434765919/check-in",
                [
                    ("csrf", try #require(form.csrf)), ("key", try #require(form.key)), ("patientText", ""), ("strain", ""),
                    ("pulse", "fast"), ("oxygen", "150"), ("concerns", "Her cough is worse at night."),
                ])
            #expect(answer.status == .badRequest)
            #expect(answer.text.contains("<title>Error: Check in"))
            #expect(answer.text.contains("There is a problem"))
            for (field, message) in [
                ("patientScore", "Choose how Margaret Ellis is today, from 1 (very poorly) to 5 (very well)."),
                ("patientText", "Write a few words about how Margaret Ellis is today."),
                ("wellbeing", "Choose how you are, from 1 (struggling) to 5 (well)."),
                ("strain", "Choose how much strain you feel, from 0 (none) to 10 (you cannot go on)."),
                ("urgency", "Choose how soon you would like someone to get back to you."),
                ("pulse", "Enter a number, for example 72, or leave it empty."),
                ("oxygen", "150 is not a likely reading: check it and enter a number from 50 to 100, or leave it empty."),
            ] {
                #expect(
                    answer.text.contains(##"<p class="error" id="\##(field)-error"><span class="visually-hidden">Error:</span> \##(message)</p>"##),
                    "\(field)")
                // A radio group's link goes to its first radio (AccessibilityTests checks every link).
                let target = ["patientScore": "patientScore-1", "wellbeing": "wellbeing-1", "urgency": "urgency-routine"][field] ?? field
                #expect(answer.text.contains(##"<li><a href="#\##(target)">\##(message)</a></li>"##), "\(field) in the summary")
            }
            #expect(answer.text.contains("Her cough is worse at night."), "what was typed is kept")
            #expect(fixture.link.sent.isEmpty)
        }
    }

    @Test func aCheckInGoesToTheCoordinatorOnBehalfOfTheCarer() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            let fields = CSRFTests.checkIn(csrf: try #require(form.csrf), key: try #require(form.key))
            let answer = try await visitor.post("/people/9434765919/check-in", fields)
            #expect(answer.status == .ok)
            #expect(answer.text.contains("Check-in sent"))
            #expect(!answer.text.contains("The team is closed now"))
            let (header, body) = try #require(fixture.link.sent.first)
            #expect(header.kind == .carerCheckIn)
            #expect(header.onBehalfOf == "carer.ellis")
            #expect(header.to == [.person("coord.patel")])
            #expect(header.patient == ellis)
            let checkIn = try CarerCheckIn.decode(json: body)
            #expect(checkIn.carer == "carer.ellis")
            #expect(checkIn.patientWellbeing.score == 4)
            #expect(checkIn.carerWellbeing.strain == 5)
            #expect(checkIn.readings?.first?.unit == "%")
            // Pressing the button again sends the same idempotency key.
            _ = try await visitor.post("/people/9434765919/check-in", fields)
            #expect(fixture.link.sent.count == 2)
            #expect(fixture.link.sent[0].header.key == fixture.link.sent[1].header.key)
        }
    }

    /// Jean signs in at `now` and sends an urgent check-in; the page that answers it.
    func urgentCheckIn(at now: Date) async throws -> (answer: Visitor.Page, fixture: RouteFixture) {
        let fixture = try RouteFixture(now: now)
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        let answer = try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            return try await visitor.post(
                "/people/9434765919/check-in",
                CSRFTests.checkIn(csrf: try #require(form.csrf), key: try #require(form.key), urgency: "urgent"))
        }
        return (answer, fixture)
    }

    @Test func anUrgentCheckInOutOfHoursShowsTheFallbackContacts() async throws {
        let (answer, fixture) = try await urgentCheckIn(at: RouteFixture.saturday)
        #expect(answer.status == .ok)
        #expect(answer.text.contains("The team is closed now"))
        #expect(answer.text.contains("open mon-fri 08:00-18:00"))
        #expect(answer.text.contains("<li>District nurses: 0191 555 0100</li>"))
        #expect(answer.text.contains("<li>Emergency: 999</li>"))
        #expect(fixture.link.sent.first?.header.priority == .urgent)
    }

    @Test func anUrgentCheckInInHoursNeedsNoFallback() async throws {
        let (answer, _) = try await urgentCheckIn(at: RouteFixture.weekday)
        #expect(!answer.text.contains("The team is closed now"))
        #expect(answer.text.contains("The team is open now"))
    }

    @Test func whenTheBrokerCannotBeReachedTheAnswersStay() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        fixture.link.failing = true
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            let answer = try await visitor.post(
                "/people/9434765919/check-in",
                CSRFTests.checkIn(csrf: try #require(form.csrf), key: try #require(form.key)))
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.text.contains("Your check-in was not sent"))
            #expect(answer.text.contains("Ate well, walked to the gate."))
        }
    }
}

@Suite struct UnitTests {
    @Test func serviceHours() throws {
        let hours = try ServiceHours(parsing: "mon-fri 08:00-18:00")
        let london = TimeZone(identifier: "Europe/London")!
        let f = ISO8601DateFormatter()
        #expect(hours.isOpen(at: f.date(from: "2026-11-25T10:00:00Z")!, in: london))
        #expect(!hours.isOpen(at: f.date(from: "2026-11-25T18:30:00Z")!, in: london))
        #expect(!hours.isOpen(at: f.date(from: "2026-11-28T10:00:00Z")!, in: london), "Saturday")
        // British Summer Time: 07:30 UTC is 08:30 in London.
        #expect(hours.isOpen(at: f.date(from: "2026-07-01T07:30:00Z")!, in: london))
        #expect(throws: ServiceHours.ParseError.self) { try ServiceHours(parsing: "whenever") }
        #expect(try ServiceHours(parsing: "24/7").isOpen(at: Date(), in: london))
    }

    @Test func theSignInLimiterForgetsTheLeastRecentlyTriedFirst() {
        let limiter = SignInLimiter(limit: 2, overallLimit: 100, window: 60, remembering: 3)
        let start = Date()
        func attempt(_ address: String, _ code: String, after seconds: TimeInterval = 0) -> Bool {
            limiter.attempt(address: address, codeHash: code, now: start + seconds)
        }
        #expect(attempt("a", "code-1") && attempt("a", "code-2"))
        #expect(!attempt("a", "code-3"), "a third attempt from one address within the window")
        #expect(attempt("b", "code-4") && attempt("c", "code-5"))
        #expect(!attempt("a", "code-6"), "three addresses fit: a is still remembered")
        #expect(limiter.remembered <= 6)
        // d and e push out b and c (a, just tried, is the most recent) ...
        #expect(attempt("d", "code-7") && attempt("e", "code-8"))
        #expect(!attempt("a", "code-9"))
        // ... then f, g and h push out a, which may try again.
        #expect(attempt("f", "code-10") && attempt("g", "code-11") && attempt("h", "code-12"))
        #expect(attempt("a", "code-13"))
        #expect(limiter.remembered == 6, "three addresses and three codes")
        #expect(attempt("a", "code-14", after: 1))
        #expect(!attempt("a", "code-15", after: 2))
        // Refused attempts count too: a window after the last two, a may try again.
        #expect(attempt("a", "code-16", after: 62) && attempt("a", "code-17", after: 62))
    }

    @Test func theOverallSignInLimitHoldsAcrossAddressesAndCodes() {
        let limiter = SignInLimiter(limit: 5, overallLimit: 10, window: 60, remembering: 100)
        let start = Date()
        for n in 0..<10 { #expect(limiter.attempt(address: "192.0.2.\(n)", codeHash: "code-\(n)", now: start)) }
        #expect(!limiter.attempt(address: "192.0.2.99", codeHash: "code-99", now: start + 59))
        #expect(limiter.attempt(address: "192.0.2.99", codeHash: "code-99", now: start + 60))
    }

    @Test func invitationCodesNormalise() {
        let code = InvitationCode.generate()
        #expect(code.count == 14)
        #expect(InvitationCode.hash(code) == InvitationCode.hash(code.lowercased().replacingOccurrences(of: "-", with: " ")))
        #expect(InvitationCode.hash(code).count == 64)
    }

    @Test func anInvitationIsTakenOnlyFromItsIssuer() throws {
        let fixture = try RouteFixture()
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let intake = DeliveryIntake(store: fixture.store, hub: fixture.hub, gatewayID: "bridge", logger: logger, now: { fixture.clock.now() })
        let forged = CarerInvite(
            carer: "carer.ellis", patients: [ellis], codeHash: InvitationCode.hash("AAAA-BBBB-CCCC"),
            expires: Timestamp(fixture.clock.now().addingTimeInterval(3600)), issuedBy: "coord.patel")
        func delivery(from: PersonID) -> Delivery {
            Delivery(
                header: DeliverHeader(
                    id: "m-\(from)", recipient: "bridge", kind: .carerInvite, from: from, fromName: "x", to: [.person("bridge")],
                    patient: nil, priority: nil, labels: nil, correlation: nil, sentAt: Timestamp(fixture.clock.now()).text,
                    redacted: nil, override: nil, topic: nil, attempt: 1),
                body: forged.encode())
        }
        try intake.store(delivery(from: "coord.other"))
        if case .success = try fixture.store.redeem(codeHash: forged.codeHash, now: fixture.clock.now(), sessionLifetime: 60) {
            Issue.record("an invitation whose issuedBy is not its sender must not be stored")
        }
        try intake.store(delivery(from: "coord.patel"))
        if case .failure(let problem) = try fixture.store.redeem(codeHash: forged.codeHash, now: fixture.clock.now(), sessionLifetime: 60) {
            Issue.record("expected the invitation to work: \(problem)")
        }
    }
}

/// The link in an on-call notification.
@Suite struct OnCallLinkTests {
    @Test func theLinkAsksFirstThenAcknowledgesWithItsSecret() async throws {
        let fixture = try RouteFixture()
        let path = "/on-call/m1.west.social-care/\(FakeLink.onCallToken)"
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            // Opening it (as a mail scanner would) acknowledges nothing.
            let page = try await visitor.get(path)
            #expect(page.status == .ok)
            #expect(page.text.contains("I have it"))
            #expect(fixture.link.asked.isEmpty)
            let done = try await visitor.post(path, [])
            #expect(done.status == .ok)
            #expect(done.text.contains("nobody else will be called"))
            #expect(fixture.link.asked.map(\.params) == [["id": "m1.west.social-care", "token": FakeLink.onCallToken]])
            let wrong = try await visitor.post("/on-call/m1.west.social-care/guessed", [])
            #expect(wrong.status == .notFound)
            #expect(wrong.text.contains("This link does not work"))
        }
    }
}
