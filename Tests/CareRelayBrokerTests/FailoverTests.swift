import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import Foundation
import Testing
import ZeroMQ

/// A client given several broker endpoints uses the first that answers and moves on when it
/// stops answering. Here the brokers take turns on one store (a standby started on the same
/// disk when the first dies), so nothing accepted by the first is lost to the second.
@Suite struct FailoverTests {
    @Test func aClientSkipsABrokerThatIsDownAndMovesOnWhenItsBrokerDies() throws {
        let system = try CareSystem()
        let (firstPort, secondPort, nobodyPort) = (try freePort(), try freePort(), try freePort())
        var first: BrokerProcess? = try BrokerProcess(system: system, port: firstPort)
        let endpoints = ["tcp://127.0.0.1:\(nobodyPort)", "tcp://127.0.0.1:\(firstPort)", "tcp://127.0.0.1:\(secondPort)"]
            .joined(separator: ",")
        // Nothing listens on the first endpoint: the client goes on to the next.
        let gp = try system.client("gp.khan", receive: false, endpoint: endpoints, replyTimeout: .seconds(1))
        #expect(gp.connectedEndpoint == "tcp://127.0.0.1:\(firstPort)")
        let lee = try system.client("sw.lee", credit: 4, endpoint: endpoints, replyTimeout: .seconds(1))
        var accepted: Set<String> = []
        for n in 0..<8 {
            accepted.insert(try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "before \(n)")).id)
        }
        let handled = try lee.expectDelivery().header.id  // one confirmed; the rest in flight or queued

        first?.kill()
        first = nil
        let second = try BrokerProcess(system: system, port: secondPort)
        defer { second.terminate() }
        // The next request finds the first broker gone and moves on to the standby.
        accepted.insert(try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "after")).id)
        #expect(gp.connectedEndpoint == "tcp://127.0.0.1:\(secondPort)")
        var received: Set<String> = [handled]
        while received.count < accepted.count, let delivery = try lee.nextDelivery(timeout: .seconds(15)) {
            #expect(!received.contains(delivery.header.id), "handed to the application twice")
            received.insert(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        #expect(received == accepted)
        #expect(lee.connectedEndpoint == "tcp://127.0.0.1:\(secondPort)")
    }
}
