import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import Foundation
import ZeroMQ

/// Two well-behaved people exchanging referrals for a while: the yardstick the slow-consumer
/// and hostile-client runs are compared with.
struct WellBehavedPair {
    let system: SoakSystem
    let port: Int
    let sender: PersonID
    let recipient: PersonID

    struct Result {
        var rate: Double
        var tally: Ledger.Tally
    }

    /// Sends for `seconds`, then waits for the last deliveries; the rate is of messages that
    /// reached the receiving application.
    func run(seconds: Double, keyPrefix: String) -> Result {
        let ledger = Ledger()
        let stop = StopFlag(), receiving = StopFlag()
        let senders = DispatchGroup(), receivers = DispatchGroup()
        let receiver = ReceivingApplication(system: system, person: recipient, endpoint: SoakSystem.endpoint(port), ledger: ledger)
        spawn(receivers, "pair receiver") { receiver.run(stop: receiving) }
        let application = Handoff(
            SendingApplication(system: system, person: sender, recipient: recipient, endpoint: SoakSystem.endpoint(port), ledger: ledger))
        let start = Date()
        spawn(senders, "pair sender") { application.value.run(keyPrefix: keyPrefix, stop: stop) }
        _ = ledger.wait(idleTimeout: seconds) { Date().timeIntervalSince(start) >= seconds }
        stop.set()
        senders.wait()
        _ = ledger.awaitAllDelivered(idleTimeout: 10)
        let elapsed = Date().timeIntervalSince(start)
        receiving.set()
        receivers.wait()
        let tally = ledger.tally()
        return Result(rate: Double(tally.accepted - tally.lost) / elapsed, tally: tally)
    }
}

/// A consumer that stops reading must slow nobody else and must not grow the broker's memory
/// without bound; one that vanishes mid-delivery gets its messages when it comes back.
struct ConsumerSoak {
    let system: SoakSystem
    let seconds: Double
    let backlog: Int
    let log: (String) -> Void

    struct Figures {
        var alone = WellBehavedPair.Result(rate: 0, tally: .init())
        var withStalledConsumer = WellBehavedPair.Result(rate: 0, tally: .init())
        /// Alone again once the stalled consumer has gone: how much of the difference is noise.
        var aloneAgain = WellBehavedPair.Result(rate: 0, tally: .init())
        /// (messages waiting for the stalled consumer, broker RSS in KiB)
        var memory: [(backlog: Int, residentKiB: Int)] = []
        var vanishedExpected = 0
        var vanishedReceived = 0
        var vanishedDuplicates = 0
        var vanishedSeconds = 0.0
    }

    func run() throws -> Figures {
        var figures = Figures()
        let port = try freePort()
        let broker = try system.startBroker(port: port)
        defer { broker.terminate() }
        let pair = WellBehavedPair(system: system, port: port, sender: "gp.2", recipient: "sw.2")
        figures.alone = pair.run(seconds: seconds, keyPrefix: "alone")
        log(String(format: "well-behaved pair alone: %.0f msg/s", figures.alone.rate))

        // The stalled consumer: says HELLO with credit 64 and never reads again.
        let context = try ZMQContext()
        let stalled = try system.rawConnection("sw.slow", port: port, context: context, receive: true, credit: 64)
        let ledger = Ledger()
        let flooder = SendingApplication(system: system, person: "gp.3", recipient: "sw.slow", endpoint: SoakSystem.endpoint(port), ledger: ledger)
        figures.memory.append((0, broker.residentKiB ?? 0))
        let step = max(1, backlog / 10)
        for index in 0..<backlog {
            guard case .accepted? = flooder.send(key: "stalled-\(index)") else {
                throw SoakFailure("a send to the stalled consumer was not accepted")
            }
            if (index + 1) % step == 0 { figures.memory.append((index + 1, broker.residentKiB ?? 0)) }
        }
        log("backlog of \(backlog) for the stalled consumer; RSS \(figures.memory.map { "\($0.residentKiB / 1024) MiB" }.joined(separator: ", "))")
        figures.withStalledConsumer = pair.run(seconds: seconds, keyPrefix: "beside-stalled")
        log(String(format: "well-behaved pair beside the stalled consumer: %.0f msg/s", figures.withStalledConsumer.rate))

        // It vanishes mid-delivery (no BYE; 64 deliveries unconfirmed in its buffers), then
        // comes back as a new connection and must receive every message, once each.
        stalled.close()
        let returned = Date()
        let client = try CareRelayClient(
            configuration: system.configuration("sw.slow", endpoint: SoakSystem.endpoint(port), receive: true, credit: 256))
        var received = Set<String>()
        figures.vanishedExpected = ledger.acceptedCount
        while received.count < figures.vanishedExpected, let delivery = try client.nextDelivery(timeout: .seconds(15)) {
            if !received.insert(delivery.header.id).inserted { figures.vanishedDuplicates += 1 }
            try client.confirm([delivery.header.id])
        }
        figures.vanishedReceived = received.intersection(Set(ledger.lock { ledger.accepted.values })).count
        figures.vanishedSeconds = Date().timeIntervalSince(returned)
        figures.aloneAgain = pair.run(seconds: seconds, keyPrefix: "alone-again")
        return figures
    }
}
