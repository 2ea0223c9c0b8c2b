import CareRelayClient
import CareRelayModel
import CareRelayProtocol

/// What you sent or received of one kind, each message read as you may see it now. One
/// `message` query per inbox line: copies withheld from you, or taken back, do not come back.
enum Inbox {
    struct Message {
        var line: InboxLine
        var view: MessageView
        /// The body as you may see it (redacted where consent says so).
        var bytes: [UInt8]
        var body: MessageBody
    }

    static func messages(_ client: CareRelayClient, kind: MessageKind, limit: Int = 500) throws -> [Message] {
        let lines = try brokerCall { () throws(ClientError) in try client.query(InboxQuery(kind: kind, limit: limit)) }
        return lines.compactMap { line in
            guard let view = try? client.query(MessageQuery(id: line.id)), let bytes = view.bodyBytes,
                let body = try? MessageBody.decode(kind: kind, json: bytes)
            else { return nil }
            return Message(line: line, view: view, bytes: bytes, body: body)
        }
    }
}
