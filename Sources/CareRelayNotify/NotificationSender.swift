import CareRelayModel
import CareRelayStore
import CoreMetrics
import Foundation
import Logging
import Synchronization

/// When to try a notification again after a temporary failure: the delay after each attempt;
/// after the last, it is recorded as failed.
public struct RetrySchedule: Sendable, Equatable {
    public var delays: [TimeInterval]

    /// Half a minute, 2 and 10 minutes, half an hour, 2 hours: a relay down for a morning is
    /// ridden out, and someone is told (status, metric, log) before the day is over.
    public static let standard = RetrySchedule(delays: [30, 120, 600, 1_800, 7_200])

    public init(delays: [TimeInterval]) { self.delays = delays }

    /// When to try again after `attempts` attempts, nil when they are used up.
    public func retryAt(after attempts: Int, now: Date) -> Date? {
        guard attempts >= 1, attempts <= delays.count else { return nil }
        return now.addingTimeInterval(delays[attempts - 1])
    }
}

/// Sends what the outbox holds, on a thread of its own beside the broker's loop: it claims due
/// notifications, hands each to its channel's transport (several at once, each bounded by
/// the transport's time-out), and records what became of it. A slow or dead relay delays
/// only notifications, never routing. Daily digests due together for one address go as one
/// email.
public final class NotificationSender: Sendable {
    public struct Options: Sendable {
        public var retry: RetrySchedule = .standard
        /// How long a claimed notification is held before another sender may take it: longer
        /// than any transport's time-out.
        public var lease: TimeInterval = 120
        /// How often to look for notifications queued by other brokers sharing the store.
        public var poll: TimeInterval = 5
        public var batch = 32
        public var clock: @Sendable () -> Date = { Date() }
        public init() {}
    }

    private let openOutbox: @Sendable () throws -> any NotificationOutbox
    private let transports: [NotificationChannelKind: any Transport]
    private let options: Options
    private let logger: Logger
    private let sent: [NotificationChannelKind: Counter]
    private let failed: [NotificationChannelKind: Counter]
    private let retried: [NotificationChannelKind: Counter]
    /// Set by `wake` and `stop`, read by the thread between rounds.
    private let signal = Mutex(Signal())
    private let condition = NSCondition()

    private struct Signal {
        var woken = false
        var stopping = false
        var stopped = false
    }

    public init(
        openOutbox: @escaping @Sendable () throws -> any NotificationOutbox, transports: [NotificationChannelKind: any Transport],
        options: Options = Options(), logger: Logger = Logger(label: "carerelay.notify"), metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.openOutbox = openOutbox
        self.transports = transports
        self.options = options
        self.logger = logger
        func counters(_ label: String) -> [NotificationChannelKind: Counter] {
            Dictionary(
                uniqueKeysWithValues: NotificationChannelKind.allCases.map {
                    ($0, Counter(label: label, dimensions: [("channel", $0.rawValue)], factory: metrics))
                })
        }
        sent = counters("carerelay_notifications_sent_total")
        failed = counters("carerelay_notifications_failed_total")
        retried = counters("carerelay_notification_retries_total")
    }

