import ArgumentParser
import CareRelayModel
import Foundation

/// The patient's details as `referral send` takes them: each option sets one field of the
/// referral's `patientDetails`, over what a body file (--file) already gives. The body is
/// validated as a whole before anything is sent, so a bad date or postcode stops here.
struct PatientDetailsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How the patient is addressed: Mrs, Mr, Ms, Dr ...", valueName: "title")) var title: String?
    @Option(help: ArgumentHelp("Given name; repeat for middle names.", valueName: "name")) var given: [String] = []
    @Option(help: ArgumentHelp("Family name (surname).", valueName: "name")) var family: String?
    @Option(help: ArgumentHelp("Date of birth, YYYY-MM-DD.", valueName: "date")) var born: String?
    @Option(help: ArgumentHelp("Street address; commas separate the lines.", valueName: "lines")) var address: String?
    @Option(help: ArgumentHelp("Town or city.", valueName: "town")) var town: String?
    @Option(help: ArgumentHelp("Postcode (any case or spacing: sr46tj).", valueName: "postcode")) var postcode: String?
    @Option(help: ArgumentHelp("Home telephone.", valueName: "number")) var phone: String?
    @Option(help: ArgumentHelp("Mobile telephone.", valueName: "number")) var mobile: String?
    @Option(help: ArgumentHelp("Email address.", valueName: "address")) var email: String?
    @Option(help: ArgumentHelp("Preferred language, a language tag: en, pl, pa, bfi (British Sign Language).", valueName: "tag"))
    var language: String?
    @Flag(inversion: .prefixedNo, help: "Whether an interpreter is needed.") var interpreter: Bool?
    @Option(help: ArgumentHelp("Communication or access needs, in words.", valueName: "text")) var needs: String?

    /// `details` (from a body file, or nil) with every option given laid over it; nil when
    /// there is neither.
    func merged(into details: [String: Any]?) throws -> [String: Any]? {
        var out = details ?? [:]
        var name = out["name"] as? [String: Any] ?? [:]
        if let title { name["prefix"] = title }
        if !given.isEmpty { name["given"] = given }
        if let family { name["family"] = family }
        if !name.isEmpty { out["name"] = name }
        if let born { out["birthDate"] = born }
        var place = out["address"] as? [String: Any] ?? [:]
        if let address {
            place["line"] = address.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let town { place["city"] = town }
        if let postcode {
            do { place["postalCode"] = try UKPostcode.normalising(postcode).text } catch {
                throw Failure.usage("--postcode '\(postcode)': \(error.reason)", hint: "Nothing was sent.")
            }
        }
        if !place.isEmpty { out["address"] = place }
        var telecom = out["telecom"] as? [[String: Any]] ?? []
        if let phone { telecom.append(["system": "phone", "value": phone, "use": "home"]) }
        if let mobile { telecom.append(["system": "phone", "value": mobile, "use": "mobile"]) }
        if let email { telecom.append(["system": "email", "value": email]) }
        if !telecom.isEmpty { out["telecom"] = telecom }
        if let language { out["language"] = language }
        if let interpreter { out["interpreterRequired"] = interpreter }
        if let needs { out["communicationNeeds"] = needs }
        guard !out.isEmpty else { return nil }
        guard out["name"] != nil else {
            throw Failure.usage("patient details need the patient's name", hint: "e.g. --given Margaret --family Ellis")
        }
        return out
    }

    /// The details as `referral show` prints them, one line each, under "Patient:".
    static func lines(_ details: PatientDetails, on written: Timestamp) -> [String] {
        var lines: [String] = []
        if let born = details.birthDate {
            let age = age(born: born, on: written).map { " (\($0) when referred)" } ?? ""
            lines.append("Born:      \(born)\(age)")
        }
        if let address = details.address { lines.append("Address:   \(address.text)") }
        for contact in details.telecom ?? [] {
            let label = contact.system == .email ? "Email:" : (contact.use == .mobile ? "Mobile:" : "Phone:")
            lines.append("\(label.padding(toLength: 11, withPad: " ", startingAt: 0))\(contact.value)")
        }
        if details.language != nil || details.interpreterRequired != nil {
            let interpreter =
                switch details.interpreterRequired {
                case true?: "interpreter needed"
                case false?: "no interpreter needed"
                case nil: nil as String?
                }
            lines.append("Language:  " + [details.language, interpreter].compactMap { $0 }.joined(separator: ", "))
        }
        if let needs = details.communicationNeeds { lines.append("Needs:     \(Format.oneLine(needs, max: 400))") }
        return lines
    }

    /// Whole years from `born` to the day `written` names.
    static func age(born: CalendarDate, on written: Timestamp) -> Int? {
        let b = born.text.split(separator: "-").compactMap { Int($0) }
        let w = written.text.prefix(10).split(separator: "-").compactMap { Int($0) }
        guard b.count == 3, w.count == 3 else { return nil }
        return w[0] - b[0] - ((w[1], w[2]) < (b[1], b[2]) ? 1 : 0)
    }
}
