import CareRelayModel
import CareRelayPolicy
import Foundation
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct ConsentWireTests {
    static let exampleDir = repositoryRoot.appendingPathComponent("Protocols/examples/consent")

    static var exampleNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: exampleDir.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test func examplesExist() {
        #expect(Self.exampleNames.contains { $0.hasPrefix("valid-") })
        #expect(Self.exampleNames.contains { $0.hasPrefix("invalid-swiftonly-") })
    }

    @Test(arguments: exampleNames)
    func example(_ name: String) throws {
        let data = try Data(contentsOf: Self.exampleDir.appendingPathComponent(name))
        if name.hasPrefix("valid-") {
            let body = try JSONDecoder().decode(ConsentBody.self, from: data)
            // Round trip: encode and decode again to the same value.
            let again = try JSONDecoder().decode(ConsentBody.self, from: try JSONEncoder().encode(body))
            #expect(again == body)
        } else {
            // Refused: a field's shape as a DecodingError, a rule of the whole directive as a
            // MessageValidationError saying which rule.
            #expect(
                performing: { try JSONDecoder().decode(ConsentBody.self, from: data) },
                throws: { $0 is DecodingError || $0 is MessageValidationError })
        }
    }

    @Test func objectionDecodesAsDenyObjection() throws {
        let data = try Data(contentsOf: Self.exampleDir.appendingPathComponent("valid-object-mental-health.json"))
        guard case .object(let d) = try JSONDecoder().decode(ConsentBody.self, from: data) else {
            Issue.record("not an objection")
            return
        }
        #expect(d.isObjection && d.type == .deny)
        #expect(d.subjects == [.everyone])
        #expect(d.categories == [.mentalHealth])
    }

    @Test func withdrawalThroughRegistryTakesEffectAtOnce() throws {
        var registry = ConsentRegistry()
        let grant = try Data(contentsOf: Self.exampleDir.appendingPathComponent("valid-grant-carer.json"))
        let withdraw = try Data(contentsOf: Self.exampleDir.appendingPathComponent("valid-withdraw.json"))
        registry.apply(try JSONDecoder().decode(ConsentBody.self, from: grant))
        let request = F.request(parts: [F.part("summary")])
        let engine = ConsentEngine()
        #expect(engine.decide(request, for: F.carer, directives: registry).outcome == .deliver)
        let applied = registry.apply(try JSONDecoder().decode(ConsentBody.self, from: withdraw))
        #expect(applied)
        let after = engine.decide(request, for: F.carer, directives: registry)
        #expect(after.outcome == .withhold)
        #expect(after.ruleID == "R7-explicit-only")
        #expect(registry.directiveCount == 0)
    }
}

@Suite struct PolicyFileTests {
    @Test func embeddedDefaultMatchesProtocolsFile() throws {
        let file = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Protocols/consent-policy.default.yaml"), encoding: .utf8)
        #expect(file == ConsentPolicy.defaultYAML)
        let loaded = try ConsentPolicy.load(path: repositoryRoot.appendingPathComponent("Protocols/consent-policy.default.yaml").path)
        #expect(loaded == ConsentPolicy.default)
    }

