import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import CZeroMQ
import Foundation
import Synchronization
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// What a well-behaved sender sees while the broker is under attack, and what the broker
/// costs: used by the flood and reset parts.
struct AttackFigures {
    var baseline = RoundTrips()
    var during = RoundTrips()
    var rssBeforeKiB = 0
    /// The broker's peak resident memory (VmHWM) over the whole run.
    var peakRSSKiB = 0
    var rssAfterKiB = 0
    var brokerAlive = false
    var servingAtEnd = false
    var detail: [(String, String)] = []

    /// SEND -> ACCEPTED times of one sender, one referral at a time.
    struct RoundTrips {
        var milliseconds: [Double] = []
        var failures = 0
        func percentile(_ p: Double) -> Double {
            guard !milliseconds.isEmpty else { return .nan }
            let sorted = milliseconds.sorted()
            return sorted[min(sorted.count - 1, Int((p / 100) * Double(sorted.count)))]
        }
        var summary: String {
            String(
                format: "%d round trips, p50 %.1f ms, p99 %.1f ms, max %.1f ms%@", milliseconds.count, percentile(50), percentile(99),
                milliseconds.max() ?? .nan, failures > 0 ? ", \(failures) unanswered" as NSString : "" as NSString)
        }
    }
}

/// The broker's memory from /proc: resident now and its peak since start, in KiB.
func brokerMemory(_ broker: BrokerProcess) -> (rss: Int, peak: Int)? {
    guard let status = try? String(contentsOfFile: "/proc/\(broker.pid)/status", encoding: .utf8) else { return nil }
    func field(_ name: String) -> Int? {
        status.split(separator: "\n").first { $0.hasPrefix(name) }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
    guard let rss = field("VmRSS:"), let peak = field("VmHWM:") else { return nil }
    return (rss, peak)
}

/// A sender measuring each SEND -> ACCEPTED round trip until told to stop.
func measureRoundTrips(system: SoakSystem, port: Int, person: PersonID, keyPrefix: String, stop: StopFlag) -> AttackFigures.RoundTrips {
    var trips = AttackFigures.RoundTrips()
    guard
        let client = try? CareRelayClient(
            configuration: system.configuration(person, endpoint: SoakSystem.endpoint(port), receive: false, replyTimeout: .seconds(5), attempts: 1))
    else {
        trips.failures += 1
        return trips
    }
    var index = 0
    while !stop.isSet {
        let (header, body) = SoakSystem.referral(from: person, to: "sw.1", key: "\(keyPrefix)-\(index)")
        index += 1
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            _ = try client.send(header, body: body)
            trips.milliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        } catch {
            trips.failures += 1
        }
    }
    return trips
}

/// Runs `body` with a sender measuring round trips beside it: first `seconds` alone, then
/// for the time `body` takes.
func withMeasuredSender(system: SoakSystem, port: Int, seconds: Double, body: () throws -> Void) rethrows -> (
    baseline: AttackFigures.RoundTrips, during: AttackFigures.RoundTrips
) {
    let quiet = StopFlag()
    let timer = DispatchSemaphore(value: 0)
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
        quiet.set(); timer.signal()
    }
    let baseline = measureRoundTrips(system: system, port: port, person: "gp.1", keyPrefix: "alone", stop: quiet)
    timer.wait()
    let stop = StopFlag()
    let group = DispatchGroup()
    let result = ResultBox<AttackFigures.RoundTrips>()
    group.enter()
    Thread {
        result.value = measureRoundTrips(system: system, port: port, person: "gp.2", keyPrefix: "beside", stop: stop)
        group.leave()
    }.start()
    defer {
        stop.set()
        group.wait()
    }
    try body()
    stop.set()
    group.wait()
    return (baseline, result.value ?? .init())
}

final class ResultBox<Value: Sendable>: Sendable {
    private let stored = Mutex<Value?>(nil)
    var value: Value? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

/// The flood: one authenticated connection sending malformed commands at full speed (16 KiB
/// headers nested 8,000 deep, never reading an answer) with raw TCP connections beside it
/// writing garbage, while a well-behaved sender measures its round trips.
struct FloodSoak {
    let system: SoakSystem
    let seconds: Double
    let garbageConnections: Int
    let log: (String) -> Void

