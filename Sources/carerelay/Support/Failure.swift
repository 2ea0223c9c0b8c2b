import CareRelayClient
import CareRelayProtocol
import Foundation

/// Exit codes, after BSD sysexits(3) where one fits. Documented in `carerelay --help`.
enum Exit {
    static let ok: Int32 = 0
    /// The audit trail is not intact (audit verify).
    static let auditBroken: Int32 = 1
    /// The command line was wrong: a missing option, an invalid NHS number, a body that does
    /// not pass validation. Nothing was sent.
    static let usage: Int32 = 64
    /// The broker refused the request (its error code name and reason are printed).
    static let rejected: Int32 = 65
    /// Accepted, but at least one recipient will receive nothing (withheld by consent), or,
    /// as its sender, you asked how a recipient sees a message withheld from them.
    static let withheld: Int32 = 66
    /// No answer: the broker is down or unreachable, or the broker key configured is wrong.
    static let unavailable: Int32 = 69
    /// The broker answered something this client did not understand.
    static let software: Int32 = 70
    /// A local file could not be read or written.
    static let ioError: Int32 = 74
    /// The broker refused our key (not in the directory, revoked or rotated).
    static let noPermission: Int32 = 77
    /// Configuration is missing or wrong (endpoint, broker key, identity key file).
    static let config: Int32 = 78

    static let help = """
        EXIT CODES
          0   success
          1   audit verify: the audit trail is not intact
          64  usage error: bad option, invalid NHS number or address,
              invalid body file; nothing was sent to the broker
          65  the broker refused the request; its error code
              (e.g. not-permitted, invalid-transition) and reason are printed
          66  accepted, but some recipients receive nothing (withheld by
              consent); or the recipient you asked about (--as) may not read it
          69  no answer from the broker: it is down or unreachable, or the
              broker key in your configuration is not the broker's
          70  the broker answered something this client does not understand
          74  a local file could not be read or written
          77  the broker refused your key: it is not in the directory
              (never enrolled, revoked, or replaced by a new one)
          78  configuration missing or wrong (endpoint, broker key, identity)
        """
}

/// A failure the command reports itself: a message, what to do next, and an exit code.
struct Failure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var hint: String?

    init(_ code: Int32, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    var description: String { message }

    static func usage(_ message: String, hint: String? = nil) -> Failure { Failure(Exit.usage, message, hint: hint) }

    /// Maps a client library error to what the user reads and the exit code.
    static func from(_ error: ClientError) -> Failure {
        switch error {
        case .rejected(let failure):
            return Failure(
                Exit.rejected, "refused by the broker: \(failure.code.name) (\(failure.code.rawValue)): \(failure.reason)",
                hint: hint(for: failure.code))
        case .noAnswer(let endpoint, let attempts):
            return Failure(
                Exit.unavailable, "no answer from the broker at \(endpoint) after \(attempts) attempt\(attempts == 1 ? "" : "s")",
                hint:
                    "Check that the broker is running and the endpoint is right (carerelay config show), and that the broker key is the broker's current public key."
            )
        case .keyRefused(let endpoint):
            return Failure(
                Exit.noPermission, "the broker at \(endpoint) refused your key: it is not in the directory",
                hint:
                    "Ask your directory administrator for an enrolment code and run carerelay enrol CODE; if you had access before, your key may have been revoked or replaced."
            )
        case .transport(let why):
            return Failure(
                Exit.unavailable, "cannot reach the broker: \(why)",
                hint: "Check the endpoint (carerelay config show); it looks like tcp://HOST:PORT.")
        case .unexpectedAnswer(let what):
            return Failure(
                Exit.software, "the broker answered something this client does not understand: \(what)",
                hint: "The broker and this client may be different versions; carerelay status shows the broker's version.")
        }
    }

    static func hint(for code: ErrorCode) -> String? {
        switch code {
        case .notPermitted: "Your roles come from the directory; ask your care co-ordinator or the directory administrator if you should be allowed."
        case .unknownAddress:
            "Check the address against the directory: carerelay directory teams (or people) --search TEXT lists what there is (person:ID, team:ID, role:TEAM/ROLE, careteam:NHS, mdt:TEAM)."
        case .invalidTransition: "carerelay referral track ID shows where the referral stands now."
        case .noPermittedRecipient:
            "If the patient agrees to the referral, send it with --patient-agreed; carerelay consent show --patient NHS shows their directives."
        case .unknownMessage: "Check the message id (carerelay referral inbox lists yours)."
        case .schemaViolation, .invalidBody, .invalidHeader: "Fix the field named above and send again; use the same --key to make the resend safe."
        case .idempotencyConflict: "This --key was already used for a different message; choose a new key."
        case .storeUnavailable, .shuttingDown: "The broker cannot take messages right now; try again shortly with the same --key."
        case .subscriptionDenied: "carerelay watch without --topic shows what is addressed to you; topics you may watch depend on your teams."
        default: nil
        }
    }
}
