import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Logging
import Testing
import ZeroMQ

// Support for running the built `carerelay` executable against a real broker started in
// this process. (Adapted from Tests/CareRelayBrokerTests/Support.swift; test targets cannot
// import each other.)

let ellisNHS = "9434765919"
let robsonNHS = "4010232137"

/// A small care system: one locality with a GP practice, a social care intake, community
/// nursing, an MDT, a voluntary sector broker, a carer and an administrator.
final class CareSystem: @unchecked Sendable {
    let folder: URL
    let brokerKeys: CurveKeyPair
    /// Key pairs the test made; people who enrol with `carerelay enrol` have none here.
    let keys: [PersonID: CurveKeyPair]
    let directory: DirectoryIndex
    var server: BrokerServer?

    static let people: [(PersonID, String, [Role], [TeamID])] = [
        ("gp.khan", "Dr Amina Khan", [.gp], ["west.gp"]),
        ("sw.okafor", "Grace Okafor", [.socialWorker], ["west.social-care"]),
        ("sw.lee", "Daniel Lee", [.socialWorker], ["west.social-care"]),
        ("coord.patel", "Priya Patel", [.careCoordinator], ["west.social-care", "west.mdt"]),
        ("mdt.jones", "Sam Jones", [.mdtCoordinator], ["west.mdt"]),
        ("nurse.ali", "Yusuf Ali", [.communityNurse], ["west.nursing", "west.mdt"]),
        ("vsb.green", "Tom Green", [.voluntarySectorBroker], ["west.voluntary"]),
        ("carer.ellis", "Jean Ellis", [.carer], []),
        ("admin.it", "IT service desk", [.administrator], []),
    ]

