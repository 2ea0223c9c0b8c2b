import CareRelayBridge
import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Mrs Ellis, the patient most tests are about; Jean Ellis is her carer.
let ellis = try! NHSNumber(validating: "9434765919")
let robson = try! NHSNumber(validating: "4010232137")

/// A clock tests can set.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    init(_ date: Date = Date()) { current = date }
    func now() -> Date { lock.lock(); defer { lock.unlock() }; return current }
    func set(_ date: Date) { lock.lock(); current = date; lock.unlock() }
    func advance(by seconds: TimeInterval) { lock.lock(); current += seconds; lock.unlock() }
}

/// A broker stand-in for route tests: records sends, answers the directory query.
final class FakeLink: BrokerLink, @unchecked Sendable {
    private let lock = NSLock()
    private var _sent: [(SendHeader, [UInt8])] = []
    var failing = false

    var sent: [(header: SendHeader, body: [UInt8])] {
        lock.lock(); defer { lock.unlock() }
        return _sent.map { ($0.0, $0.1) }
    }

    func send(_ header: SendHeader, body: [UInt8]) async throws -> Accepted {
        if failing { throw GatewayError.notConnected("test") }
        let n = lock.withLock {
            _sent.append((header, body))
            return _sent.count
        }
        return Accepted(key: header.key, id: "m-test-\(n)", duplicate: false, recipients: [], req: header.req)
    }

    private var _asked: [(String, [String: String])] = []
    /// The queries asked other than `directory`.
    var asked: [(name: String, params: [String: String])] { lock.withLock { _asked.map { ($0.0, $0.1) } } }

    func query(_ name: String, _ params: [String: String]) async throws -> [UInt8] {
        if name == "oncall.ack" {
            lock.withLock { _asked.append((name, params)) }
            // As the broker answers: only the link's own secret works.
            guard params["token"] == Self.onCallToken else {
                throw ClientError.rejected(ProtocolError(.unknownMessage, "oncall.ack: nothing on call is yours to acknowledge"))
            }
            return Array(
                #"{"message":"m1","chains":[{"team":"west.social-care","state":"acknowledged","acknowledgedBy":"sw.okafor","told":["sw.okafor"]}]}"#
                    .utf8)
        }
        guard name == "directory" else { throw GatewayError.notConnected("no such query in the fake") }
        return Array(Self.directory.utf8)
    }

    static let onCallToken = "kP3vQ9xZ1mN8bT2cR7yW4g"

    static let directory = """
        {"people":[{"id":"coord.patel","name":"Priya Patel","roles":["care-coordinator"],"teams":["west.social-care"]},
                   {"id":"carer.ellis","name":"Jean Ellis","roles":["carer"],"teams":[]}],
         "teams":[{"id":"west.social-care","name":"West social care intake","kind":"service","locality":"west","coordinator":"coord.patel",
                   "hours":"mon-fri 08:00-18:00","fallback":["District nurses: 0191 555 0100","Emergency: 999"]}]}
        """
}

/// The route-test set-up: a bridge over a temporary store and a fake broker.
struct RouteFixture {
    let folder: URL
    let store: BridgeStore
    let link = FakeLink()
    let hub = LiveHub()
    let clock: TestClock
    let bridge: Bridge

    /// 10:00 on Wednesday 25 November 2026, London time.
    static let weekday = ISO8601DateFormatter().date(from: "2026-11-25T10:00:00Z")!
    /// 10:00 on Saturday 28 November 2026.
    static let saturday = ISO8601DateFormatter().date(from: "2026-11-28T10:00:00Z")!

    init(secureCookies: Bool = false, trustForwardedFor: Bool = false, now: Date = RouteFixture.weekday) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("bridge-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        store = try BridgeStore(path: folder.appendingPathComponent("bridge.sqlite").path)
        let clock = TestClock(now)
        self.clock = clock
        var logger = Logger(label: "bridge-test")
        logger.logLevel = .warning
        bridge = Bridge(
            configuration: BridgeConfiguration(
                gatewayID: "bridge", secureCookies: secureCookies, trustForwardedFor: trustForwardedFor,
                now: { clock.now() }),
            store: store, link: link, hub: hub, logger: logger)
    }

    var app: some ApplicationProtocol {
        var logger = Logger(label: "bridge-test-app")
        logger.logLevel = .warning
        return Application(router: bridge.router(), logger: logger)
    }

    /// Stores an invitation as if the broker had delivered it; returns the code.
    @discardableResult
    func invite(
        carer: PersonID = "carer.ellis", patients: [NHSNumber] = [ellis], expiresIn: TimeInterval = 7 * 86_400,
        code: String = InvitationCode.generate()
    ) throws -> String {
        let body = CarerInvite(
            carer: carer, patients: patients, codeHash: InvitationCode.hash(code),
            expires: Timestamp(clock.now().addingTimeInterval(expiresIn)), issuedBy: "coord.patel")
        try store.storeInvite(body, message: "m-invite-\(UUID().uuidString)", receivedAt: clock.now())
        return code
    }

    /// Stores a care plan as the broker would deliver it to the carer (the mental health
    /// section already removed by consent).
    func deliverPlan(version: Int, change: String = "Evening call moved to 18:00.", id: String = UUID().uuidString) throws {
        let plan = try planDelivery(version: version, change: change, id: id)
        try store.storeDelivery(plan.header, body: plan.body, now: clock.now())
    }

