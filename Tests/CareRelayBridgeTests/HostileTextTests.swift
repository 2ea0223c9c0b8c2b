import CareRelayBridge
@testable import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Text the bridge did not write (plans, names, what a visitor types) reaches carers' browsers
/// only encoded for where it lands: inside an SSE field, an HTML text node or an attribute.
/// These run over HTTP against the bridge listening on loopback.
@Suite struct LiveStreamEncodingTests {
    /// Line breaks of every kind, each followed by something that would be a field of its own.
    static let injected = "Evening call moved.\r\nevent: signed-out\r\ndata: <b>forged</b>\r\n\r\nevent: update\ndata: second\rid: 999999\r\rretry: 1"

    @Test func lineBreaksInPlanTextStayInsideTheUpdatesData() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        var logger = Logger(label: "bridge-test")
        logger.logLevel = .critical
        let intake = DeliveryIntake(store: fixture.store, hub: fixture.hub, gatewayID: "bridge", logger: logger, now: { fixture.clock.now() })
        try await fixture.app.test(.live) { client in
            let visitor = Visitor(client)
            #expect(try await visitor.signIn(code).status == .seeOther)
            let page = try await visitor.get("/people/9434765919")
            let events = try #require(page.eventsURL)
            // Version 4 arrives while the page is open but before its stream is: it is sent
            // from what is stored. Version 5 arrives while the stream is open: it is sent live.
            let v4 = try fixture.planDelivery(version: 4, change: Self.injected, fromName: "Priya\r\nevent: x\r\n\r\nPatel")
            try fixture.store.storeDelivery(v4.header, body: v4.body, now: fixture.clock.now())
            let stream = Task { try await visitor.get(events) }
            try await waitUntil("the stream is open") { fixture.hub.listenerCount >= 1 }
            let v5 = try fixture.planDelivery(version: 5, change: Self.injected)
            let delivery = Delivery(header: v5.header, body: v5.body)
            if let seq = try intake.store(delivery) { intake.announce(delivery, seq: seq) }
            // Ends the stream once what is queued for it is written, so the response completes.
            fixture.hub.finishAll()
            let answer = try await stream.value
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "text/event-stream")

            let parsed = EventStream.parse(answer.text)
            #expect(parsed.map(\.type) == ["update", "update"], "only the bridge's own events: \(answer.text.debugDescription)")
            #expect(
                parsed.count == 2 && parsed[0].data.contains("New care plan: version 4") && parsed[1].data.contains("New care plan: version 5"),
                "\(parsed)")
            #expect(parsed.allSatisfy { $0.id.flatMap(Int64.init) != nil && $0.id != "999999" }, "ids are the store's sequence numbers: \(parsed)")
            for event in parsed {
                // Everything the plan said is still there, as text inside the one fragment.
                #expect(event.data.contains("event: signed-out"), "\(event.data)")
                #expect(event.data.contains("&lt;b&gt;forged&lt;/b&gt;"), "\(event.data)")
                #expect(
                    event.data.hasPrefix(#"<div class="notice live-update""#) && event.data.hasSuffix("</div>"), "one whole fragment: \(event.data)")
            }
            // No line of the raw stream is anything but the bridge's own fields.
            for line in EventStream.lines(answer.text) where !line.isEmpty {
                let field = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
                #expect(["", "retry", "event", "id", "data"].contains(field), "unexpected line \(line.debugDescription)")
                if field == "event" { #expect(line == "event: update") }
                if field == "retry" { #expect(line == "retry: 3000") }
            }
        }
    }
}

@Suite struct HTMLEscapingTests {
    /// Markup, both quotes, an ampersand, and a quote and an angle bracket each followed by a
    /// combining mark (one Character in Swift, still a quote and a bracket to the browser).
    static let hostile = #"<script>alert(1)</script> "x" 'y' & "# + "\"\u{301} onmouseover=alert(2) x=\u{301}'\u{301} <\u{301}img src=x>"

