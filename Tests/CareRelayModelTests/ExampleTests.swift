import Foundation
import Testing
@testable import CareRelayModel

@Suite struct ExampleTests {
    @Test func everyKindHasEnoughExamples() {
        for kind in MessageKind.allCases where kind != .consent {
            let valid = Example.valid.filter { $0.kind == kind }
            let invalid = Example.invalid.filter { $0.kind == kind }
            #expect(valid.count >= 3, "\(kind.rawValue): \(valid.count) valid examples")
            #expect(invalid.count >= 4, "\(kind.rawValue): \(invalid.count) invalid examples")
        }
    }

    @Test(arguments: Example.valid)
    func validExampleDecodesAndReencodesToAnEquivalentDocument(_ example: Example) throws {
        let original = example.bytes
        #expect(!original.isEmpty)
        let body: MessageBody
        do {
            body = try MessageBody.decode(kind: example.kind, json: original)
        } catch {
            Issue.record("\(example.relativePath) was refused: \(error)")
            return
        }
        #expect(body.kind == example.kind)
        let encoded = body.encode()
        #expect(try JSONValue.parse(encoded) == JSONValue.parse(original))
        // Deterministic: decoding the encoding and encoding again gives the same bytes.
        let again = try MessageBody.decode(kind: example.kind, json: encoded)
        #expect(again == body)
        #expect(again.encode() == encoded)
    }

    @Test(arguments: Example.invalid)
    func invalidExampleIsRefusedAtTheExpectedPath(_ example: Example) throws {
        let expected = try #require(
            Example.expectedPaths[example.relativePath],
            "no expected path for \(example.relativePath) in expected-errors.json")
        #expect(throws: MessageValidationError.self) {
            try MessageBody.decode(kind: example.kind, json: example.bytes)
        }
        do {
            _ = try MessageBody.decode(kind: example.kind, json: example.bytes)
        } catch {
            #expect(error.path == expected, "\(example.relativePath): \(error)")
            #expect(!error.reason.isEmpty)
        }
    }

    @Test func everyExpectedPathBelongsToAnExample() {
        let names = Set(Example.invalid.map(\.relativePath))
        #expect(Set(Example.expectedPaths.keys) == names)
    }
}
