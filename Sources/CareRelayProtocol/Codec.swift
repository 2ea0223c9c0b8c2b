import CareRelayModel
import Foundation

/// Version 1 of the Care Relay Protocol. Frame 0 of every message is the three ASCII bytes
/// "CRP" followed by one byte holding the version.
public enum CRP {
    public static let version: UInt8 = 1
    public static let signature: [UInt8] = [0x43, 0x52, 0x50, version]
    /// Largest header frame the broker reads. Headers are small; a large one is an attack.
    public static let maxHeaderBytes = 16 * 1024
}

/// A command from a client, as decoded from its frames (routing id already removed).
public enum ClientCommand: Sendable, Equatable {
    case hello(Hello)
    case send(SendHeader, body: [UInt8])
    case confirm(Confirm)
    case credit(Credit)
    case subscribe(SubscriptionRequest)
    case unsubscribe(SubscriptionRequest)
    case query(Query)
    case ping(Empty)
    case bye(Empty)

    public var name: String {
        switch self {
        case .hello: "HELLO"
        case .send: "SEND"
        case .confirm: "CONFIRM"
        case .credit: "CREDIT"
        case .subscribe: "SUBSCRIBE"
        case .unsubscribe: "UNSUBSCRIBE"
        case .query: "QUERY"
        case .ping: "PING"
        case .bye: "BYE"
        }
    }

    /// The request tag the client attached, echoed in the answer.
    public var req: String? {
        switch self {
        case .hello(let h): h.req
        case .send(let h, _): h.req
        case .subscribe(let s), .unsubscribe(let s): s.req
        case .query(let q): q.req
        case .ping(let e), .bye(let e): e.req
        case .confirm, .credit: nil
        }
    }
}

/// A command from the broker.
public enum BrokerCommand: Sendable, Equatable {
    case welcome(Welcome)
    case accepted(Accepted)
    case rejected(Rejected)
    case deliver(DeliverHeader, body: [UInt8])
    case subscribed(Subscribed)
    case unsubscribed(Subscribed)
    case result(ResultHeader, body: [UInt8])
    case pong(Empty)

    public var name: String {
        switch self {
        case .welcome: "WELCOME"
        case .accepted: "ACCEPTED"
        case .rejected: "REJECTED"
        case .deliver: "DELIVER"
        case .subscribed: "SUBSCRIBED"
        case .unsubscribed: "UNSUBSCRIBED"
        case .result: "RESULT"
        case .pong: "PONG"
        }
    }
}

/// Turns frames into commands and back. Decoding never traps on hostile input: every
/// failure is a `ProtocolError` with the code the specification gives it.
public struct CRPCodec: Sendable {
    public let maxBodyBytes: Int

    public init(maxBodyBytes: Int = 1 << 20) {
        self.maxBodyBytes = maxBodyBytes
    }

    // MARK: Client commands

