import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation

/// On-call chains (OnCallChain, CRP.md section 13.2): urgent work nobody has picked up is told
/// to the team's on-call rota one person at a time until someone acknowledges it. A chain
/// starts with the message that needs someone, each step is stored with its notifications
/// and an audit line, and acknowledging (the `oncall.ack` query, the link in the
/// notification, acknowledging the check-in, taking the referral) ends it.
extension BrokerCore {
    /// Starts a chain for each team given that has someone on call now, telling the first
    /// person: the chains, and the notifications and audit lines to store with the message.
    /// `excluding`: those the message was withheld from (the patient objected to them): they
    /// cannot act on it, so they are not asked to.
    func startOnCall(message: String, teams: [TeamID], reason: OnCallChain.Reason, excluding: Set<PersonID> = [], now: Date) -> (
        chains: [OnCallChain], notifications: [NotificationRecord], audit: [AuditEntry]
    ) {
        guard configuration.notifications != nil else { return ([], [], []) }
        var result: (chains: [OnCallChain], notifications: [NotificationRecord], audit: [AuditEntry]) = ([], [], [])
        var seen = Set<TeamID>()
        for id in teams where seen.insert(id).inserted {
            guard let team = directory.team(id), var chain = OnCallChain.start(message: message, team: team, reason: reason, at: now) else {
                continue
            }
            chain.rota.removeAll { excluding.contains($0) }
            guard !chain.rota.isEmpty else { continue }
            let step = tellNext(&chain, now: now)
            result.chains.append(chain)
            result.notifications += step.notifications
            result.audit += step.audit
        }
        if let first = result.chains.compactMap(\.nextAt).min() { nextOnCall = min(nextOnCall ?? first, first) }
        return result
    }

    /// The teams an urgent check-in concerns: those it was addressed to, those in the
    /// patient's care team when it went to the care team, and those whose co-ordinator it
    /// went to (as the carer bridge sends it).
    func onCallTeams(for header: SendHeader, patient: NHSNumber?) -> [TeamID] {
        var teams: [TeamID] = []
        for address in header.to {
            switch address {
            case .team(let team), .role(let team, _): teams.append(team)
            case .careTeam(let patient):
                for member in (try? careTeam(of: patient)) ?? [] {
                    if case .team(let team) = member { teams.append(team) }
                }
            case .person(let person):
                teams += directory.teams(coordinatedBy: person)
            default: continue
            }
        }
        return teams
    }

    /// Moves on every chain whose wait has run out: the next person on call is told.
    func advanceOnCall(now: Date) {
        let due: [OnCallChain]
        do { due = try store.dueOnCallChains(at: now) } catch {
            logger.error("could not read on-call chains; will retry", metadata: ["error": "\(error)"])
            nextOnCall = now.addingTimeInterval(5)
            return
        }
        for var chain in due {
            let told = chain.told
            let step = tellNext(&chain, now: now)
            do {
                // Another broker may have moved it on, or someone acknowledged it, meanwhile.
                if try store.saveOnCall(chain, expectingTold: told, notifications: step.notifications, audit: step.audit),
                    !step.notifications.isEmpty
                {
                    configuration.notificationsQueued?()
                }
            } catch {
                logger.error("could not move an on-call chain on; will retry", metadata: ["chain": "\(chain.id)", "error": "\(error)"])
            }
        }
        do { nextOnCall = try store.nextOnCallDeadline() } catch { nextOnCall = now.addingTimeInterval(5) }
    }

    /// Ends the open chains about `message`: someone acted on it (acknowledged the check-in,
    /// took the referral) or said they are on it.
    @discardableResult
    func acknowledgeOnCall(message: String, by person: PersonID, how: String, now: Date, only chainID: String? = nil) throws -> [OnCallChain] {
        var ended: [OnCallChain] = []
        for var chain in try store.onCallChains(message: message) where chainID == nil || chain.id == chainID {
            let told = chain.told
            guard chain.acknowledge(by: person, at: now) else { continue }
            let audit = AuditEntry(
                at: now, actor: person.rawValue, action: .onCall, message: chain.message, decision: "acknowledged", rule: "on-call",
                detail: "\(how); team \(chain.team); \(chain.toldSoFar.count) of \(chain.rota.count) on call had been told")
            if try store.saveOnCall(chain, expectingTold: told, notifications: [], audit: [audit]) { ended.append(chain) }
        }
        return ended
    }

