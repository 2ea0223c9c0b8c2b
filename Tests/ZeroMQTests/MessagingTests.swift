import Foundation
import Testing
import ZeroMQ

@Suite struct MessagingTests {
    @Test func multipartRoundTripOverInproc() throws {
        let context = try ZMQContext()
        let endpoint = uniqueInproc("roundtrip")
        let server = try context.makeSocket(.pair)
        try server.setReceiveTimeout(10_000)
        try server.bind(endpoint)
        let client = try context.makeSocket(.pair)
        try client.setReceiveTimeout(10_000)
        try client.connect(endpoint)

        #expect(try client.send(binaryFrames))
        let received = try #require(try server.receive())
        #expect(received.frames == binaryFrames)

        #expect(try server.send(received.frames.reversed()))
        let echoed = try #require(try client.receive())
        #expect(echoed.frames == binaryFrames.reversed())
    }

    @Test func multipartRoundTripOverTCP() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setReceiveTimeout(10_000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(port(of: endpoint).map { $0 > 0 } == true)

        let dealer = try context.makeSocket(.dealer)
        try dealer.setReceiveTimeout(10_000)
        try dealer.connect(endpoint)

        #expect(try dealer.send(binaryFrames))
        let received = try #require(try router.receive())
        #expect(received.frames.count == binaryFrames.count + 1)
        #expect(Array(received.frames.dropFirst()) == binaryFrames)
        #expect(received.peerAddress == "127.0.0.1")

        let routingID = received.frames[0]
        #expect(try router.send([routingID] + binaryFrames))
        let reply = try #require(try dealer.receive())
        #expect(reply.frames == binaryFrames)
    }

    @Test func routerRepliesReachTheDealerWithThatRoutingID() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setReceiveTimeout(10_000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint

        var dealers: [String: Socket] = [:]
        for name in ["alice", "bob"] {
            let dealer = try context.makeSocket(.dealer)
            try dealer.setRoutingID(name)
            #expect(try dealer.routingID == Array(name.utf8))
            try dealer.setReceiveTimeout(10_000)
            try dealer.connect(endpoint)
            try dealer.send(["hello from \(name)"])
            dealers[name] = dealer
        }

        var seen: [String: String] = [:]
        for _ in 0..<2 {
            let message = try #require(try router.receive())
            try #require(message.frames.count == 2)
            seen[String(decoding: message.frames[0], as: UTF8.self)] = String(decoding: message.frames[1], as: UTF8.self)
        }
        #expect(seen == ["alice": "hello from alice", "bob": "hello from bob"])

        // Reply in the opposite order to arrival, so only routing (not fair queuing) can get it right.
        for name in ["bob", "alice"] {
            try router.send([Array(name.utf8), Array("for \(name)".utf8)])
        }
        for (name, dealer) in dealers {
            let reply = try #require(try dealer.receive())
            #expect(reply.frames == [Array("for \(name)".utf8)])
        }
    }

