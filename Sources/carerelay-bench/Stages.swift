import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation

/// What each stage of the durable path costs alone, in one thread: the parts the broker's
/// loop does for every referral, timed in isolation so that a change to one shows.
enum StageCosts {
    struct Stage { var name: String; var microseconds: Double }
    /// A stage that did not do its work: timing it would measure nothing.
    struct NotDone: Error, CustomStringConvertible { var description: String }

    static func run(bodyBytes: Int, iterations: Int) throws -> [Stage] {
        let patient = nhsNumbers(count: 1)[0]
        let body = ReferralBody.padded(patient: patient, from: "gp.bench", to: "sw.bench", bytes: bodyBytes)
        let codec = CRPCodec()
        let header = SendHeader(key: "k1", kind: .referral, to: [.person("sw.bench")], patient: patient)
        let sendFrames = codec.encode(.send(header, body: body))
        let deliver = DeliverHeader(
            id: "01JDXYZ", recipient: "sw.bench", kind: .referral, from: "gp.bench", fromName: "Dr Bench", to: [.person("sw.bench")],
            patient: patient, priority: .routine, labels: nil, correlation: nil, sentAt: "2026-11-23T10:00:00.000Z",
            redacted: nil, override: nil, topic: nil, attempt: 1)
        let accepted = Accepted(
            key: "k1", id: "01JDXYZ", duplicate: false,
            recipients: [RecipientOutcome(person: "sw.bench", decision: .deliver, reason: nil)], req: nil)
        let now = Date()
        let record = ReferralRecord(
            messageID: "01JDXYZ", referrer: "gp.bench", team: nil, patient: patient, status: .sent,
            deadline: now.addingTimeInterval(86_400), updatedAt: now)
        let entry = AuditEntry(
            at: now, actor: "gp.bench", action: .deliver, patient: patient.digits, message: "01JDXYZ",
            recipient: "sw.bench", decision: "route:deliver", rule: "direct-care", detail: nil)
        var sink = 0
        func time(_ name: String, _ body: () throws -> Int) rethrows -> Stage {
            for _ in 0..<(iterations / 10) { sink &+= try body() }
            let start = ContinuousClock.now
            for _ in 0..<iterations { sink &+= try body() }
            return Stage(name: name, microseconds: seconds(since: start) * 1e6 / Double(iterations))
        }
        var stages: [Stage] = []
        // Each decoding stage beside the same bytes parsed by JSONSerialization with no schema
        // and no Codable: what JSON itself costs here, against what the typed checks add.
        let headerData = Data(sendFrames[2]), bodyData = Data(body)
        stages.append(
            try time("decode a SEND command (frames, strict header)") {
                guard case .send(_, let b) = try codec.decodeClientCommand(sendFrames[...]) else {
                    throw NotDone(description: "the SEND did not decode as one")
                }
                return b.count
            })
        stages.append(
            try time("  baseline: parse the same header, untyped (JSONSerialization)") {
                (try JSONSerialization.jsonObject(with: headerData) as? [String: Any])?.count ?? 0
            })
        stages.append(
            try time("validate a referral body against its schema") {
                guard case .referral(let r) = try MessageBody.decode(kind: .referral, json: body) else {
                    throw NotDone(description: "the body did not decode as a referral")
                }
                return r.reasonText.utf8.count
            })
        stages.append(
            try time("  baseline: parse the same body, untyped (JSONSerialization)") {
                (try JSONSerialization.jsonObject(with: bodyData) as? [String: Any])?.count ?? 0
            })
        stages.append(time("encode ACCEPTED") { codec.encode(.accepted(accepted)).count })
        stages.append(time("encode DELIVER (header and body)") { codec.encode(.deliver(deliver, body: body)).count })
        stages.append(try time("encode the referral record (store)") { try JSONEncoder().encode(record).count })
        stages.append(
            time("hash one audit line") {
                AuditChain.hash(previous: AuditChain.genesis.hash, seq: 42, atMillis: 1, entry: entry).count
            })
        stages.append(contentsOf: try storeStages(body: body, patient: patient, batch: 500, batches: max(2, iterations / 2_000)))
        // As the loop forms them at 1,000 msg/s: the same rows, five to a transaction.
        stages.append(contentsOf: try storeStages(body: body, patient: patient, batch: 5, batches: max(2, iterations / 20)))
        if sink == 42 { print("") }  // keeps the work from being optimised away
        return stages
    }

