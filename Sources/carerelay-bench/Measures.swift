import CareRelayBroker
import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import Foundation
import Synchronization
import ZeroMQ

/// Arrival times recorded by the receiving thread, read after it finishes.
final class Arrivals: Sendable {
    private let times = Mutex<[String: ContinuousClock.Instant]>([:])
    func record(_ id: String, at instant: ContinuousClock.Instant) {
        times.withLock { $0[id] = instant }
    }
    var all: [String: ContinuousClock.Instant] {
        times.withLock { $0 }
    }
}

/// Receives `count` deliveries on its own thread, confirming in batches.
func startReceiver(_ socket: Socket, count: Int, arrivals: Arrivals) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let handoff = Handoff(socket)
    Thread {
        let socket = handoff.value
        let codec = CRPCodec()
        var received = 0
        var unconfirmed: [String] = []
        while received < count {
            guard let message = try? socket.receive() else { break }
            if case .deliver(let header, _)? = try? codec.decodeBrokerCommand(message.frames[...]) {
                arrivals.record(header.id, at: .now)
                received += 1
                unconfirmed.append(header.id)
                if unconfirmed.count >= 64 || received == count {
                    _ = try? socket.send(codec.encode(.confirm(Confirm(ids: unconfirmed))))
                    unconfirmed.removeAll()
                }
            }
        }
        done.signal()
    }.start()
    return done
}

enum DurablePath {
    struct Saturation { var rate: Double }
    struct Paced {
        var achieved: Double
        var p50: Double, p99: Double, p999: Double
        var latencyText: String { String(format: "%.2f / %.2f / %.2f ms", p50, p99, p999) }
        /// The broker's own timers (its loop's turns with work, its synced commits), when it
        /// is in this process on SQLite.
        var turns: RecordedTimers.Summary?
        var commits: RecordedTimers.Summary?
        var referralsPerTurn: Double { turns.map { Double(messages) / Double(max(1, $0.count)) } ?? .nan }
        /// The share of the run the loop spent in turns (the few before the first SEND included).
        var busy: Double { turns.map { $0.totalSeconds / seconds } ?? .nan }
        var messages = 0, seconds = 1.0
    }

    /// As fast as the broker goes: a window of SENDs in flight, all delivered and confirmed.
    /// With several nodes, every pair sends at once, each from its node to the next.
    static func saturate(messages: Int, bodyBytes: Int, system: BenchSystem? = nil) throws -> Saturation {
        let system = try system ?? BenchSystem()
        let share = messages / system.pairs.count
        var receivers: [DispatchSemaphore] = []
        var senders: [Handoff<Socket>] = []
        for pair in system.pairs {
            senders.append(Handoff(try system.connection(pair.sender, receive: false, node: pair.senderNode)))
            let receiver = try system.connection(pair.recipient, receive: true, node: pair.recipientNode)
            receivers.append(startReceiver(receiver, count: share, arrivals: Arrivals()))
        }
        let patient = system.patient
        let start = ContinuousClock.now
        let sending = DispatchGroup()
        for (pair, sender) in zip(system.pairs, senders) {
            sending.enter()
            Thread {
                defer { sending.leave() }
                let codec = CRPCodec()
                // A referral is made by its sender: each pair's body names its own people.
                let body = ReferralBody.padded(patient: patient, from: pair.sender, to: pair.recipient, bytes: bodyBytes)
                var sent = 0, answered = 0
                let window = 512
                while answered < share {
                    while sent < share && sent - answered < window {
                        let header = SendHeader(key: "s\(sent)", kind: .referral, to: [.person(pair.recipient)], patient: patient)
                        _ = try? sender.value.send(codec.encode(.send(header, body: body)))
                        sent += 1
                    }
                    guard (try? sender.value.receive()) != nil else { break }
                    answered += 1
                }
            }.start()
        }
        sending.wait()
        receivers.forEach { $0.wait() }
        return Saturation(rate: Double(share * system.pairs.count) / seconds(since: start))
    }

