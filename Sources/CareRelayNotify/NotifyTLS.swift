import NIOCore
import NIOSSL

/// The TLS client side shared by the SMTP and HTTP transports: full certificate and host name
/// verification always, against the system's roots or the settings' own CA file.
enum NotifyTLS {
    /// A fresh context per attempt, so a replaced CA file is read without a restart.
    static func context(trustRootsPEM: String?) throws(DispatchFailure) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        do {
            if let path = trustRootsPEM {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // The operator can fix a missing or unreadable CA file; the notification is fine.
            throw .retry("could not set up TLS with trust roots \(trustRootsPEM ?? "of the system"): \(error)")
        }
    }

    /// The name to send in SNI and check the certificate against. Nil for an IP address: SNI
    /// carries no addresses, and NIOSSL then checks the certificate's IP SANs against the peer.
    static func serverHostname(for host: String) -> String? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (try? SocketAddress(ipAddress: bare, port: 0)) == nil ? host : nil
    }

    static func clientHandler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname(for: host))
    }

    /// Why a connection failed, in words for the outbox. NIOSSL's handshake errors name the
    /// certificate problem; keep them.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as NIOSSLError: "TLS: \(error)"
        case let error as NIOSSLExtraError: "TLS: \(error)"
        case let error as IOError: error.description
        default: String(describing: error)
        }
    }
}
