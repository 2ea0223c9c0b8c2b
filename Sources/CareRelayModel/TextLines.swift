/// Splitting text that someone else wrote at every line break a reader of it honours.
public enum TextLines {
    /// The lines of `text`, split at CR, LF and CRLF (an event stream and a terminal each end
    /// a line at any of them). Split by Unicode scalar: a Swift Character holds CRLF as one,
    /// so splitting Characters at "\n" leaves CRLF whole, and a lone CR not split at all.
    public static func split(_ text: String) -> [String] {
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            switch scalar {
            case "\n" where previous == "\r":
                continue
            case "\r", "\n":
                lines.append(String(line))
                line = String.UnicodeScalarView()
            default:
                line.append(scalar)
            }
        }
        lines.append(String(line))
        return lines
    }
}
