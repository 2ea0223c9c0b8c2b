import CareRelayModel
import Foundation
import ZeroMQ

/// How clients prove who they are.
public enum ConnectionSecurity: Sendable, Equatable {
    /// Every connection is CURVE-encrypted and identified by the key it proves it holds.
    case curve
    /// For local development only: ZeroMQ PLAIN, the username naming a person in the
    /// directory and the password ignored. Nothing is encrypted and anyone who can reach the
    /// socket can claim to be anyone, so the broker refuses to bind anything but loopback.
    case insecureDevelopment
}

/// Endpoints only this machine can reach: the only ones insecure development mode may bind.
enum LoopbackEndpoint {
    /// `ipc://`, `inproc://`, and `tcp://` on 127.0.0.0/8, `localhost` or `[::1]`. Everything
    /// else is refused, including `tcp://0.0.0.0`, `tcp://*` and interface names, since any of
    /// them may face a network.
    static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let address = endpoint.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":") else { return false }
        let host = address[..<colon]
        let port = address[address.index(after: colon)...]
        guard port == "*" || (!port.isEmpty && port.allSatisfy(\.isASCII) && port.allSatisfy(\.isNumber)) else { return false }
        if host == "localhost" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets[0] == "127" else { return false }
        return octets.allSatisfy { octet in
            !octet.isEmpty && octet.count <= 3 && octet.allSatisfy { $0.isASCII && $0.isNumber } && (Int(octet) ?? 256) <= 255
        }
    }
}

extension ConnectionSecurity {
    /// The ZAP decision for one connection. The User-Id given to an accepted connection is
    /// its key in both modes (in insecure mode, the named person's directory key), which the engine looks up on every command,
    /// so an insecure-mode connection is identified exactly as a CURVE one holding that key.
    func authenticate(_ request: ZAPRequest, directory: DirectoryIndex) -> ZAPDecision {
        switch self {
        case .curve:
            // A key not in the directory is let in too, for one thing only: to enrol with a
            // code (`enrol`). The loop answers nothing else from it, so it learns nothing.
            guard request.mechanism == "CURVE", let key = request.clientPublicKey
            else { return .deny(status: "400", reason: "CURVE is required") }
            return .allow(userID: key)
        case .insecureDevelopment:
            guard request.mechanism == "PLAIN", let name = request.plainUsername,
                let person = directory.person(PersonID(name)), let key = person.key
            else {
                return .deny(
                    status: "400", reason: "insecure development mode: the username must be a person id in the directory, with a key")
            }
            return .allow(userID: key)
        }
    }
}
