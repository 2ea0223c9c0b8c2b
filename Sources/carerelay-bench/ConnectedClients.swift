import ArgumentParser
import CareRelayModel
import Foundation
import Synchronization
import ZeroMQ

/// Many people connected at once, each on a CURVE connection of their own that the broker has
/// welcomed. A libzmq context holds at most 1,023 sockets (ZMQ_MAX_SOCKETS), so the fleet
/// uses one context and one thread per 1,000 people; each thread connects in waves so that
/// the broker's listen backlog is not flooded with thousands of SYNs at once.
///
/// `@unchecked Sendable` because it holds sockets, which are not `Sendable`: each is made on
/// one of the connecting threads and handed over here under `lock`, and from then on touched
/// only under `lock` (a socket may move between threads when a memory barrier orders the
/// move; it is never used by two at once). A `Mutex` does not compile here: it takes in only
/// values the compiler can prove nothing else refers to, which it cannot prove of sockets
/// passed in from another thread.
final class ClientFleet: @unchecked Sendable {
    private var sockets: [Socket] = []
    private let lock = NSLock()

    static let perContext = 1_000
    static let wave = 100

    init(_ plan: FleetPlan) throws {
        let group = DispatchGroup()
        let failure = FirstFailure()
        for start in stride(from: 0, to: plan.people.count, by: Self.perContext) {
            let share = Array(plan.people[start..<min(start + Self.perContext, plan.people.count)])
            group.enter()
            Thread {
                defer { group.leave() }
                do { self.append(try Self.connect(share, plan: plan)) } catch { failure.record(error) }
            }.start()
        }
        group.wait()
        if let error = failure.error { throw error }
    }

    private static func connect(_ people: [FleetPlan.Member], plan: FleetPlan) throws -> [Socket] {
        let context = try ZMQContext()
        var sockets: [Socket] = []
        for start in stride(from: 0, to: people.count, by: wave) {
            let dialled = try people[start..<min(start + wave, people.count)].map { person in
                let socket = try CRPConnection.dial(
                    in: context, keys: person.keys, brokerKey: plan.brokerKey,
                    endpoint: plan.endpoint, timeoutMilliseconds: 60_000)
                // Receiving, as an inbox client does, so the broker reads each (empty) mailbox.
                try CRPConnection.sendHello(on: socket, receive: true, credit: 64)
                return socket
            }
            for socket in dialled { try CRPConnection.awaitWelcome(on: socket) }
            sockets += dialled
        }
        return sockets
    }

    private func append(_ more: [Socket]) {
        lock.lock(); defer { lock.unlock() }
        sockets += more
    }

    var count: Int {
        lock.lock(); defer { lock.unlock() }
        return sockets.count
    }

    func close() {
        lock.lock(); defer { lock.unlock() }
        for socket in sockets { socket.close() }
        sockets.removeAll()
    }
}

/// Who a fleet connects as, and where: written to a file for a fleet in another process.
struct FleetPlan: Codable {
    struct Member: Codable {
        var publicKey: String
        var secretKey: String
        var keys: CurveKeyPair { CurveKeyPair(publicKey: publicKey, secretKey: secretKey) }
    }
    var endpoint: String
    var brokerKey: String
    var people: [Member]
}

/// A client fleet in a process of its own (this benchmark run with `--fleet PLAN`). Each client
/// costs two file descriptors (its TCP connection and its socket's libzmq mailbox), and the
/// hard limit here is 20,000 without the privilege to raise it, so 10,000 clients need two
/// processes. It says "welcomed N" once every client is welcomed, and closes them all when its
/// standard input closes.
final class FleetProcess: Sendable {
    static let mostClients = 5_000
    private let process = Process()
    private let input = Pipe()
    let welcomed: Int

    init(_ plan: FleetPlan, folder: URL) throws {
        let planPath = folder.appendingPathComponent("fleet-\(UUID().uuidString).json").path
        try JSONEncoder().encode(plan).write(to: URL(fileURLWithPath: planPath))
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--fleet", planPath]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFileOrLine(), as: UTF8.self)
        guard line.hasPrefix("welcomed "), let count = Int(line.dropFirst(9).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("a client fleet failed: \(line.isEmpty ? "(no output; see its error above)" : line)")
        }
        welcomed = count
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// The fleet's side: connect, report, hold the connections until told to stop.
    static func serve(planPath: String) throws {
        let plan = try JSONDecoder().decode(FleetPlan.self, from: Data(contentsOf: URL(fileURLWithPath: planPath)))
        try FileDescriptorLimit.raise(to: 2 * plan.people.count + 256)
        let fleet = try ClientFleet(plan)
        FileHandle.standardOutput.write(Data("welcomed \(fleet.count)\n".utf8))
        _ = FileHandle.standardInput.readDataToEndOfFile()
        fleet.close()
    }
}

extension FileHandle {
    /// Reads up to the first newline (or the end): a child's one-line report.
    func readDataToEndOfFileOrLine() -> Data {
        var data = Data()
        while !data.contains(UInt8(ascii: "\n")) {
            let chunk = availableData
            if chunk.isEmpty { break }
            data += chunk
        }
        return data
    }
}

/// The first error of several threads.
final class FirstFailure: Sendable {
    private let first = Mutex<(any Error)?>(nil)
    func record(_ error: any Error) {
        first.withLock { first in
            if first == nil { first = error }
        }
    }
    var error: (any Error)? {
        first.withLock { $0 }
    }
}

/// A server's resident memory idle and with `clients` people connected, each welcomed: the
/// broker, beside a raw libzmq ROUTER configured as the broker's is (the baseline).
enum ConnectedClientsMemory {
    struct Result {
        var clients: Int
        var idleBytes: Int
        var connectedBytes: Int
        var secondsToConnect: Double
        var bytesPerClient: Double { Double(connectedBytes - idleBytes) / Double(clients) }
    }

