import CareRelayModel

/// Writes server-sent events so that nothing in a value can end its field. The event stream
/// format ends a line at CR, LF or CRLF, so a value holding any of them would start a field of
/// its own: a care plan's text could name the event, set its id or add data.
enum EventStreamFormat {
    /// One event. `data` (an HTML fragment) goes out as one `data:` line per line of it, which
    /// the browser joins again with LF; `event` and `id` are the bridge's own single-line
    /// values, and lose any line break or NUL all the same.
    static func event(_ type: String, id: String, data: String) -> String {
        var text = "event: \(singleLine(type))\nid: \(singleLine(id))\n"
        for line in TextLines.split(data) { text += "data: \(line)\n" }
        return text + "\n"
    }

    /// `text` without line breaks or NUL (which makes a browser ignore an id).
    static func singleLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" }))
    }
}
