import Foundation

/// Writes straight to the file descriptors (no buffering), so a test or a pipe sees each line
/// as soon as it is written. Everything written goes through `Terminal.safe`, so no control
/// character from a message reaches the terminal whichever command printed it; JSON stays
/// valid JSON (see Terminal).
enum Console {
    static func out(_ text: String = "") {
        FileHandle.standardOutput.write(Data((Terminal.safe(text) + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((Terminal.safe(text) + "\n").utf8))
    }

    static func json(_ value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        if let data = try? encoder.encode(value) { out(String(decoding: data, as: UTF8.self)) }
    }

    /// Pretty-prints JSON bytes (as the broker sent them), or prints them as they are.
    static func rawJSON(_ bytes: [UInt8]) {
        out(prettyJSON(bytes))
    }

    static func prettyJSON(_ bytes: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: data, as: UTF8.self)
    }

    /// How a row that needs attention stands out on a terminal.
    enum Emphasis {
        /// Bold red: an emergency.
        case alarm
        /// Yellow: urgent.
        case warning

        var code: String {
            switch self {
            case .alarm: "\u{1B}[1;31m"
            case .warning: "\u{1B}[33m"
            }
        }
    }

    /// A plain table: a header row and left-aligned columns, one line per row whatever the
    /// cells hold. `emphasis` colours whole rows, only on a terminal that takes colour
    /// (`Terminal.colours`); the cells are made safe first, so only the client's own codes
    /// reach the terminal.
    static func table(_ headers: [String], _ rows: [[String]], emphasis: (Int) -> Emphasis? = { _ in nil }) {
        let rows = rows.map { $0.map { Terminal.safe($0, singleLine: true) } }
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        out(line(headers))
        let colours = Terminal.colours
        for (index, row) in rows.enumerated() {
            if colours, let emphasis = emphasis(index) {
                // Already safe: each cell went through Terminal.safe above.
                FileHandle.standardOutput.write(Data((emphasis.code + line(row) + "\u{1B}[0m\n").utf8))
            } else {
                out(line(row))
            }
        }
    }
}

enum Format {
    /// "2026-03-11 10:42 UTC": readable, unambiguous.
    static func date(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: date)
    }

    static func isoDate(_ text: String?) -> Date? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func nhs(_ digits: String?) -> String {
        guard let digits, digits.count == 10 else { return digits ?? "-" }
        let d = Array(digits)
        return "\(String(d[0..<3])) \(String(d[3..<6])) \(String(d[6..<10]))"
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let s = Int(abs(seconds))
        if s < 3600 { return "\(s / 60) min" }
        if s < 86_400 { return "\(s / 3600) h \((s % 3600) / 60) min" }
        return "\(s / 86_400) d \((s % 86_400) / 3600) h"
    }

    /// How long ago, in its largest unit: "40 min", "3 h", "2 d".
    static func age(_ seconds: TimeInterval) -> String {
        let s = Int(max(0, seconds))
        if s < 3600 { return "\(s / 60) min" }
        if s < 86_400 { return "\(s / 3600) h" }
        return "\(s / 86_400) d"
    }

    static func bytes(_ count: Int64) -> String {
        if count < 1 << 20 { return "\(count / 1024) KiB" }
        if count < 1 << 30 { return String(format: "%.1f MiB", Double(count) / Double(1 << 20)) }
        return String(format: "%.2f GiB", Double(count) / Double(1 << 30))
    }

    static func oneLine(_ text: String, max: Int = 60) -> String {
        let flat = Terminal.safe(text, singleLine: true)
        return flat.count > max ? String(flat.prefix(max - 1)) + "…" : flat
    }
}
