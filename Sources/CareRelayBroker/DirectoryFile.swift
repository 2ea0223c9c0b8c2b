import CareRelayModel
import Foundation
import Yams

/// Reads the directory file (YAML). The format is documented in Protocols/directory.md.
public enum DirectoryFile {
    public struct LoadError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public static func load(path: String) throws(LoadError) -> DirectoryIndex {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(path: path, reason: "cannot read the directory file: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String = "directory") throws(LoadError) -> DirectoryIndex {
        let directory: Directory
        do {
            directory = try YAMLDecoder().decode(Directory.self, from: text)
        } catch let error as DecodingError {
            throw LoadError(path: path, reason: DecodingErrorText.describe(error))
        } catch {
            throw LoadError(path: path, reason: "not valid YAML: \(error)")
        }
        do {
            return try DirectoryIndex(directory)
        } catch {
            throw LoadError(path: path, reason: error.description)
        }
    }

    public static func encode(_ directory: Directory) throws -> String {
        try YAMLEncoder().encode(directory)
    }
}
