/// Error codes of the Care Relay Protocol. Each failure a client can cause has its own
/// code, so that a client can act on it without parsing the reason text. The numbering and
/// meanings are specified in Protocols/CRP.md, section "Error codes".
public enum ErrorCode: Int, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case malformedMessage = 400
    case badSignature = 401
    case unsupportedVersion = 402
    case unknownCommand = 403
    case invalidHeader = 404
    case invalidBody = 405
    case schemaViolation = 406
    case invalidNHSNumber = 407
    case unknownAddress = 408
    case messageTooLarge = 409
    case notPermitted = 410
    case subscriptionDenied = 411
    case idempotencyConflict = 412
    case helloRequired = 413
    case unknownMessage = 414
    case invalidTransition = 415
    /// A referral none of whose addressees may receive it under the patient's consent.
    case noPermittedRecipient = 416
    /// A directory change that would leave the directory inconsistent (an unknown team, an id
    /// or email twice, a co-ordinator removed).
    case invalidDirectoryChange = 417
    /// An enrolment code that is unknown, used or expired.
    case enrolmentRefused = 418
    /// Too many malformed commands from one key: the broker ignores it for a while.
    case throttled = 429
    case storeUnavailable = 500
    case shuttingDown = 503

    /// The token used in logs and the CLI ("schema-violation").
    public var name: String {
        switch self {
        case .malformedMessage: "malformed-message"
        case .badSignature: "bad-signature"
        case .unsupportedVersion: "unsupported-version"
        case .unknownCommand: "unknown-command"
        case .invalidHeader: "invalid-header"
        case .invalidBody: "invalid-body"
        case .schemaViolation: "schema-violation"
        case .invalidNHSNumber: "invalid-nhs-number"
        case .unknownAddress: "unknown-address"
        case .messageTooLarge: "message-too-large"
        case .notPermitted: "not-permitted"
        case .subscriptionDenied: "subscription-denied"
        case .idempotencyConflict: "idempotency-conflict"
        case .helloRequired: "hello-required"
        case .unknownMessage: "unknown-message"
        case .invalidTransition: "invalid-transition"
        case .noPermittedRecipient: "no-permitted-recipient"
        case .invalidDirectoryChange: "invalid-directory-change"
        case .enrolmentRefused: "enrolment-refused"
        case .throttled: "throttled"
        case .storeUnavailable: "store-unavailable"
        case .shuttingDown: "shutting-down"
        }
    }

    public var description: String { "\(rawValue) \(name)" }
}

/// A protocol failure: a code and a plain-English reason that tells the sender what to fix.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: ErrorCode
    public let reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}
