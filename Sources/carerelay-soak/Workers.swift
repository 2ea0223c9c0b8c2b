import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Synchronization

/// One sending application: sends referrals with fresh keys, and resends the same key until
/// the broker answers (an unanswered send may or may not be stored; only the same key makes a
/// resend safe).
final class SendingApplication {
    let system: SoakSystem
    let person: PersonID
    let recipient: PersonID
    /// Where the application connects: one broker, or several to fail over between.
    let endpoint: String
    let ledger: Ledger
    private var client: CareRelayClient?

    init(system: SoakSystem, person: PersonID, recipient: PersonID, endpoint: String, ledger: Ledger) {
        self.system = system
        self.person = person
        self.recipient = recipient
        self.endpoint = endpoint
        self.ledger = ledger
    }

    enum Answer {
        case accepted(id: String)
        case refused(ProtocolError)
    }

    /// Sends one referral, retrying through broker outages until it is answered.
    func send(key: String, giveUpAfter deadline: Date = .distantFuture) -> Answer? {
        let (header, body) = SoakSystem.referral(from: person, to: recipient, key: key)
        while Date() < deadline {
            do {
                if client == nil { client = try CareRelayClient(configuration: system.configuration(person, endpoint: endpoint, receive: false)) }
                guard let client else { continue }
                let answer = try client.send(header, body: body)
                ledger.recordAccepted(key: key, id: answer.id, duplicate: answer.duplicate)
                return .accepted(id: answer.id)
            } catch .rejected(let failure) {
                ledger.recordRefusal(failure)
                return .refused(failure)
            } catch .noAnswer, .transport {
                // The broker is down or restarting: the client reconnects on the next attempt.
                continue
            } catch {
                client = nil
            }
        }
        return nil
    }

    /// Sends until `stop`, then finishes the send in hand so every key tried is answered.
    /// Refusals that say "try again" (store unavailable, shutting down) are retried with the key.
    func run(keyPrefix: String, stop: StopFlag) {
        var index = 0
        while !stop.isSet {
            let key = "\(keyPrefix)-\(index)"
            while true {
                guard case .refused(let failure)? = send(key: key) else { break }
                guard failure.code == .storeUnavailable || failure.code == .shuttingDown else { break }
            }
            index += 1
        }
    }
}

/// The receiving application: takes deliveries, records them, confirms. `restart()` drops
/// its connection and its memory of what it has seen, as a restarted application would.
final class ReceivingApplication: Sendable {
    let system: SoakSystem
    let person: PersonID
    /// Where the application connects: one broker, or several to fail over between.
    let endpoint: String
    let ledger: Ledger
    let credit: Int
    private struct Restarts {
        var requested = false
        var done = 0
    }

    private let restartState = Mutex(Restarts())
    var restarts: Int { restartState.withLock { $0.done } }

    init(system: SoakSystem, person: PersonID, endpoint: String, ledger: Ledger, credit: Int = 32) {
        self.system = system
        self.person = person
        self.endpoint = endpoint
        self.ledger = ledger
        self.credit = credit
    }

    func restart() {
        restartState.withLock { $0.requested = true }
    }

    /// Whether a restart was asked for; if so it counts as done.
    private func takeRestart() -> Bool {
        restartState.withLock { state in
            let value = state.requested
            state.requested = false
            if value { state.done += 1 }
            return value
        }
    }

    func run(stop: StopFlag) {
        var client: CareRelayClient?
        var seen = Set<String>()
        while !stop.isSet {
            if takeRestart() {
                client = nil
                seen.removeAll()
            }
            do {
                if client == nil {
                    client = try CareRelayClient(configuration: system.configuration(person, endpoint: endpoint, receive: true, credit: credit))
                }
                guard let current = client, let delivery = try current.nextDelivery(timeout: .milliseconds(300)) else { continue }
                let id = delivery.header.id
                ledger.recordDelivery(id: id, key: SoakSystem.key(in: delivery.body), repeatWithinInstance: !seen.insert(id).inserted)
                try current.confirm([id])
            } catch {
                // The broker went away mid-exchange. The same client carries on: it says HELLO
                // again when the broker answers, and keeps its memory of what it handed over.
                continue
            }
        }
    }
}

/// Runs `body` on a new thread; `wait()` the group to join.
func spawn(_ group: DispatchGroup, _ name: String, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    let thread = Thread {
        body()
        group.leave()
    }
    thread.name = name
    thread.start()
}
