import ArgumentParser
import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayPolicy
import CareRelayPostgres
import CareRelayProtocol
import Dispatch
import Foundation
import Logging
import ZeroMQ

/// Measures CareRelay beside a raw libzmq baseline taken in the same run, and prints one
/// table. Figures are for comparison on one machine, never pass/fail thresholds.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay-bench",
        abstract: "Benchmarks CareRelay against a raw libzmq hop measured in the same run.",
        discussion: """
            Example:
              carerelay-bench              # the full run (a few minutes)
              carerelay-bench --smoke      # seconds: checks the benchmark itself works
            """)

    @Flag(help: "A seconds-long run with small counts, to check that the benchmark works.")
    var smoke = false

    @Option(help: "Message body size in bytes for the message-rate figures.")
    var bodyBytes = 1024

    @Option(help: "Run only one part: baseline, durable, paced, stages, fanout, consent, verify, clients, queued or postgres (for profiling).")
    var only: String?

    @Option(
        help:
            "A PostgreSQL server (postgres://USER@HOST:PORT/DATABASE) for the durable path on the shared store with 1, 2 and 3 nodes; each run gets a new database beside the one named. Scripts/bench starts one."
    )
    var postgres: String?

    // Roles this executable plays as a child process of the clients measure.
    @Option(help: .hidden)
    var fleet: String?
    @Option(help: .hidden)
    var rawRouter: String?

    func wants(_ part: String) -> Bool { only == nil || only == part }

    func run() throws {
        if let fleet { return try FleetProcess.serve(planPath: fleet) }
        if let rawRouter { return try RawRouter.serve(keyFile: rawRouter) }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let scale = smoke ? 1 : 20
        var table = Table()
        print(
            "CareRelay benchmark: \(ProcessInfo.processInfo.processorCount) cores, libzmq \(ZMQLibrary.versionString), body \(bodyBytes) B\(smoke ? ", SMOKE MODE (figures not meaningful)" : "")"
        )

        var rawCurveRate: Double?
        var sqliteDurableRate: Double?
        if wants("baseline") || wants("durable") {
            let rawPlain = try RawHop.run(messages: 10_000 * scale, bodyBytes: bodyBytes, curve: false)
            let rawCurve = try RawHop.run(messages: 10_000 * scale, bodyBytes: bodyBytes, curve: true)
            rawCurveRate = rawCurve.rate
            table.add("baseline: raw libzmq hop DEALER→ROUTER→DEALER", rawPlain.rate, unit: "msg/s")
            table.add("baseline: the same hop with CURVE", rawCurve.rate, unit: "msg/s")
        }
        if wants("stages") {
            var parsed: Double?
            for stage in try StageCosts.run(bodyBytes: bodyBytes, iterations: smoke ? 1_000 : 20_000) {
                if stage.name.hasPrefix("  baseline") {
                    table.add(
                        stage.name, stage.microseconds, unit: "µs/message",
                        extra: parsed.map { String(format: "the typed stage above is %.1f× this", $0 / stage.microseconds) })
                } else {
                    table.add("stage alone: \(stage.name)", stage.microseconds, unit: "µs/message")
                    parsed = stage.microseconds
                }
            }
        }
        if wants("durable") || only == "durable-only" {
            let durable = try DurablePath.saturate(messages: 1_000 * scale, bodyBytes: bodyBytes)
            sqliteDurableRate = durable.rate
            table.add(
                "durable referral path at saturation (send, sync, accept, deliver, confirm)", durable.rate, unit: "msg/s",
                ratio: rawCurveRate.map { durable.rate / $0 }, ratioOf: "CURVE hop")
        }
        if let postgres, wants("postgres") || wants("durable") {
            let server = try PostgresLocation(url: postgres)
            for nodes in 1...3 {
                let database = try server.creatingDatabase("carerelay_bench_\(nodes)_\(UInt32.random(in: 0...UInt32.max))")
                let system = try BenchSystem(store: PostgresStoreProvider(database), nodes: nodes)
                let durable = try DurablePath.saturate(messages: 1_000 * scale, bodyBytes: bodyBytes, system: system)
                table.add(
                    "  on PostgreSQL, \(nodes) node\(nodes == 1 ? "" : "s")\(nodes > 1 ? " (each message crosses nodes)" : "")", durable.rate,
                    unit: "msg/s",
                    ratio: sqliteDurableRate.map { durable.rate / $0 } ?? rawCurveRate.map { durable.rate / $0 },
                    ratioOf: sqliteDurableRate == nil ? "CURVE hop" : "SQLite")
            }
            // Latency across nodes: sent through one broker, stored, announced, delivered by another.
            for nodes in [1, 2] {
                let database = try server.creatingDatabase("carerelay_bench_paced_\(nodes)_\(UInt32.random(in: 0...UInt32.max))")
                let system = try BenchSystem(store: PostgresStoreProvider(database), nodes: nodes)
                let paced = try DurablePath.paced(rate: 1_000, seconds: smoke ? 1 : 10, bodyBytes: bodyBytes, system: system)
                table.add("  on PostgreSQL, \(nodes) node\(nodes == 1 ? "" : "s"), 1000 msg/s offered: achieved", paced.achieved, unit: "msg/s")
                table.add("    send→deliver p50 / p99 / p99.9\(nodes > 1 ? " (across nodes)" : "")", nil, unit: paced.latencyText)
            }
        }
        for rate in [1_000, 10_000] where wants("paced") {
            let paced = try DurablePath.paced(rate: rate, seconds: smoke ? 1 : 10, bodyBytes: bodyBytes)
            table.add("durable path at \(rate) msg/s offered: achieved", paced.achieved, unit: "msg/s")
            table.add("  send→deliver p50 / p99 / p99.9", nil, unit: paced.latencyText)
            if let turns = paced.turns {
                table.add(
                    "  the broker's loop: turns with work, p50 / p99 / max", nil, unit: turns.text,
                    extra: String(
                        format: "%d turns, %.1f referrals a turn, busy %.0f%% of the time", turns.count, paced.referralsPerTurn, paced.busy * 100))
            }
            if let commits = paced.commits {
                table.add("  the broker's synced commits, p50 / p99 / max", nil, unit: commits.text)
            }
        }

        for recipients in [10, 100, 1_000] where wants("fanout") {
            let fanout = try FanOut.run(recipients: recipients, agendas: smoke ? 3 : 20)
            table.add(
                "MDT agenda to \(recipients) attendees: route, consent, store (ACCEPTED)", fanout.millisecondsPerAgenda, unit: "ms/agenda",
                extra: String(format: "%.1f µs per recipient decision+delivery row", fanout.millisecondsPerAgenda * 1000 / Double(recipients)))
        }

        let sizes = smoke ? [1_000, 10_000, 100_000] : [1_000, 100_000, 1_000_000]
        let baseline = wants("consent") ? ConsentCost.run(patients: sizes[0], decisions: 200_000) : 0
        for size in sizes where wants("consent") {
            let cost = size == sizes[0] ? baseline : ConsentCost.run(patients: size, decisions: 200_000)
            table.add(
                "consent decision, \(size) patients in the registry", cost, unit: "ns/decision",
                ratio: cost / baseline, ratioOf: "\(sizes[0]) patients")
        }

        if wants("clients") {
            let clients = smoke ? 200 : 10_000
            // One descriptor per client in the broker, which inherits this limit.
            try FileDescriptorLimit.raise(to: clients + 1_024)
            let (raw, broker) = try ConnectedClientsMemory.run(clients: clients)
            table.addConnectedClients(raw: raw, broker: broker)
        }
        if wants("verify") {
            let sizes = smoke ? [1_000, 2_000] : [100_000, 200_000, 400_000]
            let results = try AuditVerifyCost.run(sizes: sizes)
            for result in results {
                table.add(
                    "audit.verify over \(result.rows) audit rows (beside the loop)", result.seconds * 1000, unit: "ms",
                    ratio: result.microsecondsPerRow / results[0].microsecondsPerRow, ratioOf: "the shortest trail's cost a row")
            }
        }
        if wants("queued") {
            let recipients = smoke ? 10 : 1_000
            table.addRestart(try RestartWithQueuedMail.run(recipients: recipients, mailbox: 1_000, bodyBytes: bodyBytes))
        }
        table.print()
    }
}

