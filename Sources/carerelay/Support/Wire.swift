import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Yams

// MARK: Input

enum Input {
    /// Validates an NHS number typed on the command line, before anything is sent.
    static func nhsNumber(_ text: String, option: String = "--patient") throws -> NHSNumber {
        do { return try NHSNumber(validating: text) } catch {
            throw Failure.usage(
                "\(option) '\(text)' is not a valid NHS number: \(error.description)",
                hint: "Check the number against the patient's record; spaces are fine (943 476 5919). Nothing was sent.")
        }
    }

    /// A referral id as typed: one of the short, speakable ids is checked (its check character
    /// catches a mistyped one) and written as the broker wrote it; a longer message id is
    /// passed on as it is.
    static func referralID(_ text: String) throws -> String {
        guard ReferralID.looksLikeOne(text) else { return text }
        switch ReferralID.reading(text) {
        case .success(let id): return id
        case .failure(let problem):
            throw ValidationError("'\(text)' is not a referral id: \(problem). Check it against the referral; nothing was sent.")
        }
    }

    static func address(_ text: String) throws -> Address {
        do { return try Address(parsing: text) } catch {
            throw Failure.usage("--to '\(text)': \(error.description)")
        }
    }

    /// A person given as "gp.khan" or "person:gp.khan".
    static func person(_ text: String, option: String) throws -> PersonID {
        let raw = text.hasPrefix("person:") ? String(text.dropFirst(7)) : text
        guard PersonID.isWellFormed(raw) else {
            throw Failure.usage("\(option) '\(text)' is not a person id (like sw.okafor or person:sw.okafor)")
        }
        return PersonID(raw)
    }

    static func read(_ path: String) throws -> Data {
        let expanded = Globals.expand(path)
        guard FileManager.default.fileExists(atPath: expanded) else {
            throw Failure(Exit.ioError, "file \(path) does not exist")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: expanded)) } catch {
            throw Failure(Exit.ioError, "cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func isYAML(_ path: String) -> Bool {
        path.hasSuffix(".yaml") || path.hasSuffix(".yml")
    }

    /// A body file as a JSON object: JSON, or YAML (by extension) converted to JSON.
    static func object(_ path: String) throws -> [String: Any] {
        let data = try read(path)
        let parsed: Any?
        if isYAML(path) {
            do {
                // Dates and times stay text, as the schemas want them.
                parsed = try Yams.load(yaml: String(decoding: data, as: UTF8.self), Resolver.default.removing(.timestamp))
            } catch {
                throw Failure.usage("\(path) is not valid YAML: \(error)")
            }
        } else {
            do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
                throw Failure.usage(
                    "\(path) is not valid JSON: \(error.localizedDescription)",
                    hint: "Files ending .yaml or .yml are read as YAML.")
            }
        }
        guard let object = parsed.map(normalise) as? [String: Any] else {
            throw Failure.usage("\(path) must hold one object (a message body)")
        }
        return object
    }

    /// YAML reads an unquoted NHS number as an integer; the schemas want ten-digit text.
    static func normalise(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, inner) in object {
                if ["patient", "subject"].contains(key), let number = inner as? Int {
                    result[key] = String(format: "%010lld", Int64(number))
                } else {
                    result[key] = normalise(inner)
                }
            }
            return result
        }
        if let list = value as? [Any] { return list.map(normalise) }
        return value
    }

    static func jsonBytes(_ object: [String: Any]) throws -> [UInt8] {
        do {
            return [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw Failure.usage("the body cannot be written as JSON: \(error.localizedDescription)")
        }
    }

    /// Writes a JSON object as JSON or YAML (by extension), pretty.
    static func write(_ object: [String: Any], to path: String) throws {
        let expanded = Globals.expand(path)
        let data: Data
        do {
            if isYAML(path) {
                data = Data(try Yams.dump(object: object, sortKeys: true).utf8)
            } else {
                data =
                    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                    + Data("\n".utf8)
            }
            try data.write(to: URL(fileURLWithPath: expanded), options: .atomic)
        } catch {
            throw Failure(Exit.ioError, "cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Checks a body with the same validation the broker applies, so mistakes are caught
    /// before sending (exit 64 with the field and the reason).
    static func validate(kind: MessageKind, _ bytes: [UInt8], source: String) throws -> MessageBody {
        do { return try MessageBody.decode(kind: kind, json: bytes) } catch {
            throw Failure.usage("\(source): \(error.path): \(error.reason)", hint: "Fix the field and try again. Nothing was sent.")
        }
    }
}

// MARK: Sending

struct SendReport: Codable {
    var id: String
    var key: String
    var duplicate: Bool
    var recipients: [RecipientOutcome]
}

enum Sender {
    static func header(
        kind: MessageKind, to: [Address], patient: NHSNumber? = nil, priority: Priority? = nil,
        labels: [DataCategory]? = nil, correlation: String? = nil, key: String?, breakGlass: String? = nil,
        purpose: ConsentPurpose? = nil
    ) -> SendHeader {
        SendHeader(
            key: key ?? UUID().uuidString.lowercased(), kind: kind, to: to, patient: patient, priority: priority,
            labels: labels, correlation: correlation, breakGlass: breakGlass, purpose: purpose)
    }

    /// Sends, then prints what happened for each recipient. The caller ends with `finish`,
    /// which turns withheld recipients into exit 66.
    @discardableResult
    static func send(
        _ client: CareRelayClient, _ header: SendHeader, body: [UInt8], what: String, json: Bool,
        names: DirectoryListing? = nil
    ) throws -> Accepted {
        let accepted = try brokerCall { () throws(ClientError) in try client.send(header, body: body) }
        report(accepted, what: what, json: json, names: names)
        return accepted
    }

    static func report(_ accepted: Accepted, what: String, json: Bool, names: DirectoryListing? = nil) {
        if json {
            Console.json(SendReport(id: accepted.id, key: accepted.key, duplicate: accepted.duplicate, recipients: accepted.recipients))
            return
        }
        Console.out("\(what): \(accepted.id)")
        if accepted.duplicate {
            Console.out("(already sent earlier with key \(accepted.key): nothing new was stored)")
        }
        if accepted.recipients.isEmpty {
            Console.out("No one else receives a copy.")
            return
        }
        Console.table(
            ["RECIPIENT", "OUTCOME", "DETAIL"],
            accepted.recipients.map { r in
                let who = names?.name(of: r.person).map { "\(r.person) (\($0))" } ?? r.person.rawValue
                let outcome =
                    switch r.decision {
                    case .deliver: "deliver"
                    case .redacted: "deliver, redacted"
                    case .withheld: "WITHHELD"
                    }
                return [who, outcome, r.reason ?? ""]
            })
    }

    /// Exit 66 when someone will receive nothing: the message was accepted, but say so.
    static func finish(_ accepted: Accepted) throws {
        let withheld = accepted.recipients.filter { $0.decision == .withheld }.map(\.person.rawValue)
        guard withheld.isEmpty else {
            throw Failure(
                Exit.withheld, "message \(accepted.id) was accepted, but it is withheld from \(withheld.joined(separator: ", ")) (see DETAIL above)",
                hint:
                    "They will receive nothing. If they need it, record the patient's consent (carerelay consent record) and send again; the audit trail shows which rule decided."
            )
        }
    }
}