    @Test func defaultRuleIDsInOrder() {
        #expect(
            ConsentPolicy.default.rules.map(\.id) == [
                "R0-patient-self", "R1-objection", "R2-explicit-deny", "R3-mdt-permission", "R4-sensitive-explicit",
                "R5-explicit-consent", "R6-implied-consent", "R7-explicit-only", "R8-no-consent",
            ])
        #expect(ConsentPolicy.default.breakGlass.ruleID == "R9-break-glass")
        #expect(ConsentPolicy.default.breakGlass.reasonMinLength == 10)
        #expect(ConsentPolicy.default.sensitiveCategories == [.mentalHealth, .sexualHealth, .safeguarding])
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var yaml: String
        var path: String
        var reasonContains: String
    }

    static let d = ConsentPolicy.defaultYAML
    static let bad: [Bad] = [
        Bad(testDescription: "not YAML", yaml: "rules: [\n  - id", path: "", reasonContains: "not valid YAML"),
        Bad(testDescription: "empty document", yaml: "", path: "", reasonContains: "empty"),
        Bad(testDescription: "top level is a list", yaml: "- a\n- b\n", path: "", reasonContains: "mapping"),
        Bad(
            testDescription: "unknown top-level key (typo)", yaml: d.replacingOccurrences(of: "sensitive-categories:", with: "sensitive-categores:"),
            path: "sensitive-categores", reasonContains: "unknown key"),
        Bad(
            testDescription: "unknown rule kind", yaml: d.replacingOccurrences(of: "kind: implied-consent", with: "kind: implied"),
            path: "rules[6].kind", reasonContains: "unknown rule kind \"implied\""),
        Bad(
            testDescription: "unknown role",
            yaml: d.replacingOccurrences(of: "roles: [carer, voluntary-sector-broker, gateway]", with: "roles: [carer, wizard]"),
            path: "rules[7].roles[1]", reasonContains: "unknown value \"wizard\""),
        Bad(
            testDescription: "unknown relationship",
            yaml: d.replacingOccurrences(of: "relationships: [care-team, referral-team]", with: "relationships: [care-team, neighbour]"),
            path: "rules[6].relationships[1]", reasonContains: "unknown relationship"),
        Bad(
            testDescription: "duplicate rule id", yaml: d.replacingOccurrences(of: "id: R2-explicit-deny", with: "id: R1-objection"),
            path: "rules[2].id", reasonContains: "duplicate"),
        Bad(
            testDescription: "missing version", yaml: d.replacingOccurrences(of: "version: 1\n", with: ""), path: "version", reasonContains: "missing"
        ),
        Bad(
            testDescription: "unsupported version", yaml: d.replacingOccurrences(of: "version: 1\n", with: "version: 2\n"), path: "version",
            reasonContains: "unsupported"),
        Bad(
            testDescription: "reason-min-length not a number",
            yaml: d.replacingOccurrences(of: "reason-min-length: 10", with: "reason-min-length: ten"),
            path: "break-glass.reason-min-length", reasonContains: "whole number"),
        Bad(
            testDescription: "reason-min-length zero", yaml: d.replacingOccurrences(of: "reason-min-length: 10", with: "reason-min-length: 0"),
            path: "break-glass.reason-min-length", reasonContains: "at least 1"),
        Bad(
            testDescription: "deny rule after a permit rule",
            yaml: d.replacingOccurrences(of: "  - id: R2-explicit-deny\n    kind: explicit-deny\n", with: "")
                .replacingOccurrences(
                    of: "  - id: R7-explicit-only\n", with: "  - id: R2-explicit-deny\n    kind: explicit-deny\n  - id: R7-explicit-only\n"),
            path: "rules[6].kind", reasonContains: "deny must beat permit"),
        Bad(
            testDescription: "last rule is not a plain withhold",
            yaml: d.replacingOccurrences(of: "  - id: R8-no-consent\n    kind: withhold\n", with: ""),
            path: "rules[7]", reasonContains: "last rule"),
        Bad(testDescription: "rules not a list", yaml: "version: 1\nrules: withhold\n", path: "rules", reasonContains: "list"),
        Bad(testDescription: "rule without id", yaml: "version: 1\nrules:\n  - kind: withhold\n", path: "rules[0].id", reasonContains: "missing"),
    ]

    @Test(arguments: bad)
    func malformedPolicyIsRejectedWithPathAndReason(_ row: Bad) {
        do {
            _ = try ConsentPolicy(yaml: row.yaml, source: "site-policy.yaml")
            Issue.record("accepted a malformed policy")
        } catch {
            #expect(error.source == "site-policy.yaml")
            #expect(error.path == row.path)
            #expect(error.reason.contains(row.reasonContains), "\(error.reason)")
            #expect(error.description.hasPrefix("consent policy site-policy.yaml"))
        }
    }

    @Test func unreadableFileNamesThePath() {
        #expect {
            _ = try ConsentPolicy.load(path: "/nonexistent/consent-policy.yaml")
        } throws: { error in
            (error as? ConsentPolicyError)?.source == "/nonexistent/consent-policy.yaml"
        }
    }

    @Test func configurableBreakGlassReasonLength() throws {
        let yaml = ConsentPolicy.defaultYAML.replacingOccurrences(of: "reason-min-length: 10", with: "reason-min-length: 3")
        let engine = ConsentEngine(policy: try ConsentPolicy(yaml: yaml))
        let decision = engine.decide(
            F.request(parts: [F.part("summary")], breakGlass: F.glass("A&E")), for: F.strangerGP, directives: [])
        #expect(decision.override)
        #expect(
            ConsentEngine().decide(
                F.request(parts: [F.part("summary")], breakGlass: F.glass("A&E")), for: F.strangerGP, directives: []
            ).ruleID
                == "R10-break-glass-refused")
    }
}
