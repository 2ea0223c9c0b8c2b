import CareRelayModel
import CareRelayProtocol
import Foundation

/// Valid inputs to start from: every example body in Protocols/examples (each as a body and
/// inside a SEND), and one of every client command. Mutating valid inputs reaches the
/// decoders' deep paths, which random bytes almost never do.
public enum Corpus {
    public static func seeds(examples: URL?) -> [[UInt8]] {
        let codec = CRPCodec()
        var seeds: [[UInt8]] = []
        let commands: [ClientCommand] = [
            .hello(Hello(receive: true, credit: 16, client: "fuzz", req: "r1")),
            .confirm(Confirm(ids: ["m-1", "m-2"], recipient: "carer.ellis")),
            .credit(Credit(credit: 5)),
            .subscribe(SubscriptionRequest(topic: "referral/west/#", req: "r2")),
            .unsubscribe(SubscriptionRequest(topic: "*/west/*", req: "r3")),
            .query(Query(query: "track", params: ["id": "m-1"], req: "r4")),
            .ping(Empty(req: "r5")),
            .bye(Empty()),
        ]
        for command in commands { seeds.append(FuzzInput.encode(.frames(codec.encode(command)))) }
        for (kind, json) in exampleBodies(in: examples) {
            seeds.append(FuzzInput.encode(.body(kind, json)))
            let header = SendHeader(
                key: "fuzz-key", kind: kind, to: [.team("west.social-care"), .person("sw.okafor")],
                patient: try? NHSNumber(validating: "9434765919"), priority: .urgent, labels: [.mentalHealth],
                correlation: "m-0", req: "r6")
            seeds.append(FuzzInput.encode(.frames(codec.encode(.send(header, body: json)))))
        }
        return seeds
    }

    /// (kind, JSON) for every example file, valid and invalid; the folder names the kind.
    static func exampleBodies(in folder: URL?) -> [(MessageKind, [UInt8])] {
        guard let folder, let kinds = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var bodies: [(MessageKind, [UInt8])] = []
        for name in kinds.sorted() {
            guard let kind = MessageKind(rawValue: name) else { continue }
            let kindFolder = folder.appendingPathComponent(name)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: kindFolder.path)) ?? []
            for file in files.sorted() where file.hasSuffix(".json") {
                if let data = FileManager.default.contents(atPath: kindFolder.appendingPathComponent(file).path) {
                    bodies.append((kind, [UInt8](data)))
                }
            }
        }
        return bodies
    }

    /// Protocols/examples found from the working directory or from this source file.
    public static var defaultExamples: URL? {
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Protocols/examples"),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Protocols/examples"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }
}
