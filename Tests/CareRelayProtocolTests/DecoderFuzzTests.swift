import CareRelayFuzzing
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// A bounded, seeded fuzz of the frame decoder and every body decoder, in every test run.
/// Longer runs: `Scripts/soak --only fuzz --fuzz-seconds 600` or the libFuzzer build.
@Suite struct DecoderFuzzTests {
    /// Bounded by a count, not a time, so every machine tries the same inputs.
    @Test func mutatedValidMessagesNeverCrashAndDecodedValuesSurviveReEncoding() {
        let report = FuzzCampaign.run(seed: 0xCA7E_F022, inputs: 40_000)
        print(
            "decoder fuzz: seed \(report.seed), \(report.inputs) inputs, \(report.accepted) decoded, \(report.refused) refused, \(report.mismatchCount) mismatches"
        )
        #expect(report.inputs == 40_000)
        #expect(report.mismatchCount == 0, "\(report.mismatches.map { "\($0.reason): \($0.inputHex)" })")
        // The corpus really reaches the decoders' success paths, not only their refusals.
        #expect(report.accepted > 1_000)
        #expect(report.refused > 1_000)
    }

    @Test func theInputFormatRoundTrips() {
        let frames: [[UInt8]] = [CRP.signature, Array("PING".utf8), Array("{}".utf8)]
        #expect(FuzzInput.target(of: FuzzInput.encode(.frames(frames))) == .frames(frames))
        #expect(FuzzInput.target(of: FuzzInput.encode(.body(.consent, Array("{}".utf8)))) == .body(.consent, Array("{}".utf8)))
    }

    /// The corpus holds every example body, so the fuzzer starts from every message kind.
    @Test func theCorpusStartsFromEveryKindOfMessage() {
        let seeds = Corpus.seeds(examples: Corpus.defaultExamples)
        let kinds = Set(
            seeds.compactMap { seed -> MessageKind? in
                if case .body(let kind, _) = FuzzInput.target(of: seed) { return kind } else { return nil }
            })
        #expect(kinds == Set(MessageKind.allCases))
    }
}