    /// `oncall.ack`: someone on the chain's rota, or a member or the co-ordinator of its team,
    /// says they have it; or the bridge brings the link sent to one of them.
    func onCallAcknowledgement(_ request: OnCallAcknowledge, person asker: Directory.Person) throws(ProtocolError) -> OnCallAcknowledged {
        let now = configuration.clock()
        let unknown = ProtocolError(.unknownMessage, "oncall.ack: nothing on call for \(request.id) is yours to acknowledge")
        let chains: [OnCallChain]
        do {
            chains = try store.onCallChains(message: request.message) + (request.chain.flatMap { try store.onCallChain(id: $0) }.map { [$0] } ?? [])
        } catch { throw ProtocolError(.storeUnavailable, "the broker could not read its store; nothing was acknowledged. Retry") }
        var acting: [(chain: OnCallChain, as: PersonID, how: String)] = []
        for chain in chains where request.chain == nil || chain.id == request.chain {
            if let token = request.token {
                // The link works for the gateway that serves it, as the person it was sent to.
                guard asker.roles.contains(.gateway), let owner = chain.links[Self.linkHash(token)] else { continue }
                acting.append((chain, owner, "by the link sent to \(owner)"))
            } else if consent.access.mayAcknowledgeOnCall(rota: chain.rota, team: directory.team(chain.team), asker: asker) == .allow {
                acting.append((chain, asker.id, "with oncall.ack"))
            }
        }
        guard !acting.isEmpty else { throw unknown }
        var answers: [OnCallAcknowledged.Chain] = []
        for item in acting {
            do {
                let ended = try acknowledgeOnCall(message: item.chain.message, by: item.as, how: item.how, now: now, only: item.chain.id)
                let current = try ended.first ?? store.onCallChain(id: item.chain.id) ?? item.chain
                answers.append(
                    OnCallAcknowledged.Chain(
                        team: current.team, state: current.state.rawValue, acknowledgedBy: current.acknowledgedBy,
                        acknowledgedAt: current.acknowledgedAt,
                        told: current.toldSoFar))
            } catch { throw ProtocolError(.storeUnavailable, "the broker could not save the acknowledgement; retry") }
        }
        return OnCallAcknowledged(message: acting[0].chain.message, chains: answers)
    }

    /// Tells the chain's next person, or records that nobody answered: the notifications and
    /// the audit line of the step.
    private func tellNext(_ chain: inout OnCallChain, now: Date) -> (notifications: [NotificationRecord], audit: [AuditEntry]) {
        guard let person = chain.tellNext(at: now) else {
            let audit = AuditEntry(
                at: now, actor: BrokerCore.brokerIdentity.rawValue, action: .onCall, message: chain.message, decision: "nobody acknowledged",
                rule: "on-call", detail: "team \(chain.team): \(chain.rota.count) on call told \(OnCallChain.rounds) times each")
            logger.warning("on-call chain ended unacknowledged", metadata: ["chain": "\(chain.id)"])
            return ([], [audit])
        }
        var link: String?
        if let bridge = configuration.notifications?.bridgeAddress {
            let token = Self.linkToken()
            chain.links[Self.linkHash(token)] = person
            link = "\(bridge.hasSuffix("/") ? String(bridge.dropLast()) : bridge)/on-call/\(chain.id)/\(token)"
        }
        let trigger = NotificationTrigger(
            event: .onCall, message: chain.message, people: [person], urgent: true, team: chain.team, reference: chain.message,
            detail: chain.reason.rawValue, link: link, occasion: "\(chain.told)")
        let audit = AuditEntry(
            at: now, actor: BrokerCore.brokerIdentity.rawValue, action: .onCall, message: chain.message, recipient: person.rawValue,
            decision: "told", rule: "on-call",
            detail:
                "team \(chain.team): \(chain.reason.rawValue), \(chain.told) of \(chain.rota.count * OnCallChain.rounds); next in \(Int(chain.escalateAfter)) s"
        )
        return (planNotifications([trigger], at: now), [audit])
    }

    /// 128 random bits, as URL-safe text.
    static func linkToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func linkHash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
