import Foundation

/// A seeded run of the mutator against the decoders, bounded by a count of inputs (tests)
/// or a time (on demand). The same seed and count try the same inputs.
public struct FuzzCampaign {
    public struct Report: Sendable {
        public var seed: UInt64
        public var inputs = 0
        public var accepted = 0
        public var refused = 0
        /// Inputs whose decoded value did not survive re-encoding, hex, first few only.
        public var mismatches: [(reason: String, inputHex: String)] = []
        public var mismatchCount = 0
        public var seconds = 0.0
    }

    public static func run(seed: UInt64, inputs limit: Int, seconds: Double? = nil, examples: URL? = Corpus.defaultExamples) -> Report {
        let seeds = Corpus.seeds(examples: examples)
        var mutator = Mutator(seed: seed, seeds: seeds)
        let check = DecoderCheck()
        var report = Report(seed: seed)
        let start = Date()
        let deadline = seconds.map { start.addingTimeInterval($0) }
        // The valid seeds first, then mutations of them.
        var pending = seeds.makeIterator()
        while report.inputs < limit {
            if let deadline, report.inputs % 256 == 0, Date() >= deadline { break }
            let input = pending.next() ?? mutator.next()
            report.inputs += 1
            switch check.check(input) {
            case .accepted: report.accepted += 1
            case .refused: report.refused += 1
            case .roundTripMismatch(let reason):
                report.mismatchCount += 1
                if report.mismatches.count < 5 {
                    report.mismatches.append((reason, input.prefix(512).map { String(format: "%02x", $0) }.joined()))
                }
            }
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }
}
