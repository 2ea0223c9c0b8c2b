import Foundation

/// A team's service hours as the directory writes them: "mon-fri 08:00-18:00", several
/// parts separated by commas ("mon-fri 08:00-18:00, sat 09:00-12:00"), or "24/7".
public struct ServiceHours: Sendable, Equatable {
    struct Span: Sendable, Equatable {
        var days: Set<Int>  // 1 = Monday ... 7 = Sunday
        var start: Int  // minutes after midnight
        var end: Int
    }

    let spans: [Span]
    let always: Bool
    public let text: String

    static let dayNames = ["mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7]

    /// Nil when the text cannot be read; callers then treat the team as closed, which errs
    /// towards showing the fallback contacts.
    public init?(_ text: String) {
        self.text = text
        let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
        if lower == "24/7" || lower == "always" {
            spans = []
            always = true
            return
        }
        always = false
        var spans: [Span] = []
        for part in lower.split(separator: ",") {
            let words = part.split(separator: " ").map(String.init)
            guard words.count == 2 else { return nil }
            var days = Set<Int>()
            for group in words[0].split(separator: "+") {
                let ends = group.split(separator: "-").map(String.init)
                guard let first = ends.first.flatMap({ Self.dayNames[$0] }), let last = ends.last.flatMap({ Self.dayNames[$0] }),
                    ends.count <= 2
                else { return nil }
                var day = first
                while true {
                    days.insert(day)
                    if day == last { break }
                    day = day % 7 + 1
                }
            }
            let times = words[1].split(separator: "-").map(String.init)
            guard times.count == 2, let start = Self.minutes(times[0]), let end = Self.minutes(times[1]), start < end else { return nil }
            spans.append(Span(days: days, start: start, end: end))
        }
        guard !spans.isEmpty else { return nil }
        self.spans = spans
    }

    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0...59).contains(m) else { return nil }
        return h * 60 + m
    }

    /// Whether the team is open at `date`, in the team's time zone.
    public func isOpen(at date: Date, timeZone: TimeZone) -> Bool {
        if always { return true }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        // Calendar: 1 = Sunday ... 7 = Saturday.
        let weekday = ((parts.weekday ?? 1) + 5) % 7 + 1
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return spans.contains { $0.days.contains(weekday) && minute >= $0.start && minute < $0.end }
    }
}
