import Foundation

/// How much malformed input one key may send before the broker stops listening to it.
///
/// Every malformed command is answered with its own error code (a client must be able to
/// see what it got wrong), but answering costs a JSON parse, a reply and a log line, so a
/// client that sends garbage at full speed would otherwise set the pace for everyone. Each
/// key (the CURVE key its connections authenticated with, shared by all of them, so that
/// reconnecting does not reset it) has a budget of refusals that refills at a steady rate.
/// The refusal that empties it is answered, followed by `429 throttled`; from then on the
/// key's commands, on every connection, are read off the socket and dropped undecoded and
/// unanswered for `ignoreSeconds`, and its sessions end (unconfirmed deliveries return to
/// the mailbox). Only commands the codec cannot read count (400-409: frames, signature,
/// command name, header); well-formed commands refused by policy or state (410, 411, 413,
/// 414...) never do, so a well-behaved client never comes near this. A flood of well-formed
/// commands is bounded by the per-connection queue (ZMQ_RCVHWM) and TCP instead.
public struct RefusalLimits: Sendable, Equatable {
    /// Refusals a key may have in a burst.
    public var burst: Int
    /// How fast the budget refills, refusals per second.
    public var perSecond: Double
    /// How long an over-budget key is ignored.
    public var ignoreSeconds: TimeInterval

    public init(burst: Int = 100, perSecond: Double = 20, ignoreSeconds: TimeInterval = 30) {
        self.burst = burst
        self.perSecond = perSecond
        self.ignoreSeconds = ignoreSeconds
    }
}

/// The per-key accounts of `RefusalLimits`. Only keys that have been refused are held, and
/// only authenticated keys reach the broker's loop, so this holds at most one small record
/// per person in the directory; `sweep` drops records that have refilled.
struct RefusalBudget {
    let limits: RefusalLimits
    private struct Account {
        var tokens: Double
        var updated: Date
        var ignoredUntil: Date?
    }
    private var accounts: [String: Account] = [:]

    init(limits: RefusalLimits) { self.limits = limits }

    enum Verdict: Equatable {
        /// Answer the refusal as usual.
        case answer
        /// Answer it, then say 429 and start ignoring the key.
        case answerAndThrottle
    }

    /// Whether commands from `key` are being ignored now.
    mutating func isIgnored(_ key: String, now: Date) -> Bool {
        guard let until = accounts[key]?.ignoredUntil else { return false }
        if now < until { return true }
        // The time is up: a fresh budget, as if nothing had happened.
        accounts[key] = nil
        return false
    }

    /// Counts one refused malformed command from `key`.
    mutating func charge(_ key: String, now: Date) -> Verdict {
        var account = accounts[key] ?? Account(tokens: Double(limits.burst), updated: now)
        account.tokens = min(Double(limits.burst), account.tokens + max(0, now.timeIntervalSince(account.updated)) * limits.perSecond)
        account.updated = now
        account.tokens -= 1
        let verdict: Verdict
        if account.tokens < 0 {
            account.ignoredUntil = now.addingTimeInterval(limits.ignoreSeconds)
            verdict = .answerAndThrottle
        } else {
            verdict = .answer
        }
        accounts[key] = account
        return verdict
    }

    /// Forgets keys whose budget has refilled and that are not being ignored.
    mutating func sweep(now: Date) {
        accounts = accounts.filter { _, account in
            if let until = account.ignoredUntil { return now < until }
            return account.tokens + now.timeIntervalSince(account.updated) * limits.perSecond < Double(limits.burst)
        }
    }

    /// Keys being ignored now, for the operations status.
    func ignoredCount(now: Date) -> Int {
        accounts.values.filter { ($0.ignoredUntil ?? .distantPast) > now }.count
    }
}