    /// Counted by the attacking threads (the garbage threads share two counts), read after
    /// they have been joined.
    final class Counts: Sendable {
        let floodMessages = Atomic(0), garbageConnects = Atomic(0), garbageBytes = Atomic(0)
    }

    func run() throws -> AttackFigures {
        var figures = AttackFigures()
        let port = try freePort()
        let broker = try system.startBroker(port: port)
        defer { broker.terminate() }
        figures.rssBeforeKiB = brokerMemory(broker)?.rss ?? 0
        let counts = Counts()
        let system = self.system, seconds = self.seconds, garbageConnections = self.garbageConnections
        let (baseline, during) = try withMeasuredSender(system: system, port: port, seconds: seconds) {
            let stop = StopFlag()
            let group = DispatchGroup()
            spawn(group, "flood") {
                guard let context = try? ZMQContext(),
                    let socket = try? helloConnection(system: system, port: port, context: context, configure: { try $0.setSendHighWaterMark(0) })
                else { return }
                defer { socket.close(); context.shutdown() }
                let nested = Array((String(repeating: "[", count: 8_000) + String(repeating: "]", count: 8_000)).utf8)
                let frames: [[UInt8]] = [CRP.signature, Array("QUERY".utf8), nested]
                // Straight to libzmq in a tight loop: as fast as this machine can encrypt.
                try? socket.withUnsafeHandle { handle in
                    while !stop.isSet {
                        for _ in 0..<64 {
                            for (index, frame) in frames.enumerated() {
                                let flags: Int32 = index == frames.count - 1 ? ZMQ_DONTWAIT : (ZMQ_SNDMORE | ZMQ_DONTWAIT)
                                _ = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                            }
                            counts.floodMessages.add(1, ordering: .relaxed)
                        }
                        // Never read: answers pile up wherever the broker lets them.
                    }
                }
            }
            for index in 0..<garbageConnections {
                spawn(group, "garbage-\(index)") {
                    var rng = SystemRandomNumberGenerator()
                    var bytes = [UInt8](repeating: 0, count: 4_096)
                    while !stop.isSet {
                        guard let fd = LoopbackSocket.connect(port: port) else { continue }
                        defer { close(fd) }
                        counts.garbageConnects.add(1, ordering: .relaxed)
                        // Garbage until the broker drops the connection.
                        while !stop.isSet {
                            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
                            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            if sent <= 0 { break }
                            counts.garbageBytes.add(sent, ordering: .relaxed)
                        }
                    }
                }
            }
            Thread.sleep(forTimeInterval: seconds)
            stop.set()
            group.wait()
        }
        figures.baseline = baseline
        figures.during = during
        finish(&figures, system: system, broker: broker, port: port)
        let floodMessages = counts.floodMessages.load(ordering: .relaxed)
        let garbageConnects = counts.garbageConnects.load(ordering: .relaxed)
        let garbageBytes = counts.garbageBytes.load(ordering: .relaxed)
        figures.detail = [
            ("flood sent (QUERY, 16 KiB header nested 8,000 deep, never read)", "\(floodMessages) messages in \(Int(seconds)) s"),
            (
                "raw TCP garbage connections beside it",
                "\(garbageConnections) at a time, \(garbageConnects) made, \(garbageBytes / 1_048_576) MiB written"
            ),
        ]
        log(
            "flood: \(floodMessages) messages; peak RSS \(figures.peakRSSKiB / 1024) MiB; p99 alone \(baseline.percentile(99)) ms, during \(during.percentile(99)) ms"
        )
        return figures
    }
}

/// Clients that say HELLO, send PINGs at full speed without reading the answers, and close
/// with linger 0: a TCP reset while the broker's queue for them is full, which aborted the
/// broker on Debian's unpatched libzmq. Round after round, beside a measured sender.
struct ResetSoak {
    let system: SoakSystem
    let rounds: Int
    let seconds: Double
    let log: (String) -> Void

