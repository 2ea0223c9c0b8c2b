import Foundation

/// Who is told, in turn, of urgent work nobody has picked up: an urgent carer check-in or a
/// referral past its response target. The team's on-call rota (`onCall` within its service
/// hours, `onCallOutOfHours` outside them) is notified one person at a time; if nobody
/// acknowledges within the team's `escalateAfter`, the next is, round the rota up to
/// `rounds` times. An acknowledgement (`oncall.ack`, the check-in's acknowledgement, the
/// referral being taken, or the link in the notification) ends it. Pure: the broker stores
/// each step with its notifications and audit line.
public struct OnCallChain: Sendable, Equatable, Codable {
    public enum Reason: String, Sendable, Codable {
        case urgentCheckIn = "checkin.urgent"
        case overdueReferral = "referral.overdue"
    }

    public enum State: String, Sendable, Codable {
        /// Waiting for someone to acknowledge.
        case open
        case acknowledged
        /// Everyone on the rota was told `rounds` times and nobody acknowledged.
        case exhausted
    }

    /// `message.team`: one chain per item and team.
    public var id: String
    /// The check-in or the referral.
    public var message: String
    public var team: TeamID
    public var reason: Reason
    /// The rota in force when it started.
    public var rota: [PersonID]
    /// How many people have been told so far; the last told is `rota[(told - 1) % rota.count]`.
    public var told: Int
    public var state: State
    /// When to tell the next person, while open.
    public var nextAt: Date?
    public var escalateAfter: TimeInterval
    public var acknowledgedBy: PersonID?
    public var acknowledgedAt: Date?
    public var startedAt: Date
    /// SHA-256 (hex) of each link sent, with whom it was sent to: the link acknowledges as them.
    public var links: [String: PersonID]

    /// How many times round the rota before giving up.
    public static let rounds = 3
    /// The wait before the next person when the team sets none.
    public static let defaultEscalateAfter: TimeInterval = 15 * 60

    /// A chain for `team`, or nil when it has no rota for this time of day.
    public static func start(message: String, team: Directory.Team, reason: Reason, at now: Date) -> OnCallChain? {
        let open = team.serviceHours?.isOpen(at: now) ?? true
        let rota = (open ? team.onCall : team.onCallOutOfHours) ?? []
        guard !rota.isEmpty else { return nil }
        return OnCallChain(
            id: "\(message).\(team.id)", message: message, team: team.id, reason: reason, rota: rota, told: 0, state: .open, nextAt: now,
            escalateAfter: team.escalateAfter.flatMap(Self.seconds) ?? Self.defaultEscalateAfter, acknowledgedBy: nil, acknowledgedAt: nil,
            startedAt: now, links: [:])
    }

    /// The next person to tell, moving the chain on; nil (and exhausted) when the rounds are done.
    public mutating func tellNext(at now: Date) -> PersonID? {
        guard state == .open else { return nil }
        guard told < rota.count * Self.rounds else {
            state = .exhausted
            nextAt = nil
            return nil
        }
        let person = rota[told % rota.count]
        told += 1
        nextAt = now.addingTimeInterval(escalateAfter)
        return person
    }

    /// Ends it, if still open; false if it had ended already.
    public mutating func acknowledge(by person: PersonID, at now: Date) -> Bool {
        guard state == .open else { return false }
        state = .acknowledged
        acknowledgedBy = person
        acknowledgedAt = now
        nextAt = nil
        return true
    }

    /// Who has been told so far, in order (repeats left out).
    public var toldSoFar: [PersonID] {
        var seen = Set<PersonID>()
        return (0..<told).map { rota[$0 % rota.count] }.filter { seen.insert($0).inserted }
    }

    /// "30s", "15m", "1h" in seconds; nil if it does not read.
    public static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3_600]
        guard let unit = text.last.flatMap({ units[$0] }), let count = Int(text.dropLast()), count > 0, count <= 24 * 3_600 else { return nil }
        return TimeInterval(count) * unit
    }
}
