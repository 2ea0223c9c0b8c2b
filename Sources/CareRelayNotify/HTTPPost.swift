import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The answer to an `HTTPPost`: the status and at most `HTTPPost.maximumResponseBody` bytes
/// of the body.
struct HTTPPostResponse: Sendable, Equatable {
    var status: Int
    var body: [UInt8]
}

/// One HTTP/1.1 POST on its own connection (`Connection: close`), over TLS for https with the
/// server's certificate and name checked. All the SMS gateway and the webhooks need: a
/// notification is one small request, so no pooling, redirects or retries here (the outbox
/// retries). Failures to connect, TLS failures and timeouts come back as `.retry`; a URL that
/// cannot be used as `.refused`.
struct HTTPPost: Sendable {
    var url: String
    /// Besides Host, Content-Length, Connection and User-Agent, which are set here.
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// The whole exchange, from connecting to the last byte of the response, in seconds.
    var timeout: Double
    var trustRootsPEM: String?

    /// An error page or a gateway's JSON is far smaller; more is not read.
    static let maximumResponseBody = 64 * 1024

    func send(on group: any EventLoopGroup) async throws(DispatchFailure) -> HTTPPostResponse {
        let target = try HTTPTarget(url)
        let tls: NIOSSLContext? = target.isTLS ? try NotifyTLS.context(trustRootsPEM: trustRootsPEM) : nil
        var headers = HTTPHeaders(self.headers.map { ($0.name, $0.value) })
        headers.replaceOrAdd(name: "Host", value: target.hostHeader)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        headers.replaceOrAdd(name: "Connection", value: "close")
        headers.replaceOrAdd(name: "User-Agent", value: "CareRelay-Notify")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.pathAndQuery, headers: headers)

        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: HTTPPostResponse.self)
        let amount = TimeAmount.nanoseconds(Int64(max(timeout, 0.001) * 1_000_000_000))
        let deadline = NIODeadline.now() + amount
        let (body, seconds, host) = (self.body, self.timeout, target.host)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(amount)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NotifyTLS.clientHandler(context: tls, host: host)) }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(
                        HTTPPostHandler(head: head, body: body, promise: promise, deadline: deadline, timeoutSeconds: seconds))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let peer = "\(target.host):\(target.port)"
        bootstrap.connect(host: target.host, port: target.port).whenFailure { error in
            promise.fail(DispatchFailure.retry("could not connect to \(peer): \(NotifyTLS.describe(error))"))
        }
        do {
            return try await promise.futureResult.get()
        } catch let failure as DispatchFailure {
            throw failure
        } catch {
            throw .retry("\(peer): \(NotifyTLS.describe(error))")
        }
    }
}

/// The parts of an http or https URL that a request needs.
struct HTTPTarget: Sendable, Equatable {
    var isTLS: Bool
    var host: String
    var port: Int
    var pathAndQuery: String

    init(_ url: String) throws(DispatchFailure) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { throw .refused("not an http or https URL: \(url)") }
        isTLS = scheme == "https"
        // URLComponents keeps an IPv6 literal's brackets; sockets want it bare.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? (isTLS ? 443 : 80)
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        pathAndQuery = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// Writes the request once connected, gathers the response, and completes the promise once:
/// with the response, or with why there was none.
final class HTTPPostHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead
    private let body: [UInt8]
    private let promise: EventLoopPromise<HTTPPostResponse>
    private let deadline: NIODeadline
    private let timeoutSeconds: Double
    private var timeout: Scheduled<Void>?
    private var status: Int?
    private var received: [UInt8] = []
    private var done = false
    private var active = false

    init(head: HTTPRequestHead, body: [UInt8], promise: EventLoopPromise<HTTPPostResponse>, deadline: NIODeadline, timeoutSeconds: Double) {
        self.head = head
        self.body = body
        self.promise = promise
        self.deadline = deadline
        self.timeoutSeconds = timeoutSeconds
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            let stage = status == nil ? "waiting for the response" : "reading the response"
            finish(context, .failure(DispatchFailure.retry("timed out after \(timeoutSeconds) s \(stage)")))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connect that failed is the bootstrap's to report (it says why).
        if active {
            finish(context, .failure(DispatchFailure.retry("the connection ended before a response")))
        } else {
            timeout?.cancel()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        active = true
        // With TLS, NIOSSL holds these back until the handshake has checked the server.
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            // 1xx answers are interim; the real one follows.
            if responseHead.status.code >= 200 { status = Int(responseHead.status.code) }
        case .body(let chunk):
            received.append(contentsOf: chunk.readableBytesView.prefix(HTTPPost.maximumResponseBody - received.count))
            // Enough to judge the answer: stop reading rather than take an endless body.
            if received.count >= HTTPPost.maximumResponseBody, let status {
                finish(context, .success(HTTPPostResponse(status: status, body: received)))
            }
        case .end:
            if let status { finish(context, .success(HTTPPostResponse(status: status, body: received))) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, .failure(DispatchFailure.retry("the server closed the connection before a complete response")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context, .failure(DispatchFailure.retry(NotifyTLS.describe(error))))
    }

    private func finish(_ context: ChannelHandlerContext, _ result: Result<HTTPPostResponse, any Error>) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        promise.completeWith(result)
        context.close(promise: nil)
    }
}

/// How the HTTP transports read a status: 2xx taken; 408 and 429 and 5xx worth another try;
/// other 4xx a firm no; anything else (a redirect, which is not followed) worth another try
/// once someone has looked at the URL.
enum HTTPStatusClass {
    case delivered, retry, refused

    init(_ status: Int) {
        switch status {
        case 200..<300: self = .delivered
        case 408, 429: self = .retry
        case 400..<500: self = .refused
        default: self = .retry
        }
    }
}