    /// Starts the sending thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "carerelay-broker.notify"
        thread.start()
    }

    /// Something was queued: look now rather than at the next poll.
    public func wake() {
        condition.lock()
        signal.withLock { $0.woken = true }
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread after the round in progress, and waits for it.
    public func stop() {
        condition.lock()
        signal.withLock { $0.stopping = true }
        condition.broadcast()
        while !signal.withLock({ $0.stopped }) { condition.wait() }
        condition.unlock()
    }

    private func run() {
        defer {
            condition.lock()
            signal.withLock { $0.stopped = true }
            condition.broadcast()
            condition.unlock()
        }
        var outbox: (any NotificationOutbox)?
        while !signal.withLock({ $0.stopping }) {
            var nextLook = options.clock().addingTimeInterval(options.poll)
            do {
                let box = try outbox ?? openOutbox()
                outbox = box
                let claimed = try box.claimNotifications(dueBy: options.clock(), limit: options.batch, lease: options.lease)
                if !claimed.isEmpty {
                    try send(claimed, outbox: box)
                    continue
                }
                if let due = try box.nextNotificationDue() { nextLook = min(nextLook, due) }
            } catch {
                // The store is down or restarting: the notifications wait in it.
                logger.error("notification outbox unavailable; will retry", metadata: ["error": "\(error)"])
                outbox = nil
            }
            sleep(until: nextLook)
        }
    }

    private func sleep(until date: Date) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let state = signal.withLock { state in
                defer { state.woken = false }
                return state
            }
            if state.woken || state.stopping || options.clock() >= date { return }
            _ = condition.wait(until: min(date, Date().addingTimeInterval(options.poll)))
        }
    }

    /// One piece of work: the notifications it covers and what goes out.
    struct Work {
        var records: [ClaimedNotification]
        var dispatch: Dispatch
    }

    /// Groups digests, sends everything at once, and records each outcome.
    private func send(_ claimed: [ClaimedNotification], outbox: any NotificationOutbox) throws {
        let work = Self.work(claimed)
        let results = deliver(work)
        let now = options.clock()
        for (item, result) in zip(work, results) {
            let ids = item.records.map(\.record.id)
            let channel = item.records[0].record.channel
            let attempts = item.records.map(\.attempts).max() ?? 1
            switch result {
            case nil:
                try outbox.notificationsSent(ids, at: now)
                sent[channel]?.increment(by: ids.count)
                logger.info("notification sent", metadata: ["id": "\(item.dispatch.id)", "event": "\(item.dispatch.event)", "channel": "\(channel)"])
            case .retry(let why)?:
                if let again = options.retry.retryAt(after: attempts, now: now) {
                    try outbox.notificationsFailed(ids, error: why, retryAt: again, at: now)
                    retried[channel]?.increment(by: ids.count)
                    logger.warning(
                        "notification not sent; will retry",
                        metadata: ["id": "\(item.dispatch.id)", "attempts": "\(attempts)", "retryAt": "\(again)", "error": "\(why)"])
                } else {
                    try record(
                        failure: "gave up after \(attempts) attempts: \(why)", ids: ids, item: item, channel: channel, outbox: outbox, now: now)
                }
            case .refused(let why)?:
                try record(failure: why, ids: ids, item: item, channel: channel, outbox: outbox, now: now)
            }
        }
    }

    private func record(
        failure: String, ids: [String], item: Work, channel: NotificationChannelKind, outbox: any NotificationOutbox, now: Date
    ) throws {
        try outbox.notificationsFailed(ids, error: failure, retryAt: nil, at: now)
        failed[channel]?.increment(by: ids.count)
        logger.error(
            "notification failed: someone was not told",
            metadata: ["id": "\(item.dispatch.id)", "event": "\(item.dispatch.event)", "error": "\(failure)"])
    }

    /// Each notification as it goes out; digest ones due together for one address as one
    /// email listing them, under an id made from the address and the time they were due.
    static func work(_ claimed: [ClaimedNotification]) -> [Work] {
        var work: [Work] = []
        var digests: [String: [ClaimedNotification]] = [:]
        var order: [String] = []
        for item in claimed {
            let r = item.record
            if r.digest, r.channel == .email {
                let key = "\(r.recipient)|\(r.address)|\(Int(r.dueAt.timeIntervalSince1970))"
                if digests[key] == nil { order.append(key) }
                digests[key, default: []].append(item)
                continue
            }
            work.append(
                Work(
                    records: [item],
                    dispatch: Dispatch(
                        id: r.id, channel: channel(r), subject: r.subject, text: r.text, event: r.event.rawValue, urgent: r.urgent, link: r.link,
                        createdAt: r.createdAt)))
        }
        for key in order {
            guard let items = digests[key], let first = items.first?.record else { continue }
            let lines = items.map { item in
                "- \(item.record.subject)" + (item.record.link.map { "\n  \($0)" } ?? "")
            }
            let count = items.count
            work.append(
                Work(
                    records: items,
                    dispatch: Dispatch(
                        id: "digest.\(first.recipient.replacingOccurrences(of: ":", with: "-")).\(Int(first.dueAt.timeIntervalSince1970))",
                        channel: .email(first.address), subject: "CareRelay daily digest: \(count) item\(count == 1 ? "" : "s")",
                        text: "Since your last digest:\n\n" + lines.joined(separator: "\n")
                            + "\n\nUrgent items are always sent at once, not kept for this digest.",
                        event: "digest", urgent: false, link: nil, createdAt: first.dueAt)))
        }
        return work
    }

    private static func channel(_ record: NotificationRecord) -> Channel {
        switch record.channel {
        case .email: .email(record.address)
        case .sms: .sms(record.address)
        case .webhook: .webhook(record.address)
        }
    }

    /// Sends every piece of work at once on Swift's concurrency pool and waits for them all
    /// (each transport bounds its own time): nil for sent, else why not.
    private func deliver(_ work: [Work]) -> [DispatchFailure?] {
        let results = Mutex([DispatchFailure?](repeating: .retry("not attempted"), count: work.count))
        let done = DispatchSemaphore(value: 0)
        let transports = self.transports
        let dispatches = work.map(\.dispatch)
        let kinds = work.map { $0.records[0].record.channel }
        Task {
            await withTaskGroup(of: (Int, DispatchFailure?).self) { group in
                for (index, dispatch) in dispatches.enumerated() {
                    group.addTask {
                        guard let transport = transports[kinds[index]] else {
                            return (index, .refused("the site has not set up the \(kinds[index].rawValue) channel"))
                        }
                        do throws(DispatchFailure) {
                            try await transport.send(dispatch)
                            return (index, nil)
                        } catch {
                            return (index, error)
                        }
                    }
                }
                for await (index, outcome) in group {
                    results.withLock { $0[index] = outcome }
                }
            }
            done.signal()
        }
        done.wait()
        return results.withLock { $0 }
    }
}
