import CareRelayHarness
import Foundation
import Testing
import ZeroMQ

/// The broker's key pair made before its first start, as several nodes sharing one store need
/// it: one pair, copied to each.
@Suite struct KeyFileTests {
    @Test func generateKeyWritesAPrivatePairOnceAndTheBrokerServesWithIt() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-key-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keyFile = folder.appendingPathComponent("broker.key").path
        let made = try BrokerProcess.run(["generate-key", "--key-file", keyFile])
        #expect(made.status == 0, "\(made.output)")
        let pair = try CurveKeyPair.load(path: keyFile)
        #expect(pair.secretKey != nil)
        #expect(made.output.contains(pair.publicKey))
        #expect(try CurveKeyPair.load(path: keyFile + ".pub").publicKey == pair.publicKey)
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(permissions == 0o600, "the secret key is readable by its owner only")

        // Never overwritten: a pair in use is replaced with rotate-key.
        let again = try BrokerProcess.run(["generate-key", "--key-file", keyFile])
        #expect(again.status != 0)
        #expect(again.output.contains("rotate-key"))
        #expect(try CurveKeyPair.load(path: keyFile).publicKey == pair.publicKey)

        // A broker started with it uses it rather than making its own.
        let system = try CareSystem()
        let port = try freePort()
        let copy = system.folder.appendingPathComponent("broker.key").path
        try FileManager.default.copyItem(atPath: keyFile, toPath: copy)
        let node = try BrokerProcess(system: system, port: port)
        defer { _ = node.terminate() }
        let client = try system.client("gp.khan", receive: false, endpoint: "tcp://127.0.0.1:\(port)", brokerKey: pair.publicKey)
        try client.ping()
    }
}
