/// An invitation for a carer to use the carers' web bridge (`kind: carer.invite`). A care
/// co-ordinator sends it to the bridge's gateway identity (`person:<gateway id>`). The code the
/// carer types never travels: only its SHA-256 hash does, and the bridge keeps only that hash,
/// honours it once, and not after `expires`. Schema: Protocols/messages/carer.invite.schema.json.
public struct CarerInvite: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .carerInvite }

    /// The carer invited: a carer in the directory, or, with `carerName`, a new one the broker
    /// adds (without a key: the gateway acts for them).
    public var carer: PersonID
    /// The carer's name, for a carer not yet in the directory.
    public var carerName: String?
    /// The people the carer cares for (NHS numbers), distinct.
    public var patients: [NHSNumber]
    /// Lower-case hex SHA-256 of the invitation code (64 characters).
    public var codeHash: String
    /// After this moment the code no longer signs anyone in.
    public var expires: Timestamp
    /// The co-ordinator who issued it.
    public var issuedBy: PersonID

    public init(carer: PersonID, carerName: String? = nil, patients: [NHSNumber], codeHash: String, expires: Timestamp, issuedBy: PersonID) {
        self.carer = carer
        self.carerName = carerName
        self.patients = patients
        self.codeHash = codeHash
        self.expires = expires
        self.issuedBy = issuedBy
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case carer, carerName, patients, codeHash, expires, issuedBy }

    /// `^[0-9a-f]{64}$`
    static func isCodeHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        carer = try c.identifier(.carer)
        carerName = try c.textIfPresent(.carerName, max: 200)
        var nested = try c.nestedUnkeyedContainer(forKey: .patients)
        var patients: [NHSNumber] = []
        while !nested.isAtEnd {
            let index = nested.currentIndex
            let value = try nested.decode(String.self)
            let here = c.codingPath + [CodingKeys.patients, AnyCodingKey.index(index)]
            guard value.utf8.count == 10, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw MessageValidationError(
                    here, "an NHS number is written as exactly 10 digits, without spaces, found \"\(value.prefix(40))\"",
                    kind: .invalidNHSNumber)
            }
            let number: NHSNumber
            do { number = try NHSNumber(validating: value) } catch {
                throw MessageValidationError(here, error.description, kind: .invalidNHSNumber)
            }
            guard !patients.contains(number) else { throw MessageValidationError(here, "\"\(value)\" is listed twice") }
            patients.append(number)
        }
        guard (1...20).contains(patients.count) else {
            throw c.fail(.patients, "has \(patients.count) entries; 1 to 20 are allowed")
        }
        self.patients = patients
        let hash = try c.decode(String.self, forKey: .codeHash)
        guard Self.isCodeHash(hash) else {
            throw c.fail(.codeHash, "must be the SHA-256 of the invitation code as 64 lower-case hex digits, never the code itself")
        }
        codeHash = hash
        expires = try c.decode(Timestamp.self, forKey: .expires)
        issuedBy = try c.identifier(.issuedBy)
    }
}
