import CareRelayModel
import Foundation
import Yams

/// A set of roles as a policy names it: the registered professionals, any role, or a list.
public enum RoleSelector: Hashable, Sendable {
    case any
    case registeredProfessionals
    case roles(Set<Role>)

    public func matches(_ roles: Set<Role>) -> Bool {
        switch self {
        case .any: return true
        case .registeredProfessionals: return roles.contains { $0.isRegisteredProfessional }
        case .roles(let wanted): return !wanted.isDisjoint(with: roles)
        }
    }
}

/// A relationship filter value: one of `PatientRelationship`, or `none` (no relationship).
public enum RelationshipSelector: Hashable, Sendable {
    case relationship(PatientRelationship)
    case none
}

/// What a rule does. The kinds are code; their order, ids, scope and parameters are policy.
public enum ConsentRuleKind: String, Hashable, Sendable, CaseIterable {
    /// Deliver when the recipient is the patient the part is about.
    case patientSelf = "patient-self"
    /// Withhold when an objection in force names the recipient (any category of the part).
    case objection
    /// Withhold when a deny in force names the recipient (any category of the part).
    case explicitDeny = "explicit-deny"
    /// Withhold an MDT item unless the patient's MDT discussion permission exists.
    case mdtPermission = "mdt-permission"
    /// Withhold a part with sensitive categories, for a recipient outside the originating
    /// team, unless explicit permits cover every sensitive category.
    case sensitiveNeedsExplicit = "sensitive-needs-explicit"
    /// Deliver when explicit permits for the recipient cover every category of the part.
    case explicitPermit = "explicit-permit"
    /// Deliver on implied consent (the rule's role and relationship filters say to whom).
    case impliedConsent = "implied-consent"
    /// Withhold (the rule's filters say for whom; unfiltered, for everyone).
    case withhold

    var isDeny: Bool { self == .objection || self == .explicitDeny }
    var isPermit: Bool { self == .explicitPermit || self == .impliedConsent }
}

/// One named rule of the ordered rule list.
public struct ConsentRule: Hashable, Sendable {
    public var id: String
    public var kind: ConsentRuleKind
    // Scope: the rule is skipped unless every given filter matches (nil = any).
    public var localities: Set<LocalityID>?
    public var messageKinds: Set<MessageKind>?
    public var purposes: Set<ConsentPurpose>?
    public var roles: RoleSelector?
    public var relationships: Set<RelationshipSelector>?
    // Parameters.
    /// `sensitive-needs-explicit`: the categories (nil = the policy's sensitive categories).
    public var categories: Set<DataCategory>?
    /// `sensitive-needs-explicit`, `explicit-permit`: which permit bases count as explicit.
    public var explicitBases: Set<ConsentBasis>
    /// `mdt-permission`: the purpose a permit must cover to count as MDT permission.
    public var mdtPurpose: ConsentPurpose
    /// The reason shown to the sender. Must not disclose directive contents.
    public var reason: String

    public init(
        id: String, kind: ConsentRuleKind, localities: Set<LocalityID>? = nil, messageKinds: Set<MessageKind>? = nil,
        purposes: Set<ConsentPurpose>? = nil, roles: RoleSelector? = nil, relationships: Set<RelationshipSelector>? = nil,
        categories: Set<DataCategory>? = nil, explicitBases: Set<ConsentBasis> = ConsentRule.defaultExplicitBases,
        mdtPurpose: ConsentPurpose = .mdtDiscussion, reason: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.localities = localities
        self.messageKinds = messageKinds
        self.purposes = purposes
        self.roles = roles
        self.relationships = relationships
        self.categories = categories
        self.explicitBases = explicitBases
        self.mdtPurpose = mdtPurpose
        self.reason = reason ?? ConsentRule.defaultReason(kind)
    }

    public static let defaultExplicitBases: Set<ConsentBasis> = [.explicit, .bestInterests, .legalDuty]

