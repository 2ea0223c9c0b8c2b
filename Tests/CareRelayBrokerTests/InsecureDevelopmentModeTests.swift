@testable import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

/// `carerelay-broker serve --insecure-development`: PLAIN with username = person id, loopback only.
@Suite struct InsecureDevelopmentModeTests {
    @Test(arguments: [
        ("tcp://127.0.0.1:5570", true), ("tcp://127.0.0.1:*", true), ("tcp://127.8.9.10:5570", true),
        ("tcp://localhost:5570", true), ("tcp://[::1]:5570", true), ("ipc:///tmp/carerelay.sock", true), ("inproc://dev", true),
        ("tcp://0.0.0.0:5570", false), ("tcp://*:5570", false), ("tcp://192.168.1.10:5570", false), ("tcp://eth0:5570", false),
        ("tcp://lo:5570", false), ("tcp://[::]:5570", false), ("tcp://127.0.0.1.example.org:5570", false), ("tcp://127.0.0.256:5570", false),
        ("tcp://127.0.0.1", false), ("tcp://127.0.0.1:", false), ("ws://127.0.0.1:5570", false), ("tcp://localhost.evil:5570", false),
    ])
    func onlyLoopbackEndpointsCount(endpoint: String, loopback: Bool) {
        #expect(LoopbackEndpoint.isLoopback(endpoint) == loopback, "\(endpoint)")
    }

    @Test func theLibraryRefusesToStartOnAnyAddressButLoopback() throws {
        let system = try CareSystem()
        for endpoint in ["tcp://0.0.0.0:0", "tcp://*:0"] {
            var configuration = system.configuration
            configuration.endpoint = endpoint
            configuration.security = .insecureDevelopment
            #expect(throws: BrokerServer.StartError.self) {
                _ = try BrokerServer.start(configuration: configuration, directory: system.directory)
            }
        }
    }

    @Test func theBrokerRefusesToBindEverywhereAndExitsNonZero() throws {
        let system = try CareSystem()
        let port = try freePort()
        do {
            let broker = try BrokerProcess(system: system, port: port, endpoint: "tcp://0.0.0.0:\(port)", extraArguments: ["--insecure-development"])
            broker.terminate()
            Issue.record("the broker started on tcp://0.0.0.0 in insecure development mode")
        } catch BrokerProcess.LaunchError.exited(let status, let stderr) {
            #expect(status != 0)
            #expect(stderr.contains("insecure development mode refuses to bind tcp://0.0.0.0:\(port)"), "\(stderr)")
        }
    }

    /// On loopback it serves: a referral from Dr Khan to Daniel Lee, both connecting by name.
    @Test func onLoopbackPeopleConnectByNameAndExchangeReferrals() throws {
        let system = try CareSystem()
        let port = try freePort()
        let broker = try BrokerProcess(system: system, port: port, extraArguments: ["--insecure-development"])
        defer { broker.terminate() }
        func client(_ person: PersonID, receive: Bool) throws -> CareRelayClient {
            try CareRelayClient(
                configuration: .insecureDevelopment(
                    endpoint: broker.endpoint, person: person, receive: receive,
                    replyTimeout: .seconds(2), attempts: 1))
        }
        let gp = try client("gp.khan", receive: false)
        #expect(gp.welcome?.person == "gp.khan")
        let lee = try client("sw.lee", receive: true)
        let accepted = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        let delivery = try lee.expectDelivery()
        #expect(delivery.header.id == accepted.id)
        #expect(delivery.header.from == "gp.khan")
        // The name still has to be in the directory, and a CURVE client finds no CURVE server.
        #expect(throws: ClientError.self) { _ = try client("nobody.here", receive: false) }
        #expect(throws: ClientError.self) {
            _ = try CareRelayClient(
                configuration: ClientConfiguration(
                    endpoint: broker.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: system.keys["gp.khan"]!,
                    replyTimeout: .seconds(1), attempts: 1))
        }
    }
}
