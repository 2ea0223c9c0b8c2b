import Foundation
import Testing
@testable import CareRelayModel

/// `ReferralLifecycle` against the table in Protocols/CRP.md section 11: every row allowed,
/// every other step refused, and the refusals in the broker's words.
@Suite struct ReferralLifecycleTests {
    typealias Transition = ReferralLifecycle.Transition

    static let crp = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocols/CRP.md")

    /// The rows of section 11's table, one transition per "from" status.
    static func documentedTransitions() throws -> [Transition] {
        let text = try String(contentsOf: crp, encoding: .utf8)
        let section = try #require(text.range(of: "\n## 11. "), "CRP.md has no section 11")
        let end = text.range(of: "\n## 12. ", range: section.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        let lines = text[section.upperBound..<end].split(separator: "\n").map(String.init)
        let header = try #require(
            lines.firstIndex { cells($0) == ["event", "who", "from status", "to status", "effect"] },
            "section 11 has no table | event | who | from status | to status | effect |")
        var transitions: [Transition] = []
        for line in lines[(header + 2)...] {
            guard line.hasPrefix("|") else { break }
            let row = cells(line)
            try #require(row.count == 5, "\(line)")
            let event = try #require(codes(row[0]).first.flatMap(ReferralEvent.EventType.init), "event: \(row[0])")
            let parties = try codes(row[1]).map { try #require(ReferralLifecycle.Party(rawValue: $0), "who: \($0)") }
            let to = try #require(codes(row[3]).first.flatMap(ReferralStatus.init), "to status: \(row[3])")
            let from = try codes(row[2]).map { try #require(ReferralStatus(rawValue: $0), "from status: \($0)") }
            try #require(!from.isEmpty && !parties.isEmpty, "\(line)")
            transitions += from.flatMap { from in parties.map { Transition(from: from, event: event, party: $0, to: to) } }
        }
        return transitions
    }

    static func cells(_ line: String) -> [String] {
        line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The `code` spans of a cell, in order.
    static func codes(_ cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func theTypeIsTheTable() throws {
        let documented = try Self.documentedTransitions()
        #expect(documented.count == Set(documented).count, "a row repeats a transition")
        let typed = Set(ReferralLifecycle.transitions)
        #expect(Set(documented).subtracting(typed).isEmpty, "in CRP.md, not in ReferralLifecycle")
        #expect(typed.subtracting(documented).isEmpty, "in ReferralLifecycle, not in CRP.md")
        // Every event has a row.
        #expect(Set(documented.map(\.event)) == Set(ReferralEvent.EventType.allCases))
    }

    @Test func everyRowIsAllowedAndEverythingElseRefused() throws {
        let documented = try Self.documentedTransitions()
        for status in ReferralStatus.allCases {
            for event in ReferralEvent.EventType.allCases {
                let mayEver = Set(documented.filter { $0.event == event }.map(\.party))
                for party in ReferralLifecycle.Party.allCases {
                    let outcome = ReferralLifecycle.next(from: status, event: event, by: [party])
                    if let row = documented.first(where: { $0.from == status && $0.event == event && $0.party == party }) {
                        #expect(outcome == .success(row.to), "\(event) by \(party) from \(status)")
                    } else if !mayEver.contains(party) {
                        guard case .failure(.notPermitted) = outcome else {
                            Issue.record("\(event) by \(party) from \(status): \(outcome), expected not permitted")
                            continue
                        }
                    } else {
                        #expect(outcome == .failure(.invalidTransition(from: status, event: event)), "\(event) by \(party) from \(status)")
                    }
                }
            }
        }
    }

    @Test func someoneWhoIsSeveralMayDoWhatAnyOfThemMay() {
        #expect(ReferralLifecycle.next(from: .sent, event: .accepted, by: [.referrer, .member]) == .success(.accepted))
        #expect(ReferralLifecycle.next(from: .accepted, event: .withdrawn, by: [.referrer, .member]) == .success(.withdrawn))
        // The person it was allocated to takes it on; another member may not take it from them.
        #expect(ReferralLifecycle.next(from: .allocated, event: .accepted, by: [.member, .owner]) == .success(.accepted))
        #expect(
            ReferralLifecycle.next(from: .allocated, event: .accepted, by: [.member])
                == .failure(.invalidTransition(from: .allocated, event: .accepted)))
        // One member's pass leaves the referral with the team; only the co-ordinator declines for it.
        #expect(ReferralLifecycle.next(from: .sent, event: .passed, by: [.member]) == .success(.sent))
        #expect(ReferralLifecycle.next(from: .sent, event: .declined, by: [.member]) != .success(.declined))
        #expect(ReferralLifecycle.next(from: .sent, event: .escalated, by: [.referrer, .member, .coordinator, .owner]) != .success(.sent))
        #expect(ReferralLifecycle.next(from: .sent, event: .accepted, by: []) != .success(.accepted))
    }

    @Test func refusalsInTheBrokersWords() {
        func reason(_ status: ReferralStatus, _ event: ReferralEvent.EventType, _ party: ReferralLifecycle.Party, owner: PersonID? = nil) -> String? {
            guard case .failure(let refusal) = ReferralLifecycle.next(from: status, event: event, by: [party]) else { return nil }
            return refusal.reason(referral: "7KD4-QXM2-P9R3", owner: owner)
        }
        #expect(reason(.sent, .withdrawn, .member) == "only the referrer may withdraw a referral")
        #expect(reason(.sent, .escalated, .referrer) == "only the broker escalates a referral")
        #expect(
            reason(.sent, .accepted, .referrer)
                == "only a member of the team the referral was sent to, its co-ordinator, or the person it was allocated to may accept it")
        #expect(reason(.sent, .declined, .member)?.hasPrefix("only the team's co-ordinator") == true)
        #expect(
            reason(.accepted, .accepted, .member, owner: "sw.okafor")
                == "referral 7KD4-QXM2-P9R3 is accepted (held by sw.okafor); it cannot be accepted now")
        #expect(reason(.sent, .completed, .owner) == "referral 7KD4-QXM2-P9R3 is sent; it cannot be completed now")
        // Who holds it is named only once it has left "sent".
        #expect(reason(.sent, .completed, .coordinator, owner: "sw.okafor") == "referral 7KD4-QXM2-P9R3 is sent; it cannot be completed now")
        #expect(reason(.withdrawn, .withdrawn, .referrer) == "referral 7KD4-QXM2-P9R3 is withdrawn; it cannot be withdrawn now")
    }
}
