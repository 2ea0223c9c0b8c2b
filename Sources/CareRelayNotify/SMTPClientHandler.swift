import NIOCore
import NIOSSL

/// The channel handler that drives an `SMTPDialogue`: bytes in, lines to the dialogue, its
/// commands out, TLS put in front of the pipeline when the dialogue asks for STARTTLS. All its
/// state lives on the channel's event loop; the outcome goes to `promise`.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var dialogue: SMTPDialogue
    private var lines = SMTPLineBuffer()
    private let promise: EventLoopPromise<Void>
    private let deadline: NIODeadline
    private let timeoutSeconds: Double
    private let makeTLSHandler: () throws -> NIOSSLClientHandler
    private var timeout: Scheduled<Void>?
    /// Between STARTTLS and the first reply under TLS, so that a failure says it was the handshake.
    private var handshaking = false
    private var done = false
    private var active = false

    init(
        dialogue: SMTPDialogue, promise: EventLoopPromise<Void>, deadline: NIODeadline, timeoutSeconds: Double,
        makeTLSHandler: @escaping () throws -> NIOSSLClientHandler
    ) {
        self.dialogue = dialogue
        self.promise = promise
        self.deadline = deadline
        self.timeoutSeconds = timeoutSeconds
        self.makeTLSHandler = makeTLSHandler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            finish(context, .failure(DispatchFailure.retry("timed out after \(timeoutSeconds) s during \(dialogue.step)")))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connect that failed is the bootstrap's to report (it says why); after a connect,
        // the channel going away without a word must not leave the caller waiting.
        if active {
            finish(context, .failure(DispatchFailure.retry("the connection ended during \(dialogue.step)")))
        } else {
            timeout?.cancel()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        active = true
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lines.append(buffer.readableBytesView)
        while !done {
            let line: String?
            do {
                line = try lines.nextLine()
            } catch {
                return perform(.fail(.retry("the relay sent a reply line longer than \(SMTPLineBuffer.maximumLineLength) bytes")), context)
            }
            guard let line else { return }
            // A line under TLS: the handshake is over.
            handshaking = false
            var action = dialogue.receive(line: line)
            if action == .startTLS, !lines.isEmpty {
                // Anything after the 220 to STARTTLS came before TLS, from the relay or from
                // someone on the path, and must not be read as if it came under TLS.
                action = .fail(.retry("the relay sent data after agreeing to STARTTLS"))
            }
            perform(action, context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let failure = dialogue.connectionClosed() {
            finish(context, .failure(failure))
        } else {
            finish(context, .success(()))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let during = handshaking ? "the TLS handshake" : dialogue.step
        finish(context, .failure(DispatchFailure.retry("\(NotifyTLS.describe(error)) (during \(during))")))
    }

    private func perform(_ action: SMTPDialogue.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .wait:
            break
        case .send(let text):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
        case .startTLS:
            // NIOSSL holds back what is written until the handshake has completed and the relay's
            // certificate and name have been checked, so EHLO can be queued at once: it never
            // leaves in clear, and never reaches a relay that failed the check.
            do {
                try context.pipeline.syncOperations.addHandler(makeTLSHandler(), position: .first)
                handshaking = true
            } catch {
                return finish(context, .failure(DispatchFailure.retry("could not start TLS: \(error)")))
            }
            perform(dialogue.tlsEstablished(), context)
        case .close:
            finish(context, .success(()))
        case .fail(let failure):
            finish(context, .failure(failure))
        }
    }

    /// The first outcome wins; the connection is closed either way.
    private func finish(_ context: ChannelHandlerContext, _ result: Result<Void, any Error>) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
