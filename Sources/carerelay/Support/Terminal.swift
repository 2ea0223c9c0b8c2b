import CareRelayModel
import Foundation

/// Text from messages, made safe for a terminal.
///
/// Anything a message carries (a reason, a check-in's concerns, a name) was typed by someone
/// else, and a terminal obeys control characters: ESC and CSI sequences can clear the screen,
/// rewrite what was printed, set the window title or, on some terminals, answer back as if
/// typed; a carriage return overwrites the start of a line; bidirectional overrides make text
/// read in another order than it is. So every printed line passes through `safe`, which
/// writes each such character as a visible `\uXXXX` escape instead.
///
/// The same escape is JSON's own: JSON output stays valid JSON, and decodes to exactly the
/// text the message carried.
enum Terminal {
    /// Whether to colour what needs attention: only when standard output is a terminal, and
    /// never when NO_COLOR is set (no-color.org).
    static var colours: Bool {
        isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    }

    /// `text` with every control character (C0, DEL, C1), bidirectional override or
    /// isolate, and line or paragraph separator written as `\uXXXX`. Line feeds and tabs are
    /// kept as they are, with CRLF read as a line feed, unless `singleLine` asks for one line:
    /// then each line break or tab becomes a space.
    static func safe(_ text: String, singleLine: Bool = false) -> String {
        TextLines.split(text).map { line in
            var safe = String.UnicodeScalarView()
            for scalar in line.unicodeScalars {
                if scalar == "\t" {
                    safe.append(singleLine ? " " : "\t")
                } else if isUnsafe(scalar) {
                    safe.append(contentsOf: escape(scalar).unicodeScalars)
                } else {
                    safe.append(scalar)
                }
            }
            return String(safe)
        }.joined(separator: singleLine ? " " : "\n")
    }

    /// `text` as a field's value on lines of its own after a label: continuation lines are
    /// indented by `indent` spaces, so nothing in the text can start a line that looks like
    /// another label.
    static func block(_ text: String, indent: Int) -> String {
        safe(text).replacingOccurrences(of: "\n", with: "\n" + String(repeating: " ", count: indent))
    }

    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides, isolates
        case 0x2028, 0x2029: true  // line and paragraph separators
        default: false
        }
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