    /// The people in `enrolling` have no key yet: they enrol with a code.
    init(enrolling: Set<PersonID> = []) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        var keys: [PersonID: CurveKeyPair] = [:]
        for person in Self.people where !enrolling.contains(person.0) {
            keys[person.0] = try CurveKeyPair.generate()
        }
        self.keys = keys
        let directory = Directory(
            organisations: [.init(id: "sunderland-ccg", name: "Sunderland CCG")],
            localities: [.init(id: "west", name: "Sunderland West")],
            teams: [
                .init(id: "west.gp", name: "Pallion Health Centre", locality: "west"),
                .init(
                    id: "west.social-care", name: "West social care intake", locality: "west", coordinator: "coord.patel",
                    hours: "mon-fri 08:00-18:00", fallback: ["District nurses: 0191 555 0100", "Emergency: 999"],
                    responseTargets: ResponseTargets(emergency: try ResponseTime(parsing: "30m"), routine: try ResponseTime(parsing: "2d"))),
                .init(id: "west.nursing", name: "West community nursing", locality: "west"),
                .init(id: "west.mdt", name: "West Wednesday MDT", kind: .mdt, locality: "west", coordinator: "mdt.jones"),
                .init(id: "west.voluntary", name: "Age UK Sunderland volunteers", locality: "west"),
            ],
            people: Self.people.map { p in
                Directory.Person(
                    id: p.0, name: p.1, roles: p.2, organisation: "sunderland-ccg", teams: p.3,
                    key: keys[p.0]?.publicKey)
            })
        self.directory = try DirectoryIndex(directory)
        try brokerKeys.savePublic(path: brokerKeyPath, comment: "CareRelay test broker")
    }

    /// A care system of `seed`, with keys made for the people in `keyed`; everyone else
    /// enrols (`carerelay enrol`) or is a carer.
    init(seed: Directory, keyed: [PersonID]) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        var keys: [PersonID: CurveKeyPair] = [:]
        for person in keyed { keys[person] = try CurveKeyPair.generate() }
        self.keys = keys
        var directory = seed
        for index in directory.people.indices {
            if let pair = keys[directory.people[index].id] { directory.people[index].key = pair.publicKey }
        }
        self.directory = try DirectoryIndex(directory)
        try brokerKeys.savePublic(path: brokerKeyPath, comment: "CareRelay test broker")
    }

    var brokerKeyPath: String { folder.appendingPathComponent("broker.key.pub").path }

    @discardableResult
    func start() throws -> BrokerServer {
        var logger = Logger(label: "carerelay.cli-test-broker")
        logger.logLevel = .critical
        let configuration = BrokerConfiguration(
            endpoint: "tcp://127.0.0.1:*", storePath: folder.appendingPathComponent("store.sqlite").path,
            publicKey: brokerKeys.publicKey, secretKey: brokerKeys.secretKey, maxBodyBytes: 256 * 1024,
            heartbeatMilliseconds: 5_000)
        let server = try BrokerServer.start(configuration: configuration, directory: directory, logger: logger)
        self.server = server
        return server
    }

    var endpoint: String { server?.endpoint ?? "" }

    func stop() {
        server?.stop()
        server = nil
    }

    /// A command line for `person`: their own home folder, identity key file and the broker's
    /// endpoint and key, all through CARERELAY_* variables.
    func cli(_ person: PersonID, extra: [String: String] = [:]) throws -> CLI {
        let home = folder.appendingPathComponent("home-\(person)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let identity = home.appendingPathComponent("identity.key").path
        if let pair = keys[person], !FileManager.default.fileExists(atPath: identity) {
            try pair.save(path: identity, comment: "test identity of \(person)")
        }
        var environment = [
            "HOME": home.path,
            "CARERELAY_ENDPOINT": endpoint,
            "CARERELAY_BROKER_KEY": brokerKeyPath,
            "CARERELAY_IDENTITY": identity,
            "CARERELAY_TIMEOUT": "5",
        ]
        for (k, v) in extra { environment[k] = v }
        return CLI(environment: environment, workingDirectory: home)
    }

    deinit {
        server?.stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

struct CLIResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// Runs the built `carerelay` executable with a controlled environment (nothing inherited
/// but PATH), so the user's own configuration never leaks into a test.
struct CLI {
    var environment: [String: String]
    var workingDirectory: URL

    static let executable: URL? = {
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        candidates.append(argv0.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        // On macOS the test bundle is X.xctest/Contents/MacOS/X: climb out of it.
        var climb = argv0
        for _ in 0..<4 {
            climb = climb.deletingLastPathComponent()
            candidates.append(climb)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug"))
        for folder in candidates {
            let file = folder.appendingPathComponent("carerelay")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: file.path)
            {
                return file
            }
        }
        return nil
    }()

    func start(_ arguments: [String]) throws -> Running {
        let executable = try #require(
            Self.executable, "the carerelay executable was not found next to the test bundle; run swift build --build-tests first")
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return try Running(executable: executable, arguments: arguments, environment: env, directory: workingDirectory)
    }

    /// Runs to completion (at most `timeout` seconds, then the test fails). With
    /// CARERELAY_CLI_TRANSCRIPT set, each command and its output is appended to that file
    /// (how docs/cli.md's sample output was made).
    @discardableResult
    func run(_ arguments: [String], timeout: Double = 90) throws -> CLIResult {
        let result = try start(arguments).finish(timeout: timeout)
        if let path = ProcessInfo.processInfo.environment["CARERELAY_CLI_TRANSCRIPT"], !path.isEmpty {
            let quoted = arguments.map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
            let entry = "$ carerelay \(quoted)   # exit \(result.status)\n\(result.stdout)\(result.stderr)\n"
            if let handle = FileHandle(forWritingAtPath: path) {
                handle.seekToEndOfFile()
                handle.write(Data(entry.utf8))
                handle.closeFile()
            } else {
                _ = FileManager.default.createFile(atPath: path, contents: Data(entry.utf8))
            }
        }
        return result
    }

    /// Runs under util-linux's `script`, which gives the client a terminal of its own for its
    /// output, as a person at a desk has (a test's pipe is not one).
    func run(inTerminal arguments: [String], extra: [String: String] = [:]) throws -> CLIResult {
        let executable = try #require(Self.executable, "the carerelay executable was not found")
        let command = ([executable.path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            .joined(separator: " ")
        var env = environment.merging(extra) { $1 }
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return try Running(
            executable: URL(fileURLWithPath: "/usr/bin/script"), arguments: ["-q", "-e", "-c", command, "/dev/null"], environment: env,
            directory: workingDirectory
        ).finish(timeout: 90)
    }

    func with(_ extra: [String: String]) -> CLI {
        var copy = self
        for (k, v) in extra { copy.environment[k] = v }
        return copy
    }
}

/// A running `carerelay`: its output is collected as it arrives, so a test can wait for a
/// line (no sleeps) and then for the exit.
final class Running: @unchecked Sendable {
    let process = Process()
    private let condition = NSCondition()
    private var out = Data()
    private var err = Data()
    private var outClosed = false
    private var errClosed = false
    private var exited = false

    /// Tests run in parallel: a pipe created while another test spawns a process would leak
    /// its write end into that process, and its reader would not see end-of-file until that
    /// unrelated process exits. Creating the pipes and spawning under one lock prevents it.
    private static let spawnLock = NSLock()

    init(executable: URL, arguments: [String], environment: [String: String], directory: URL) throws {
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = directory
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [weak self] _ in
            guard let self else { return }
            self.condition.lock()
            self.exited = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        try process.run()
        // One blocking reader thread per stream (not readabilityHandler, whose handlers share
        // a queue: one blocked read would stall every other test's output).
        for (pipe, isOut) in [(outPipe, true), (errPipe, false)] {
            let fd = pipe.fileHandleForReading.fileDescriptor
            let thread = Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 16_384)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    self.append(Data(buffer[0..<n]), toOut: isOut)
                }
                self.append(Data(), toOut: isOut)
            }
            thread.start()
        }
        readers = [outPipe, errPipe]
    }

    /// Kept so the read ends stay open while the reader threads use them.
    private var readers: [Pipe] = []

    private func append(_ data: Data, toOut: Bool) {
        condition.lock()
        if toOut {
            if data.isEmpty { outClosed = true } else { out.append(data) }
        } else {
            if data.isEmpty { errClosed = true } else { err.append(data) }
        }
        condition.broadcast()
        condition.unlock()
    }

    var stdout: String {
        condition.lock(); defer { condition.unlock() }
        return String(decoding: out, as: UTF8.self)
    }

    var stderr: String {
        condition.lock(); defer { condition.unlock() }
        return String(decoding: err, as: UTF8.self)
    }

    /// Waits until the output satisfies `predicate`, the process ends, or the time is up.
    /// Returns whether the predicate holds.
    @discardableResult
    func waitFor(timeout: Double = 60, _ predicate: (_ stdout: String, _ stderr: String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if predicate(String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)) { return true }
            if exited && outClosed && errClosed { return false }
            if !condition.wait(until: deadline) { return false }
        }
    }

    /// Waits for the exit and the end of both outputs.
    func finish(timeout: Double = 90) throws -> CLIResult {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while !(exited && outClosed && errClosed) {
            if !condition.wait(until: deadline) {
                let (exited, outClosed, errClosed) = (self.exited, self.outClosed, self.errClosed)
                condition.unlock()
                process.terminate()
                let partial = CLIResult(status: -1, stdout: stdout, stderr: stderr)
                Issue.record(
                    "carerelay \(process.arguments ?? []) did not finish within \(timeout)s (exited \(exited), stdout closed \(outClosed), stderr closed \(errClosed))\n\(partial)"
                )
                throw CancellationError()
            }
        }
        condition.unlock()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    func interrupt() { process.interrupt() }
}

/// The first match of a pattern's first capture group.
func capture(_ pattern: String, in text: String) -> String? {
    guard let regex = try? NSRegularExpression(pattern: pattern),
        let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
        match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: text)
    else { return nil }
    return String(text[range])
}

