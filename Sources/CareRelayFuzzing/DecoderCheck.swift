import CareRelayModel
import CareRelayProtocol

/// What one input did to the decoders. A crash is not an outcome: it ends the process, which
/// is what libFuzzer (or the caller's test) reports.
public enum DecoderOutcome: Equatable {
    /// Decoded and survived the round trip.
    case accepted(String)
    /// Refused with a protocol or validation error, as hostile input should be.
    case refused(String)
    /// Decoded, but re-encoding what was decoded does not decode to the same value: the
    /// broker would store or forward something other than what it checked.
    case roundTripMismatch(String)
}

/// Feeds one input to the frame decoder (both directions) or a body decoder, the code the
/// broker runs on every byte a client sends.
public struct DecoderCheck: Sendable {
    let codec = CRPCodec(maxBodyBytes: 256 * 1024)

    public init() {}

    public func check(_ data: [UInt8]) -> DecoderOutcome {
        switch FuzzInput.target(of: data) {
        case .body(let kind, let json): return checkBody(kind: kind, json: json)
        case .frames(let frames): return checkFrames(frames)
        }
    }

    func checkBody(kind: MessageKind, json: [UInt8]) -> DecoderOutcome {
        let body: MessageBody
        do { body = try MessageBody.decode(kind: kind, json: json) } catch { return .refused("body \(kind.rawValue)") }
        // What the broker validated must be what it re-encodes (redacted copies are encoded).
        guard let again = try? MessageBody.decode(kind: kind, json: body.encode()), again == body else {
            return .roundTripMismatch("body \(kind.rawValue) does not survive encode/decode")
        }
        _ = body.patients
        _ = body.sensitivityLabels
        return .accepted("body \(kind.rawValue)")
    }

    func checkFrames(_ frames: [[UInt8]]) -> DecoderOutcome {
        // Clients read broker frames with the same codec; a hostile broker must not crash them.
        _ = try? codec.decodeBrokerCommand(frames[...])
        let command: ClientCommand
        do { command = try codec.decodeClientCommand(frames[...]) } catch { return .refused(error.code.name) }
        guard let again = try? codec.decodeClientCommand(codec.encode(command)[...]), again == command else {
            return .roundTripMismatch("\(command.name) does not survive encode/decode")
        }
        if case .send(let header, let body) = command {
            // The broker decodes the body of every SEND it routes.
            if case .roundTripMismatch(let why) = checkBody(kind: header.kind, json: body) { return .roundTripMismatch(why) }
        }
        return .accepted(command.name)
    }
}
