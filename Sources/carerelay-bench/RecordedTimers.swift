import CoreMetrics
import Foundation

/// A metrics factory that keeps every timer value the broker records, so the benchmark can
/// print the broker's own view (loop turns, synced commits) beside what the clients measured.
/// Counters and gauges are not needed here and record nothing.
final class RecordedTimers: MetricsFactory, @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: [Int64]] = [:]

    private final class Handler: TimerHandler, @unchecked Sendable {
        let key: String
        weak var owner: RecordedTimers?
        init(key: String, owner: RecordedTimers) { self.key = key; self.owner = owner }
        func recordNanoseconds(_ duration: Int64) { owner?.append(duration, to: key) }
    }

    private func append(_ duration: Int64, to key: String) {
        lock.lock(); defer { lock.unlock() }
        values[key, default: []].append(duration)
    }

    /// "label" or "label{name=value}" for one dimension, as the broker names its timers.
    static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.isEmpty ? label : label + "{" + dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Milliseconds at the given percentiles of what was recorded under `key`; nil if nothing was.
    func percentiles(_ key: String, _ points: [Double]) -> [Double]? {
        lock.lock(); defer { lock.unlock() }
        guard let recorded = values[key], !recorded.isEmpty else { return nil }
        let sorted = recorded.sorted()
        return points.map { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * $0))]) / 1e6 }
    }

    /// How many values were recorded under `key`, and their sum in seconds.
    func total(_ key: String) -> (count: Int, seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        let recorded = values[key] ?? []
        return (recorded.count, Double(recorded.reduce(0, +)) / 1e9)
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