    static func run(clients: Int) throws -> (raw: Result, broker: Result) {
        let system = try CareSystemFiles(staff: clients)
        defer { system.remove() }
        let raw = try measure(try ServerProcess.rawRouter(system), system)
        // Sessions expire after three silent heartbeats; the clients here send nothing after
        // HELLO, so a long heartbeat keeps every session alive while memory is read.
        let broker = try measure(try ServerProcess.broker(system, heartbeatMilliseconds: 600_000), system)
        return (raw, broker)
    }

    private static func measure(_ server: ServerProcess, _ system: CareSystemFiles) throws -> Result {
        defer { server.stop() }
        // Idle: nobody connected, after one connection opened and closed, so one-off
        // allocations of a first connection are not counted per client.
        try system.connection(CareSystemFiles.gp, in: try ZMQContext(), endpoint: server.endpoint, receive: false).close()
        Thread.sleep(forTimeInterval: 0.5)
        let idle = server.residentBytes

        let members = system.staff.compactMap { system.keys[$0] }.map { FleetPlan.Member(publicKey: $0.publicKey, secretKey: $0.secretKey) }
        let start = ContinuousClock.now
        // Started together, so the server sees one crowd of connections, not two in turn.
        let group = DispatchGroup()
        let started = FleetStarts()
        for first in stride(from: 0, to: members.count, by: FleetProcess.mostClients) {
            let plan = FleetPlan(
                endpoint: server.endpoint, brokerKey: system.brokerKeys.publicKey,
                people: Array(members[first..<min(first + FleetProcess.mostClients, members.count)]))
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                started.record(Swift.Result { try FleetProcess(plan, folder: system.folder) })
            }
        }
        group.wait()
        let fleets = try started.all()
        defer { fleets.forEach { $0.close() } }
        let connectSeconds = seconds(since: start)
        Thread.sleep(forTimeInterval: 0.5)
        return Result(
            clients: fleets.reduce(0) { $0 + $1.welcomed }, idleBytes: idle, connectedBytes: server.residentBytes,
            secondsToConnect: connectSeconds)
    }
}

/// Fleet processes started from several threads, collected for the caller.
final class FleetStarts: Sendable {
    private let results = Mutex<[Result<FleetProcess, any Error>]>([])
    func record(_ result: Result<FleetProcess, any Error>) {
        results.withLock { $0.append(result) }
    }
    /// Every fleet, or the first failure (after closing those that did start).
    func all() throws -> [FleetProcess] {
        try results.withLock { results in
            let fleets = results.compactMap { try? $0.get() }
            if let failure = results.first(where: { (try? $0.get()) == nil }) {
                fleets.forEach { $0.close() }
                _ = try failure.get()
            }
            return fleets
        }
    }
}

extension Table {
    mutating func addConnectedClients(raw: ConnectedClientsMemory.Result, broker: ConnectedClientsMemory.Result) {
        add("baseline: raw libzmq CURVE ROUTER process, RSS idle", raw.idleBytes.mebibytes, unit: "MiB")
        add(
            "baseline: the same with \(raw.clients) clients connected", raw.connectedBytes.mebibytes, unit: "MiB",
            extra: String(format: "%.1f KiB per client (libzmq alone)", raw.bytesPerClient / 1024))
        add(
            "  connected in", raw.secondsToConnect, unit: "s",
            extra: String(format: "%.0f handshakes/s", Double(raw.clients) / raw.secondsToConnect))
        add(
            "broker RSS idle: \(broker.clients) people in the directory, 0 clients", broker.idleBytes.mebibytes, unit: "MiB",
            extra: "separate process, VmRSS")
        add(
            "broker RSS with \(broker.clients) clients connected (CURVE, HELLO welcomed)", broker.connectedBytes.mebibytes, unit: "MiB",
            extra: String(
                format: "%.1f KiB per client: %.2f× the raw ROUTER's", broker.bytesPerClient / 1024, broker.bytesPerClient / raw.bytesPerClient))
        add(
            "  connected and welcomed in", broker.secondsToConnect, unit: "s",
            extra: String(
                format: "%.0f handshakes/s (%.2f× raw)", Double(broker.clients) / broker.secondsToConnect,
                raw.secondsToConnect / broker.secondsToConnect))
    }
}
