import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayOperations
import Foundation
import Logging
import Testing

/// Logs are read by IT staff and shipped to log stores: at info level they carry ids, kinds,
/// codes and counts, never anything that identifies a patient.
@Suite struct LoggingTests {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var collected: [[String: String]] = []
        func append(_ line: [UInt8]) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: String] else {
                Issue.record("a log line is not one JSON object of strings: \(String(decoding: line, as: UTF8.self))")
                return
            }
            lock.lock(); defer { lock.unlock() }
            collected.append(object)
        }
        var all: [[String: String]] {
            lock.lock(); defer { lock.unlock() }
            return collected
        }
    }

    @Test func infoLinesAreJSONWithIdsAndNoPatientDetails() throws {
        let lines = Lines()
        let logger = Logger(label: "carerelay.broker") { label in
            JSONLogHandler(label: label, level: .info) { lines.append($0) }
        }
        let system = try CareSystem()
        let server = try BrokerServer.start(configuration: system.configuration, directory: system.directory, logger: logger)
        system.server = server
        let gp = try system.client("gp.khan", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        // Refusals that quote what was sent: an invalid NHS number in the body, a forbidden topic.
        _ = try? gp.send(.referral, to: [.team("west.social-care")], patient: robson, body: try Bodies.json(["subject": "4010232138"]))
        _ = try? gp.subscribe("referral/*/#")
        let lee = try system.client("sw.lee")
        _ = try lee.expectDelivery()
        system.stop()

        let all = lines.all
        #expect(!all.isEmpty)
        for line in all {
            let text = line.values.joined(separator: " ")
            for digits in [ellis.digits, robson.digits, "4010232138", "943 476 5919"] {
                #expect(!text.contains(digits), "a patient identifier in the log: \(line)")
            }
            #expect(line["time"] != nil && line["level"] != nil && line["event"] != nil)
        }
        let accepted = all.filter { $0["event"] == "message accepted" }
        #expect(accepted.map { $0["message"] } == [referral.id])
        #expect(accepted.first?["kind"] == "referral")
        #expect(accepted.first?["req"] != nil)
        #expect(all.contains { $0["event"] == "send refused" && $0["code"] != nil && $0["key"] != nil })
    }
}