    /// The store's share, per message, in batches of `batch`: about 500 at saturation, about
    /// five at 1,000 msg/s, where each commit's fixed cost is shared by few messages.
    static func storeStages(body: [UInt8], patient: NHSNumber, batch: Int, batches: Int) throws -> [Stage] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-stages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("store.sqlite").path)
        defer { store.close() }
        var accept = Duration.zero, deliver = Duration.zero, confirm = Duration.zero
        let envelope = Array(
            #"{"from":"gp.bench","fromName":"gp.bench","kind":"referral","patient":"\#(patient.digits)","to":["person:sw.bench"]}"#.utf8)
        for round in 0..<batches {
            let now = Date()
            let messages = (0..<batch).map { index -> NewMessage in
                let id = "m\(round)-\(index)"
                return NewMessage(
                    id: id, key: "k\(round)-\(index)", kind: .referral, sender: "gp.bench", envelope: envelope, patient: patient,
                    correlation: nil, body: body, bodyHash: Array(repeating: UInt8(index % 256), count: 32), acceptedAt: now,
                    deliveries: [PlannedDelivery(recipient: "sw.bench", decision: .deliver, rule: "direct-care")],
                    referral: ReferralRecord(
                        messageID: id, referrer: "gp.bench", team: nil, patient: patient, status: .sent,
                        deadline: now.addingTimeInterval(86_400), updatedAt: now),
                    careTeamLinks: [.person("gp.bench")],
                    audit: [
                        AuditEntry(at: now, actor: "gp.bench", action: .accept, patient: patient.digits, message: id, detail: "referral"),
                        AuditEntry(
                            at: now, actor: "gp.bench", action: .deliver, patient: patient.digits, message: id,
                            recipient: "sw.bench", decision: "route:deliver", rule: "direct-care"),
                    ])
            }
            var start = ContinuousClock.now
            let outcomes = try store.accept(messages, at: now)
            accept += ContinuousClock.now - start
            let seqs = outcomes.compactMap { outcome -> Int64? in if case .stored(let seq) = outcome { seq } else { nil } }
            guard seqs.count == batch else { throw NotDone(description: "the store kept \(seqs.count) of \(batch) referrals") }
            start = ContinuousClock.now
            try store.recordDeliveries(
                sent: seqs.map { ($0, PersonID("sw.bench")) }, withheld: [],
                audit: messages.map {
                    AuditEntry(
                        at: now, actor: "carerelay", action: .deliver, patient: patient.digits, message: $0.id,
                        recipient: "sw.bench", decision: "deliver:deliver", rule: "direct-care")
                }, at: now)
            deliver += ContinuousClock.now - start
            start = ContinuousClock.now
            let confirmed = try store.confirm(recipient: "sw.bench", ids: messages.map(\.id), at: now)
            guard confirmed.count == batch else { throw NotDone(description: "\(confirmed.count) of \(batch) deliveries confirmed") }
            confirm += ContinuousClock.now - start
        }
        func perMessage(_ total: Duration) -> Double {
            (Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18) * 1e6 / Double(batch * batches)
        }
        return [
            Stage(
                name:
                    "store a referral in a synced batch of \(batch) (message, delivery, referral, care team, 2 audit lines; wall time, fsync included)",
                microseconds: perMessage(accept)),
            Stage(name: "record its delivery (unsynced, the same batches, 1 audit line)", microseconds: perMessage(deliver)),
            Stage(name: "record its confirmation (the same batches)", microseconds: perMessage(confirm)),
        ]
    }
}
