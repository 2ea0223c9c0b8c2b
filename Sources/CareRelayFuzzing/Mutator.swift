import CareRelayModel
import CareRelayProtocol

/// A small deterministic generator (SplitMix64), so a run is repeated exactly from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Structure-aware mutations of valid inputs: JSON values swapped for hostile ones, frames
/// dropped, repeated or reordered, command names and versions changed, plus plain byte edits.
public struct Mutator {
    var rng: SplitMix64
    let seeds: [[UInt8]]

    public init(seed: UInt64, seeds: [[UInt8]]) {
        rng = SplitMix64(seed: seed)
        self.seeds = seeds.isEmpty ? [[0x80]] : seeds
    }

    /// Values that have broken JSON decoders elsewhere: extremes, wrong types, bad Unicode,
    /// invalid NHS numbers and dates, very long and very deeply nested values.
    static let hostileValues: [String] = [
        "\"\"", "null", "-1", "0", "-0", "1e309", "-1e309", "9223372036854775808", "1.5", "true", "[]", "{}",
        "\"\\u0000\"", "\"\\ud800\"", "\"\u{202E}gnp.exe\"", "\"9434765918\"", "\"943476591\"", "\"2026-02-30\"",
        "\"2026-11-23T25:00:00Z\"", "\"person:\"", "\"team:west.social-care\"", "\"fax:0191\"", "[\"*/*/#\"]",
        "\"" + String(repeating: "x", count: 70_000) + "\"",
        String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000),
        String(repeating: "{\"a\":", count: 2_000) + "1" + String(repeating: "}", count: 2_000),
    ]
    static let commandNames = [
        "HELLO", "SEND", "CONFIRM", "CREDIT", "SUBSCRIBE", "UNSUBSCRIBE", "QUERY", "PING", "BYE",
        "WELCOME", "DELIVER", "ACCEPTED", "", "send", "SENDSENDSENDSENDSEND",
    ]

    public mutating func next() -> [UInt8] {
        var input = seeds.randomElement(using: &rng) ?? [0x80]
        for _ in 0..<Int.random(in: 1...3, using: &rng) { input = mutate(input) }
        return input
    }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        switch FuzzInput.target(of: input) {
        case .body(let kind, let json):
            return FuzzInput.encode(
                .body(
                    Int.random(in: 0..<20, using: &rng) == 0 ? MessageKind.allCases.randomElement(using: &rng) ?? kind : kind,
                    mutateJSON(json)))
        case .frames(var frames):
            switch Int.random(in: 0..<8, using: &rng) {
            case 0 where !frames.isEmpty: frames.remove(at: Int.random(in: 0..<frames.count, using: &rng))
            case 1 where !frames.isEmpty: frames.append(frames.randomElement(using: &rng) ?? [])
            case 2 where frames.count > 1: frames.swapAt(Int.random(in: 0..<frames.count, using: &rng), Int.random(in: 0..<frames.count, using: &rng))
            case 3 where frames.count > 1: frames[1] = Array((Self.commandNames.randomElement(using: &rng) ?? "").utf8)
            case 4 where !frames.isEmpty: frames[0] = [0x43, 0x52, 0x50, UInt8.random(in: 0...3, using: &rng)]
            default:
                guard !frames.isEmpty else { return FuzzInput.encode(.frames([[]])) }
                let index = frames.count > 2 ? Int.random(in: 2..<frames.count, using: &rng) : Int.random(in: 0..<frames.count, using: &rng)
                frames[index] = mutateJSON(frames[index])
            }
            return FuzzInput.encode(.frames(frames))
        }
    }

    mutating func mutateJSON(_ json: [UInt8]) -> [UInt8] {
        var bytes = json
        switch Int.random(in: 0..<7, using: &rng) {
        case 0, 1:
            // Replace the value after a random colon with a hostile one.
            let colons = bytes.indices.filter { bytes[$0] == UInt8(ascii: ":") }
            guard let colon = colons.randomElement(using: &rng) else { break }
            var end = colon + 1
            var depth = 0
            var inString = false
            while end < bytes.count {
                let byte = bytes[end]
                if inString {
                    if byte == UInt8(ascii: "\\") { end += 1 } else if byte == UInt8(ascii: "\"") { inString = false }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth += 1
                } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    if depth == 0 { break }
                    depth -= 1
                } else if byte == UInt8(ascii: ","), depth == 0 {
                    break
                }
                end += 1
            }
            let value = Array((Self.hostileValues.randomElement(using: &rng) ?? "null").utf8)
            bytes.replaceSubrange((colon + 1)..<min(end, bytes.count), with: value)
        case 2 where !bytes.isEmpty:
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 3:
            let at = Int.random(in: 0...bytes.count, using: &rng)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
        case 4 where !bytes.isEmpty:
            let start = Int.random(in: 0..<bytes.count, using: &rng)
            bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...32, using: &rng)))
        case 5 where !bytes.isEmpty:
            bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
        default:
            // Splice: the start of this input, the end of another one.
            let other = seeds.randomElement(using: &rng) ?? []
            bytes =
                Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
                + Array(other.suffix(Int.random(in: 0...other.count, using: &rng)))
        }
        return bytes
    }
}
