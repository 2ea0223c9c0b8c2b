import CareRelayModel
import Foundation
import Testing
@testable import CareRelayProtocol

@Suite struct CodecTests {
    let codec = CRPCodec(maxBodyBytes: 1024)

    @Test func clientCommandsRoundTrip() throws {
        let commands: [ClientCommand] = [
            .hello(Hello(receive: true, credit: 16, client: "test", req: "r1")),
            .send(
                SendHeader(
                    key: "k1", kind: .referral, to: [.team("west.social-care"), .careTeam(try NHSNumber(validating: "9434765919"))],
                    patient: try NHSNumber(validating: "9434765919"), priority: .urgent, labels: [.socialCare], req: "r2"),
                body: Array("{}".utf8)),
            .confirm(Confirm(ids: ["m1", "m2"])),
            .credit(Credit(credit: 8)),
            .subscribe(SubscriptionRequest(topic: "referral/west/*", req: "r3")),
            .query(Query(query: "track", params: ["id": "m1"], req: "r4")),
            .ping(Empty(req: "r5")),
            .bye(Empty()),
        ]
        for command in commands {
            let frames = codec.encode(command)
            #expect(frames[0] == CRP.signature)
            #expect(try codec.decodeClientCommand(frames[...]) == command)
        }
    }

    @Test func brokerCommandsRoundTrip() throws {
        let failure = ProtocolError(.unknownAddress, "person:nobody: no such person in the directory")
        let commands: [BrokerCommand] = [
            .accepted(
                Accepted(
                    key: "k", id: "m1", duplicate: false, recipients: [RecipientOutcome(person: "sw.lee", decision: .withheld, reason: "no consent")],
                    req: "r")),
            .rejected(Rejected(failure, command: "SEND", key: "k", req: "r")),
            .pong(Empty(req: "p")),
        ]
        for command in commands {
            #expect(try codec.decodeBrokerCommand(codec.encode(command)[...]) == command)
        }
        guard case .rejected(let rejected) = try codec.decodeBrokerCommand(codec.encode(.rejected(Rejected(failure, command: "SEND")))[...]) else {
            Issue.record("not a REJECTED")
            return
        }
        #expect(rejected.failure == failure)
        #expect(rejected.error == "unknown-address")
    }

    @Test func eachFramingFaultHasItsCode() {
        func code(_ frames: [[UInt8]]) -> ErrorCode? {
            do { _ = try codec.decodeClientCommand(frames[...]); return nil } catch { return error.code }
        }
        let sig = CRP.signature
        #expect(code([sig]) == .malformedMessage)
        #expect(code([Array("CRQ".utf8) + [1], Array("PING".utf8), Array("{}".utf8)]) == .badSignature)
        #expect(code([[0x43, 0x52, 0x50, 9], Array("PING".utf8), Array("{}".utf8)]) == .unsupportedVersion)
        #expect(code([sig, Array("PONG".utf8), Array("{}".utf8)]) == .unknownCommand)
        #expect(code([sig, Array("PING".utf8), Array("{".utf8)]) == .invalidHeader)
        #expect(code([sig, Array("PING".utf8), Array("{\"x\":1}".utf8)]) == .invalidHeader)
        #expect(code([sig, Array("PING".utf8), Array(repeating: 0x20, count: CRP.maxHeaderBytes + 1)]) == .invalidHeader)
        let send = Array(#"{"key":"k","kind":"referral","to":["team:a"],"patient":"9434765918"}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), send, Array("{}".utf8)]) == .invalidNHSNumber)
        let careTeam = Array(#"{"key":"k","kind":"referral","to":["careteam:9434765918"]}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), careTeam, Array("{}".utf8)]) == .invalidNHSNumber)
        let unknownScheme = Array(#"{"key":"k","kind":"referral","to":["ward:9434765919"]}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), unknownScheme, Array("{}".utf8)]) == .invalidHeader)
        let good = Array(#"{"key":"k","kind":"referral","to":["team:a"]}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), good, Array(repeating: 0x20, count: 1025)]) == .messageTooLarge)
        #expect(code([sig, Array("SEND".utf8), good]) == .malformedMessage)
        let noKey = Array(#"{"key":"","kind":"referral","to":["team:a"]}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), noKey, Array("{}".utf8)]) == .invalidHeader)
        let blankGlass = Array(#"{"key":"k","kind":"referral","to":["team:a"],"breakGlass":"  "}"#.utf8)
        #expect(code([sig, Array("SEND".utf8), blankGlass, Array("{}".utf8)]) == .invalidHeader)
    }

    @Test func addressesParseAndExplainMistakes() throws {
        #expect(try Address(parsing: "role:west.ict/social-worker") == .role("west.ict", .socialWorker))
        #expect(try Address(parsing: "careteam:943 476 5919").description == "careteam:9434765919")
        #expect(throws: Address.ParseError.unknownScheme("fax")) { try Address(parsing: "fax:0191") }
        #expect(throws: Address.ParseError.unknownRole("wizard")) { try Address(parsing: "role:west/wizard") }
        #expect(throws: Address.ParseError.missingScheme("gp.khan")) { try Address(parsing: "gp.khan") }
        #expect(throws: Address.ParseError.malformedIdentifier("Dr Khan")) { try Address(parsing: "person:Dr Khan") }
    }
}
