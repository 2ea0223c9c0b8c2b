import CareRelayModel
import CareRelayProtocol
import Foundation
import Hummingbird

/// The link in an on-call notification (CRP.md section 13.2): whoever was called opens it on
/// their phone and says they have it, so nobody else is called. The page says nothing about
/// the patient; the link's secret is the whole of its authority, and the broker checks it.
extension Bridge {
    /// A button rather than acknowledging on opening: mail scanners and link previews open
    /// links too.
    func onCallPage(_ request: Request, context: BridgeContext) async throws -> Response {
        guard context.parameters.get("chain") != nil, context.parameters.get("token") != nil else { return notYours }
        return .html(
            renderer.page(
                "onCall", title: "You were called as on call",
                ["action": request.uri.path, "heading": "You were called as on call", "asking": true]))
    }

    func acknowledgeOnCall(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let chain = context.parameters.get("chain"), let token = context.parameters.get("token") else { return notYours }
        let ask = OnCallAcknowledge(id: chain, token: token)
        let answer: OnCallAcknowledged
        do {
            let bytes = try await link.query(ask.name.rawValue, ask.params)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            answer = try decoder.decode(OnCallAcknowledged.self, from: Data(bytes))
        } catch {
            logger.notice("on-call link refused", metadata: ["chain": "\(chain)"])
            return problem(
                "This link does not work",
                "It may be mistyped. Acknowledge from CareRelay instead: carerelay oncall ack, with the id from the message.",
                status: .notFound)
        }
        let mine = answer.chains.first
        let who = mine?.acknowledgedBy.flatMap { id in mine?.told.contains(id) == true ? "You have it" : nil } ?? "Someone has it"
        return .html(
            renderer.page(
                "onCall", title: "Thank you",
                [
                    "heading": mine?.state == "acknowledged" ? "\(who): nobody else will be called" : "This has ended",
                    "done": true, "command": "carerelay oncall ack \(answer.message)",
                ]))
    }
}
