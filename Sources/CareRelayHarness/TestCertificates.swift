import Foundation

/// A throw-away CA and a server certificate it signed for 127.0.0.1 (and localhost), made with
/// the openssl command, plus a second CA that signed nothing here: trust roots that do not
/// cover the server.
public struct TestCertificates: Sendable {
    public let folder: URL
    public var caCertificate: String { folder.appendingPathComponent("ca.crt").path }
    public var otherCACertificate: String { folder.appendingPathComponent("other-ca.crt").path }
    public var serverCertificate: String { folder.appendingPathComponent("server.crt").path }
    public var serverKey: String { folder.appendingPathComponent("server.key").path }
    /// Signed by the same CA, but for another name: the chain checks, the name does not.
    public var wrongNameCertificate: String { folder.appendingPathComponent("elsewhere.crt").path }
    public var wrongNameKey: String { folder.appendingPathComponent("elsewhere.key").path }

    /// Made once per test run; every suite shares them.
    static let shared: Result<TestCertificates, TestProblem> = Result { () throws(TestProblem) in try make() }

    public static func get() throws -> TestCertificates { try shared.get() }

    private static func make() throws(TestProblem) -> TestCertificates {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-notify-certs-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let leaf = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            try ("subjectAltName=IP:127.0.0.1,DNS:localhost\n" + leaf)
                .write(to: folder.appendingPathComponent("server.ext"), atomically: true, encoding: .utf8)
            try ("subjectAltName=DNS:relay.elsewhere.example\n" + leaf)
                .write(to: folder.appendingPathComponent("elsewhere.ext"), atomically: true, encoding: .utf8)
        } catch {
            throw TestProblem("cannot prepare \(folder.path): \(error)")
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let caExtensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        try openssl(
            ["req", "-x509"] + ec + ["-days", "2", "-subj", "/CN=CareRelay test CA", "-keyout", "ca.key", "-out", "ca.crt"] + caExtensions, in: folder
        )
        try openssl(
            ["req", "-x509"] + ec + ["-days", "2", "-subj", "/CN=Some other CA", "-keyout", "other-ca.key", "-out", "other-ca.crt"] + caExtensions,
            in: folder)
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("elsewhere", "/CN=relay.elsewhere.example")] {
            try openssl(["req"] + ec + ["-subj", subject, "-keyout", "\(name).key", "-out", "\(name).csr"], in: folder)
            try openssl(
                [
                    "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                    "-extfile", "\(name).ext", "-out", "\(name).crt",
                ], in: folder)
        }
        return TestCertificates(folder: folder)
    }

    private static func openssl(_ arguments: [String], in folder: URL) throws(TestProblem) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = folder
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw TestProblem("cannot run openssl: \(error)")
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestProblem("openssl \(arguments.joined(separator: " ")) failed: \(text)") }
    }
}
