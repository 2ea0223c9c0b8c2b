import CareRelayHarness
import CareRelayModel
import CareRelayStore
import Foundation

/// Fills the broker's disk for real (a small tmpfs holding only the store), and checks that
/// the broker refuses new messages with a clear error rather than acknowledging them, keeps
/// delivering what it stored, and accepts again by itself once space returns.
struct StoreFailureSoak {
    let executable: URL
    let log: (String) -> Void

    struct Figures {
        var ran = false
        var notRunReason: String?
        var acceptedBeforeFull = 0
        var acceptedWhileFilling = 0
        var refusedWhileFull = 0
        var refusalReason = ""
        var deliveredWhileFull = 0
        var expectedWhileFull = 0
        var recoverySeconds = 0.0
        var refusedKeysAcceptedAfterRecovery = 0
        var acceptedAfterRecovery = 0
        var tally = Ledger.Tally()
        var acceptedButNotStored = 0
        var auditIntact = false
    }

    func run() throws -> Figures {
        var figures = Figures()
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-soak-disk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: disk) }
        guard shell("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", disk.path]) == 0 else {
            figures.notRunReason = "mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)"
            return figures
        }
        defer { _ = shell("/bin/umount", ["-l", disk.path]) }
        figures.ran = true

        let system = try SoakSystem(executable: executable, storeFolder: disk)
        defer { system.removeFiles() }
        let port = try freePort()
        let broker = try system.startBroker(port: port)
        let ledger = Ledger()
        let sender = SendingApplication(system: system, person: "gp.1", recipient: "sw.1", endpoint: SoakSystem.endpoint(port), ledger: ledger)

        for index in 0..<200 { if case .accepted? = sender.send(key: "before-\(index)") { figures.acceptedBeforeFull += 1 } }

        // Fill the disk, then keep sending until the broker has refused 20 in a row (SQLite
        // reuses space inside its files for a while before it needs a new page).
        let filler = disk.appendingPathComponent("filler")
        let filled = fill(filler)
        log("disk filled: \(filled / 1024) KiB of filler")
        var refusedKeys: [String] = []
        var consecutive = 0
        var index = 0
        while consecutive < 20 && index < 20_000 {
            let key = "full-\(index)"
            index += 1
            switch sender.send(key: key, giveUpAfter: Date().addingTimeInterval(30)) {
            case .accepted?: figures.acceptedWhileFilling += 1; consecutive = 0
            case .refused(let failure)?:
                guard failure.code == .storeUnavailable else {
                    throw SoakFailure("a send was refused with \(failure.code.name) while the disk was full: \(failure.reason)")
                }
                figures.refusedWhileFull += 1
                figures.refusalReason = failure.reason
                refusedKeys.append(key)
                consecutive += 1
            case nil: throw SoakFailure("the broker stopped answering while the disk was full")
            }
        }
        guard consecutive >= 20 else { throw SoakFailure("the broker never refused a send although the disk was full") }

        // While the disk is still full, the recipient comes online and receives everything stored.
        let stop = StopFlag()
        let receivers = DispatchGroup()
        let receiver = ReceivingApplication(system: system, person: "sw.1", endpoint: SoakSystem.endpoint(port), ledger: ledger)
        spawn(receivers, "receiver") { receiver.run(stop: stop) }
        figures.expectedWhileFull = ledger.acceptedCount
        let deliveredWhileFull = ledger.awaitAllDelivered(idleTimeout: 20)
        figures.deliveredWhileFull = ledger.lock { ledger.handed.count }
        if !deliveredWhileFull { log("not everything stored was delivered while the disk was full") }

        // Space returns: the same broker process accepts again, with no restart.
        try FileManager.default.removeItem(at: filler)
        let freed = Date()
        for key in refusedKeys {
            if case .accepted? = sender.send(key: key) {
                if figures.refusedKeysAcceptedAfterRecovery == 0 { figures.recoverySeconds = Date().timeIntervalSince(freed) }
                figures.refusedKeysAcceptedAfterRecovery += 1
            }
        }
        for index in 0..<200 { if case .accepted? = sender.send(key: "after-\(index)") { figures.acceptedAfterRecovery += 1 } }
        _ = ledger.awaitAllDelivered(idleTimeout: 20)
        stop.set()
        receivers.wait()
        broker.terminate()

        let store = try SQLiteStore(path: system.storePath)
        figures.acceptedButNotStored = ledger.lock { ledger.accepted.values }.filter { ((try? store.message(id: $0)) ?? nil) == nil }.count
        if case .intact = try store.verifyAudit() { figures.auditIntact = true }
        figures.tally = ledger.tally()
        return figures
    }

    /// Writes 64 KiB blocks until the file system refuses; returns the bytes written.
    private func fill(_ file: URL) -> Int {
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        let block = [UInt8](repeating: 0x5A, count: 64 * 1024)
        var total = 0
        var size = block.count
        // Smaller and smaller writes take the last free bytes too.
        while size > 0 {
            let written = block.withUnsafeBytes { write(descriptor, $0.baseAddress, size) }
            if written > 0 { total += written } else { size /= 2 }
        }
        return total
    }
}

/// Runs a program and returns its exit status (127 if it could not start).
@discardableResult
func shell(_ program: String, _ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return 127 }
    process.waitUntilExit()
    return process.terminationStatus
}
