import CareRelayModel

/// A subscription topic: "kind/locality/team", each segment a name, "*" for any one segment,
/// or "#" as the last segment for anything below. Every message is published under exactly
/// one topic, e.g. "referral/west/west.social-care".
public struct TopicPattern: Hashable, Sendable, CustomStringConvertible {
    /// Every topic has this many segments: kind, locality, team.
    public static let depth = 3
    /// Always `depth` segments, each a name or "*": a trailing "#" is expanded to "*"s.
    public let segments: [String]

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.count <= Self.depth, text.utf8.count <= 200 else { return nil }
        var segments: [String] = []
        for (index, part) in parts.enumerated() {
            if part == "#" {
                guard index == parts.count - 1 else { return nil }
                segments += Array(repeating: "*", count: Self.depth - index)
                break
            }
            guard part == "*" || TeamID.isWellFormed(part) else { return nil }
            segments.append(part)
        }
        guard segments.count == Self.depth else { return nil }
        self.segments = segments
    }

    public var description: String { segments.joined(separator: "/") }

    public func matches(_ topic: [String]) -> Bool {
        topic.count == Self.depth && zip(segments, topic).allSatisfy { $0 == "*" || $0 == $1 }
    }

    /// Whether every topic this pattern can match is also matched by `other`.
    public func isCovered(by other: TopicPattern) -> Bool {
        zip(segments, other.segments).allSatisfy { wanted, allowed in allowed == "*" || wanted == allowed }
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
                    let text =
                        template
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
