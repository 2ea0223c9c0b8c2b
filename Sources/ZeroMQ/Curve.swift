import CZeroMQ

/// A CURVE (Curve25519) key pair as Z85 text, the form ZeroMQ tools and config files use.
public struct CurveKeyPair: Sendable, Equatable, Hashable {
    static let keyLength = 32

    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Generates a fresh key pair; fails with `ENOTSUP` if libzmq was built without CURVE.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicBuffer = [CChar](repeating: 0, count: 41)
        var secretBuffer = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&publicBuffer, &secretBuffer) != 0 { throw .last() }
        return CurveKeyPair(publicKey: decodeCString(publicBuffer), secretKey: decodeCString(secretBuffer))
    }

    /// Recomputes the public key belonging to a Z85 secret key.
    public static func derivePublic(fromSecret secretKey: String) throws(ZMQError) -> String {
        // Validated in Swift first: libzmq would read a C string with no length check.
        guard try Z85.decode(secretKey).count == keyLength else { throw .invalidArgument }
        var publicBuffer = [CChar](repeating: 0, count: 41)
        var secretBuffer = Array(secretKey.utf8CString)
        if zmq_curve_public(&publicBuffer, &secretBuffer) != 0 { throw .last() }
        return decodeCString(publicBuffer)
    }

    private static func decodeCString(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Z85 (ZeroMQ RFC 32): binary to printable text, 4 bytes to 5 characters.
///
/// Implemented in Swift rather than via `zmq_z85_*` so that untrusted text, including
/// embedded NULs, is validated completely before use.
public enum Z85 {
    private static let alphabet: [UInt8] = Array(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8
    )

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() {
            table[Int(character)] = UInt8(index)
        }
        return table
    }()

    /// - Throws: `EINVAL` unless `bytes.count` is a multiple of 4.
    public static func encode(_ bytes: [UInt8]) throws(ZMQError) -> String {
        guard bytes.count % 4 == 0 else { throw .invalidArgument }
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count / 4 * 5)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            var value = UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16
            value |= UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
            var group = [UInt8](repeating: 0, count: 5)
            for position in stride(from: 4, through: 0, by: -1) {
                group[position] = alphabet[Int(value % 85)]
                value /= 85
            }
            text.append(contentsOf: group)
            index += 4
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// - Throws: `EINVAL` if the length is not a multiple of 5, a character is outside the
    ///   Z85 alphabet, or a group encodes a value above 2³²−1.
    public static func decode(_ text: String) throws(ZMQError) -> [UInt8] {
        let characters = Array(text.utf8)
        guard characters.count % 5 == 0 else { throw .invalidArgument }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 5 * 4)
        var index = characters.startIndex
        while index < characters.endIndex {
            var value: UInt64 = 0
            for character in characters[index..<index + 5] {
                let digit = decodeTable[Int(character)]
                guard digit != 0xFF else { throw .invalidArgument }
                value = value * 85 + UInt64(digit)
            }
            guard value <= UInt64(UInt32.max) else { throw .invalidArgument }
            bytes.append(UInt8(truncatingIfNeeded: value >> 24))
            bytes.append(UInt8(truncatingIfNeeded: value >> 16))
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
            index += 5
        }
        return bytes
    }
}