/// The referral (or other message) id a send printed: "Referral sent: m...".
func sentID(_ result: CLIResult) -> String? {
    capture(#": ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}|m[0-9a-z]+-[0-9a-z]+)\n"#, in: result.stdout)
}

enum Fixtures {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocols/examples")

    static func example(_ kind: String, _ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: examples.appendingPathComponent(kind).appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A care plan for Mrs Ellis written by nurse.ali, with one section's text changeable.
    static func carePlan(version: Int, wellbeingText: String, in folder: URL) throws -> String {
        var body = try example("careplan.share", "valid-home-plan-with-mental-health-section.json")
        body["patient"] = ellisNHS
        body["plan"] = "cp.\(ellisNHS).home"
        body["version"] = version
        body["author"] = "nurse.ali"
        body["team"] = "west.nursing"
        body.removeValue(forKey: "careCoordinator")
        body["changeSummary"] = version == 1 ? "First version" : "Evening visit added"
        var sections = try #require(body["sections"] as? [[String: Any]])
        sections[0]["text"] = wellbeingText
        // Keep performers inside this test's directory.
        sections = sections.map { section in
            var s = section
            if var activities = s["activities"] as? [[String: Any]] {
                activities = activities.map { a in
                    var a = a; a.removeValue(forKey: "performer"); return a
                }
                s["activities"] = activities
            }
            return s
        }
        body["sections"] = sections
        let path = folder.appendingPathComponent("plan-v\(version).json").path
        try JSONSerialization.data(withJSONObject: body, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }
}
