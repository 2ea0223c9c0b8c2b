import CareRelayModel
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// The request context: Hummingbird's core context plus the peer's address, for rate limiting.
public struct BridgeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let peer: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress
    }
}

/// Renders the Mustache templates into full pages.
struct Renderer: Sendable {
    let library: MustacheLibrary

    init() {
        MustacheContentTypes.register(ScalarHTMLEscaping(), named: ScalarHTMLEscaping.name)
        var library = MustacheLibrary()
        for (name, text) in Templates.all {
            // Every template escapes with ScalarHTMLEscaping rather than Mustache's own.
            let template = "{{% CONTENT_TYPE: \(ScalarHTMLEscaping.name)}}" + text
            do { try library.register(template, named: name) } catch { fatalError("template \(name) does not parse: \(error)") }
        }
        self.library = library
    }

    func fragment(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    func page(_ name: String, title: String, _ context: [String: Any], csrf: String? = nil, live: Bool = false) -> String {
        let content = fragment(name, context)
        var layout: [String: Any] = ["title": title, "content": content, "live": live]
        if let csrf {
            layout["signedIn"] = true
            layout["csrf"] = csrf
        }
        return fragment("layout", layout)
    }
}

enum Form {
    /// Parses an application/x-www-form-urlencoded body. The first value of a name wins.
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(String(parts[0]))
            let value = parts.count > 1 ? decode(String(parts[1])) : ""
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    static func decode(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }
}

enum Cookies {
    static func parse(_ request: Request) -> [String: String] {
        var cookies: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2, cookies[pair[0]] == nil { cookies[pair[0]] = pair[1] }
            }
        }
        return cookies
    }

    static func make(_ name: String, _ value: String, maxAge: Int?, secure: Bool) -> String {
        var cookie = "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict"
        if let maxAge { cookie += "; Max-Age=\(maxAge)" }
        if secure { cookie += "; Secure" }
        return cookie
    }
}

enum Display {
    static func nhs(_ number: NHSNumber) -> String {
        let d = Array(number.digits)
        return "\(String(d[0..<3])) \(String(d[3..<6])) \(String(d[6..<10]))"
    }

    static func when(_ date: Date, timeZone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.timeZone = timeZone
        formatter.dateFormat = "EEEE d MMMM yyyy 'at' HH:mm"
        return formatter.string(from: date)
    }

    static func when(_ text: String, timeZone: TimeZone) -> String {
        guard let date = (try? Timestamp(validating: text))?.date else { return text }
        return when(date, timeZone: timeZone)
    }

    static func day(_ date: CalendarDate) -> String {
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_GB")
        parser.timeZone = TimeZone(identifier: "UTC")
        parser.dateFormat = "yyyy-MM-dd"
        guard let parsed = parser.date(from: date.description) else { return date.description }
        parser.dateFormat = "d MMMM yyyy"
        return parser.string(from: parsed)
    }
}

/// HTML escaping by Unicode scalar, for text and double- or single-quoted attribute values.
/// Mustache's own escaping compares whole Characters, and a quote or an angle bracket that a
/// combining mark follows is one Character that is not a quote: it went out raw, and the
/// browser, which reads code points, took the quote as the end of the attribute.
struct ScalarHTMLEscaping: MustacheContentType {
    static let name = "CARERELAY_HTML"

    func escapeText(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}

extension Response {
    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }
}

/// Security headers on every response.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        return response
    }
}
