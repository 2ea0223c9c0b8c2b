/// A referral's id as people say it over the phone: twelve characters from Crockford's base 32
/// (digits and capitals without I, L, O or U, which are read as 1, 1, 0 or not at all), in
/// three groups of four: `7KD4-QXM2-P9R3`. The last character is a check character (Luhn mod
/// 32), so one mistyped character, or most pairs of neighbours swapped, is caught by the
/// client before it reaches the broker. The other eleven are random: 55 bits, so ids do not
/// repeat across brokers (the store refuses a repeated id; a batch so refused is answered 500
/// and sent again with a fresh one).
///
/// Other messages keep the longer, time-ordered ids (CRP.md section 3); referrals accepted
/// before this shape keep theirs, and every command still takes them.
public enum ReferralID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// A new id.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }

    /// The eleven random symbols are the top 55 bits of one 64-bit draw, five bits each (a
    /// draw from the system's generator is a system call: one per id, not one per symbol).
    public static func make(using generator: inout some RandomNumberGenerator) -> String {
        var bits = generator.next() >> 9
        var values = [Int](repeating: 0, count: 12)
        for index in (0..<11).reversed() {
            values[index] = Int(bits & 31)
            bits >>= 5
        }
        values[11] = check(values[..<11])
        return written(values)
    }

    /// Why `text` is not a referral id, or the id as the broker wrote it: any case, spaces or
    /// hyphens anywhere, O read as 0 and I or L as 1.
    public static func reading(_ text: String) -> Result<String, Problem> {
        var values: [Int] = []
        for scalar in text.uppercased().unicodeScalars where scalar != "-" && scalar != " " {
            let c: Unicode.Scalar =
                switch scalar {
                case "O": "0"
                case "I", "L": "1"
                default: scalar
                }
            guard c.isASCII, let index = alphabet.firstIndex(of: UInt8(c.value)) else {
                return .failure(.notAnID("'\(scalar)' is not used in referral ids (0-9 and A-Z without I, L, O, U)"))
            }
            values.append(index)
        }
        guard values.count == 12 else {
            return .failure(.notAnID("a referral id has 12 characters (like 7KD4-QXM2-P9R3); this has \(values.count)"))
        }
        guard check(Array(values.dropLast())) == values[11] else { return .failure(.checkFailed) }
        return .success(written(values))
    }

    /// Whether `text` is meant as one of these ids rather than a longer message id: 10 to 14
    /// characters once spaces and hyphens are dropped, all of them letters or digits. A
    /// message id of the longer shape has at least 20.
    public static func looksLikeOne(_ text: String) -> Bool {
        let symbols = text.filter { $0 != "-" && $0 != " " }
        return (10...14).contains(symbols.count) && symbols.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case notAnID(String)
        case checkFailed

        public var description: String {
            switch self {
            case .notAnID(let why): why
            case .checkFailed: "its check character does not match: a character is mistyped or two are swapped"
            }
        }
    }

    /// Luhn mod N over the values, from the right, doubling every second starting with the
    /// rightmost payload value: catches every single substitution.
    static func check(_ payload: some BidirectionalCollection<Int>) -> Int {
        var factor = 2
        var sum = 0
        for value in payload.reversed() {
            let addend = factor * value
            sum += addend / 32 + addend % 32
            factor = factor == 2 ? 1 : 2
        }
        return (32 - sum % 32) % 32
    }

    private static func written(_ values: [Int]) -> String {
        String(unsafeUninitializedCapacity: 14) { buffer in
            var at = 0
            for (index, value) in values.enumerated() {
                if index == 4 || index == 8 {
                    buffer[at] = UInt8(ascii: "-")
                    at += 1
                }
                buffer[at] = alphabet[value]
                at += 1
            }
            return at
        }
    }
}
