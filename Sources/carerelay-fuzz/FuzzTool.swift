import CareRelayFuzzing

#if LIBFUZZER
    // Built by Scripts/soak with `-sanitize=fuzzer -DLIBFUZZER`: libFuzzer supplies main() and
    // calls this with each input; a decoder that traps, or a round-trip mismatch, is a finding.
    private let check = DecoderCheck()

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        if case .roundTripMismatch(let why) = check.check(bytes) { fatalError("decoder round trip: \(why)") }
        return 0
    }
#else
    import ArgumentParser
    import Foundation

    /// The seeded, structure-aware generator over the frame and body decoders, for machines
    /// without libFuzzer and for bounded, repeatable runs.
    @main
    struct FuzzTool: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "carerelay-fuzz",
            abstract: "Fuzzes the CRP frame decoder and the message body decoders with mutated valid messages.",
            discussion: "Example: carerelay-fuzz --seconds 60 --seed 7   |   carerelay-fuzz --write-corpus var/fuzz-corpus")

        @Option(help: "Stop after this many inputs.")
        var inputs = Int.max

        @Option(help: "Stop after this many seconds.")
        var seconds: Double = 30

        @Option(help: "Seed for the generator; the same seed and count try the same inputs.")
        var seed: UInt64 = 1

        @Option(help: "Write the seed corpus (one file per input) to this folder for libFuzzer, and stop.")
        var writeCorpus: String?

        func run() throws {
            if let folder = writeCorpus {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let seeds = Corpus.seeds(examples: Corpus.defaultExamples)
                for (index, input) in seeds.enumerated() {
                    try Data(input).write(to: URL(fileURLWithPath: folder).appendingPathComponent(String(format: "seed-%04d", index)))
                }
                print("wrote \(seeds.count) seed inputs to \(folder)")
                return
            }
            let report = FuzzCampaign.run(seed: seed, inputs: inputs, seconds: seconds)
            print(
                String(
                    format: "fuzz: seed %llu, %d inputs in %.1f s (%d decoded, %d refused), %d round-trip mismatches, 0 crashes",
                    report.seed, report.inputs, report.seconds, report.accepted, report.refused, report.mismatchCount))
            for mismatch in report.mismatches { print("  mismatch: \(mismatch.reason): \(mismatch.inputHex)") }
            if report.mismatchCount > 0 { throw ExitCode(1) }
        }
    }
#endif
