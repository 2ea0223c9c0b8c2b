import CareRelayModel
import CareRelayProtocol
import Foundation

/// What the broker keeps of a SEND header besides the body: enough to rebuild the DELIVER
/// header for every recipient, now or after a restart.
struct Envelope: Codable, Sendable {
    var to: [Address]
    var patient: NHSNumber?
    var priority: Priority?
    var labels: [DataCategory]?
    var correlation: String?
    var breakGlass: String?
    var fromName: String
    var onBehalfOf: PersonID?
    /// As the sender stated it; nil for the kind's default.
    var purpose: ConsentPurpose?

    init(_ header: SendHeader, fromName: String) {
        to = header.to
        patient = header.patient
        priority = header.priority
        labels = header.labels
        correlation = header.correlation
        breakGlass = header.breakGlass
        self.fromName = fromName
        onBehalfOf = header.onBehalfOf
        purpose = header.purpose
    }

    // A coder per call. Shared coders are a measured-later candidate: the crash that got a
    // stored-coder codec reverted came from a stale incremental build, not from sharing.
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)).map { [UInt8]($0) } ?? Array("{}".utf8)
    }

    static func decode(_ bytes: [UInt8]) -> Envelope? {
        try? JSONDecoder().decode(Envelope.self, from: Data(bytes))
    }
}

/// A bounded memory of envelopes by message sequence. Emptied whole when full: the common
/// case is a delivery within moments of acceptance, and a miss only costs a decode.
struct RecentEnvelopes {
    private var bySeq: [Int64: Envelope] = [:]
    static let capacity = 16_384

    mutating func remember(_ envelope: Envelope, for seq: Int64) {
        if bySeq.count >= Self.capacity { bySeq.removeAll(keepingCapacity: true) }
        bySeq[seq] = envelope
    }

    subscript(seq: Int64) -> Envelope? { bySeq[seq] }
}

/// Message ids: time-ordered so that ids sort by acceptance, with 64 random bits so that two
/// brokers (or a restarted one) never reuse one.
enum MessageID {
    static func make(at now: Date) -> String {
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let random = UInt64.random(in: 0...UInt64.max)
        return "m" + String(millis, radix: 36) + "-" + String(random, radix: 36)
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let careRelay: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