    public static func defaultReason(_ kind: ConsentRuleKind) -> String {
        switch kind {
        case .patientSelf: return "delivered: the recipient is the patient"
        case .objection, .explicitDeny: return "withheld: no recorded consent for this recipient"
        case .mdtPermission: return "item withheld: no recorded permission to discuss this patient at the MDT"
        case .sensitiveNeedsExplicit:
            return
                "withheld: sensitive information needs the patient's explicit consent outside the originating team, and none is recorded for this recipient"
        case .explicitPermit: return "delivered: covered by the patient's recorded consent"
        case .impliedConsent: return "delivered: direct care by a professional with a care relationship (implied consent)"
        case .withhold: return "withheld: no recorded consent or care relationship for this recipient"
        }
    }
}

/// Emergency override settings.
public struct BreakGlassPolicy: Hashable, Sendable {
    public var enabled: Bool
    public var ruleID: String
    public var refusedRuleID: String
    public var requesterRoles: RoleSelector
    public var recipientRoles: RoleSelector
    public var reasonMinLength: Int

    public init(
        enabled: Bool = true, ruleID: String = "R9-break-glass", refusedRuleID: String = "R10-break-glass-refused",
        requesterRoles: RoleSelector = .registeredProfessionals, recipientRoles: RoleSelector = .registeredProfessionals,
        reasonMinLength: Int = 10
    ) {
        self.enabled = enabled
        self.ruleID = ruleID
        self.refusedRuleID = refusedRuleID
        self.requesterRoles = requesterRoles
        self.recipientRoles = recipientRoles
        self.reasonMinLength = reasonMinLength
    }
}

/// What a referral sent with the patient's agreement (`patientAgreed`) records: an explicit
/// consent for the team it is addressed to, for direct care, lasting `days`.
public struct PatientAgreementPolicy: Hashable, Sendable {
    public var enabled: Bool
    public var days: Int
    public var purpose: ConsentPurpose

    public init(enabled: Bool = true, days: Int = 365, purpose: ConsentPurpose = .directCare) {
        self.enabled = enabled
        self.days = days
        self.purpose = purpose
    }
}

/// A consent policy: sensitive categories, the ordered named rules, break-glass settings.
/// Load it from YAML (`Protocols/consent-policy.md` documents the format).
public struct ConsentPolicy: Hashable, Sendable {
    public var version: Int
    public var sensitiveCategories: Set<DataCategory>
    public var rules: [ConsentRule]
    public var breakGlass: BreakGlassPolicy
    public var patientAgreement: PatientAgreementPolicy

    /// Builds a policy and checks its invariants (the same checks as for YAML).
    public init(
        version: Int = 1, sensitiveCategories: Set<DataCategory>, rules: [ConsentRule], breakGlass: BreakGlassPolicy,
        patientAgreement: PatientAgreementPolicy = PatientAgreementPolicy()
    ) throws(ConsentPolicyError) {
        self.version = version
        self.sensitiveCategories = sensitiveCategories
        self.rules = rules
        self.breakGlass = breakGlass
        self.patientAgreement = patientAgreement
        try Self.check(self, source: nil)
    }

    /// The default policy, from `ConsentPolicy.defaultYAML` (the same text as
    /// `Protocols/consent-policy.default.yaml`).
    public static let `default`: ConsentPolicy = {
        do { return try ConsentPolicy(yaml: defaultYAML, source: "built-in default") } catch {
            fatalError("the built-in consent policy is invalid: \(error)")
        }
    }()

