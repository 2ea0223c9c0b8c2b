import Foundation
import Testing

/// `carerelay notify`: a person sees and chooses what reaches them outside CareRelay; a typo
/// stops before anything is sent; nobody chooses for someone else.
@Suite struct NotifyCommandTests {
    @Test func aSocialWorkerChoosesHerOwnNotifications() throws {
        let system = try CareSystem()
        try system.start()
        let lee = try system.cli("sw.lee")

        let shown = try lee.run(["notify"])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("Email: not set up at this site."))
        #expect(shown.stdout.contains("Digest: off; each notification goes at once."))

        let typo = try lee.run(["notify", "set", "--email", "referral.new,referal.allocated"])
        #expect(typo.status == 64)
        #expect(typo.stderr.contains("'referal.allocated' is not an event"))

        let set = try lee.run(["notify", "set", "--email", "referral.new,checkin.urgent", "--digest", "07:30", "--phone", "07700 900123"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("Digest: what is not urgent waits for one email a day at 07:30."))
        let json = try lee.run(["notify", "--json"])
        let view = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(view["digest"] as? String == "07:30")
        #expect((view["email"] as? [String: Any])?["chosen"] as? Bool == true)
        #expect((view["sms"] as? [String: Any])?["address"] as? String == "+447700900123")

        // Her colleague cannot choose for her, nor see her choices.
        let okafor = try system.cli("sw.okafor")
        let refused = try okafor.run(["notify", "set", "--for", "sw.lee", "--digest", "off"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("only your own notifications"))
        #expect(try lee.run(["notify", "--json"]).stdout.contains("07:30"))
    }
}
