import CoreMetrics
import Foundation
import Synchronization

/// The value at fraction `p` (0...1) of an ascending array; the largest for 1.
func percentile<T>(_ sorted: [T], _ p: Double) -> T? {
    guard !sorted.isEmpty else { return nil }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// A metrics factory that keeps every timer value the broker records, so the benchmark can
/// print the broker's own view (loop turns, synced commits) beside what the clients measured.
/// Counters and gauges are not needed here and record nothing.
final class RecordedTimers: MetricsFactory, Sendable {
    private let values = Mutex<[String: [Int64]]>([:])

    /// What one timer recorded, in milliseconds.
    struct Summary {
        var count: Int
        var totalSeconds: Double
        var p50: Double, p99: Double, max: Double
        var text: String { String(format: "%.2f / %.2f / %.2f ms", p50, p99, max) }
    }

    private final class Handler: TimerHandler, Sendable {
        let key: String
        let owner: RecordedTimers
        init(key: String, owner: RecordedTimers) { self.key = key; self.owner = owner }
        func recordNanoseconds(_ duration: Int64) { owner.append(duration, to: key) }
    }

    private func append(_ duration: Int64, to key: String) {
        values.withLock { $0[key, default: []].append(duration) }
    }

    /// "label" or "label{name=value,...}", as the broker names its timers.
    static func key(_ label: String, _ dimensions: [(String, String)] = []) -> String {
        dimensions.isEmpty ? label : label + "{" + dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    /// What was recorded under `key`; nil if nothing was.
    func summary(_ key: String) -> Summary? {
        let sorted = values.withLock { ($0[key] ?? []).sorted() }
        guard let p50 = percentile(sorted, 0.5), let p99 = percentile(sorted, 0.99), let max = sorted.last else { return nil }
        return Summary(
            count: sorted.count, totalSeconds: Double(sorted.reduce(0, +)) / 1e9,
            p50: Double(p50) / 1e6, p99: Double(p99) / 1e6, max: Double(max) / 1e6)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Handler(key: Self.key(label, dimensions), owner: self)
    }
    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
