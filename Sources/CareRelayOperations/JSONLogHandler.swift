import Foundation
import Logging

/// One JSON object per line on standard error, for log collectors (journald, Loki, Elastic):
/// `{"time":…,"level":…,"label":…,"event":"message accepted","message":"<id>",…}`, the event's
/// metadata as fields (so `message` is a message id, as in the text format). The broker logs ids, kinds, codes and counts at info level, never patient details.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let write: @Sendable ([UInt8]) -> Void
    private static let lock = NSLock()

    /// `write` receives each whole line; by default it goes to standard error.
    public init(label: String, level: Logger.Level, write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError) {
        self.label = label
        logLevel = level
        self.write = write
    }

    public static let standardError: @Sendable ([UInt8]) -> Void = { line in FileHandle.standardError.write(Data(line)) }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard let line = Self.line(label: label, event: event, metadata: metadata) else { return }
        // Whole lines: two threads logging at once never interleave inside a line.
        Self.lock.lock()
        defer { Self.lock.unlock() }
        write(line)
    }

    static func line(label: String, event: LogEvent, metadata: Logger.Metadata) -> [UInt8]? {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key] = "\(value)"
        }
        fields["time"] = Self.timestamp()
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["event"] = "\(event.message)"
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
        line.append(0x0A)
        return [UInt8](line)
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }
}
