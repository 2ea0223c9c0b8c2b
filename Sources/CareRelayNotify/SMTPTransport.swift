import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Sends `.email` notifications through the site's SMTP relay: one connection per
/// notification, STARTTLS or implicit TLS with the relay's certificate checked, AUTH when
/// credentials are set. The protocol itself is `SMTPDialogue`; this is the network around it.
public struct SMTPTransport: Transport {
    public let settings: SMTPSettings
    private let group: any EventLoopGroup
    private let logger: Logger

    public init(
        settings: SMTPSettings, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "carerelay.notify.smtp")
    ) {
        self.settings = settings
        self.group = eventLoopGroup
        self.logger = logger
    }

    public func send(_ dispatch: Dispatch) async throws(DispatchFailure) {
        guard case .email(let recipient) = dispatch.channel else {
            throw .refused("the SMTP transport sends email only, not \(dispatch.channel)")
        }
        guard SMTPAddress.isAcceptable(recipient) else { throw .refused("not an email address this relay can be given: \(recipient)") }
        guard SMTPAddress.sender(settings.from) != nil else {
            throw .refused("the sender in the settings is not an address or 'Name <address>': \(settings.from)")
        }

        let tls: NIOSSLContext? = settings.security == .none ? nil : try NotifyTLS.context(trustRootsPEM: settings.trustRootsPEM)
        let dialogue = SMTPDialogue(settings: settings, recipient: recipient, dispatch: dispatch)
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Void.self)
        let timeout = TimeAmount.nanoseconds(Int64(max(settings.timeout, 0.001) * 1_000_000_000))
        let deadline = NIODeadline.now() + timeout
        let (host, security, seconds) = (settings.host, settings.security, settings.timeout)

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                do {
                    let makeTLSHandler = {
                        guard let tls else { throw DispatchFailure.refused("TLS asked for with security .none") }
                        return try NotifyTLS.clientHandler(context: tls, host: host)
                    }
                    if security == .implicitTLS { try channel.pipeline.syncOperations.addHandler(makeTLSHandler()) }
                    try channel.pipeline.syncOperations.addHandler(
                        SMTPClientHandler(
                            dialogue: dialogue, promise: promise, deadline: deadline, timeoutSeconds: seconds,
                            makeTLSHandler: makeTLSHandler))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let target = "\(settings.host):\(settings.port)"
        bootstrap.connect(host: settings.host, port: settings.port).whenFailure { error in
            promise.fail(DispatchFailure.retry("could not connect to \(target): \(NotifyTLS.describe(error))"))
        }
        do {
            try await promise.futureResult.get()
            logger.debug("email delivered", metadata: ["dispatch": "\(dispatch.id)", "relay": "\(target)"])
        } catch let failure as DispatchFailure {
            logger.debug("email not delivered", metadata: ["dispatch": "\(dispatch.id)", "relay": "\(target)", "why": "\(failure)"])
            throw failure
        } catch {
            throw .retry("\(target): \(error)")
        }
    }
}
