import CareRelayFuzzing
import Foundation

/// The figures table, and the list of properties that failed.
struct Report {
    var rows: [(property: String, measure: String, value: String)] = []
    var failures: [String] = []

    mutating func add(_ property: String, _ measure: String, _ value: String) {
        rows.append((property, measure, value))
    }

    /// Records a figure that must be zero (or a condition that must hold).
    mutating func require(_ property: String, _ measure: String, _ value: Int, mustBe expected: Int = 0) {
        add(property, measure, "\(value)")
        if value != expected { failures.append("\(property): \(measure) is \(value), expected \(expected)") }
    }

    mutating func tally(_ property: String, _ tally: Ledger.Tally) {
        add(property, "messages accepted (ACCEPTED seen by senders)", "\(tally.accepted)")
        require(property, "losses (accepted, never delivered)", tally.lost)
        require(property, "duplicates (one send delivered as two messages, or handed over twice by one client)", tally.duplicates)
        require(property, "deliveries never acknowledged to a sender", tally.phantoms)
    }

    mutating func crash(_ f: CrashSoak.Figures) {
        let p = "crash safety"
        if f.nodes > 1 { add(p, "broker nodes sharing one store (each kill takes one at random)", "\(f.nodes)") }
        add(p, "SIGKILLs survived", "\(f.kills)")
        if f.databaseRestarts > 0 { add(p, "database restarts under load (pg_ctl -m immediate, up again 2 s later)", "\(f.databaseRestarts)") }
        add(p, "audit chain verifications passed (after every kill and at the end)", "\(f.auditVerifications)")
        require(p, "audit chain failures", f.auditFailures.count)
        failures += f.auditFailures
        tally(p, f.tally)
        add(p, "redeliveries after an application restart (at-least-once, allowed)", "\(f.tally.redeliveries)")
        add(p, "resends answered with the first answer (ACCEPTED lost in a kill)", "\(f.lateAcknowledgements)")
        require(p, "accepted but not in the store", f.acceptedButNotStored)
        require(p, "messages stored for the recipient minus messages accepted", f.storedMessages - f.tally.accepted)
        require(p, "unexpected refusals", f.unexpectedRefusals.values.reduce(0, +))
        add(p, "receiving application restarts", "\(f.receiverRestarts)")
        add(p, "duration", String(format: "%.0f s", f.seconds))
    }

    mutating func store(_ f: StoreFailureSoak.Figures) {
        let p = "store failure (disk full)"
        guard f.ran else {
            add(p, "not run", f.notRunReason ?? "")
            return
        }
        add(p, "accepted before the disk filled", "\(f.acceptedBeforeFull)")
        add(p, "accepted while filling (space left inside SQLite's files)", "\(f.acceptedWhileFilling)")
        add(p, "refused store-unavailable while full", "\(f.refusedWhileFull)")
        add(p, "refusal reason", f.refusalReason)
        require(p, "stored messages not delivered while the disk was full", f.expectedWhileFull - f.deliveredWhileFull)
        add(p, "delivered while the disk was full", "\(f.deliveredWhileFull)")
        require(p, "refused keys not accepted after space returned (no restart)", f.refusedWhileFull - f.refusedKeysAcceptedAfterRecovery)
        add(p, "first acceptance after space returned", String(format: "%.2f s", f.recoverySeconds))
        require(p, "new sends refused after recovery", 200 - f.acceptedAfterRecovery)
        tally(p, f.tally)
        require(p, "accepted but not in the store", f.acceptedButNotStored)
        require(p, "audit chain broken at the end", f.auditIntact ? 0 : 1)
    }

    mutating func consumers(_ f: ConsumerSoak.Figures) {
        let p = "slow and dead consumers"
        add(p, "well-behaved pair alone", String(format: "%.0f msg/s", f.alone.rate))
        add(
            p, "the same pair beside a consumer that stopped reading",
            String(
                format: "%.0f msg/s (%.0f%%)", f.withStalledConsumer.rate,
                100 * f.withStalledConsumer.rate / max(f.alone.rate, 1)))
        add(p, "the same pair alone again afterwards (run-to-run noise)", String(format: "%.0f msg/s", f.aloneAgain.rate))
        tally(p + ", pair", f.alone.tally)
        tally(p + ", pair beside the stalled consumer", f.withStalledConsumer.tally)
        add(
            p, "broker RSS by backlog of the stalled consumer", f.memory.map { "\($0.backlog): \($0.residentKiB / 1024) MiB" }.joined(separator: "; ")
        )
        require(p, "messages the vanished consumer did not get on return", f.vanishedExpected - f.vanishedReceived)
        add(p, "messages it got on return (of \(f.vanishedExpected))", String(format: "%d in %.1f s", f.vanishedReceived, f.vanishedSeconds))
        require(p, "duplicates it was handed", f.vanishedDuplicates)
    }

    mutating func hostile(_ f: HostileSoak.Figures) {
        let p = "hostile client"
        add(p, "malformed, oversized and out-of-order commands fired", "\(f.hostileCommands) (\(f.oversized) oversized), \(f.answers) answers read")
        add(
            p, "well-behaved pair alone / beside it",
            String(format: "%.0f / %.0f msg/s (%.0f%%)", f.alone.rate, f.pair.rate, 100 * f.pair.rate / max(f.alone.rate, 1)))
        tally(p + ", pair", f.pair.tally)
        require(p, "broker process down at the end", f.brokerAlive ? 0 : 1)
    }

    /// The bounds RELIABILITY.md and CRP.md's security considerations promise under attack.
    static let attackMemoryBoundMiB = 256
    static let attackP99BoundMilliseconds = 250.0

    mutating func attack(_ p: String, _ f: AttackFigures) {
        for (measure, value) in f.detail { add(p, measure, value) }
        add(p, "broker RSS before / peak (VmHWM) / after", "\(f.rssBeforeKiB / 1024) / \(f.peakRSSKiB / 1024) / \(f.rssAfterKiB / 1024) MiB")
        require(p, "peak RSS over \(Self.attackMemoryBoundMiB) MiB", f.peakRSSKiB / 1024 > Self.attackMemoryBoundMiB ? 1 : 0)
        add(p, "well-behaved SEND -> ACCEPTED alone", f.baseline.summary)
        add(p, "well-behaved SEND -> ACCEPTED during the attack", f.during.summary)
        let p99 = f.during.percentile(99)
        require(
            p, "p99 during the attack over \(Int(Self.attackP99BoundMilliseconds)) ms (or nothing measured)",
            p99.isNaN || p99 > Self.attackP99BoundMilliseconds ? 1 : 0)
        require(p, "well-behaved sends unanswered during the attack", f.during.failures)
        require(p, "broker process down at the end", f.brokerAlive ? 0 : 1)
        require(p, "broker not serving at the end (a new client's referral not accepted)", f.servingAtEnd ? 0 : 1)
    }

    mutating func fuzz(_ f: FuzzCampaign.Report) {
        let p = "decoder fuzz (seeded generator)"
        add(p, "inputs tried", String(format: "%d in %.0f s (%d decoded, %d refused)", f.inputs, f.seconds, f.accepted, f.refused))
        add(p, "crashes", "0 (a crash ends the run)")
        require(p, "round-trip mismatches", f.mismatchCount)
        for mismatch in f.mismatches { failures.append("fuzz: \(mismatch.reason): input \(mismatch.inputHex)") }
    }

    func print() {
        Swift.print("| property | measure | value |")
        Swift.print("|---|---|---|")
        for row in rows { Swift.print("| \(row.property) | \(row.measure) | \(row.value) |") }
    }
}
