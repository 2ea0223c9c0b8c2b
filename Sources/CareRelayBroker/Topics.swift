import CareRelayModel

/// A subscription topic: "kind/locality/team", each segment a name, "*" for any one segment,
/// or "#" as the last segment for anything below. Every message is published under exactly
/// one topic, e.g. "referral/west/west.social-care".
public struct TopicPattern: Hashable, Sendable, CustomStringConvertible {
    public let segments: [String]

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.count <= 3, text.utf8.count <= 200 else { return nil }
        for (index, part) in parts.enumerated() {
            if part == "#" { guard index == parts.count - 1 else { return nil }; continue }
            if part == "*" { continue }
            guard TeamID.isWellFormed(part) else { return nil }
        }
        segments = parts
    }

    public var description: String { segments.joined(separator: "/") }

    public func matches(_ topic: [String]) -> Bool {
        for (index, segment) in segments.enumerated() {
            if segment == "#" { return true }
            guard index < topic.count else { return false }
            if segment != "*" && segment != topic[index] { return false }
        }
        return segments.count == topic.count
    }

    /// Whether every topic this pattern can match is also matched by `other`.
    public func isCovered(by other: TopicPattern) -> Bool {
        for index in 0..<max(segments.count, other.segments.count) {
            guard index < other.segments.count else { return false }
            let allowed = other.segments[index]
            if allowed == "#" { return true }
            guard index < segments.count else { return false }
            let wanted = segments[index]
            if wanted == "#" { return false }
            if allowed == "*" { continue }
            if wanted != allowed { return false }
        }
        return true
    }
}

/// Which topics each role may subscribe to. `{locality}` and `{team}` stand for each of the
/// person's own teams and their localities, so a social worker watches their own team's
/// intake, and a co-ordinator the whole locality. Carers, patients and administrators may
/// not subscribe: carers receive what is addressed to them through their care team.
public struct SubscriptionRules: Sendable {
    public var allowed: [Role: [String]]

    public static let `default` = SubscriptionRules(allowed: [
        .gp: ["*/{locality}/{team}"],
        .communityNurse: ["*/{locality}/{team}"],
        .socialWorker: ["*/{locality}/{team}"],
        .pharmacist: ["*/{locality}/{team}"],
        .therapist: ["*/{locality}/{team}"],
        .consultant: ["*/{locality}/{team}"],
        .careCoordinator: ["*/{locality}/*"],
        .mdtCoordinator: ["*/{locality}/*"],
        .voluntarySectorBroker: ["referral/{locality}/{team}"],
    ])

    /// The concrete patterns a person may hold.
    public func patterns(for person: Directory.Person, in directory: DirectoryIndex) -> [TopicPattern] {
        var result: [TopicPattern] = []
        for role in person.roles {
            for template in allowed[role] ?? [] {
                for teamID in person.teams {
                    guard let team = directory.team(teamID) else { continue }
                    let text = template
                        .replacingOccurrences(of: "{locality}", with: team.locality.rawValue)
                        .replacingOccurrences(of: "{team}", with: team.id.rawValue)
                    if let pattern = TopicPattern(text) { result.append(pattern) }
                }
            }
        }
        return result
    }
}

import Foundation
