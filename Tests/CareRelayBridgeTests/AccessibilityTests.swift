import CareRelayBridge
import Foundation
import HummingbirdTesting
import Testing

/// The error summaries and error states in the HTML the bridge sends. The browser test
/// (BrowserEndToEndTests) follows the same links in Chromium, checks the styling a browser
/// computes, and runs axe-core on every page.
@Suite struct AccessibilityTests {
    /// The `#id` targets of the links in the page's error summary, in order.
    static func summaryTargets(_ html: String) throws -> [String] {
        guard let start = html.range(of: #"<div class="error-summary""#), let end = html[start.upperBound...].range(of: "</div>") else {
            return []
        }
        let summary = html[start.lowerBound..<end.upperBound]
        return try summary.matches(of: Regex(#"<a href="([^"]*)""#)).map { match in
            String(match.output[1].substring ?? "")
        }
    }

    /// The start tags of the elements whose id is `id` (attribute values are escaped, so no `>` falls inside one).
    static func elements(withID id: String, in html: String) throws -> [String] {
        try html.matches(of: Regex(#"<[a-zA-Z]+\s[^>]*\bid="\#(id)"[^>]*>"#)).map { String(html[$0.range]) }
    }

    /// Expects every link of the page's error summary to point at exactly one element that can
    /// take focus when the link is followed: an input (not a hidden one), a select or a textarea.
    static func expectSummaryLinksLeadToControls(_ html: String, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let targets = try summaryTargets(html)
        #expect(targets.count == count, "links in the summary: \(targets)", sourceLocation: sourceLocation)
        for target in targets {
            guard target.hasPrefix("#"), target.count > 1 else {
                Issue.record("the summary links to \(target), not to an element of the page", sourceLocation: sourceLocation)
                continue
            }
            let id = String(target.dropFirst())
            let found = try elements(withID: id, in: html)
            guard found.count == 1, let tag = found.first else {
                Issue.record("\(target): \(found.count) elements have this id", sourceLocation: sourceLocation)
                continue
            }
            let control = (tag.hasPrefix("<input ") && !tag.contains(#"type="hidden""#)) || tag.hasPrefix("<select ") || tag.hasPrefix("<textarea ")
            #expect(control, "\(target) leads to \(tag), which cannot take focus", sourceLocation: sourceLocation)
        }
    }

    @Test func everyLinkInTheSignInErrorSummaryLeadsToAControl() async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            let answer = try await Visitor(client).signIn("")
            #expect(answer.status == .badRequest)
            try Self.expectSummaryLinksLeadToControls(answer.text, count: 1)
        }
    }

    @Test func everyLinkInTheCheckInErrorSummaryLeadsToAControl() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            // Every field of the form wrong at once: three radio groups, three text areas, the
            // select and the three text inputs.
            let tooLong = String(repeating: "a", count: 4001)
            let answer = try await visitor.post(
                "/people/9434765919/check-in",
                [
                    ("csrf", try #require(form.csrf)), ("key", try #require(form.key)), ("patientText", tooLong), ("carerText", tooLong),
                    ("concerns", tooLong), ("strain", "11"), ("pulse", "fast"), ("oxygen", "150"), ("temperature", "hot"),
                ])
            #expect(answer.status == .badRequest)
            try Self.expectSummaryLinksLeadToControls(answer.text, count: 10)
            // A radio group's link goes to its first radio.
            #expect(try Self.summaryTargets(answer.text).filter { $0.contains("-") } == ["#patientScore-1", "#wellbeing-1", "#urgency-routine"])
        }
    }

    @Test func aRadioGroupWithAnErrorIsMarkedAsOneAndOnlyThen() async throws {
        let fixture = try RouteFixture()
        let code = try fixture.invite()
        try fixture.deliverPlan(version: 3)
        try await fixture.app.test(.router) { client in
            let visitor = Visitor(client)
            _ = try await visitor.signIn(code)
            let form = try await visitor.get("/people/9434765919/check-in")
            // How she is is answered; how the carer is and how soon are not.
            let answer = try await visitor.post(
                "/people/9434765919/check-in",
                [("csrf", try #require(form.csrf)), ("key", try #require(form.key)), ("patientScore", "3"), ("patientText", "Fine.")])
            #expect(answer.status == .badRequest)
            for (group, hasError) in [("patientScore", false), ("wellbeing", true), ("urgency", true)] {
                let tags = try answer.text.matches(of: Regex(#"<fieldset [^>]*\bid="\#(group)"[^>]*>"#)).map { String(answer.text[$0.range]) }
                let tag = try #require(tags.first, "the \(group) fieldset")
                #expect(tag.contains(#"class="field has-error""#) == hasError, "\(group): \(tag)")
                #expect(tag.contains(#"aria-describedby="\#(group)-error""#) == hasError, "\(group): \(tag)")
                #expect(answer.text.contains(#"<p class="error" id="\#(group)-error">"#) == hasError, "\(group)'s error message")
            }
        }
    }
}
