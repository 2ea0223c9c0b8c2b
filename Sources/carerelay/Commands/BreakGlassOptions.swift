import ArgumentParser
import Foundation

/// `--break-glass "reason"`: an emergency override of the patient's consent on a command that
/// sends their information (CRP.md section 10.3). The broker delivers to recipients the
/// policy would withhold from, audits the override with the reason and tells the patient's
/// care co-ordinators. Because it overrides what the patient decided, the client says so and
/// asks first: on a terminal, the person types YES; anywhere else, `--yes` says it.
struct BreakGlassOptions: ParsableArguments {
    @Option(
        name: .customLong("break-glass"),
        help: ArgumentHelp(
            "Emergency override of the patient's consent, with your reason (at least 10 characters). Audited; their co-ordinator is told.",
            valueName: "reason"))
    var reason: String?
    @Flag(help: "With --break-glass: confirm the override without being asked (for scripts).") var yes = false

    /// The reason to send, once the person has confirmed the override; nil without one.
    /// `reading`: the override is to read one's own copy whole, not to send.
    func confirmed(reading: Bool = false) throws -> String? {
        guard let reason else {
            if yes { throw Failure.usage("--yes confirms an emergency override: it goes with --break-glass \"reason\"") }
            return nil
        }
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Failure.usage("--break-glass needs your reason: why the patient's consent must be overridden now")
        }
        if yes { return reason }
        let what =
            reading
            ? "you will read what they have not agreed to your seeing"
            : "recipients they have not agreed to will receive this"
        let warning = """
            You are about to override the patient's consent: \(what). Your reason \
            ("\(Terminal.safe(reason, singleLine: true))") goes into the audit trail, and the patient's \
            care co-ordinator is told at once.
            """
        guard isatty(STDIN_FILENO) == 1 else {
            throw Failure.usage(
                "an emergency override needs confirming: add --yes (nothing was \(reading ? "read" : "sent"))", hint: warning)
        }
        Console.err(warning)
        FileHandle.standardError.write(Data("Type YES to override, anything else to stop: ".utf8))
        guard readLine()?.trimmingCharacters(in: .whitespaces) == "YES" else {
            throw Failure.usage("not confirmed: nothing was \(reading ? "read" : "sent")")
        }
        return reason
    }

    /// What the sender is told once the override is accepted.
    static func accepted() {
        Console.out(
            "Emergency override: each recipient it reached is an audit line with your reason, and the patient's care co-ordinators are told.")
    }

    /// What the reader is told when the broker showed them what consent had withheld.
    static func read() {
        Console.out("Emergency override: this read is an audit line with your reason, and the patient's care co-ordinators are told.")
    }
}