    func run() throws -> AttackFigures {
        var figures = AttackFigures()
        let port = try freePort()
        let broker = try system.startBroker(port: port)
        defer { if broker.process.isRunning { broker.terminate() } }
        figures.rssBeforeKiB = brokerMemory(broker)?.rss ?? 0
        var done = 0
        let system = self.system
        let (baseline, during) = try withMeasuredSender(system: system, port: port, seconds: seconds) {
            for _ in 0..<rounds where broker.process.isRunning {
                let context = try ZMQContext()
                defer { context.shutdown() }
                // After HELLO a PING is well formed, so nothing throttles this client; its
                // PONGs pile up unread (one in libzmq's queue, the rest in the kernel's).
                let socket = try helloConnection(system: system, port: port, context: context) {
                    try $0.setReceiveHighWaterMark(1)
                    try $0.setSendHighWaterMark(0)
                    try $0.setSendTimeout(2_000)
                }
                defer { socket.close() }
                let frames = CRPCodec().encode(.ping(Empty()))
                try socket.withUnsafeHandle { handle in
                    for _ in 0..<20_000 {
                        for (index, frame) in frames.enumerated() {
                            let flags: Int32 = index == frames.count - 1 ? 0 : ZMQ_SNDMORE
                            guard frame.withUnsafeBytes({ zmq_send(handle, $0.baseAddress, $0.count, flags) }) >= 0 else { return }
                        }
                    }
                }
                // Close (linger 0) once the broker has answered, so answers are unread.
                _ = try poll([PollItem(socket)], timeoutMilliseconds: 2_000)
                done += 1
            }
        }
        figures.baseline = baseline
        figures.during = during
        finish(&figures, system: system, broker: broker, port: port)
        figures.detail = [("rounds of PINGs at full speed (20,000 queued, none read), then a reset", "\(done) of \(rounds)")]
        log("reset: \(done) rounds; broker alive \(figures.brokerAlive); peak RSS \(figures.peakRSSKiB / 1024) MiB")
        return figures
    }
}

/// A raw DEALER as "gp.hostile" that has said HELLO, with options set before it connects
/// (high-water marks apply to a connection from its start).
func helloConnection(system: SoakSystem, port: Int, context: ZMQContext, configure: (Socket) throws -> Void) throws -> Socket {
    let socket = try context.makeSocket(.dealer)
    guard let pair = system.keys["gp.hostile"] else { throw CocoaError(.featureUnsupported) }
    try socket.setCurveServerKey(system.brokerKeys.publicKey)
    try socket.setCurvePublicKey(pair.publicKey)
    try socket.setCurveSecretKey(pair.secretKey)
    try socket.setLinger(0)
    try socket.setReceiveTimeout(10_000)
    try configure(socket)
    try socket.connect(SoakSystem.endpoint(port))
    let codec = CRPCodec()
    _ = try socket.send(codec.encode(.hello(Hello(receive: false))))
    guard let reply = try socket.receive(), case .welcome = try codec.decodeBrokerCommand(reply.frames[...]) else {
        throw CocoaError(.fileReadUnknown)
    }
    return socket
}

/// Alive (the process runs) and serving (a new client's referral is accepted) at the end.
private func finish(_ figures: inout AttackFigures, system: SoakSystem, broker: BrokerProcess, port: Int) {
    if let memory = brokerMemory(broker) {
        figures.peakRSSKiB = memory.peak
        figures.rssAfterKiB = memory.rss
    }
    figures.brokerAlive = broker.process.isRunning && kill(broker.pid, 0) == 0
    guard figures.brokerAlive else { return }
    let (header, body) = SoakSystem.referral(from: "gp.3", to: "sw.1", key: "after-\(UUID().uuidString)")
    if let client = try? CareRelayClient(
        configuration: system.configuration("gp.3", endpoint: SoakSystem.endpoint(port), receive: false, replyTimeout: .seconds(5))),
        (try? client.send(header, body: body)) != nil
    {
        figures.servingAtEnd = true
    }
}