    @Test func routerMandatoryRejectsUnknownRoutingID() throws {
        let context = try ZMQContext()
        let router = try context.makeSocket(.router)
        try router.setRouterMandatory(true)
        try router.bind(uniqueInproc("mandatory"))

        do {
            try router.send([Array("nobody".utf8), Array("payload".utf8)])
            Issue.record("send to an unknown routing id should have failed")
        } catch {
            #expect(error.isHostUnreachable)
            #expect(error == .hostUnreachable)
            // The text comes from zmq_strerror, i.e. the C library: "Host unreachable" on glibc.
            #expect(error.message.lowercased().contains("host unreachable") || error.message.contains("No route to host"))
            #expect(error.description.contains(error.message))
            #expect(error.description.contains("113") || error.code != 113)
        }
        #expect(throws: ZMQError.hostUnreachable) {
            try router.send([Array("nobody".utf8), []], dontWait: true)
        }
    }

    @Test func pollTimesOutWithNothingToReadAndReportsWaitingMessage() throws {
        let context = try ZMQContext()
        let endpoint = uniqueInproc("poll")
        let receiver = try context.makeSocket(.pair)
        try receiver.bind(endpoint)
        let sender = try context.makeSocket(.pair)
        try sender.connect(endpoint)

        let clock = ContinuousClock()
        let started = clock.now
        let idle = try poll([PollItem(receiver)], timeoutMilliseconds: 200)
        #expect(clock.now - started >= .milliseconds(150))
        #expect(idle == [[]])
        #expect(try !receiver.events.contains(.readable))

        try sender.send(["wake"])
        let ready = try poll([PollItem(receiver), PollItem(sender, events: .writable)], timeoutMilliseconds: 10_000)
        #expect(ready[0] == .readable)
        #expect(ready[1] == .writable)
        #expect(try receiver.events.contains(.readable))
        #expect(try receiver.receive(dontWait: true)?.frames == [Array("wake".utf8)])
        #expect(try receiver.receive(dontWait: true) == nil)
    }

    @Test func subscribersOnlyReceiveMatchingPrefixes() throws {
        let context = try ZMQContext()
        let endpoint = uniqueInproc("pubsub")
        let publisher = try context.makeSocket(.xpub)
        try publisher.setReceiveTimeout(10_000)
        try publisher.bind(endpoint)
        let subscriber = try context.makeSocket(.sub)
        try subscriber.setReceiveTimeout(10_000)
        try subscriber.connect(endpoint)
        try subscriber.subscribe("care.")

        // XPUB surfaces the subscription, which proves it reached the publisher before we publish.
        let subscription = try #require(try publisher.receive())
        #expect(subscription.frames == [[1] + Array("care.".utf8)])

        try publisher.send(["social.visit"])
        try publisher.send(["care.plan", "v2"])
        #expect(try subscriber.receive()?.frames == [Array("care.plan".utf8), Array("v2".utf8)])

        try subscriber.unsubscribe("care.")
        #expect(try publisher.receive()?.frames == [[0] + Array("care.".utf8)])
        try publisher.send(["care.plan", "v3"])
        try subscriber.setReceiveTimeout(200)
        #expect(try subscriber.receive() == nil)
    }

    @Test func socketLifecycleAndOptions() throws {
        let context = try ZMQContext()
        let socket = try context.makeSocket(.dealer)
        #expect(try socket.linger == 0)
        try socket.setSendHighWaterMark(10)
        try socket.setReceiveHighWaterMark(20)
        try socket.setSendTimeout(30)
        try socket.setHeartbeatInterval(40)
        try socket.setHeartbeatTTL(50_000)
        try socket.setHeartbeatTimeout(60)
        try socket.setMaxMessageSize(70)
        try socket.setImmediate(true)
        #expect(try socket.sendHighWaterMark == 10)
        #expect(try socket.receiveHighWaterMark == 20)
        #expect(try socket.sendTimeout == 30)
        #expect(try socket.heartbeatInterval == 40)
        #expect(try socket.heartbeatTTL == 50_000)
        #expect(try socket.heartbeatTimeout == 60)
        #expect(try socket.maxMessageSize == 70)
        #expect(try socket.immediate)
        #expect(throws: ZMQError.invalidArgument) { try socket.send([[UInt8]]()) }
        #expect(throws: ZMQError.invalidArgument) { try socket.setCurveServerKey("too short") }

        socket.close()
        socket.close()
        #expect(socket.isClosed)
        #expect(throws: ZMQError.notSocket) { try socket.send(["x"]) }
    }

    @Test func shutdownWakesBlockedReceiveWithETERM() async throws {
        let context = try ZMQContext()
        let endpoint = uniqueInproc("shutdown")
        let outcome = Locked<ZMQError?>(nil)
        let bound = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { finished.signal() }
            do throws(ZMQError) {
                let socket = try context.makeSocket(.pair)
                try socket.bind(endpoint)
                bound.signal()
                _ = try socket.receive()
            } catch {
                outcome.withLock { $0 = error }
                bound.signal()
            }
        }
        thread.start()
        bound.wait()
        context.shutdown()
        #expect(finished.wait(timeout: .now() + 10) == .success)
        #expect(outcome.withLock { $0 }?.isTerminated == true)
    }
}
