import Foundation
import Testing
@testable import CareRelayModel

/// The example bodies in Protocols/examples, found from this file's location.
struct Example: CustomTestStringConvertible, Sendable {
    let kind: MessageKind
    let name: String
    let url: URL
    var relativePath: String { "\(kind.rawValue)/\(name)" }
    var testDescription: String { relativePath }
    var bytes: [UInt8] { (try? Data(contentsOf: url)).map { Array($0) } ?? [] }

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocols/examples")

    static let all: [Example] = {
        var result: [Example] = []
        for kind in MessageKind.allCases {
            let dir = root.appendingPathComponent(kind.rawValue)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for name in names.sorted() where name.hasSuffix(".json") {
                result.append(Example(kind: kind, name: name, url: dir.appendingPathComponent(name)))
            }
        }
        return result
    }()

    static let valid = all.filter { $0.name.hasPrefix("valid-") }
    static let invalid = all.filter { $0.name.hasPrefix("invalid-") }

    /// Expected error paths for invalid examples: "kind/file.json" -> "items[2].patient".
    static let expectedPaths: [String: String] = {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("expected-errors.json")),
            let map = try? JSONDecoder().decode([String: String].self, from: data)
        else { return [:] }
        return map
    }()
}

/// A JSON document as a comparable value, for "equivalent document" checks.
indirect enum JSONValue: Equatable, Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Every string anywhere in the document.
    var strings: [String] {
        switch self {
        case .string(let s): [s]
        case .array(let a): a.flatMap(\.strings)
        case .object(let o): o.values.flatMap(\.strings)
        default: []
        }
    }
}
