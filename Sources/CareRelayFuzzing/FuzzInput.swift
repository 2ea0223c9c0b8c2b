import CareRelayModel
import CareRelayProtocol

/// One fuzz input as bytes, so libFuzzer and the seeded generator share a format and a
/// corpus. The first byte chooses the target:
/// - below 0x80: a message body for the decoder of kind `byte % kinds` (the rest is the JSON);
/// - 0x80 and above: CRP frames for the codec, separated by `FuzzInput.separator`.
public enum FuzzInput {
    public static let separator: [UInt8] = [0xF5, 0xC0]  // never valid UTF-8, rare in JSON

    public enum Target: Equatable {
        case body(MessageKind, [UInt8])
        case frames([[UInt8]])
    }

    public static func target(of data: [UInt8]) -> Target {
        guard let first = data.first else { return .frames([]) }
        let rest = Array(data.dropFirst())
        if first < 0x80 {
            let kinds = MessageKind.allCases
            return .body(kinds[Int(first) % kinds.count], rest)
        }
        return .frames(split(rest))
    }

    public static func encode(_ target: Target) -> [UInt8] {
        switch target {
        case .body(let kind, let json):
            let index = MessageKind.allCases.firstIndex(of: kind) ?? 0
            return [UInt8(index)] + json
        case .frames(let frames):
            var bytes: [UInt8] = [0x80]
            for (index, frame) in frames.enumerated() {
                if index > 0 { bytes += separator }
                bytes += frame
            }
            return bytes
        }
    }

    static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if index + 1 < bytes.count, bytes[index] == separator[0], bytes[index + 1] == separator[1] {
                frames.append(current)
                current = []
                index += 2
            } else {
                current.append(bytes[index])
                index += 1
            }
        }
        frames.append(current)
        return frames
    }
}
