import CareRelayModel
import CareRelayStore
import Foundation
import Testing

@testable import CareRelayNotify

/// The site's settings file, and how the sender groups and retries what it sends.
@Suite struct NotificationSettingsTests {
    func folder(secrets: [String: String]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, value) in secrets { try value.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return folder
    }

    static let key = "live-26ba3fbf-1ee6-4cb2-9ad7-7a3a7a6f3a5e-0f5b3c6e-3a5a-4c2e-8a5e-1d2c3b4a5f60"

    @Test func aWholeFileSetsUpEveryChannelWithItsSecretsFromFiles() throws {
        let folder = try folder(secrets: ["smtp-password": "relay-pass\n", "notify-key": Self.key, "hook": "s3cret"])
        let settings = try NotificationSettings.parse(
            """
            email:
              host: smtp.council.example
              username: carerelay
              passwordFile: smtp-password
              from: "CareRelay <carerelay@council.example>"
            sms:
              baseURL: https://api.notifications.service.gov.uk
              apiKeyFile: notify-key
              templateID: 6c2d1a8e-4b3f-4e2a-9c1d-0a9b8c7d6e5f
              events: [checkin.urgent, break-glass]
            webhooks:
              west-intake:
                url: https://intake.example/carerelay
                secretFile: hook
            bridgeAddress: https://carers.example
            retry: [10s, 1m, 1h]
            """, relativeTo: folder)
        #expect(settings.site.channels == [.email, .sms, .webhook])
        #expect(settings.site.smsEvents == [.checkInUrgent, .breakGlass])
        #expect(settings.site.webhooks == ["west-intake"])
        #expect(settings.site.bridgeAddress == "https://carers.example")
        #expect(settings.retry == RetrySchedule(delays: [10, 60, 3_600]))
        #expect(settings.lease == 90, "twice the default 30 s time-out, and 30 s")
        let smtp = try #require(settings.transports[.email] as? SMTPTransport)
        #expect(smtp.settings.password == "relay-pass", "read from its file, trimmed")
        #expect(smtp.settings.port == 587 && smtp.settings.security == .startTLS)
    }

    @Test(
        arguments: [
            ("email:\n  host: smtp.council.example\n  security: none\n  from: a@b.example\n", "for a relay on loopback only"),
            ("email:\n  host: 127.0.0.1\n  security: clear\n  from: a@b.example\n", "must be starttls, tls or none"),
            ("email:\n  host: 127.0.0.1\n  passwordFile: missing\n  from: a@b.example\n", "cannot read the mail relay's password"),
            ("sms:\n  baseURL: https://x.example\n  apiKeyFile: bad-key\n  templateID: t\n", "is not a GOV.UK Notify key"),
            ("webhooks:\n  west-intake:\n    url: ftp://x.example\n    secretFile: hook\n", "is not an http(s) address"),
            ("webhooks:\n  West Intake:\n    url: https://x.example\n    secretFile: hook\n", "must be 1-64 of"),
            ("retry: [10 minutes]\n", "is not a time like 30s"),
            ("sms:\n  baseURL: https://x.example\n  apiKeyFile: bad-key\n  templateID: t\n  events: [checkin.late]\n", "notifications:"),
        ])
    func aMistakeIsNamed(yaml: String, problem: String) throws {
        let folder = try folder(secrets: ["bad-key": "not-a-key", "hook": "s3cret"])
        #expect {
            _ = try NotificationSettings.parse(yaml, relativeTo: folder)
        } throws: { error in
            "\(error)".contains(problem)
        }
    }

    @Test func retriesFollowTheScheduleThenStop() {
        let now = Date(timeIntervalSince1970: 1_000)
        let schedule = RetrySchedule(delays: [30, 120])
        #expect(schedule.retryAt(after: 1, now: now) == now.addingTimeInterval(30))
        #expect(schedule.retryAt(after: 2, now: now) == now.addingTimeInterval(120))
        #expect(schedule.retryAt(after: 3, now: now) == nil)
    }

    @Test func digestsDueTogetherForOnePersonGoAsOneEmail() {
        let now = Date(timeIntervalSince1970: 1_764_574_200)
        func record(_ id: String, digest: Bool, recipient: String = "person:coord.patel", subject: String) -> ClaimedNotification {
            ClaimedNotification(
                record: NotificationRecord(
                    id: id, message: id, recipient: recipient, channel: .email, address: "\(recipient.dropFirst(7))@care.example",
                    event: .referralNew, urgent: !digest, subject: subject, text: "t", link: "carerelay referral inbox", createdAt: now,
                    dueAt: now, digest: digest), attempts: 1)
        }
        let work = NotificationSender.work([
            record("a", digest: true, subject: "1 new routine referral for West social care intake"),
            record("b", digest: false, subject: "1 new urgent referral for West social care intake"),
            record("c", digest: true, subject: "An MDT agenda for West Wednesday MDT"),
            record("d", digest: true, recipient: "person:sw.lee", subject: "Your referral to East social care was accepted"),
        ])
        #expect(work.count == 3)
        #expect(work[0].dispatch.id == "b")
        let patel = work[1]
        #expect(patel.records.map(\.record.id) == ["a", "c"])
        #expect(patel.dispatch.id == "digest.person-coord.patel.1764574200")
        #expect(patel.dispatch.subject == "CareRelay daily digest: 2 items")
        #expect(patel.dispatch.text.contains("- 1 new routine referral for West social care intake\n  carerelay referral inbox"))
        #expect(patel.dispatch.text.contains("- An MDT agenda for West Wednesday MDT"))
        #expect(work[2].records.map(\.record.id) == ["d"])
    }
}