    /// A care plan as the broker would deliver it to the carer; `edit` changes the plan's JSON.
    func planDelivery(
        version: Int, change: String = "Evening call moved to 18:00.", id: String = UUID().uuidString,
        fromName: String = "Priya Patel", edit: (inout [String: Any]) -> Void = { _ in }
    ) throws -> (header: DeliverHeader, body: [UInt8]) {
        var plan = try Examples.object("careplan.share", "valid-home-plan-with-mental-health-section.json")
        plan["version"] = version
        plan["changeSummary"] = change
        let sections = try #require(plan["sections"] as? [[String: Any]])
        plan["sections"] = sections.filter { !(($0["labels"] as? [String]) ?? []).contains("mental-health") }
        edit(&plan)
        let body = [UInt8](try JSONSerialization.data(withJSONObject: plan, options: [.sortedKeys]))
        let header = DeliverHeader(
            id: "m-\(id)", recipient: "carer.ellis", kind: .carePlanShare, from: "coord.patel", fromName: fromName,
            to: [.person("carer.ellis")], patient: ellis, priority: nil, labels: nil, correlation: nil,
            sentAt: Timestamp(clock.now()).text, redacted: ["mood"], override: nil, topic: nil, attempt: 1)
        return (header, body)
    }
}

enum Examples {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocols/examples")

    static func object(_ kind: String, _ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent(kind).appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

/// A tiny browser over the test client: keeps cookies, reads CSRF tokens from forms.
final class Visitor: @unchecked Sendable {
    let client: any TestClientProtocol
    var cookies: [String: String] = [:]
    var address: String?
    var lastSetCookies: [String] = []

    init(_ client: any TestClientProtocol, address: String? = nil) {
        self.client = client
        self.address = address
    }

    struct Page {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let text: String
        var location: String? { headers[.location] }
        var csrf: String? {
            guard let range = text.range(of: #"name="csrf" value="([^"]*)""#, options: .regularExpression) else { return nil }
            let match = String(text[range])
            return match.components(separatedBy: "value=\"").last.map { String($0.dropLast()) }
        }
        var key: String? {
            guard let range = text.range(of: #"name="key" value="([^"]*)""#, options: .regularExpression) else { return nil }
            return String(text[range]).components(separatedBy: "value=\"").last.map { String($0.dropLast()) }
        }
    }

    private func headers(form: Bool) -> HTTPFields {
        var headers = HTTPFields()
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }
        if form { headers[.contentType] = "application/x-www-form-urlencoded" }
        if let address { headers[HTTPField.Name("X-Forwarded-For")!] = address }
        return headers
    }

    private func absorb(_ response: TestResponse) -> Page {
        lastSetCookies = response.headers[values: .setCookie]
        for cookie in lastSetCookies {
            let first = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(first[0]), value = first.count > 1 ? String(first[1]) : ""
            if value.isEmpty || cookie.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
        return Page(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }

    func get(_ uri: String) async throws -> Page {
        absorb(try await client.execute(uri: uri, method: .get, headers: headers(form: false)))
    }

    func post(_ uri: String, _ fields: [(String, String)]) async throws -> Page {
        let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return absorb(try await client.execute(uri: uri, method: .post, headers: headers(form: true), body: ByteBuffer(string: body)))
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// Opens the sign-in page and signs in with `code`.
    func signIn(_ code: String) async throws -> Page {
        let form = try await get("/sign-in")
        let csrf = try #require(form.csrf)
        return try await post("/sign-in", [("csrf", csrf), ("code", code)])
    }
}

/// One event of a `text/event-stream` body, as a browser's EventSource reads it.
struct ServerSentEvent: Equatable {
    var type: String
    var data: String
    var id: String?
}

enum EventStream {
    /// Parses an event stream the way the HTML standard's EventSource does: lines end at CR,
    /// LF or CRLF; a blank line dispatches the event gathered so far; `data` lines are joined
    /// with LF; a line starting with a colon is a comment.
    static func parse(_ text: String) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        var type = "", data = "", id: String?
        for line in lines(text) {
            if line.isEmpty {
                if !data.isEmpty {
                    events.append(ServerSentEvent(type: type.isEmpty ? "message" : type, data: String(data.dropLast()), id: id))
                }
                type = ""
                data = ""
                continue
            }
            if line.hasPrefix(":") { continue }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let field = String(parts[0])
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.hasPrefix(" ") { value.removeFirst() }
            switch field {
            case "event": type = value
            case "data": data += value + "\n"
            case "id" where !value.contains("\u{0}"): id = value
            default: break
            }
        }
        return events
    }

    /// The stream's lines, split at CR, LF and CRLF (by Unicode scalar: a Swift Character
    /// holds CRLF as one).
    static func lines(_ text: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var afterCR = false
        for scalar in text.unicodeScalars {
            if afterCR && scalar == "\n" { afterCR = false; continue }
            afterCR = scalar == "\r"
            if scalar == "\r" || scalar == "\n" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }
}

extension Visitor.Page {
    /// Where the page's script opens its live stream (the live region's data-events).
    var eventsURL: String? {
        guard let range = text.range(of: #"data-events="([^"]*)""#, options: .regularExpression) else { return nil }
        return String(text[range]).components(separatedBy: "data-events=\"").last.map { String($0.dropLast()) }
    }

    /// Whether the UTF-8 of the page holds `needle`'s UTF-8 exactly (String.contains compares
    /// by Character, so it would not find a quote that a combining mark follows).
    func containsBytes(_ needle: String) -> Bool {
        let haystack = Array(text.utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty, haystack.count >= pattern.count else { return false }
        return (0...(haystack.count - pattern.count)).contains { start in haystack[start..<(start + pattern.count)].elementsEqual(pattern) }
    }
}
