import ArgumentParser
import CareRelayFuzzing
import CareRelayHarness
import CareRelayPostgres
import Foundation

/// Reliability and security under faults, load and hostile input: prints one table of
/// figures and exits non-zero if any property failed. RELIABILITY.md records a run.
@main
struct SoakTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carerelay-soak",
        abstract: "Kills, fills, stalls and attacks a real CareRelay broker, and checks nothing is lost or duplicated.",
        discussion: """
            Example:
              carerelay-soak                          # the default run, a few minutes
              carerelay-soak --kills 200 --seconds 60 --fuzz-seconds 600 --seed 42
              carerelay-soak --only crash --kills 20
              carerelay-soak --only flood --flood-seconds 20
              carerelay-soak --only reset --reset-rounds 50
            """)

    @Option(help: "How many times to SIGKILL the broker under load.")
    var kills = 20

    @Option(help: "Seconds of well-behaved traffic per throughput measurement.")
    var seconds = 10.0

    @Option(help: "Seconds of the seeded decoder fuzzer.")
    var fuzzSeconds = 30.0

    @Option(help: "Messages queued for the consumer that stops reading.")
    var backlog = 5_000

    @Option(help: "Seed for every random choice; printed so a run can be repeated.")
    var seed: UInt64 = UInt64(Date().timeIntervalSince1970)

    @Option(help: "Seconds of the malformed flood (beside raw TCP garbage connections).")
    var floodSeconds = 10.0

    @Option(help: "Raw TCP connections writing garbage during the flood, at a time.")
    var garbageConnections = 8

    @Option(help: "Rounds of the client that floods PINGs without reading and then resets.")
    var resetRounds = 30

    @Option(help: "Run one part: crash, store, consumers, hostile, flood, reset or fuzz.")
    var only: String?

    @Option(help: "The carerelay-broker executable (default: beside this one).")
    var broker: String?

    @Option(help: "With --postgres: how many broker nodes share the store in the crash part (each kill takes one at random).")
    var nodes = 1

    @Option(
        help:
            "With --postgres: the server's folder (from Scripts/postgres start). The crash part then stops the database at once every --database-restart-every rounds, under load, and starts it again 2 s later."
    )
    var postgresDirectory: String?

    @Option(help: "With --postgres-directory: which rounds of the crash part restart the database instead of killing a broker.")
    var databaseRestartEvery = 3

    @Option(
        help:
            "Run crash, consumers and hostile on the PostgreSQL store: a server URL (postgres://USER@HOST:PORT/DATABASE); each part gets a new database beside the one named. Scripts/soak --postgres starts a server."
    )
    var postgres: String?

    func wants(_ part: String) -> Bool { only == nil || only == part }

    func run() throws {
        let executable =
            broker.map { URL(fileURLWithPath: $0) }
            ?? BrokerProcess.executable(packageRoot: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        let log: (String) -> Void = { line in
            FileHandle.standardError.write(Data("[soak \(ISO8601DateFormatter().string(from: Date()))] \(line)\n".utf8))
        }
        print("carerelay-soak: seed \(seed), \(ProcessInfo.processInfo.processorCount) cores, broker \(executable.path)")
        var report = Report()
        let server = try postgres.map { try PostgresLocation(url: $0) }
        if let server { print("store: PostgreSQL on \(server.host):\(server.port), a new database per part") }
        /// A system on a new PostgreSQL database when one was asked for, else on SQLite.
        func system() throws -> SoakSystem {
            let database = try server?.creatingDatabase("carerelay_soak_\(UInt32.random(in: 0...UInt32.max))")
            return try SoakSystem(executable: executable, postgres: database)
        }

        if wants("crash") {
            let system = try system()
            defer { system.removeFiles() }
            guard nodes == 1 || server != nil else { throw ValidationError("--nodes: several brokers need a shared store (--postgres)") }
            var soak = CrashSoak(
                system: system, kills: kills, nodes: nodes, postgresDirectory: postgresDirectory,
                databaseRestartEvery: max(1, databaseRestartEvery), rng: SplitMix64(seed: seed), log: log)
            report.crash(try soak.run())
        }
        if wants("store") {
            report.store(try StoreFailureSoak(executable: executable, log: log).run())
        }
        if wants("consumers") {
            let system = try system()
            defer { system.removeFiles() }
            report.consumers(try ConsumerSoak(system: system, seconds: seconds, backlog: backlog, log: log).run())
        }
        if wants("hostile") {
            let system = try system()
            defer { system.removeFiles() }
            report.hostile(try HostileSoak(system: system, seconds: seconds, seed: seed, log: log).run())
        }
        if wants("flood") {
            let system = try system()
            defer { system.removeFiles() }
            report.attack(
                "malformed flood", try FloodSoak(system: system, seconds: floodSeconds, garbageConnections: garbageConnections, log: log).run())
        }
        if wants("reset") {
            let system = try system()
            defer { system.removeFiles() }
            report.attack(
                "client that stops reading, then resets", try ResetSoak(system: system, rounds: resetRounds, seconds: seconds, log: log).run())
        }
        if wants("fuzz") {
            report.fuzz(FuzzCampaign.run(seed: seed, inputs: .max, seconds: fuzzSeconds))
        }
        report.print()
        guard report.failures.isEmpty else {
            print("\nFAILED:\n" + report.failures.map { "  - \($0)" }.joined(separator: "\n"))
            throw ExitCode(1)
        }
        print("\nevery property held (seed \(seed))")
    }
}
