import CareRelayBroker
import CareRelayModel
import Testing

@Suite struct TopicTests {
    @Test func patternsExpandATrailingHashAndRefuseBadShapes() {
        #expect(TopicPattern("referral/#")?.description == "referral/*/*")
        #expect(TopicPattern("#")?.description == "*/*/*")
        #expect(TopicPattern("referral/west/west.social-care")?.description == "referral/west/west.social-care")
        for bad in ["", "a/#/b", "referral/west", "a/b/c/d", "Referral/West/x", "a b/c/d"] {
            #expect(TopicPattern(bad) == nil, "\(bad)")
        }
    }

    @Test func matchingAndCovering() throws {
        let locality = try #require(TopicPattern("*/west/*"))
        #expect(locality.matches(["referral", "west", "west.nursing"]))
        #expect(!locality.matches(["referral", "east", "east.gp"]))
        #expect(try #require(TopicPattern("referral/west/#")).isCovered(by: locality))
        #expect(try #require(TopicPattern("referral/west/west.gp")).isCovered(by: locality))
        #expect(!(try #require(TopicPattern("referral/#")).isCovered(by: locality)))
        #expect(!locality.isCovered(by: try #require(TopicPattern("referral/west/*"))))
    }

    @Test func rightsFollowRolesAndOwnTeams() throws {
        let system = try CareSystem()
        let rules = SubscriptionRules.default
        let social = try #require(system.directory.person("sw.okafor"))
        #expect(rules.patterns(for: social, in: system.directory).map(\.description) == ["*/west/west.social-care"])
        let coordinator = try #require(system.directory.person("coord.patel"))
        #expect(Set(rules.patterns(for: coordinator, in: system.directory).map(\.description)) == ["*/west/*"])
        let carer = try #require(system.directory.person("carer.ellis"))
        #expect(rules.patterns(for: carer, in: system.directory).isEmpty)
    }
}
