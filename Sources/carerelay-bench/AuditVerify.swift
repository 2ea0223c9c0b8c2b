import CareRelayModel
import CareRelayStore
import Foundation

/// `audit.verify`'s cost against the length of the trail: a SQLite store with `rows` audit
/// lines (appended in batches of 10,000, as a broker's deliveries would), verified through the
/// reader the broker runs it on (`StoreProvider.openReader`), beside the loop.
enum AuditVerifyCost {
    struct Result {
        var rows: Int
        var seconds: Double
        var microsecondsPerRow: Double { seconds * 1e6 / Double(rows) }
    }

    static func run(sizes: [Int]) throws -> [Result] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-bench-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let provider = SQLiteStoreProvider(path: folder.appendingPathComponent("store.sqlite").path)
        let store = try provider.open()
        defer { store.close() }
        var results: [Result] = []
        var written = 0
        for size in sizes.sorted() {
            while written < size {
                let count = min(10_000, size - written)
                try store.appendAudit(
                    (0..<count).map { n in
                        AuditEntry(
                            at: Date(), actor: "carerelay", action: .deliver, patient: "9434765919", message: "m\(written + n)",
                            recipient: "sw.lee", decision: "deliver:deliver", rule: "R6-implied-consent")
                    })
                written += count
            }
            let reader = try provider.openReader()
            let start = ContinuousClock.now
            guard case .intact(let rows) = try reader.verifyAudit(), rows == size else {
                throw StoreError.unavailable("the benchmark's audit trail did not verify as \(size) intact rows")
            }
            results.append(Result(rows: size, seconds: seconds(since: start)))
        }
        return results
    }
}
