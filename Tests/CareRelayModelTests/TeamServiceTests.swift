import Foundation
import Testing

@testable import CareRelayModel

/// Service hours and response targets as a team's directory entry writes them.
@Suite struct TeamServiceTests {
    /// A moment in UK local time.
    func at(_ text: String) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = ServiceHours.siteTimeZone
        let parts = text.split(whereSeparator: { "- :".contains($0) }).compactMap { Int($0) }
        return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4])) ?? Date()
    }

    @Test func weekdayHoursInWinterAndInSummerTime() throws {
        let hours = try ServiceHours(parsing: "mon-fri 08:30-17:00")
        #expect(hours.isOpen(at: at("2026-12-01 08:30")), "a Tuesday at opening")
        #expect(!hours.isOpen(at: at("2026-12-01 08:29")))
        #expect(!hours.isOpen(at: at("2026-12-01 17:00")), "closed at the closing minute")
        #expect(!hours.isOpen(at: at("2026-12-05 10:00")), "a Saturday")
        // 08:45 in July is 07:45 UTC: read in UK time, the team is open.
        #expect(hours.isOpen(at: at("2026-07-07 08:45")))
        #expect(at("2026-07-07 08:45") == Date(timeIntervalSince1970: 1_783_410_300))
    }

    @Test func severalSpansAndRoundTheClock() throws {
        let hours = try ServiceHours(parsing: "mon-fri 08:00-18:00, sat 09:00-12:00")
        #expect(hours.isOpen(at: at("2026-12-05 11:59")))
        #expect(!hours.isOpen(at: at("2026-12-05 12:00")))
        #expect(!hours.isOpen(at: at("2026-12-06 10:00")), "a Sunday")
        #expect(try ServiceHours(parsing: "mon-sun 00:00-24:00").isOpen(at: at("2026-12-06 23:59")))
        #expect(try ServiceHours(parsing: "24/7").isOpen(at: at("2026-12-25 03:00")))
    }

    @Test func daysJoinedOrAcrossTheWeekendAndTimesAsPeopleWriteThem() throws {
        let weekend = try ServiceHours(parsing: "Fri-Mon 8:00-17:00")
        #expect(weekend.isOpen(at: at("2026-12-06 09:00")), "a Sunday, inside fri-mon")
        #expect(!weekend.isOpen(at: at("2026-12-02 09:00")), "a Wednesday")
        let joined = try ServiceHours(parsing: "mon+wed 09:00-13:00")
        #expect(joined.isOpen(at: at("2026-12-02 12:59")) && !joined.isOpen(at: at("2026-12-01 10:00")))
        #expect(try ServiceHours(parsing: "always").spans.isEmpty)
    }

    @Test(arguments: [
        "", "weekdays", "mon-fri", "mon-fri 17:00-08:00", "mon-fri 8:0-17:00", "mon-fri 08:00-25:00", "mon-fri 08:00", "mon+ 08:00-17:00",
    ])
    func hoursThatDoNotRead(_ text: String) {
        #expect(throws: ServiceHours.ParseError.self) { try ServiceHours(parsing: text) }
    }

    @Test func responseTimes() throws {
        #expect(try ResponseTime(parsing: "90m").seconds == 5_400)
        #expect(try ResponseTime(parsing: "4h").seconds == 14_400)
        #expect(try ResponseTime(parsing: "3d").seconds == 259_200)
        for bad in ["", "4", "h", "0h", "-1h", "1.5h", "4 h", "4w"] {
            #expect(throws: ResponseTime.ParseError.self, "\(bad)") { try ResponseTime(parsing: bad) }
        }
    }

    @Test func aDirectoryWithHoursThatDoNotReadIsRefused() throws {
        let directory = Directory(
            organisations: [], localities: [.init(id: "west", name: "West")],
            teams: [.init(id: "west.intake", name: "Intake", locality: "west", hours: "weekdays 9 to 5")], people: [])
        #expect(throws: Directory.ValidationError.self) { try directory.validate() }
    }
}
