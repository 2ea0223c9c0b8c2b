import CareRelayModel
import Foundation

/// The check-in form as typed, and what is wrong with it, field by field.
struct CheckInForm {
    var patientScore = ""
    var patientText = ""
    var wellbeing = ""
    var strain = ""
    var carerText = ""
    var concerns = ""
    var urgency = ""
    var pulse = ""
    var oxygen = ""
    var temperature = ""
    var key = ""

    /// Field name to plain-English problem, in the order the fields appear.
    var errors: [(field: String, message: String)] = []

    init() {}

    init(_ fields: [String: String]) {
        patientScore = fields["patientScore"] ?? ""
        patientText = (fields["patientText"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        wellbeing = fields["wellbeing"] ?? ""
        strain = fields["strain"] ?? ""
        carerText = (fields["carerText"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        concerns = (fields["concerns"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        urgency = fields["urgency"] ?? ""
        pulse = (fields["pulse"] ?? "").trimmingCharacters(in: .whitespaces)
        oxygen = (fields["oxygen"] ?? "").trimmingCharacters(in: .whitespaces)
        temperature = (fields["temperature"] ?? "").trimmingCharacters(in: .whitespaces)
        key = fields["key"] ?? ""
    }

    static let maxText = 4000

    struct Reading {
        let field: String
        let label: String
        let code: String
        let display: String
        let unit: String
        let range: ClosedRange<Double>
        let example: String
    }

    static let readings = [
        Reading(
            field: "pulse", label: "Pulse, beats a minute", code: "8867-4", display: "Heart rate", unit: "/min",
            range: 20...250, example: "72"),
        Reading(
            field: "oxygen", label: "Oxygen level, %", code: "59408-5", display: "Oxygen saturation (pulse oximetry)",
            unit: "%", range: 50...100, example: "96"),
        Reading(
            field: "temperature", label: "Temperature, °C", code: "8310-5", display: "Body temperature", unit: "Cel",
            range: 30...45, example: "37.2"),
    ]

    func value(of field: String) -> String {
        switch field {
        case "pulse": pulse
        case "oxygen": oxygen
        case "temperature": temperature
        default: ""
        }
    }

    /// Checks every field; on success returns the body to send.
    mutating func validate(patient: NHSNumber, carer: PersonID, name: String, now: Date) -> CarerCheckIn? {
        errors = []
        let score = Int(patientScore).flatMap { (1...5).contains($0) ? $0 : nil }
        if score == nil { errors.append(("patientScore", "Choose how \(name) is today, from 1 (very poorly) to 5 (very well).")) }
        if patientText.isEmpty {
            errors.append(("patientText", "Write a few words about how \(name) is today."))
        } else if patientText.unicodeScalars.count > Self.maxText {
            errors.append(("patientText", "Keep this to \(Self.maxText) characters or fewer: you wrote \(patientText.unicodeScalars.count)."))
        }
        let carerScore = Int(wellbeing).flatMap { (1...5).contains($0) ? $0 : nil }
        if carerScore == nil { errors.append(("wellbeing", "Choose how you are, from 1 (struggling) to 5 (well).")) }
        let strainScore = Int(strain).flatMap { (0...10).contains($0) ? $0 : nil }
        if strainScore == nil { errors.append(("strain", "Choose how much strain you feel, from 0 (none) to 10 (you cannot go on).")) }
        if carerText.unicodeScalars.count > Self.maxText {
            errors.append(("carerText", "Keep this to \(Self.maxText) characters or fewer: you wrote \(carerText.unicodeScalars.count)."))
        }
        if concerns.unicodeScalars.count > Self.maxText {
            errors.append(("concerns", "Keep this to \(Self.maxText) characters or fewer: you wrote \(concerns.unicodeScalars.count)."))
        }
        let urgencyChoice = CarerCheckIn.Urgency(rawValue: urgency)
        if urgencyChoice == nil { errors.append(("urgency", "Choose how soon you would like someone to get back to you.")) }
        var readings: [CarerCheckIn.Reading] = []
        for reading in Self.readings {
            let text = value(of: reading.field).replacingOccurrences(of: ",", with: ".")
            guard !text.isEmpty else { continue }
            guard let number = Double(text), number.isFinite else {
                errors.append((reading.field, "Enter a number, for example \(reading.example), or leave it empty."))
                continue
            }
            guard reading.range.contains(number) else {
                errors.append(
                    (
                        reading.field,
                        "\(Self.format(number)) is not a likely reading: check it and enter a number from \(Self.format(reading.range.lowerBound)) to \(Self.format(reading.range.upperBound)), or leave it empty."
                    ))
                continue
            }
            readings.append(
                CarerCheckIn.Reading(
                    code: Coding(system: "http://loinc.org", code: reading.code, display: reading.display),
                    value: number, unit: reading.unit, time: Timestamp(now)))
        }
        guard errors.isEmpty, let score, let carerScore, let strainScore, let urgencyChoice else { return nil }
        let body = CarerCheckIn(
            status: .completed, patient: patient, carer: carer, authored: Timestamp(now),
            patientWellbeing: .init(score: score, text: patientText),
            carerWellbeing: .init(wellbeing: carerScore, strain: strainScore, text: carerText.isEmpty ? nil : carerText),
            concerns: concerns.isEmpty ? nil : concerns, urgency: urgencyChoice, readings: readings.isEmpty ? nil : readings)
        do {
            try body.validate()
        } catch {
            errors.append(("patientText", "This check-in could not be sent as it is: \(error.reason)"))
            return nil
        }
        return body
    }

    static func format(_ number: Double) -> String {
        number == number.rounded() ? String(Int(number)) : String(number)
    }

    func options(_ values: [(String, String)], selected: String) -> [[String: Any]] {
        values.map { ["value": $0.0, "label": $0.1, "checked": $0.0 == selected] }
    }

    /// The radio groups' choices (value, label); each radio's id is "<field>-<value>".
    static let radioGroups: [String: [(String, String)]] = [
        "patientScore": [("1", "1 very poorly"), ("2", "2 poorly"), ("3", "3 so-so"), ("4", "4 well"), ("5", "5 very well")],
        "wellbeing": [("1", "1 struggling"), ("2", "2"), ("3", "3 coping"), ("4", "4"), ("5", "5 well")],
        "urgency": [
            ("routine", "No hurry: at the next routine contact"),
            ("soon", "Soon: in the next day or two"),
            ("urgent", "Urgent: today"),
        ],
    ]

    /// The id an error-summary link for `field` points at: a control that takes focus when
    /// the link is followed. A radio group's fieldset cannot, so its link goes to the group's
    /// first radio (as the GOV.UK Design System's error summary does); every other field's
    /// id is its control's.
    static func focusTarget(of field: String) -> String {
        guard let first = radioGroups[field]?.first else { return field }
        return "\(field)-\(first.0)"
    }

    func context(errorsByField: [String: String]) -> [String: Any] {
        let patientScores = options(Self.radioGroups["patientScore"] ?? [], selected: patientScore)
        let wellbeings = options(Self.radioGroups["wellbeing"] ?? [], selected: wellbeing)
        var strainValues: [(String, String)] = []
        for n in 0...10 {
            let label: String = n == 0 ? "0: none at all" : (n == 10 ? "10: I cannot go on" : String(n))
            strainValues.append((String(n), label))
        }
        let strains = options(strainValues, selected: strain)
        let urgencies = options(Self.radioGroups["urgency"] ?? [], selected: urgency)
        var readingFields: [[String: Any]] = []
        for reading in Self.readings {
            var entry: [String: Any] = ["name": reading.field, "label": reading.label, "value": value(of: reading.field)]
            if let error = errorsByField[reading.field] { entry["error"] = error }
            readingFields.append(entry)
        }
        var context: [String: Any] = [:]
        context["patientScores"] = patientScores
        context["wellbeings"] = wellbeings
        context["strains"] = strains
        context["urgencies"] = urgencies
        context["patientText"] = patientText
        context["carerText"] = carerText
        context["concerns"] = concerns
        context["readingFields"] = readingFields
        return context
    }
}
