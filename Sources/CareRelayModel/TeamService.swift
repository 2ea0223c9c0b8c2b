import Foundation

/// When a team answers, as its directory entry writes it: `mon-fri 08:30-17:00`, several spans
/// separated by commas (`mon-fri 08:00-18:00, sat 09:00-12:00`), days joined with `+`
/// (`mon+wed 09:00-13:00`), a range across the weekend (`fri-mon`), or `24/7` (`always`), in
/// any case. Times are the site's local time (`ServiceHours.siteTimeZone`, UK time with its
/// summer change); a span may not cross midnight (`24:00` ends a day). The broker checks a
/// directory's hours with this, and the carer bridge says with it whether a team is open.
public struct ServiceHours: Sendable, Hashable, CustomStringConvertible {
    public struct Span: Sendable, Hashable {
        /// Days, 1 = Monday ... 7 = Sunday.
        public var days: Set<Int>
        /// Minutes after midnight: opens at `from`, closes at `to`.
        public var from: Int
        public var to: Int
    }

    public let text: String
    /// Empty for `24/7`.
    public let spans: [Span]

    public var description: String { text }

    /// The time zone service hours and the intake's clock are read in.
    public static let siteTimeZone = TimeZone(identifier: "Europe/London") ?? .gmt

    static let dayNames = ["mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7]

    public init(parsing text: String) throws(ParseError) {
        self.text = text
        let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
        if lower == "24/7" || lower == "always" {
            spans = []
            return
        }
        var spans: [Span] = []
        for part in lower.split(separator: ",") {
            let words = part.split(separator: " ")
            guard words.count == 2 else { throw ParseError(text: text) }
            var days = Set<Int>()
            for group in words[0].split(separator: "+", omittingEmptySubsequences: false) {
                let ends = group.split(separator: "-", omittingEmptySubsequences: false).map { Self.dayNames[String($0)] }
                guard (1...2).contains(ends.count), let first = ends.first ?? nil, let last = ends.last ?? nil else { throw ParseError(text: text) }
                var day = first
                while true {  // a range may run across the weekend: fri-mon
                    days.insert(day)
                    if day == last { break }
                    day = day % 7 + 1
                }
            }
            let times = words[1].split(separator: "-", omittingEmptySubsequences: false).map { Self.minutes(String($0)) }
            guard times.count == 2, let from = times[0], let to = times[1], from < to else { throw ParseError(text: text) }
            spans.append(Span(days: days, from: from, to: to))
        }
        guard !spans.isEmpty else { throw ParseError(text: text) }
        self.spans = spans
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let text: String
        public var description: String {
            "'\(text)' is not service hours like 'mon-fri 08:30-17:00', 'mon-fri 08:00-18:00, sat 09:00-12:00' or '24/7'"
        }
    }

    /// "08:30" (or "8:30") as 510; nil unless a time of day, 24:00 being the end of the day.
    private static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
            (0...59).contains(m), (0...23).contains(h) || (h == 24 && m == 0)
        else { return nil }
        return h * 60 + m
    }

    /// Whether the team is answering at `date`.
    public func isOpen(at date: Date, in timeZone: TimeZone = siteTimeZone) -> Bool {
        guard !spans.isEmpty else { return true }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let day = (weekday + 5) % 7 + 1  // Calendar's 1 is Sunday; here 1 is Monday
        let now = hour * 60 + minute
        return spans.contains { $0.days.contains(day) && $0.from <= now && now < $0.to }
    }
}

/// How soon a team undertakes to take a referral, by priority, as its directory entry writes
/// each (`1h`, `90m`, `3d`). A priority the team does not set takes the broker's default.
public struct ResponseTargets: Sendable, Hashable, Codable {
    public var emergency: ResponseTime?
    public var urgent: ResponseTime?
    public var sameDay: ResponseTime?
    public var routine: ResponseTime?

    public init(emergency: ResponseTime? = nil, urgent: ResponseTime? = nil, sameDay: ResponseTime? = nil, routine: ResponseTime? = nil) {
        self.emergency = emergency
        self.urgent = urgent
        self.sameDay = sameDay
        self.routine = routine
    }

    enum CodingKeys: String, CodingKey {
        case emergency, urgent, routine
        case sameDay = "same-day"
    }

    public subscript(priority: Priority) -> ResponseTime? {
        switch priority {
        case .emergency: emergency
        case .urgent: urgent
        case .sameDay: sameDay
        case .routine: routine
        }
    }
}

/// A response time as a person writes it: a whole number of minutes, hours or days (`90m`,
/// `4h`, `3d`).
public struct ResponseTime: Sendable, Hashable, Codable, CustomStringConvertible {
    public let text: String
    public let seconds: TimeInterval

    public init(parsing text: String) throws(ParseError) {
        let units: [Character: TimeInterval] = ["m": 60, "h": 3_600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let count = Int(text.dropLast()), count > 0, count <= 365 * 24 * 60
        else { throw ParseError(text: text) }
        self.text = text
        seconds = TimeInterval(count) * unit
    }

    public var description: String { text }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not a response time like 90m, 4h or 3d" }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
