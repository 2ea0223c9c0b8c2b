import ArgumentParser
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import ZeroMQ

/// How long a broker process takes to serve, and what it holds in memory once it does.
struct BrokerStart {
    /// From launch to the "listening on" line.
    var secondsToListening: Double
    /// From launch to the first HELLO answered (the GP's WELCOME): the broker is serving.
    var secondsToServing: Double
    /// VmRSS right after that WELCOME: start-up work (waking mailboxes) is done by then.
    var residentBytes: Int

    /// Starts a broker on the system's store and measures it; the broker is left running.
    static func measure(_ system: CareSystemFiles) throws -> (ServerProcess, BrokerStart) {
        let broker = try ServerProcess.broker(system)
        _ = try system.connection(CareSystemFiles.gp, in: try ZMQContext(), endpoint: broker.endpoint, receive: false)
        let serving = seconds(since: broker.launchedAt)
        return (
            broker,
            BrokerStart(
                secondsToListening: broker.secondsToListening, secondsToServing: serving,
                residentBytes: broker.residentBytes)
        )
    }
}

/// Fills a store with accepted, undelivered referrals, as if a GP had sent them while their
/// recipients were away. Each recipient's first referral goes through a real broker, so its
/// envelope, delivery decision, referral record and audit lines are the broker's own; the rest
/// are copies of it written with the store API in large transactions (the broker's durable
/// path would take minutes for a million; see the durable figure for its rate).
enum QueuedMailFill {
    static let batch = 5_000

    /// One referral per recipient through the running broker. Returns the message ids.
    static func sendFirstReferrals(_ system: CareSystemFiles, recipients: [PersonID], endpoint: String, bodyBytes: Int) throws -> [String] {
        let gp = try system.connection(CareSystemFiles.gp, in: try ZMQContext(), endpoint: endpoint, receive: false)
        let codec = CRPCodec()
        let patients = nhsNumbers(count: recipients.count)
        for (index, recipient) in recipients.enumerated() {
            let body = ReferralBody.padded(patient: patients[index], from: CareSystemFiles.gp, to: recipient, bytes: bodyBytes)
            let header = SendHeader(key: "first-\(index)", kind: .referral, to: [.person(recipient)], patient: patients[index])
            _ = try gp.send(codec.encode(.send(header, body: body)))
        }
        var ids: [String: String] = [:]
        while ids.count < recipients.count {
            guard let reply = try gp.receive() else { throw ValidationError("the broker stopped answering SENDs") }
            guard case .accepted(let accepted) = try codec.decodeBrokerCommand(reply.frames[...]) else {
                throw ValidationError("a referral was refused: \(reply.frames.map { String(decoding: $0, as: UTF8.self) })")
            }
            ids[accepted.key] = accepted.id
        }
        return recipients.indices.compactMap { ids["first-\($0)"] }
    }

