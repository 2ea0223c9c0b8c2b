import CareRelayFuzzing
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import Foundation
import Synchronization
import ZeroMQ

/// An authenticated client firing malformed, oversized and out-of-order commands as fast as
/// it can, while a well-behaved pair keeps exchanging referrals.
struct HostileSoak {
    let system: SoakSystem
    let seconds: Double
    let seed: UInt64
    let log: (String) -> Void

    struct Figures {
        var alone = WellBehavedPair.Result(rate: 0, tally: .init())
        var pair = WellBehavedPair.Result(rate: 0, tally: .init())
        var hostileCommands = 0
        var oversized = 0
        var answers = 0
        var brokerAlive = false
    }

    /// What the hostile thread counted, read after it has been joined.
    final class Counts: Sendable {
        let commands = Atomic(0), oversized = Atomic(0), answers = Atomic(0)
    }

    func run() throws -> Figures {
        var figures = Figures()
        let port = try freePort()
        let broker = try system.startBroker(port: port)
        defer { broker.terminate() }
        figures.alone = WellBehavedPair(system: system, port: port, sender: "gp.4", recipient: "sw.2").run(
            seconds: seconds, keyPrefix: "before-hostile")
        let stop = StopFlag()
        let group = DispatchGroup()
        let counts = Counts()
        let system = self.system, seed = self.seed
        spawn(group, "hostile") {
            guard let context = try? ZMQContext(),
                let socket = try? system.rawConnection("gp.hostile", port: port, context: context, receive: true)
            else { return }
            defer { socket.close() }
            try? socket.setSendHighWaterMark(1_000)
            var mutator = Mutator(
                seed: seed,
                seeds: Corpus.seeds(examples: Corpus.defaultExamples).filter {
                    if case .frames = FuzzInput.target(of: $0) { return true } else { return false }
                })
            let codec = CRPCodec()
            let outOfOrder: [[[UInt8]]] = [
                codec.encode(.confirm(Confirm(ids: ["m-does-not-exist", "m-0"], recipient: "sw.1"))),
                codec.encode(.credit(Credit(credit: -5))),
                codec.encode(.bye(Empty())),
                codec.encode(.credit(Credit(credit: 1_000_000))),
                codec.encode(.hello(Hello(receive: true, credit: 10_000))),
            ]
            // Larger than the broker's limit for one message: libzmq drops the connection
            // (and the DEALER reconnects), so the broker never holds it.
            let oversized: [[UInt8]] = [CRP.signature, Array("SEND".utf8), Array("{}".utf8), [UInt8](repeating: 0x7B, count: 3 << 20)]
            var round = 0
            while !stop.isSet {
                round += 1
                let frames: [[UInt8]]
                if round % 500 == 0 {
                    frames = oversized
                    counts.oversized.add(1, ordering: .relaxed)
                } else if round % 7 == 0 {
                    frames = outOfOrder[round % outOfOrder.count]
                } else {
                    let target = FuzzInput.target(of: mutator.next())
                    guard case .frames(let generated) = target, !generated.isEmpty else { continue }
                    frames = generated
                }
                if (try? socket.send(frames, dontWait: true)) == true { counts.commands.add(1, ordering: .relaxed) }
                // Read what comes back so the broker is never made to drop replies for us.
                while (try? socket.receive(dontWait: true)) ?? nil != nil { counts.answers.add(1, ordering: .relaxed) }
            }
        }
        figures.pair = WellBehavedPair(system: system, port: port, sender: "gp.4", recipient: "sw.2").run(
            seconds: seconds, keyPrefix: "beside-hostile")
        stop.set()
        group.wait()
        figures.hostileCommands = counts.commands.load(ordering: .relaxed)
        figures.oversized = counts.oversized.load(ordering: .relaxed)
        figures.answers = counts.answers.load(ordering: .relaxed)
        figures.brokerAlive = kill(broker.pid, 0) == 0 && broker.process.isRunning
        log(String(format: "beside a hostile client (%d commands): %.0f msg/s", figures.hostileCommands, figures.pair.rate))
        return figures
    }
}
