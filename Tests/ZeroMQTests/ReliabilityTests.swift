import Foundation
import Testing
import ZeroMQ

@Suite struct ReliabilityTests {
    @Test func heartbeatsDisconnectAPeerThatStopsAnswering() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setHeartbeatInterval(100)
        try router.setHeartbeatTimeout(500)
        let monitor = try attachMonitor(to: router, events: [.handshakeSucceeded, .handshakeFailed, .disconnected])
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        let peerPort = try #require(port(of: endpoint))

        let clock = ContinuousClock()
        let peer = try SilentZMTPPeer(port: peerPort)
        // Heartbeats only start once the handshake completes, so a disconnect after this point
        // cannot be the handshake timeout (30 s by default) or a refused greeting.
        let handshake = try #require(try waitForEvent(on: monitor, [.handshakeSucceeded, .handshakeFailed], withinMilliseconds: 10_000))
        #expect(handshake.event == .handshakeSucceeded)
        let handshakeDone = clock.now

        // The peer keeps its TCP connection open; only the missing PONGs can end it.
        let disconnected = try waitForEvent(on: monitor, .disconnected, withinMilliseconds: 10_000)
        #expect(disconnected != nil)
        let elapsed = clock.now - handshakeDone
        #expect(elapsed >= .milliseconds(400))
        #expect(elapsed < .seconds(10))
        withExtendedLifetime(peer) {}
    }

    @Test func heartbeatsKeepAnAnsweringPeerConnected() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setHeartbeatInterval(100)
        try router.setHeartbeatTimeout(500)
        let monitor = try attachMonitor(to: router, events: [.handshakeSucceeded, .disconnected])
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try context.makeSocket(.dealer)
        try dealer.connect(try router.lastEndpoint)

        let handshake = try waitForEvent(on: monitor, .handshakeSucceeded, withinMilliseconds: 10_000)
        #expect(handshake != nil)
        // A live libzmq peer answers PINGs, so several heartbeat timeouts pass without a disconnect.
        #expect(try waitForEvent(on: monitor, .disconnected, withinMilliseconds: 1_500) == nil)
    }

    @Test func messagesAboveMaxMessageSizeAreNotDelivered() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setMaxMessageSize(1024)
        try router.setReceiveTimeout(10_000)
        let monitor = try attachMonitor(to: router, events: [.disconnected])
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try context.makeSocket(.dealer)
        try dealer.connect(try router.lastEndpoint)

        let small = [UInt8](repeating: 0xA5, count: 1000)
        try dealer.send([small])
        let received = try #require(try router.receive())
        #expect(received.frames.last == small)

        try dealer.send([[UInt8](repeating: 0x5A, count: 4096)])
        // libzmq drops the connection on an oversized frame rather than truncating it.
        let dropped = try waitForEvent(on: monitor, .disconnected, withinMilliseconds: 10_000)
        #expect(dropped != nil)
        try router.setReceiveTimeout(300)
        #expect(try router.receive() == nil)
    }
}