struct Table {
    var rows: [(String, String, String, String)] = []
    mutating func add(_ name: String, _ value: Double?, unit: String, ratio: Double? = nil, ratioOf: String? = nil, extra: String? = nil) {
        let number = value.map { $0 >= 100 ? String(format: "%.0f", $0) : String(format: "%.2f", $0) } ?? ""
        let ratioText = ratio.map { String(format: "%.2f× %@", $0, ratioOf ?? "") } ?? (extra ?? "")
        rows.append((name, number, unit, ratioText))
    }
    func print() {
        let widths = (rows.map(\.0.count).max() ?? 0, rows.map(\.1.count).max() ?? 0, rows.map(\.2.count).max() ?? 0)
        Swift.print("| measure | value | unit | ratio |")
        Swift.print("|---|---:|---|---|")
        for row in rows {
            Swift.print("| \(row.0.padding(toLength: widths.0, withPad: " ", startingAt: 0)) | \(row.1) | \(row.2) | \(row.3) |")
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// A raw libzmq hop with the project's wrapper: DEALER → ROUTER (forwards) → DEALER.
enum RawHop {
    struct Result { var rate: Double }

    static func run(messages: Int, bodyBytes: Int, curve: Bool) throws -> Result {
        let context = try ZMQContext()
        let serverKeys = try CurveKeyPair.generate()
        var zap: ZAPHandler?
        if curve {
            zap = ZAPHandler(context: context) { request in .allow(userID: request.clientPublicKey ?? "") }
            try zap?.start()
        }
        defer { zap?.stop() }
        let router = try context.makeSocket(.router)
        try router.setSendHighWaterMark(0)
        try router.setReceiveHighWaterMark(0)
        if curve {
            try router.setCurveServer(true)
            try router.setCurveSecretKey(serverKeys.secretKey)
        }
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        func dealer(_ id: String) throws -> Socket {
            let socket = try context.makeSocket(.dealer)
            try socket.setRoutingID(id)
            try socket.setSendHighWaterMark(0)
            try socket.setReceiveHighWaterMark(0)
            if curve {
                let keys = try CurveKeyPair.generate()
                try socket.setCurveServerKey(serverKeys.publicKey)
                try socket.setCurvePublicKey(keys.publicKey)
                try socket.setCurveSecretKey(keys.secretKey)
            }
            try socket.connect(endpoint)
            return socket
        }
        let sender = try dealer("sender")
        let receiver = try dealer("receiver")
        // The receiver announces itself so the router knows its routing id.
        _ = try receiver.send([Array("ready".utf8)])
        guard let hello = try router.receive(), hello.frames.first == Array("receiver".utf8) else {
            throw ValidationError("the raw hop did not connect")
        }
        let body = [UInt8](repeating: 0x61, count: bodyBytes)
        let routerHandoff = Handoff(router), senderHandoff = Handoff(sender)
        let forwarder = Thread {
            let router = routerHandoff.value
            for _ in 0..<messages {
                guard let message = try? router.receive(), message.frames.count == 2 else { return }
                _ = try? router.send([Array("receiver".utf8), message.frames[1]])
            }
        }
        let start = ContinuousClock.now
        forwarder.start()
        let feeder = Thread {
            for _ in 0..<messages { _ = try? senderHandoff.value.send([body]) }
        }
        feeder.start()
        for _ in 0..<messages { _ = try receiver.receive() }
        let elapsed = seconds(since: start)
        return Result(rate: Double(messages) / elapsed)
    }
}