    /// A fixed offered rate; latency from SEND to DELIVER at the recipient.
    /// With several nodes, the first pair: sent through one broker, delivered by another.
    static func paced(rate: Int, seconds duration: Int, bodyBytes: Int, system: BenchSystem? = nil) throws -> Paced {
        let timers = RecordedTimers()
        let system = try system ?? BenchSystem(timers: timers)
        let pair = system.pairs[0]
        let sender = try system.connection(pair.sender, receive: false, node: pair.senderNode)
        let receiver = try system.connection(pair.recipient, receive: true, node: pair.recipientNode)
        let arrivals = Arrivals()
        let codec = CRPCodec()
        let body = system.referralBody(bytes: bodyBytes)
        let total = rate * duration
        let done = startReceiver(receiver, count: total, arrivals: arrivals)
        var sentAt: [String: ContinuousClock.Instant] = [:]
        var idForKey: [String: String] = [:]
        let interval = Duration.nanoseconds(1_000_000_000 / rate)
        let start = ContinuousClock.now
        var next = start
        var sent = 0, answered = 0
        while answered < total {
            // Send everything that is due, then sleep in poll until the next is due: a busy
            // wait here would take a core from the broker being measured.
            while sent < total && ContinuousClock.now >= next {
                let key = "p\(sent)"
                sentAt[key] = .now
                _ = try sender.send(
                    codec.encode(.send(SendHeader(key: key, kind: .referral, to: [.person(pair.recipient)], patient: system.patient), body: body)))
                sent += 1
                next += interval
            }
            let untilNext = next - .now
            let wait =
                sent < total ? max(1, Int(untilNext.components.seconds * 1000 + untilNext.components.attoseconds / 1_000_000_000_000_000) + 1) : 1_000
            let events = try poll([PollItem(sender)], timeoutMilliseconds: wait)
            guard events.first?.contains(.readable) == true else { continue }
            while let reply = try sender.receive(dontWait: true) {
                if case .accepted(let accepted)? = try? codec.decodeBrokerCommand(reply.frames[...]) { idForKey[accepted.key] = accepted.id }
                answered += 1
            }
        }
        done.wait()
        let elapsed = seconds(since: start)
        let arrived = arrivals.all
        var latencies: [Double] = []
        for (key, id) in idForKey {
            guard let sentInstant = sentAt[key], let arrival = arrived[id] else { continue }
            let d = arrival - sentInstant
            latencies.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
        }
        latencies.sort()
        var result = Paced(
            achieved: Double(total) / elapsed, p50: percentile(latencies, 0.5) ?? .nan,
            p99: percentile(latencies, 0.99) ?? .nan, p999: percentile(latencies, 0.999) ?? .nan)
        result.turns = timers.summary(RecordedTimers.key("carerelay_loop_turn_seconds"))
        result.commits = timers.summary(RecordedTimers.key("carerelay_store_seconds", [("operation", "accept")]))
        result.messages = total
        result.seconds = elapsed
        return result
    }
}

enum FanOut {
    struct Result { var millisecondsPerAgenda: Double }

    /// Agendas to an MDT of `recipients` attendees (offline, so this measures routing, one
    /// consent decision per attendee and the durable write of every delivery).
    static func run(recipients: Int, agendas: Int) throws -> Result {
        let system = try BenchSystem(mdtMembers: recipients)
        let body = try system.prepareAgendaPatient()
        let chair = try system.connection("chair.bench", receive: false)
        let codec = CRPCodec()
        let start = ContinuousClock.now
        for index in 0..<agendas {
            _ = try chair.send(codec.encode(.send(SendHeader(key: "a\(index)", kind: .mdtAgenda, to: [.mdt("bench.mdt")]), body: body)))
            guard let reply = try chair.receive(), case .accepted(let accepted) = try codec.decodeBrokerCommand(reply.frames[...]),
                accepted.recipients.count == recipients
            else { throw CocoaError(.fileReadUnknown) }
        }
        return Result(millisecondsPerAgenda: seconds(since: start) * 1000 / Double(agendas))
    }
}

enum ConsentCost {
    /// Nanoseconds per decision with `patients` patients in the registry, two directives each.
    static func run(patients: Int, decisions: Int) -> Double {
        let numbers = nhsNumbers(count: patients)
        var registry = ConsentRegistry()
        registry.reserveCapacity(patients)
        let recorded = ConsentPerformer(person: "nurse.bench", role: .communityNurse)
        let period = ConsentPeriod(start: Date(timeIntervalSince1970: 0))
        for (index, patient) in numbers.enumerated() {
            registry.record(
                ConsentDirective(
                    id: ConsentDirectiveID("c\(index)a"), patient: patient, type: .permit, subjects: [.relationship(.carer)],
                    categories: [.general], period: period, basis: .explicit, recordedBy: recorded, recordedAt: period.start))
            registry.record(
                ConsentDirective(
                    id: ConsentDirectiveID("c\(index)b"), patient: patient, type: .deny, isObjection: true, subjects: [.organisation("other")],
                    categories: [.mentalHealth], period: period, basis: .explicit, recordedBy: recorded, recordedAt: period.start))
        }
        let engine = ConsentEngine()
        let recipient = ConsentRecipient(person: "carer.bench", roles: [.carer])
        var rng = SystemRandomNumberGenerator()
        let picks = (0..<decisions).map { _ in numbers[Int.random(in: 0..<numbers.count, using: &rng)] }
        let now = Date()
        var delivered = 0
        let start = ContinuousClock.now
        for patient in picks {
            var who = recipient
            who.relationships = [patient: [.registeredCarer]]
            let request = ConsentRequest(
                now: now, kind: .carePlanShare,
                parts: [
                    MessagePart(id: "a", patient: patient, categories: [.general]),
                    MessagePart(id: "b", patient: patient, categories: [.mentalHealth]),
                ])
            if case .deliverRedacted = engine.decide(request, for: who, directives: registry).outcome { delivered += 1 }
        }
        let elapsed = seconds(since: start)
        precondition(delivered == decisions, "the benchmark's decisions changed: \(delivered) of \(decisions) redacted")
        return elapsed * 1e9 / Double(decisions)
    }
}
