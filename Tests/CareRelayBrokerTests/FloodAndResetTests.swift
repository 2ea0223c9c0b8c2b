import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import CZeroMQ
import Foundation
import Testing
import ZeroMQ

/// No client can stop the broker: not by flooding a connection and resetting it (which
/// aborted Debian's libzmq 4.3.4, see Scripts/libzmq/build), not by flooding malformed
/// commands, not with a CREDIT no window can hold.
@Suite struct FloodAndResetTests {
    /// A client with a key in the directory sends PINGs at full speed without saying HELLO and
    /// without reading the answers, then closes with linger 0 (a TCP reset, since answers sit
    /// unread in its socket). When the broker's queue for that connection is full at the
    /// reset, unpatched libzmq keeps the failed connection's engine alive, and the broker's
    /// heartbeat timer or a ZMTP PING the client had sent then calls out_event: "Assertion
    /// failed: !_io_error (src/stream_engine_base.cpp:331)" and SIGABRT. The broker runs as
    /// its own process so an abort shows as its exit, not as the test runner's.
    @Test(.timeLimit(.minutes(1))) func aClientThatFloodsThenResetsCannotStopTheBroker() throws {
        let system = try CareSystem()
        let port = try freePort()
        // A short ZMTP heartbeat (the broker's --heartbeat sets it), so its timer fires often
        // while resets arrive. How the abort comes about, and a reproduction that aborts
        // every time on Debian's unpatched build: ZeroMQTests/ResetAfterFloodTests.
        let log = system.folder.appendingPathComponent("broker.log").path
        let directoryPath = system.folder.appendingPathComponent("directory.yaml").path
        try DirectoryFile.encode(system.directory.directory).write(toFile: directoryPath, atomically: true, encoding: .utf8)
        let keyPath = system.folder.appendingPathComponent("broker.key").path
        try system.brokerKeys.save(path: keyPath, comment: "test broker")
        let broker = try BrokerProcess(
            executable: BrokerProcess.executable, directory: directoryPath, store: system.storePath,
            keyFile: keyPath, endpoint: "tcp://127.0.0.1:\(port)",
            extraArguments: ["--heartbeat", "100", "--operations", "off"], logFile: log)
        defer { if broker.process.isRunning { broker.terminate() } }
        let good = try system.client("nurse.ali", receive: false, endpoint: broker.endpoint, replyTimeout: .seconds(2))

        let started = ContinuousClock.now
        var rounds = 0
        while rounds < 10, ContinuousClock.now - started < .seconds(20) {
            rounds += 1
            try Self.floodThenReset(system: system, person: "vsb.green", endpoint: broker.endpoint, messages: 1_000)
            guard broker.process.isRunning else { break }
        }
        let alive = (try? good.ping()) != nil && broker.process.isRunning
        if !alive {
            if broker.process.isRunning { broker.kill() } else { broker.process.waitUntilExit() }
            let said = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(400)) } ?? ""
            Issue.record(
                """
                the broker stopped after \(rounds) flood-and-reset rounds (exit reason \(broker.process.terminationReason == .uncaughtSignal ? "signal" : "exit") \(broker.process.terminationStatus)); \
                on Debian's unpatched libzmq this is SIGABRT (6) from !_io_error. It said: \(said)
                """)
            return
        }
        #expect(
            try system.client("gp.khan", receive: false, endpoint: broker.endpoint)
                .send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral()).id.isEmpty == false)
    }

    /// One flooding connection: CRP PINGs (no HELLO, so each is answered 413) sent as fast as
    /// TCP carries them, ZMTP heartbeats every millisecond (CareRelayClient sends them every
    /// 2 s), nothing read, then a close that discards what is unsent and resets the connection.
    static func floodThenReset(system: CareSystem, person: PersonID, endpoint: String, messages: Int) throws {
        let context = try ZMQContext()
        defer { context.shutdown() }
        let socket = try context.makeSocket(.dealer)
        defer { socket.close() }
        let keys = try #require(system.keys[person])
        try socket.setCurveServerKey(system.brokerKeys.publicKey)
        try socket.setCurvePublicKey(keys.publicKey)
        try socket.setCurveSecretKey(keys.secretKey)
        // Read nothing: answers stay in the kernel's buffer, so the close is a reset.
        try socket.setReceiveHighWaterMark(1)
        // Sends block once 1,000 are queued here, so the loop runs as long as TCP takes to
        // carry them and the broker, which answers each, falls behind: its queue is full.
        try socket.setSendHighWaterMark(1_000)
        try socket.setHeartbeatInterval(1)
        try socket.setHeartbeatTimeout(60_000)
        try socket.setLinger(0)
        // A broker that has died leaves a DEALER nothing to send to: give up, don't hang.
        try socket.setSendTimeout(2_000)
        try socket.connect(endpoint)
        // A long `req` makes each PING cost the broker far more than the sender (it is read,
        // and echoed in the 413 answer), so the broker's queue for this connection is full
        // when the reset comes, and stays so while it works through it.
        let frames: [[UInt8]] = [CRP.signature, Array("PING".utf8), Array(#"{"req":"\#(String(repeating: "r", count: 2_000))"}"#.utf8)]
        // Straight to libzmq, so the sender is never the slower side.
        try socket.withUnsafeHandle { handle in
            for _ in 0..<messages {
                for (index, frame) in frames.enumerated() {
                    let flags: Int32 = index == frames.count - 1 ? 0 : ZMQ_SNDMORE
                    guard frame.withUnsafeBytes({ zmq_send(handle, $0.baseAddress, $0.count, flags) }) >= 0 else { return }
                }
            }
        }
        // Take a hundred answers (bounded wait), so the broker has been working through a
        // full queue for a while; it goes on answering, so answers are unread at the close.
        try socket.setReceiveTimeout(2_000)
        for _ in 0..<100 { guard try socket.receive() != nil else { break } }
    }

    /// CREDIT (and HELLO's credit) must be a whole number from 0 to 10000; anything else is
    /// refused with 404 and a reason naming the field, never ignored or clamped silently.
    @Test func creditNoWindowCanHoldIsRefusedWithItsCode() throws {
        let system = try CareSystem()
        try system.start()
        let raw = try RawClient(system: system, person: "sw.lee")
        let sig = CRP.signature
        let badHello = try #require(try raw.rejection([sig, Array("HELLO".utf8), header(#"{"receive":true,"credit":1e30}"#)]))
        #expect(badHello.code == ErrorCode.invalidHeader.rawValue && badHello.reason.contains("credit"), "\(badHello.reason)")
        try raw.hello()
        for value in ["1e30", "1180591620717411303424", "-1", "2.5", "10001", "\"10\"", "null"] {
            let rejected = try #require(
                try raw.rejection([sig, Array("CREDIT".utf8), header(#"{"credit":\#(value)}"#)]),
                "CREDIT \(value): expected REJECTED")
            #expect(rejected.code == ErrorCode.invalidHeader.rawValue, "CREDIT \(value): \(rejected.error) \(rejected.reason)")
            #expect(rejected.command == "CREDIT")
            #expect(rejected.reason.contains("credit") && rejected.reason.contains("10000"), "CREDIT \(value): \(rejected.reason)")
        }
        // A good CREDIT still has no answer: the next answer is the PING's PONG.
        try raw.send([sig, Array("CREDIT".utf8), header(#"{"credit":10}"#)])
        guard case .pong = try raw.command([sig, Array("PING".utf8), header(#"{"req":"p"}"#)]) else {
            Issue.record("expected PONG after a good CREDIT")
            return
        }
    }

    /// Headers nested 8,000 deep (16 KiB, the most a header may be) are refused with their
    /// code without exhausting the decoder's stack; a key that keeps sending them is answered
    /// up to its budget, told 429 once, then ignored, while others are served throughout; the
    /// key is served again when the time is up.
    @Test func aFloodOfMalformedCommandsIsAnsweredThenThrottled() throws {
        let system = try CareSystem()
        try system.start()
        let limits = RefusalLimits()
        let flooder = try RawClient(system: system, person: "vsb.green")
        try flooder.hello()
        let sig = CRP.signature
        let depth = 8_000
        let arrays = Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
        let objects = Array((String(repeating: #"{"a":"#, count: 1_600) + "0" + String(repeating: "}", count: 1_600)).utf8)
        #expect(arrays.count <= CRP.maxHeaderBytes && objects.count <= CRP.maxHeaderBytes)
        for nested in [arrays, objects] {
            let rejected = try #require(try flooder.rejection([sig, Array("QUERY".utf8), nested]))
            #expect(rejected.code == ErrorCode.invalidHeader.rawValue, "\(rejected.error): \(rejected.reason)")
        }
        // A message of a thousand frames: read and dropped beyond the fifth, answered 400.
        let many = try #require(try flooder.rejection([sig] + Array(repeating: [0x41], count: 999)))
        #expect(many.code == ErrorCode.malformedMessage.rawValue && many.reason.contains("1000"), "\(many.reason)")

        // The flood: more than the budget, without waiting for answers.
        let sent = limits.burst + 50
        for _ in 0..<sent { try flooder.send([sig, Array("QUERY".utf8), arrays]) }
        let gp = try system.client("gp.khan", receive: false)
        #expect(!(try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral()).id.isEmpty))
        var answers: [Rejected] = []
        try flooder.socket.setReceiveTimeout(1_000)
        while let reply = try flooder.socket.receive(), case .rejected(let r) = try flooder.codec.decodeBrokerCommand(reply.frames[...]) {
            answers.append(r)
            if r.code == ErrorCode.throttled.rawValue { break }
        }
        let throttled = try #require(answers.last, "no answers at all")
        #expect(throttled.code == ErrorCode.throttled.rawValue, "the flood was never throttled: \(answers.count) answers")
        #expect(answers.dropLast().allSatisfy { $0.code == ErrorCode.invalidHeader.rawValue })
        // Answered until the budget ran out (3 refusals above, some refilled while sending).
        #expect(answers.count - 1 >= limits.burst - 3 && answers.count - 1 < sent, "\(answers.count - 1) answered of \(sent)")
        // Ignored now, even a well-formed command on a new connection with the same key: the
        // bounded wait below is for an answer that must not come.
        let again = try RawClient(system: system, person: "vsb.green")
        try again.socket.setReceiveTimeout(500)
        try again.send(codec.encode(.hello(Hello(receive: false))))
        #expect(try again.socket.receive() == nil, "an ignored key was answered")
        try gp.ping()
        // Served again once the time is up.
        system.clock.advance(by: limits.ignoreSeconds + 1)
        let later = try RawClient(system: system, person: "vsb.green")
        try later.hello()
    }

    let codec = CRPCodec()
}