    /// Reads a policy file. Errors name the file, the key path and the reason.
    public static func load(path: String) throws(ConsentPolicyError) -> ConsentPolicy {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConsentPolicyError(source: path, path: "", reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try ConsentPolicy(yaml: text, source: path)
    }

    /// Parses a policy from YAML text. `source` names where it came from, for errors.
    public init(yaml: String, source: String? = nil) throws(ConsentPolicyError) {
        let parser = PolicyParser(source: source)
        self = try parser.parse(yaml)
        try Self.check(self, source: source)
    }

    static func check(_ policy: ConsentPolicy, source: String?) throws(ConsentPolicyError) {
        func fail(_ path: String, _ reason: String) -> ConsentPolicyError {
            ConsentPolicyError(source: source, path: path, reason: reason)
        }
        guard policy.version == 1 else { throw fail("version", "unsupported policy version \(policy.version); this broker reads version 1") }
        guard !policy.rules.isEmpty else { throw fail("rules", "at least one rule is required") }
        var seen: Set<String> = []
        var firstPermit: Int?
        for (i, rule) in policy.rules.enumerated() {
            let path = "rules[\(i)]"
            guard !rule.id.isEmpty else { throw fail("\(path).id", "a rule needs a non-empty id") }
            guard seen.insert(rule.id).inserted else { throw fail("\(path).id", "duplicate rule id \"\(rule.id)\"") }
            if rule.kind.isPermit, firstPermit == nil { firstPermit = i }
            if rule.kind.isDeny, let p = firstPermit {
                throw fail(
                    "\(path).kind",
                    "deny rule \"\(rule.id)\" comes after permit rule \"\(policy.rules[p].id)\" (rules[\(p)]); deny must beat permit, so deny rules come first"
                )
            }
            guard !rule.reason.isEmpty else { throw fail("\(path).reason", "the reason must not be empty") }
        }
        let last = policy.rules[policy.rules.count - 1]
        let unfiltered = last.localities == nil && last.messageKinds == nil && last.purposes == nil && last.roles == nil && last.relationships == nil
        guard last.kind == .withhold, unfiltered else {
            throw fail("rules[\(policy.rules.count - 1)]", "the last rule must be an unfiltered \"withhold\" so that every decision names a rule")
        }
        for id in [policy.breakGlass.ruleID, policy.breakGlass.refusedRuleID] where seen.contains(id) {
            throw fail("break-glass", "rule id \"\(id)\" is also used in rules")
        }
        guard policy.breakGlass.ruleID != policy.breakGlass.refusedRuleID else {
            throw fail("break-glass.refused-id", "must differ from break-glass.id")
        }
        guard policy.breakGlass.reasonMinLength >= 1 else {
            throw fail("break-glass.reason-min-length", "must be at least 1: a break-glass override always needs a reason")
        }
        guard (1...3_650).contains(policy.patientAgreement.days) else {
            throw fail("patient-agreement.days", "must be 1 to 3650: how many days a patient's agreement to a referral counts as consent")
        }
    }
}

/// A policy that cannot be used: where (file, key path) and why.
public struct ConsentPolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var source: String?
    /// Key path inside the document, like `rules[3].kind`; empty for the whole document.
    public var path: String
    public var reason: String

    public init(source: String?, path: String, reason: String) {
        self.source = source
        self.path = path
        self.reason = reason
    }

    public var description: String {
        let place = [source, path.isEmpty ? nil : path].compactMap { $0 }.joined(separator: ": ")
        return place.isEmpty ? "consent policy: \(reason)" : "consent policy \(place): \(reason)"
    }
}

// MARK: - YAML

/// Walks the YAML node tree by hand so that every error names its key path and unknown keys
/// (a misspelt setting) are errors, not silently ignored.
struct PolicyParser {
    let source: String?

    func fail(_ path: String, _ reason: String) -> ConsentPolicyError {
        ConsentPolicyError(source: source, path: path, reason: reason)
    }

