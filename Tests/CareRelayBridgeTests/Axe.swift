import Foundation
import Testing

/// axe-core, the accessibility rules engine, run inside the browser test's pages through
/// WebDriver. Its script is the axe.min.js that the PyPI package axe-selenium-python ships,
/// which Scripts/setup installs with pip when the browser is asked for; `CARERELAY_AXE` names
/// another axe.min.js instead (a newer axe-core, say).
struct Axe {
    struct Violation: CustomStringConvertible {
        let rule: String
        let impact: String
        let help: String
        let targets: [String]

        var description: String { "\(rule) (\(impact)): \(help); at \(targets.joined(separator: ", "))" }
    }

    let script: String
    let source: String

    /// Reads the script, or fails saying how to install it: a browser test that quietly
    /// checked nothing would hide the problems it is there to find.
    static func load() throws -> Axe {
        if let path = ProcessInfo.processInfo.environment["CARERELAY_AXE"] {
            return Axe(script: try String(contentsOfFile: path, encoding: .utf8), source: path)
        }
        let folder = try packageFolder()
        let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            if file.lastPathComponent == "axe.min.js" {
                return Axe(script: try String(contentsOf: file, encoding: .utf8), source: file.path)
            }
        }
        throw WebDriver.Failure(description: "no axe.min.js under \(folder.path): reinstall axe-selenium-python (Scripts/setup)")
    }

    /// Where python3 (the one on PATH, which Scripts/setup installed the package for) finds
    /// axe_selenium_python.
    static func packageFolder() throws -> URL {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import axe_selenium_python, os; print(os.path.dirname(axe_selenium_python.__file__))"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read to the end before waiting: a child that fills the pipe would otherwise never exit.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !path.isEmpty else {
            throw WebDriver.Failure(
                description:
                    "python3 cannot import axe_selenium_python, whose axe.min.js the browser test runs: run Scripts/setup with CARERELAY_EXTRA_PACKAGES=\"chromium chromium-driver\" (as Scripts/test does), or pip install axe-selenium-python"
            )
        }
        return URL(fileURLWithPath: path)
    }

    /// Injects axe-core into the page the browser shows and runs every rule axe runs by
    /// default; returns axe-core's version and what it found.
    func run(in driver: WebDriver) async throws -> (version: String, violations: [Violation]) {
        // A page load discards the script, so each page gets it afresh. axe-core 3.1.1 (what
        // pip installs for a Python before 3.12) does not know HTML's autofill token
        // one-time-code, which later axe-core does, and calls the sign-in field's autocomplete
        // wrong: it is taught that one token, so the rule stays on for every other value.
        _ = try await driver.execute(script)
        let answer = try await driver.executeAsync(
            """
            var done = arguments[arguments.length - 1];
            if (typeof axe === 'undefined') { done(JSON.stringify({error: 'axe-core did not load'})); return; }
            var terms = axe.commons && axe.commons.text && axe.commons.text.autocomplete && axe.commons.text.autocomplete.standaloneTerms;
            if (terms && terms.indexOf('one-time-code') < 0) { terms.push('one-time-code'); }
            // axe-core scrolls the page as it checks; the page is put back as it was.
            var x = window.scrollX, y = window.scrollY;
            axe.run(document).then(function (results) {
              window.scrollTo(x, y);
              done(JSON.stringify({version: axe.version, violations: results.violations.map(function (v) {
                return {rule: v.id, impact: v.impact || 'unknown', help: v.help,
                        targets: v.nodes.map(function (n) { return n.target.join(' '); })};
              })}));
            }, function (error) { window.scrollTo(x, y); done(JSON.stringify({error: String(error)})); });
            """)
        guard let text = answer as? String,
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { throw WebDriver.Failure(description: "axe-core gave no result: \(String(describing: answer))") }
        if let error = object["error"] as? String { throw WebDriver.Failure(description: "axe-core failed: \(error)") }
        let found = (object["violations"] as? [[String: Any]] ?? []).map { entry in
            Violation(
                rule: entry["rule"] as? String ?? "?", impact: entry["impact"] as? String ?? "unknown", help: entry["help"] as? String ?? "",
                targets: entry["targets"] as? [String] ?? [])
        }
        return (object["version"] as? String ?? "?", found)
    }

    /// Runs axe-core on the page and records one issue listing every violation, if any.
    func check(_ page: String, in driver: WebDriver, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (version, violations) = try await run(in: driver)
        if !violations.isEmpty {
            let list = violations.map { "  - \($0)" }.joined(separator: "\n")
            Issue.record("axe-core \(version) (\(source)) found on \(page):\n\(list)", sourceLocation: sourceLocation)
        }
    }
}
