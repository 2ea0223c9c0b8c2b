import CareRelayModel

/// The rules a store applies to a batch, decided once here for both stores. A store reads what
/// the rules need under its lock (the earlier sends of the batch's keys and the referrals it
/// changes), plans, writes the messages the plan stores, and answers with `outcomes(storedAs:)`.
///
/// - A (sender, key) pair stored before, or earlier in the same batch, is answered as a resend
///   (`EarlierSend.answer(resendWith:)`) and nothing is stored for it.
/// - A change to a referral is stored only if the referral still has the status its sender read
///   (`NewMessage.referralExpectedStatus`), counting changes earlier in the same batch; otherwise
///   it is `referralChanged`, with the referral as it is now.
public struct BatchPlan: Equatable, Sendable {
    /// The messages to store, by their index in the batch, in batch order.
    public private(set) var toStore: [Int] = []
    /// The answer for each message that is not stored; nil for those stored.
    private var answers: [StoreOutcome?]

    /// The referrals whose stored records a plan for this batch needs.
    public static func referralsRead(by batch: [NewMessage]) -> [String] {
        batch.compactMap { $0.referralExpectedStatus == nil ? nil : $0.referral?.messageID }
    }

    /// - Parameters:
    ///   - earlier: what each (sender, key) pair of the batch already sent, keyed by
    ///     `idempotencyKey(_:_:)`, as the store holds it now.
    ///   - referrals: the stored records of `referralsRead(by:)`, by message id.
    public init(_ batch: [NewMessage], earlier: [String: EarlierSend], referrals: [String: ReferralRecord]) {
        answers = Array(repeating: nil, count: batch.count)
        var referrals = referrals
        var firstWithKey: [String: EarlierSend] = [:]
        for (index, message) in batch.enumerated() {
            let key = idempotencyKey(message.sender, message.key)
            if let found = earlier[key] ?? firstWithKey[key] {
                answers[index] = found.answer(resendWith: message.bodyHash)
                continue
            }
            if let referral = message.referral, let expected = message.referralExpectedStatus,
                let current = referrals[referral.messageID], current.status != expected
            {
                answers[index] = .referralChanged(current)
                continue
            }
            if let referral = message.referral { referrals[referral.messageID] = referral }
            firstWithKey[key] = EarlierSend(id: message.id, fingerprint: message.bodyHash, deliveries: message.deliveries)
            toStore.append(index)
        }
    }

    /// One outcome per message of the batch, in order, given the sequence each stored message
    /// was given (one per `toStore`, in the same order).
    public func outcomes(storedAs sequences: [Int64]) throws -> [StoreOutcome] {
        guard sequences.count == toStore.count else {
            throw StoreError.unavailable("\(sequences.count) messages were stored where \(toStore.count) were planned")
        }
        var outcomes = answers
        for (index, seq) in zip(toStore, sequences) { outcomes[index] = .stored(seq: seq) }
        return try outcomes.map {
            guard let outcome = $0 else { throw StoreError.unavailable("a message of the batch was left without an outcome") }
            return outcome
        }
    }
}

extension EarlierSend {
    /// How a resend of this (sender, key) pair is answered: with the first answer when the
    /// content is the same, as a conflict when it is not.
    public func answer(resendWith fingerprint: [UInt8]) -> StoreOutcome {
        fingerprint == self.fingerprint ? .duplicate(id: id, deliveries: deliveries) : .conflict(id: id)
    }
}