    /// What an attacker's text must never leave in a page: a tag, or a quote or bracket that a
    /// combining mark hides from Character-by-Character escaping.
    static func expectEscaped(_ page: Visitor.Page, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(page.status.code < 500, "\(name): \(page.status)", sourceLocation: sourceLocation)
        #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(name) shows the text, escaped", sourceLocation: sourceLocation)
        #expect(!page.text.contains("<script>alert"), "\(name)", sourceLocation: sourceLocation)
        for raw in ["\"\u{301}", "'\u{301}", "<\u{301}", "\"x\"", "'y'"] {
            #expect(!page.containsBytes(raw), "\(name) holds \(raw.debugDescription) unescaped", sourceLocation: sourceLocation)
        }
        #expect(page.containsBytes("&quot;\u{301}") && page.containsBytes("&lt;\u{301}"), "\(name)", sourceLocation: sourceLocation)
    }

    @Test func textFromAPlanIsEscapedOnEveryPage() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        let hostile = Self.hostile
        let edit: (inout [String: Any]) -> Void = { plan in
            plan["title"] = "Living well at home: \(hostile)"
            // The name the check-in pages speak of comes from here.
            plan["patientName"] = ["given": [hostile], "family": hostile]
            plan["description"] = hostile
            var sections = plan["sections"] as? [[String: Any]] ?? []
            for i in sections.indices {
                sections[i]["title"] = hostile
                sections[i]["text"] = hostile
                var activities = sections[i]["activities"] as? [[String: Any]] ?? []
                for j in activities.indices {
                    activities[j]["description"] = hostile
                    activities[j]["schedule"] = hostile
                }
                sections[i]["activities"] = activities
            }
            plan["sections"] = sections
        }
        for version in [3, 4] {
            let plan = try fixture.planDelivery(version: version, change: hostile, fromName: hostile, edit: edit)
            try fixture.store.storeDelivery(plan.header, body: plan.body, now: fixture.clock.now())
        }
        try await fixture.app.test(.live) { client in
            let visitor = Visitor(client)
            #expect(try await visitor.signIn(code).status == .seeOther)
            Self.expectEscaped(try await visitor.get("/"), "the home page")
            Self.expectEscaped(try await visitor.get("/people/9434765919?version=3"), "the plan page")
            let form = try await visitor.get("/people/9434765919/check-in")
            Self.expectEscaped(form, "the check-in form")
            let sent = try await visitor.post(
                "/people/9434765919/check-in",
                CSRFTests.checkIn(csrf: try #require(form.csrf), key: try #require(form.key)))
            Self.expectEscaped(sent, "the check-in confirmation")
            // The live update fragments, as the page's script inserts them.
            fixture.hub.finishAll()
            let stream = try await visitor.get("/people/9434765919/events?after=0")
            let fragments = EventStream.parse(stream.text).map(\.data).joined(separator: "\n")
            Self.expectEscaped(Visitor.Page(status: stream.status, headers: stream.headers, text: fragments), "the live updates")
        }
    }

    @Test func whatAVisitorTypesIsEscapedWhenShownBack() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.live) { client in
            let visitor = Visitor(client)
            // A wrong code is shown back in the field's value attribute.
            let wrong = try await visitor.signIn(Self.hostile)
            #expect(wrong.status == .unauthorized)
            // (It is cut to its first 40 Characters, the first combining quote among them.)
            #expect(wrong.text.contains(#"value="&lt;script&gt;alert(1)&lt;/script&gt; &quot;x&quot; &#39;y&#39; &amp; "#), "\(wrong.text)")
            #expect(wrong.containsBytes("&quot;\u{301} on\">") && !wrong.containsBytes("\"\u{301}"), "\(wrong.text)")

            // A check-in form with problems shows what was typed, in text areas and in attributes.
            #expect(try await visitor.signIn(code).status == .seeOther)
            let form = try await visitor.get("/people/9434765919/check-in")
            let answer = try await visitor.post(
                "/people/9434765919/check-in",
                [
                    ("csrf", try #require(form.csrf)), ("key", try #require(form.key)), ("patientText", Self.hostile),
                    ("concerns", Self.hostile), ("carerText", Self.hostile), ("pulse", Self.hostile), ("oxygen", Self.hostile),
                ])
            #expect(answer.status == .badRequest)
            Self.expectEscaped(answer, "the check-in form with errors")
        }
    }
}
