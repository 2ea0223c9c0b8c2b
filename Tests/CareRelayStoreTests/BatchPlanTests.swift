import CareRelayModel
import Foundation
import Testing
@testable import CareRelayStore

/// The batch rules both stores apply, checked as the pure function they share.
@Suite struct BatchPlanTests {
    let now = Date()

    func message(
        _ id: String, key: String, body: String = "{}", referral: ReferralRecord? = nil,
        expecting: ReferralStatus? = nil
    ) -> NewMessage {
        NewMessage(
            id: id, key: key, kind: referral == nil ? .referral : .referralEvent, sender: "gp.khan", envelope: [], patient: nil,
            correlation: nil, body: Array(body.utf8), bodyHash: Array(body.utf8), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: "sw.lee", decision: .deliver, rule: "R6")], referral: referral,
            referralExpectedStatus: expecting, audit: [])
    }

    func referral(_ status: ReferralStatus) -> ReferralRecord {
        ReferralRecord(
            messageID: "r1", referrer: "gp.khan", team: "west.social-care", patient: nil, status: status,
            deadline: nil, updatedAt: now)
    }

    @Test func aKeyRepeatedInTheBatchIsAResendOfItsFirstUse() throws {
        let batch = [message("m1", key: "k"), message("m2", key: "k"), message("m3", key: "k", body: "{\"x\":1}")]
        let plan = BatchPlan(batch, earlier: [:], referrals: [:])
        #expect(plan.toStore == [0])
        let outcomes = try plan.outcomes(storedAs: [7])
        #expect(outcomes == [.stored(seq: 7), .duplicate(id: "m1", deliveries: batch[0].deliveries), .conflict(id: "m1")])
    }

    @Test func aKeyStoredBeforeIsAnsweredAsBefore() throws {
        let earlier = EarlierSend(id: "old", fingerprint: Array("{}".utf8), deliveries: [])
        let plan = BatchPlan(
            [message("m1", key: "k"), message("m2", key: "k2")],
            earlier: [idempotencyKey("gp.khan", "k"): earlier], referrals: [:])
        #expect(try plan.outcomes(storedAs: [9]) == [.duplicate(id: "old", deliveries: []), .stored(seq: 9)])
    }

    @Test func referralChangesApplyInBatchOrderFromTheStoredStatus() throws {
        let batch = [
            message("e1", key: "a", referral: referral(.accepted), expecting: .sent),
            message("e2", key: "b", referral: referral(.completed), expecting: .accepted),
            message("e3", key: "c", referral: referral(.declined), expecting: .sent),
        ]
        #expect(BatchPlan.referralsRead(by: batch) == ["r1", "r1", "r1"])
        let plan = BatchPlan(batch, earlier: [:], referrals: ["r1": referral(.sent)])
        #expect(plan.toStore == [0, 1])
        #expect(try plan.outcomes(storedAs: [1, 2]) == [.stored(seq: 1), .stored(seq: 2), .referralChanged(referral(.completed))])
        #expect(throws: StoreError.self) { try plan.outcomes(storedAs: [1]) }
    }
}