    /// Adds `copies` copies of each first referral, round-robin over recipients as real
    /// traffic would interleave them. The store must not be open in a broker.
    static func copy(_ firstIDs: [String], copies: Int, storePath: String) throws {
        let store = try SQLiteStore(path: storePath)
        // The broker starts next on this file: it must have it to itself.
        defer { store.close() }
        let originals = try firstIDs.map { try QueuedReferral(id: $0, in: store) }
        var pending: [NewMessage] = []
        pending.reserveCapacity(batch)
        for round in 0..<copies {
            let now = Date()
            for (index, original) in originals.enumerated() {
                pending.append(original.copy(key: "copy-\(round)-\(index)", at: now))
                if pending.count == batch {
                    _ = try store.accept(pending, at: now)
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
        if !pending.isEmpty { _ = try store.accept(pending) }
    }
}

/// A referral as the broker stored it, read back so that it can be stored again under new ids.
struct QueuedReferral {
    let stored: StoredMessage
    let deliveries: [PlannedDelivery]
    let referral: ReferralRecord?
    let audit: [AuditEntry]

    init(id: String, in store: SQLiteStore) throws {
        guard let stored = try store.message(id: id), let tracking = try store.tracking(id: id) else {
            throw ValidationError("message \(id) is not in the store")
        }
        let audit = try store.audit(.init(message: id)).map(\.entry)
        self.stored = stored
        self.audit = audit
        referral = tracking.referral
        // The routing decision for each recipient, with the rule its audit line names.
        deliveries = tracking.recipients.map { recipient in
            let line = audit.first { $0.recipient == recipient.person.rawValue }
            return PlannedDelivery(
                recipient: recipient.person, decision: PlannedDelivery.Decision(rawValue: recipient.decision) ?? .deliver,
                rule: line?.rule ?? "no-patient-data")
        }
    }

    func copy(key: String, at now: Date) -> NewMessage {
        let id = Self.messageID(at: now)
        var record = referral
        record?.messageID = id
        record?.updatedAt = now
        record?.deadline = referral?.deadline.map { now.addingTimeInterval($0.timeIntervalSince(referral?.updatedAt ?? now)) }
        return NewMessage(
            id: id, key: key, kind: stored.kind, sender: stored.sender, envelope: stored.envelope, patient: stored.patient,
            correlation: nil, body: stored.body, bodyHash: Self.randomFingerprint(), acceptedAt: now,
            deliveries: deliveries, referral: record,
            audit: audit.map { line in
                var copy = line
                copy.message = id
                copy.at = now
                return copy
            })
    }

    /// The broker's id format: time-ordered, then 64 random bits.
    private static func messageID(at now: Date) -> String {
        "m" + String(UInt64(now.timeIntervalSince1970 * 1000), radix: 36) + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// A content fingerprint only matters to a resend with the same key, which a copy never
    /// has; random bytes of the same size keep the row the size the broker writes.
    private static func randomFingerprint() -> [UInt8] {
        (0..<4).flatMap { _ in withUnsafeBytes(of: UInt64.random(in: 0...UInt64.max)) { Array($0) } }
    }
}

/// A broker restarted on a store holding `recipients × mailbox` queued referrals, beside the
/// same broker started on an empty store in the same run.
enum RestartWithQueuedMail {
    struct Result {
        var empty: BrokerStart
        var queued: BrokerStart
        var messages: Int
        var fillSeconds: Double
        var storeBytes: Int
        /// One recipient connecting after the restart: until their whole mailbox arrived.
        var secondsToDrainOneMailbox: Double
        var mailbox: Int
    }

    static func run(recipients: Int, mailbox: Int, bodyBytes: Int) throws -> Result {
        let system = try CareSystemFiles(staff: recipients)
        defer { system.remove() }
        // Both starts measured are restarts after a crash (SIGKILL of a serving broker, the
        // page cache still warm), as BENCHMARKS.md's target puts it. The first start creates the
        // store; the baseline is the restart on that empty store.
        try ServerProcess.broker(system).crash()
        let (emptyBroker, empty) = try BrokerStart.measure(system)
        let firstIDs = try QueuedMailFill.sendFirstReferrals(system, recipients: system.staff, endpoint: emptyBroker.endpoint, bodyBytes: bodyBytes)
        emptyBroker.stop()

        let fillStart = ContinuousClock.now
        try QueuedMailFill.copy(firstIDs, copies: mailbox - 1, storePath: system.storePath)
        let fillSeconds = seconds(since: fillStart)
        let storeBytes = Self.storeBytes(system.storePath)

        try ServerProcess.broker(system).crash()
        let (broker, queued) = try BrokerStart.measure(system)
        defer { broker.stop() }
        let drain = try Self.drainMailbox(of: system.staff[0], system: system, endpoint: broker.endpoint, expected: mailbox)
        return Result(
            empty: empty, queued: queued, messages: recipients * mailbox, fillSeconds: fillSeconds,
            storeBytes: storeBytes, secondsToDrainOneMailbox: drain, mailbox: mailbox)
    }

    /// Connects as an inbox client (credit 64, confirming as it goes) and times the mailbox.
    private static func drainMailbox(of person: PersonID, system: CareSystemFiles, endpoint: String, expected: Int) throws -> Double {
        let start = ContinuousClock.now
        let socket = try system.connection(person, in: try ZMQContext(), endpoint: endpoint, receive: true, credit: 64)
        let arrivals = Arrivals()
        startReceiver(socket, count: expected, arrivals: arrivals).wait()
        let elapsed = seconds(since: start)
        guard arrivals.all.count == expected else {
            throw ValidationError("\(person) received \(arrivals.all.count) of \(expected) queued messages")
        }
        return elapsed
    }

    /// The store with its WAL and shared-memory files.
    private static func storeBytes(_ path: String) -> Int {
        ["", "-wal", "-shm"].reduce(0) { total, suffix in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int) ?? 0)
        }
    }
}

extension Table {
    mutating func addRestart(_ restart: RestartWithQueuedMail.Result) {
        let empty = restart.empty, queued = restart.queued, messages = restart.messages
        add(
            "broker restart after a crash, empty store: to listening / to serving", nil,
            unit: String(format: "%.0f / %.0f ms", empty.secondsToListening * 1000, empty.secondsToServing * 1000), extra: "baseline")
        add("broker RSS serving, empty store", empty.residentBytes.mebibytes, unit: "MiB", extra: "baseline")
        add(
            "store filled: \(messages) referrals queued for \(messages / restart.mailbox) people", Double(messages) / restart.fillSeconds,
            unit: "msg/s",
            extra: String(format: "store %.2f GB, store API in transactions of %d", Double(restart.storeBytes) / 1e9, QueuedMailFill.batch))
        add(
            "broker restart after a crash, \(messages) queued: to listening", queued.secondsToListening * 1000, unit: "ms",
            ratio: queued.secondsToListening / empty.secondsToListening, ratioOf: "empty store")
        add(
            "broker restart after a crash, \(messages) queued: to serving (first HELLO answered)", queued.secondsToServing * 1000, unit: "ms",
            ratio: queued.secondsToServing / empty.secondsToServing, ratioOf: "empty store")
        add(
            "broker RSS serving, \(messages) queued", queued.residentBytes.mebibytes, unit: "MiB",
            ratio: Double(queued.residentBytes) / Double(empty.residentBytes), ratioOf: "empty store")
        add(
            "  one recipient's \(restart.mailbox) queued referrals delivered after the restart", restart.secondsToDrainOneMailbox * 1000, unit: "ms",
            extra: String(format: "%.0f msg/s, credit 64, confirming as received", Double(restart.mailbox) / restart.secondsToDrainOneMailbox))
    }
}
