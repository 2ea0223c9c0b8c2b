import Foundation
#if canImport(Glibc)
    import Glibc
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
        var last = "no answer"
        for _ in 0..<100 {
            do {
                let status = try await call("GET", "/status")
                if (status["value"] as? [String: Any])?["ready"] as? Bool == true { return }
                last = "\(status)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "chromedriver did not become ready: \(last)")
    }

    func startSession(width: Int, height: Int) async throws {
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": Self.chromium,
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--window-size=\(width),\(height)", "--force-device-scale-factor=1", "--lang=en-GB",
                        ],
                    ],
                ]
            ]
        ]
        let answer = try await call("POST", "/session", capabilities)
        guard let value = answer["value"] as? [String: Any], let id = value["sessionId"] as? String else {
            throw Failure(description: "no WebDriver session: \(answer)")
        }
        session = id
    }

    func quit() async {
        if !session.isEmpty { _ = try? await call("DELETE", "/session/\(session)") }
        // chromedriver may outlive a polite SIGTERM; and waitUntilExit spins on Linux.
        kill(process.processIdentifier, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(process.processIdentifier, &status, 0)
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let port = base.port ?? 80
        let data: Data = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try RawHTTP.exchange(port: port, method: method, path: path, body: payload) })
            }
        }
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

    func clear(_ css: String) async throws {
        let id = try await element(css)
        try await call("POST", "\(s)/element/\(id)/clear", [:])
    }

    /// Runs `script` as the body of a function in the page and returns what it returns.
    func execute(_ script: String, _ args: [Any] = []) async throws -> Any? {
        try await call("POST", "\(s)/execute/sync", ["script": script, "args": args])["value"]
    }

    /// Runs `script` as the body of a function whose last argument is a callback; returns
    /// what the script passes to it (chromedriver fails the call after its script timeout).
    func executeAsync(_ script: String, _ args: [Any] = []) async throws -> Any? {
        try await call("POST", "\(s)/execute/async", ["script": script, "args": args])["value"]
    }

    /// Writes the viewport as a PNG (the WebDriver screenshot is base64 PNG) to `file`,
    /// making its folder if need be.
    func screenshot(to file: URL) async throws {
        guard let base64 = try await call("GET", "\(s)/screenshot")["value"] as? String, let data = Data(base64Encoded: base64) else {
            throw Failure(description: "no screenshot")
        }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    /// Saves a screenshot of the whole page for a reviewer, as
    /// `<folder>/bridge-<step, two digits>-<name>.png` so that the files sort in the order the
    /// test took them; returns the file. A WebDriver screenshot holds only the viewport, so the
    /// window is made as tall as the page for it, then given back its size.
    @discardableResult
    func screenshot(step: Int, _ name: String, in folder: URL) async throws -> URL {
        let number = step < 10 ? "0\(step)" : "\(step)"
        let file = folder.appendingPathComponent("bridge-\(number)-\(name).png")
        let window = try await call("GET", "\(s)/window/rect")["value"] as? [String: Any] ?? [:]
        let sizes = try await execute("return [document.documentElement.scrollHeight, window.innerHeight];") as? [Any] ?? []
        guard let width = Self.int(window["width"]), let height = Self.int(window["height"]), sizes.count == 2,
            let page = Self.int(sizes[0]), let viewport = Self.int(sizes[1]), page > viewport
        else {
            try await screenshot(to: file)
            return file
        }
        try await call("POST", "\(s)/window/rect", ["width": width, "height": height + page - viewport])
        do {
            try await screenshot(to: file)
        } catch {
            _ = try? await call("POST", "\(s)/window/rect", ["width": width, "height": height])
            throw error
        }
        try await call("POST", "\(s)/window/rect", ["width": width, "height": height])
        return file
    }

    static func int(_ value: Any?) -> Int? {
        (value as? NSNumber)?.intValue ?? (value as? Int)
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

/// A blocking HTTP/1.1 exchange with a server on loopback (FoundationNetworking's URLSession
/// fails against chromedriver here with "Failed writing header").
enum RawHTTP {
    static func exchange(port: Int, method: String, path: String, body: Data) throws -> Data {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebDriver.Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebDriver.Failure(description: "cannot connect to 127.0.0.1:\(port)") }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        request += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.count)\r\n\r\n"
        let bytes = Array(request.utf8) + Array(body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw WebDriver.Failure(description: "send failed") }
            sent += n
        }
        // chromedriver answers "Connection: close" but keeps the connection open, so read
        // until Content-Length is satisfied (it writes "Content-Length:249", without a space).
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let split = response.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: response[..<split.lowerBound], as: UTF8.self).lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                    let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                    response.count - split.upperBound >= length
                {
                    break
                }
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw WebDriver.Failure(description: "no HTTP response from 127.0.0.1:\(port)")
        }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self).lowercased()
        var payload = Array(response[split.upperBound...])
        if head.contains("transfer-encoding: chunked") {
            var decoded = [UInt8]()
            var rest = payload[...]
            while let line = rest.firstRange(of: Array("\r\n".utf8)),
                let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self).trimmingCharacters(in: .whitespaces), radix: 16),
                size > 0
            {
                let start = line.upperBound
                decoded += rest[start..<(start + size)]
                rest = rest[(start + size + 2)...]
            }
            payload = decoded
        }
        return Data(payload)
    }
}