    public func decodeClientCommand(_ frames: ArraySlice<[UInt8]>) throws(ProtocolError) -> ClientCommand {
        let (name, header, body) = try split(frames, maxHeaderBytes: CRP.maxHeaderBytes)
        switch name {
        case "HELLO": return .hello(try decodeHeader(Hello.self, header, noBody: body))
        case "SEND":
            let send = try decodeHeader(SendHeader.self, header)
            guard let body else {
                throw ProtocolError(.malformedMessage, "SEND needs a body frame (frame 3) holding the message")
            }
            guard body.count <= maxBodyBytes else {
                throw ProtocolError(
                    .messageTooLarge,
                    "the body is \(body.count) bytes; this broker accepts at most \(maxBodyBytes). Send large documents as attachments by reference")
            }
            try validateSendHeader(send)
            return .send(send, body: body)
        case "CONFIRM": return .confirm(try decodeHeader(Confirm.self, header, noBody: body))
        case "CREDIT": return .credit(try decodeHeader(Credit.self, header, noBody: body))
        case "SUBSCRIBE": return .subscribe(try decodeHeader(SubscriptionRequest.self, header, noBody: body))
        case "UNSUBSCRIBE": return .unsubscribe(try decodeHeader(SubscriptionRequest.self, header, noBody: body))
        case "QUERY":
            // Most queries fit their header; one that writes a list (`directory.change`)
            // carries it as a body, within the same limit as a message's.
            var query = try decodeHeader(Query.self, header)
            if let body {
                guard body.count <= maxBodyBytes else {
                    throw ProtocolError(.messageTooLarge, "the query's body is \(body.count) bytes; this broker accepts at most \(maxBodyBytes)")
                }
                query.body = body
            }
            return .query(query)
        case "PING": return .ping(try decodeHeader(Empty.self, header, noBody: body))
        case "BYE": return .bye(try decodeHeader(Empty.self, header, noBody: body))
        default:
            throw ProtocolError(
                .unknownCommand,
                "unknown command '\(printable(name))': clients may send HELLO, SEND, CONFIRM, CREDIT, SUBSCRIBE, UNSUBSCRIBE, QUERY, PING or BYE")
        }
    }

    public func encode(_ command: ClientCommand) -> [[UInt8]] {
        switch command {
        case .hello(let h): frames(command.name, h)
        case .send(let h, let body): frames(command.name, h, body: body)
        case .confirm(let c): frames(command.name, c)
        case .credit(let c): frames(command.name, c)
        case .subscribe(let s), .unsubscribe(let s): frames(command.name, s)
        case .query(let q): frames(command.name, q, body: q.body)
        case .ping(let e), .bye(let e): frames(command.name, e)
        }
    }

    // MARK: Broker commands

    public func encode(_ command: BrokerCommand) -> [[UInt8]] {
        switch command {
        case .welcome(let w): frames(command.name, w)
        case .accepted(let a): frames(command.name, a)
        case .rejected(let r): frames(command.name, r)
        case .deliver(let h, let body): frames(command.name, h, body: body)
        case .subscribed(let s), .unsubscribed(let s): frames(command.name, s)
        case .result(let h, let body): frames(command.name, h, body: body)
        case .pong(let e): frames(command.name, e)
        }
    }

