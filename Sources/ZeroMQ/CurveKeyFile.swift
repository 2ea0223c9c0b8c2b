import Foundation

extension CurveKeyPair {
    public enum KeyFileError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case malformed(path: String, reason: String)
        case unwritable(path: String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read key file \(path): \(reason)"
            case .malformed(let path, let reason): "key file \(path) is not a CareRelay key file: \(reason)"
            case .unwritable(let path, let reason): "cannot write key file \(path): \(reason)"
            }
        }
    }

    /// Reads a key file: lines "public: <Z85>" and "secret: <Z85>" ('#' starts a comment).
    /// A file with only a public line is a peer's (e.g. the broker's) public key.
    public static func load(path: String) throws(KeyFileError) -> (publicKey: String, secretKey: String?) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        var publicKey: String?, secretKey: String?
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "public:": publicKey = parts[1].trimmingCharacters(in: .whitespaces)
            case "secret:": secretKey = parts[1].trimmingCharacters(in: .whitespaces)
            default: continue
            }
        }
        guard let publicKey, publicKey.utf8.count == 40, (try? Z85.decode(publicKey)) != nil else {
            throw .malformed(path: path, reason: "no 40-character Z85 'public:' line")
        }
        if let secretKey {
            guard let derived = try? CurveKeyPair.derivePublic(fromSecret: secretKey), derived == publicKey else {
                throw .malformed(path: path, reason: "the secret key does not belong to the public key")
            }
        }
        return (publicKey, secretKey)
    }

    /// Writes the pair with owner-only permissions (0600), creating the folder (0700).
    public func save(path: String, comment: String) throws(KeyFileError) {
        // URL, not NSString: NSString's deletingLastPathComponent traps on one-character paths here.
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let text = "# \(comment)\n# Keep this file private: it proves who you are to CareRelay.\npublic: \(publicKey)\nsecret: \(secretKey)\n"
        do {
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw KeyFileError.unwritable(path: path, reason: "could not create the file")
            }
            // createFile keeps an existing file's mode; make sure it is private.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch let error as KeyFileError {
            throw error
        } catch {
            throw .unwritable(path: path, reason: error.localizedDescription)
        }
    }

    /// Writes only the public key, for handing to others (the broker's key for clients).
    public func savePublic(path: String, comment: String) throws(KeyFileError) {
        do {
            try Data("# \(comment)\npublic: \(publicKey)\n".utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw .unwritable(path: path, reason: error.localizedDescription)
        }
    }
}
