import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

/// Operations on the real `carerelay-broker` process: SIGTERM under load, a backup taken by
/// another process while the broker serves, a new broker key.
@Suite struct OperationsProcessTests {
    /// Everything `lee` receives until the broker has nothing more for him, confirmed.
    func drain(_ lee: CareRelayClient) throws -> [String] {
        var received: [String] = []
        while let delivery = try lee.nextDelivery(timeout: .seconds(3)) {
            received.append(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        return received
    }

    /// A broker process with a GP sending referrals to sw.lee (offline) as fast as it can.
    func brokerUnderLoad(acknowledged count: Int) throws -> (CareSystem, port: Int, BrokerProcess, SendingLoad) {
        let system = try CareSystem()
        let port = try freePort()
        let broker = try BrokerProcess(system: system, port: port)
        let load = SendingLoad(system: system, to: .person("sw.lee"), endpoint: broker.endpoint)
        load.start()
        load.waitForAcknowledged(count)
        return (system, port, broker, load)
    }

    @Test func aSecondBrokerWhoseOperationsAddressIsTakenRefusesToStart() throws {
        let operationsPort = try freePort()
        let first = try BrokerProcess(
            system: try CareSystem(), port: try freePort(),
            extraArguments: ["--operations", "127.0.0.1:\(operationsPort)"])
        defer { _ = first.terminate() }
        do {
            let second = try BrokerProcess(
                system: try CareSystem(), port: try freePort(),
                extraArguments: ["--operations", "127.0.0.1:\(operationsPort)"])
            _ = second.terminate()
            Issue.record("the second broker said it was listening without its operations endpoint")
        } catch BrokerProcess.LaunchError.exited(let status, let stderr) {
            #expect(status == 2)
            #expect(stderr.contains("cannot listen on 127.0.0.1:\(operationsPort)"))
        }
    }

    @Test func sigtermUnderLoadStopsCleanlyAndLosesNothingAcknowledged() throws {
        var (system, port, broker, load) = try brokerUnderLoad(acknowledged: 200)
        #expect(broker.terminate() == 0, "SIGTERM is a clean stop, exit 0")
        load.stop()  // the sender has had its 503 or no answer
        let acknowledged = load.acknowledged

        broker = try BrokerProcess(system: system, port: port)
        defer { broker.terminate() }
        let received = try drain(try system.client("sw.lee", credit: 500, endpoint: broker.endpoint))
        #expect(Set(acknowledged).isSubset(of: Set(received)), "an acknowledged message was lost at SIGTERM")
        #expect(received.count == Set(received).count, "a message was delivered twice")
        // One send can be in flight when the broker stops: stored and answered, but the
        // answer not read before the sender gave up. Anything more was stored unanswered.
        #expect(received.count - acknowledged.count <= 1)
        let verify = try system.client("coord.patel", receive: false, endpoint: broker.endpoint).query("audit.verify")
        #expect(try jsonObject(verify)["intact"] as? Bool == true)
    }

    @Test func aBackupByAnotherProcessWhileServingRestoresAfterTheBrokerStops() throws {
        var (system, port, broker, load) = try brokerUnderLoad(acknowledged: 100)
        let beforeBackup = load.acknowledged
        let backup = system.folder.appendingPathComponent("backup.sqlite").path
        let taken = try BrokerProcess.run(["backup", "--store", system.storePath, "--to", backup])
        #expect(taken.status == 0, "\(taken.output)")
        #expect(taken.output.contains("audit chain intact"), "\(taken.output)")
        load.waitForAcknowledged(beforeBackup.count + 50)
        load.stop()
        // Not while the broker has the store.
        let refused = try BrokerProcess.run(["restore", "--from", backup, "--store", system.storePath])
        #expect(refused.status != 0)
        #expect(refused.output.contains("in use by another broker process"), "\(refused.output)")

        #expect(broker.terminate() == 0)
        let restored = try BrokerProcess.run(["restore", "--from", backup, "--store", system.storePath])
        #expect(restored.status == 0, "\(restored.output)")
        broker = try BrokerProcess(system: system, port: port)
        defer { broker.terminate() }
        let received = try drain(try system.client("sw.lee", credit: 500, endpoint: broker.endpoint))
        #expect(Set(beforeBackup).isSubset(of: Set(received)), "a message accepted before the backup is missing")
        #expect(received.count == Set(received).count)
    }

    @Test func rotatingTheBrokerKeyKeepsQueuedMessages() throws {
        let system = try CareSystem()
        let port = try freePort()
        var broker = try BrokerProcess(system: system, port: port)
        let gp = try system.client("gp.khan", receive: false, endpoint: broker.endpoint)
        var queued: Set<String> = []
        for n in 0..<3 {
            queued.insert(try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "queued \(n)")).id)
        }
        #expect(broker.terminate() == 0)
        let keyFile = system.folder.appendingPathComponent("broker.key").path
        let rotated = try BrokerProcess.run(["rotate-key", "--key-file", keyFile])
        #expect(rotated.status == 0, "\(rotated.output)")
        let newKey = try CurveKeyPair.load(path: keyFile + ".pub").publicKey
        #expect(newKey != system.brokerKeys.publicKey)

        broker = try BrokerProcess(system: system, port: port)
        defer { broker.terminate() }
        let lee = try system.client("sw.lee", endpoint: broker.endpoint, brokerKey: newKey)
        #expect(Set(try drain(lee)) == queued)
        // A client still holding the old broker key cannot complete the handshake.
        #expect(throws: ClientError.self) {
            _ = try system.client("gp.khan", receive: false, endpoint: broker.endpoint, replyTimeout: .seconds(1)).query("status")
        }
    }
}
