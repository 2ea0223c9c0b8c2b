import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Just enough of the W3C WebDriver protocol to drive headless Chromium through chromedriver.
final class WebDriver: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let process: Process
    let base: URL
    var session = ""
    private let log: URL

    /// Where Debian's packages put them (`apt-get install chromium chromium-driver`).
    static let chromium = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
    static let chromedriver = ProcessInfo.processInfo.environment["CHROMEDRIVER"] ?? "/usr/bin/chromedriver"

    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: chromium) && FileManager.default.isExecutableFile(atPath: chromedriver)
    }

    init(logFolder: URL) throws {
        let port = Int.random(in: 20_000..<40_000)
        base = URL(string: "http://127.0.0.1:\(port)")!
        log = logFolder.appendingPathComponent("chromedriver.log")
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.chromedriver)
        process.arguments = ["--port=\(port)", "--log-path=\(log.path)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilReady() async throws {
        for _ in 0..<100 {
            if let status = try? await call("GET", "/status"), (status["value"] as? [String: Any])?["ready"] as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "chromedriver did not become ready")
    }

    func startSession(width: Int, height: Int) async throws {
        let capabilities: [String: Any] = [
            "capabilities": ["alwaysMatch": [
                "browserName": "chrome",
                "goog:chromeOptions": [
                    "binary": Self.chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=\(width),\(height)", "--force-device-scale-factor=1", "--lang=en-GB"],
                ],
            ]],
        ]
        let answer = try await call("POST", "/session", capabilities)
        guard let value = answer["value"] as? [String: Any], let id = value["sessionId"] as? String else {
            throw Failure(description: "no WebDriver session: \(answer)")
        }
        session = id
    }

    func quit() async {
        if !session.isEmpty { _ = try? await call("DELETE", "/session/\(session)") }
        process.terminate()
        process.waitUntilExit()
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.httpMethod = method
        request.timeoutInterval = 60
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, _) = try await URLSession.shared.data(for: request)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        if let value = object["value"] as? [String: Any], let error = value["error"] as? String {
            throw Failure(description: "\(method) \(path): \(error): \(value["message"] ?? "")")
        }
        return object
    }

    private var s: String { "/session/\(session)" }

    func go(_ url: String) async throws { try await call("POST", "\(s)/url", ["url": url]) }

    func currentURL() async throws -> String { try await call("GET", "\(s)/url")["value"] as? String ?? "" }

    func source() async throws -> String { try await call("GET", "\(s)/source")["value"] as? String ?? "" }

    func element(_ css: String) async throws -> String {
        let answer = try await call("POST", "\(s)/element", ["using": "css selector", "value": css])
        guard let value = answer["value"] as? [String: Any], let id = value.values.first as? String else {
            throw Failure(description: "no element \(css)")
        }
        return id
    }

    func click(_ css: String) async throws {
        let id = try await element(css)
        try await call("POST", "\(s)/element/\(id)/click", [:])
    }

    func type(_ css: String, _ text: String) async throws {
        let id = try await element(css)
        try await call("POST", "\(s)/element/\(id)/value", ["text": text])
    }

    func text(_ css: String) async throws -> String {
        let id = try await element(css)
        return try await call("GET", "\(s)/element/\(id)/text")["value"] as? String ?? ""
    }

    /// Presses Tab `count` times and returns the focused element's id attribute.
    func execute(_ script: String) async throws -> Any? {
        try await call("POST", "\(s)/execute/sync", ["script": script, "args": []])["value"]
    }

    func screenshot(to file: URL) async throws {
        guard let base64 = try await call("GET", "\(s)/screenshot")["value"] as? String, let data = Data(base64Encoded: base64) else {
            throw Failure(description: "no screenshot")
        }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    /// Polls until `condition` holds or `seconds` pass.
    func waitFor(_ what: String, seconds: Double = 15, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(150))
        }
        throw Failure(description: "timed out waiting for \(what)")
    }
}