    func parse(_ yaml: String) throws(ConsentPolicyError) -> ConsentPolicy {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw fail("", "not valid YAML: \(error)")
        }
        guard let root else { throw fail("", "the document is empty") }
        let top = try mapping(root, "", allowed: ["version", "sensitive-categories", "rules", "break-glass", "patient-agreement"])
        guard let versionNode = top["version"] else { throw fail("version", "missing (write `version: 1`)") }
        let version = try int(versionNode, "version")
        let sensitive =
            try top["sensitive-categories"].map { n throws(ConsentPolicyError) in
                Set(try strings(n, "sensitive-categories").map { DataCategory($0) })
            } ?? []
        guard let rulesNode = top["rules"] else { throw fail("rules", "missing: the ordered rule list is required") }
        guard case .sequence(let seq) = rulesNode else { throw fail("rules", "must be a list of rules") }
        var rules: [ConsentRule] = []
        for (i, node) in seq.enumerated() {
            rules.append(try rule(node, "rules[\(i)]"))
        }
        let breakGlass = try top["break-glass"].map { n throws(ConsentPolicyError) in try self.breakGlass(n, "break-glass") } ?? BreakGlassPolicy()
        let agreement =
            try top["patient-agreement"].map { n throws(ConsentPolicyError) in try self.patientAgreement(n, "patient-agreement") }
            ?? PatientAgreementPolicy()
        return ConsentPolicy(unchecked: version, sensitive, rules, breakGlass, agreement)
    }

    func rule(_ node: Node, _ path: String) throws(ConsentPolicyError) -> ConsentRule {
        let m = try mapping(
            node, path,
            allowed: [
                "id", "kind", "localities", "message-kinds", "purposes", "roles", "relationships",
                "categories", "explicit-bases", "mdt-purpose", "reason",
            ])
        guard let idNode = m["id"] else { throw fail("\(path).id", "missing: every rule needs an id") }
        let id = try string(idNode, "\(path).id")
        guard let kindNode = m["kind"] else { throw fail("\(path).kind", "missing") }
        let kindText = try string(kindNode, "\(path).kind")
        guard let kind = ConsentRuleKind(rawValue: kindText) else {
            throw fail(
                "\(path).kind",
                "unknown rule kind \"\(kindText)\"; expected one of \(ConsentRuleKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var rule = ConsentRule(id: id, kind: kind)
        if let n = m["localities"] { rule.localities = Set(try strings(n, "\(path).localities").map { LocalityID($0) }) }
        if let n = m["message-kinds"] {
            rule.messageKinds = Set(try enumValues(n, "\(path).message-kinds", MessageKind.self))
        }
        if let n = m["purposes"] { rule.purposes = Set(try strings(n, "\(path).purposes").map { ConsentPurpose($0) }) }
        if let n = m["roles"] { rule.roles = try roles(n, "\(path).roles") }
        if let n = m["relationships"] {
            var set: Set<RelationshipSelector> = []
            for (j, text) in try strings(n, "\(path).relationships").enumerated() {
                if text == "none" { set.insert(.none); continue }
                guard let r = PatientRelationship(rawValue: text) else {
                    throw fail(
                        "\(path).relationships[\(j)]",
                        "unknown relationship \"\(text)\"; expected one of \((PatientRelationship.allCases.map(\.rawValue) + ["none"]).joined(separator: ", "))"
                    )
                }
                set.insert(.relationship(r))
            }
            rule.relationships = set
        }
        if let n = m["categories"] { rule.categories = Set(try strings(n, "\(path).categories").map { DataCategory($0) }) }
        if let n = m["explicit-bases"] { rule.explicitBases = Set(try enumValues(n, "\(path).explicit-bases", ConsentBasis.self)) }
        if let n = m["mdt-purpose"] { rule.mdtPurpose = ConsentPurpose(try string(n, "\(path).mdt-purpose")) }
        if let n = m["reason"] { rule.reason = try string(n, "\(path).reason") }
        if kind == .impliedConsent {
            // Implied consent is for registered professionals with a legitimate relationship
            // unless the rule says otherwise.
            if rule.roles == nil { rule.roles = .registeredProfessionals }
            if rule.relationships == nil { rule.relationships = [.relationship(.careTeam), .relationship(.referralTeam)] }
        }
        return rule
    }

    func breakGlass(_ node: Node, _ path: String) throws(ConsentPolicyError) -> BreakGlassPolicy {
        let m = try mapping(node, path, allowed: ["enabled", "id", "refused-id", "requester-roles", "recipient-roles", "reason-min-length"])
        var b = BreakGlassPolicy()
        if let n = m["enabled"] { b.enabled = try bool(n, "\(path).enabled") }
        if let n = m["id"] { b.ruleID = try string(n, "\(path).id") }
        if let n = m["refused-id"] { b.refusedRuleID = try string(n, "\(path).refused-id") }
        if let n = m["requester-roles"] { b.requesterRoles = try roles(n, "\(path).requester-roles") }
        if let n = m["recipient-roles"] { b.recipientRoles = try roles(n, "\(path).recipient-roles") }
        if let n = m["reason-min-length"] { b.reasonMinLength = try int(n, "\(path).reason-min-length") }
        return b
    }

    func patientAgreement(_ node: Node, _ path: String) throws(ConsentPolicyError) -> PatientAgreementPolicy {
        let m = try mapping(node, path, allowed: ["enabled", "days", "purpose"])
        var a = PatientAgreementPolicy()
        if let n = m["enabled"] { a.enabled = try bool(n, "\(path).enabled") }
        if let n = m["days"] { a.days = try int(n, "\(path).days") }
        if let n = m["purpose"] { a.purpose = ConsentPurpose(try string(n, "\(path).purpose")) }
        return a
    }

    // MARK: node helpers

    func mapping(_ node: Node, _ path: String, allowed: Set<String>) throws(ConsentPolicyError) -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw fail(path, "must be a mapping of keys to values")
        }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard case .scalar(let s) = key else { throw fail(path, "keys must be plain text") }
            let child = path.isEmpty ? s.string : "\(path).\(s.string)"
            guard allowed.contains(s.string) else {
                throw fail(child, "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
            guard result.updateValue(value, forKey: s.string) == nil else { throw fail(child, "key given twice") }
        }
        return result
    }

    func string(_ node: Node, _ path: String) throws(ConsentPolicyError) -> String {
        guard case .scalar(let s) = node, !s.string.isEmpty else { throw fail(path, "must be non-empty text") }
        return s.string
    }

    func int(_ node: Node, _ path: String) throws(ConsentPolicyError) -> Int {
        guard case .scalar(let s) = node, let value = Int(s.string) else { throw fail(path, "must be a whole number") }
        return value
    }

    func bool(_ node: Node, _ path: String) throws(ConsentPolicyError) -> Bool {
        guard case .scalar(let s) = node else { throw fail(path, "must be true or false") }
        switch s.string {
        case "true": return true
        case "false": return false
        default: throw fail(path, "must be true or false, found \"\(s.string)\"")
        }
    }

    func strings(_ node: Node, _ path: String) throws(ConsentPolicyError) -> [String] {
        guard case .sequence(let seq) = node else { throw fail(path, "must be a list") }
        var out: [String] = []
        for (i, item) in seq.enumerated() { out.append(try string(item, "\(path)[\(i)]")) }
        return out
    }

    func enumValues<E: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _: E.Type) throws(ConsentPolicyError) -> [E]
    where E.RawValue == String {
        var out: [E] = []
        for (i, text) in try strings(node, path).enumerated() {
            guard let value = E(rawValue: text) else {
                throw fail("\(path)[\(i)]", "unknown value \"\(text)\"; expected one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            out.append(value)
        }
        return out
    }

    func roles(_ node: Node, _ path: String) throws(ConsentPolicyError) -> RoleSelector {
        if case .scalar(let s) = node {
            switch s.string {
            case "registered-professionals": return .registeredProfessionals
            case "any": return .any
            default: throw fail(path, "must be registered-professionals, any, or a list of roles; found \"\(s.string)\"")
            }
        }
        return .roles(Set(try enumValues(node, path, Role.self)))
    }
}

extension ConsentPolicy {
    init(
        unchecked version: Int, _ sensitive: Set<DataCategory>, _ rules: [ConsentRule], _ breakGlass: BreakGlassPolicy,
        _ patientAgreement: PatientAgreementPolicy
    ) {
        self.version = version
        self.sensitiveCategories = sensitive
        self.rules = rules
        self.breakGlass = breakGlass
        self.patientAgreement = patientAgreement
    }
}