    /// Decodes what a broker sent. Clients use this; the broker never reads its own output.
    public func decodeBrokerCommand(_ frames: ArraySlice<[UInt8]>) throws(ProtocolError) -> BrokerCommand {
        // The broker's own headers grow with the recipients of a message (ACCEPTED lists each).
        let (name, header, body) = try split(frames, maxHeaderBytes: .max)
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type) throws(ProtocolError) -> T {
            do {
                return try decoder.decode(T.self, from: Data(header))
            } catch {
                throw ProtocolError(.invalidHeader, "broker sent an unreadable \(name) header: \(error)")
            }
        }
        switch name {
        case "WELCOME": return .welcome(try decode(Welcome.self))
        case "ACCEPTED": return .accepted(try decode(Accepted.self))
        case "REJECTED": return .rejected(try decode(Rejected.self))
        case "DELIVER": return .deliver(try decode(DeliverHeader.self), body: body ?? [])
        case "SUBSCRIBED": return .subscribed(try decode(Subscribed.self))
        case "UNSUBSCRIBED": return .unsubscribed(try decode(Subscribed.self))
        case "RESULT": return .result(try decode(ResultHeader.self), body: body ?? [])
        case "PONG": return .pong(try decode(Empty.self))
        default: throw ProtocolError(.unknownCommand, "broker sent unknown command '\(printable(name))'")
        }
    }

    // MARK: Frames

    private func split(_ frames: ArraySlice<[UInt8]>, maxHeaderBytes: Int) throws(ProtocolError) -> (String, [UInt8], [UInt8]?) {
        guard frames.count >= 3, frames.count <= 4, let signature = frames.first else {
            throw ProtocolError(
                .malformedMessage,
                "a CRP message has 3 or 4 frames (signature, command, header[, body]); this one has \(frames.count)")
        }
        guard signature.count == 4, signature.prefix(3).elementsEqual(CRP.signature.prefix(3)) else {
            throw ProtocolError(
                .badSignature,
                "frame 0 must be the 4 bytes 'CRP' and a version byte; this is not a Care Relay Protocol message")
        }
        guard signature[3] == CRP.version else {
            throw ProtocolError(
                .unsupportedVersion,
                "this broker speaks CRP version \(CRP.version); the message says version \(signature[3])")
        }
        let nameFrame = frames[frames.startIndex + 1]
        guard nameFrame.count <= 16, let name = String(validating: nameFrame, as: UTF8.self) else {
            throw ProtocolError(.unknownCommand, "frame 1 must hold a command name in ASCII capitals")
        }
        let header = frames[frames.startIndex + 2]
        guard header.count <= maxHeaderBytes else {
            throw ProtocolError(.invalidHeader, "the header frame is \(header.count) bytes; at most \(maxHeaderBytes) are allowed")
        }
        let body = frames.count == 4 ? frames[frames.startIndex + 3] : nil
        return (name, header, body)
    }

    private func decodeHeader<T: StrictlyDecodable>(
        _ type: T.Type, _ header: [UInt8], noBody body: [UInt8]? = nil
    ) throws(ProtocolError) -> T {
        if body != nil {
            throw ProtocolError(.malformedMessage, "\(T.self) takes no body frame; send 3 frames")
        }
        do {
            return try JSONDecoder().decode(Strict<T>.self, from: Data(header)).value
        } catch let error as DecodingError {
            throw ProtocolError(error.isInvalidNHSNumber ? .invalidNHSNumber : .invalidHeader, "header: \(describe(error))")
        } catch let error as MessageValidationError {
            throw ProtocolError(.invalidHeader, "header: \(error.description)")
        } catch {
            throw ProtocolError(.invalidHeader, "header is not a JSON object: \(error)")
        }
    }

    private func validateSendHeader(_ send: SendHeader) throws(ProtocolError) {
        guard !send.key.isEmpty, send.key.utf8.count <= 128 else {
            throw ProtocolError(.invalidHeader, "key: the idempotency key must be 1 to 128 bytes")
        }
        guard !send.to.isEmpty || send.kind == .referralEvent || send.kind == .checkInAcknowledgement || send.kind == .consent else {
            throw ProtocolError(.invalidHeader, "to: a \(send.kind.rawValue) needs at least one address")
        }
        guard send.to.count <= 64 else {
            throw ProtocolError(.invalidHeader, "to: at most 64 addresses per message")
        }
        if let reason = send.breakGlass, reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ProtocolError(.invalidHeader, "breakGlass: an emergency override needs a stated reason")
        }
        if let purpose = send.purpose, let problem = ConsentPurpose.problem(stating: purpose, for: send.kind) {
            throw ProtocolError(.invalidHeader, "purpose: \(problem)")
        }
    }

    private func frames(_ name: String, _ header: some Encodable, body: [UInt8]? = nil) -> [[UInt8]] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail; an empty object keeps the frame valid anyway.
        let headerBytes = (try? encoder.encode(header)).map { [UInt8]($0) } ?? Array("{}".utf8)
        var result: [[UInt8]] = [CRP.signature, Array(name.utf8), headerBytes]
        if let body { result.append(body) }
        return result
    }
}

func printable(_ text: String) -> String {
    String(text.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 }.prefix(32).map(Character.init))
}

/// A decoding error as one line a person can act on: "to[1]: unknown address scheme 'pers'".
public func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return text.isEmpty ? "(top level)" : text
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])): required field is missing"
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)): expected \(type)"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)): expected \(type), found null"
    case .dataCorrupted(let context):
        return "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
