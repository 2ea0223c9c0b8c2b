import Testing

@testable import CareRelayModel

/// Referral ids people read over the phone: the check character catches what a person gets wrong.
@Suite struct ReferralIDTests {
    /// A generator that repeats, so a failure here can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    @Test func anIdIsTwelveSymbolsInThreeGroupsAndReadsBackAsItself() throws {
        var generator = Seeded(state: 20_261_130)
        for _ in 0..<1_000 {
            let id = ReferralID.make(using: &generator)
            #expect(id.count == 14 && id.split(separator: "-").map(\.count) == [4, 4, 4], "\(id)")
            #expect(id.allSatisfy { $0 == "-" || Self.alphabet.contains($0) }, "\(id)")
            #expect(try ReferralID.reading(id).get() == id)
            #expect(ReferralID.looksLikeOne(id))
        }
    }

    @Test func everySingleMistypedCharacterIsCaught() {
        var generator = Seeded(state: 7)
        for _ in 0..<50 {
            let id = Array(ReferralID.make(using: &generator).filter { $0 != "-" })
            for position in id.indices {
                for symbol in Self.alphabet where symbol != id[position] {
                    var typed = id
                    typed[position] = symbol
                    #expect(ReferralID.reading(String(typed)) == .failure(.checkFailed), "\(String(typed)) from \(String(id))")
                }
            }
        }
    }

    @Test func swappedNeighboursAreCaughtBarOneRarePairInTheAlgorithm() {
        var generator = Seeded(state: 11)
        var swaps = 0
        var caught = 0
        for _ in 0..<500 {
            let id = Array(ReferralID.make(using: &generator).filter { $0 != "-" })
            for position in 0..<(id.count - 1) where id[position] != id[position + 1] {
                var typed = id
                typed.swapAt(position, position + 1)
                swaps += 1
                if case .failure = ReferralID.reading(String(typed)) { caught += 1 }
            }
        }
        // Luhn mod 32 misses only the swap of one pair of values (0 and V, 0 and 31).
        #expect(Double(caught) / Double(swaps) > 0.99, "\(caught) of \(swaps) swaps caught")
    }

    @Test func readAsPeopleTypeIt() throws {
        var generator = Seeded(state: 3)
        let id = ReferralID.make(using: &generator)
        #expect(try ReferralID.reading(id.lowercased()).get() == id)
        #expect(try ReferralID.reading(id.replacingOccurrences(of: "-", with: " ")).get() == id)
        #expect(try ReferralID.reading(id.replacingOccurrences(of: "-", with: "")).get() == id)
        let withZero = "0000-0000-0000"
        #expect(try ReferralID.reading("oooo-OOOO-0000").get() == withZero, "O is read as zero")
        #expect(ReferralID.reading("7KD4-QXM2-P9R").failureDescription?.contains("12 characters") == true)
        #expect(ReferralID.reading("7KD4-QXM2-P9RU").failureDescription?.contains("'U' is not used") == true)
    }

    @Test func theLongerMessageIdsAreNotTakenForOne() {
        #expect(!ReferralID.looksLikeOne("mmx2ww3sq-1t7l799rb4a05"))
        #expect(!ReferralID.looksLikeOne("m0-0"))
        #expect(ReferralID.looksLikeOne("7kd4 qxm2 p9r5"))
    }
}

extension Result where Failure == ReferralID.Problem {
    var failureDescription: String? {
        if case .failure(let problem) = self { problem.description } else { nil }
    }
}
