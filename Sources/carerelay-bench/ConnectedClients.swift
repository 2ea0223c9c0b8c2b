import ArgumentParser
import CareRelayModel
import Foundation
import ZeroMQ

/// Many people connected at once, each on a CURVE connection of their own that the broker has
/// welcomed. A libzmq context holds at most 1,023 sockets (ZMQ_MAX_SOCKETS), so the fleet
/// uses one context and one thread per 1,000 people; each thread connects in waves so that
/// the broker's listen backlog is not flooded with thousands of SYNs at once.
final class ClientFleet: @unchecked Sendable {
    private var sockets: [Socket] = []
    private let lock = NSLock()

    static let perContext = 1_000
    static let wave = 100

    init(_ people: [PersonID], of system: CareSystemFiles, endpoint: String) throws {
        let group = DispatchGroup()
        let failure = FirstFailure()
        for chunk in stride(from: 0, to: people.count, by: Self.perContext).map({ Array(people[$0..<min($0 + Self.perContext, people.count)]) }) {
            group.enter()
            Thread {
                defer { group.leave() }
                do { self.append(try Self.connect(chunk, of: system, endpoint: endpoint)) } catch { failure.record(error) }
            }.start()
        }
        group.wait()
        if let error = failure.error { throw error }
    }

    private static func connect(_ people: [PersonID], of system: CareSystemFiles, endpoint: String) throws -> [Socket] {
        let context = try ZMQContext()
        var sockets: [Socket] = []
        for start in stride(from: 0, to: people.count, by: wave) {
            let dialled = try people[start..<min(start + wave, people.count)].map { person in
                guard let keys = system.keys[person] else { throw ValidationError("\(person) has no key") }
                let socket = try CRPConnection.dial(in: context, keys: keys, brokerKey: system.brokerKeys.publicKey,
                                                    endpoint: endpoint, timeoutMilliseconds: 60_000)
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

/// The first error of several threads.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?
    func record(_ error: any Error) {
        lock.lock(); defer { lock.unlock() }
        if first == nil { first = error }
    }
    var error: (any Error)? {
        lock.lock(); defer { lock.unlock() }
        return first
    }
}

/// The broker's resident memory idle and with `clients` people connected, each welcomed.
enum ConnectedClientsMemory {
    struct Result {
        var clients: Int
        var idleBytes: Int
        var connectedBytes: Int
        var secondsToConnect: Double
        var bytesPerClient: Double { Double(connectedBytes - idleBytes) / Double(clients) }
    }

    static func run(clients: Int) throws -> Result {
        let system = try CareSystemFiles(staff: clients)
        defer { system.remove() }
        // Sessions expire after three silent heartbeats; the clients here send nothing after
        // HELLO, so a long heartbeat keeps every session alive while memory is read.
        let broker = try BrokerProcess(system, heartbeatMilliseconds: 600_000)
        defer { broker.stop() }
        // Idle: the directory of `clients` people loaded, and one connection opened and closed
        // first, so one-off allocations of a first session are not counted per client.
        let context = try ZMQContext()
        try system.connection(CareSystemFiles.gp, in: context, endpoint: broker.endpoint, receive: false).close()
        Thread.sleep(forTimeInterval: 0.5)
        let idle = broker.residentBytes
        let start = ContinuousClock.now
        let fleet = try ClientFleet(system.staff, of: system, endpoint: broker.endpoint)
        defer { fleet.close() }
        let connectSeconds = seconds(since: start)
        Thread.sleep(forTimeInterval: 0.5)
        return Result(clients: fleet.count, idleBytes: idle, connectedBytes: broker.residentBytes, secondsToConnect: connectSeconds)
    }
}
