import CareRelayModel
import Foundation
import Yams

/// A care plan file as a person wrote it: its values, and where each is in the file, so a
/// problem is reported at the line the author must change rather than as a JSON path they
/// would have to find.
struct PlanFile {
    /// What the file says, as JSON-shaped values (YAML numbers for NHS numbers read as text).
    var object: [String: Any]
    /// The file's tree with line numbers, when the file could be read as YAML (JSON included).
    var tree: Node?
    /// The name to report problems under.
    var source: String

    /// A problem at a place in the file.
    struct Problem: CustomStringConvertible {
        var line: Int?
        var path: String
        var reason: String

        var description: String {
            let place = line.map { "line \($0), " } ?? ""
            return path == "(body)" ? "\(line.map { "line \($0): " } ?? "")\(reason)" : "\(place)\(path): \(reason)"
        }
    }

    /// Problems with a file, reported together: the author fixes them in one go.
    struct Problems: Error {
        var source: String
        var problems: [Problem]

        var message: String {
            let list = problems.map { "  \($0)" }.joined(separator: "\n")
            return "\(source): \(problems.count == 1 ? "1 problem" : "\(problems.count) problems"):\n\(list)"
        }
    }

    /// Dates and times stay text, as the schemas want them.
    static let resolver = Resolver.default.removing(.timestamp)

    /// Reads `text`: YAML when `yaml`, else JSON (whose lines come from reading it as YAML too,
    /// which JSON almost always is).
    static func parse(_ text: String, source: String, yaml: Bool) throws(Problems) -> PlanFile {
        let parsed: Any?
        var tree: Node?
        if yaml {
            do {
                tree = try Yams.compose(yaml: text, resolver)
                parsed = try Yams.load(yaml: text, resolver)
            } catch {
                throw Problems(source: source, problems: [yamlProblem(error)])
            }
        } else {
            do { parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
                throw Problems(
                    source: source,
                    problems: [Problem(line: nil, path: "(body)", reason: "not valid JSON: \(error.localizedDescription)")])
            }
            tree = try? Yams.compose(yaml: text, resolver)
        }
        guard let object = parsed.map(Input.normalise) as? [String: Any] else {
            throw Problems(
                source: source, problems: [Problem(line: 1, path: "(body)", reason: "the file must hold one care plan (a mapping of its fields)")])
        }
        return PlanFile(object: object, tree: tree, source: source)
    }

    /// Reads a plan file from disk (YAML by its extension .yaml or .yml, else JSON).
    static func read(_ path: String) throws -> PlanFile {
        let data = try Input.read(path)
        do { return try parse(String(decoding: data, as: UTF8.self), source: path, yaml: Input.isYAML(path)) } catch {
            throw Failure.usage(error.message, hint: "Fix the file and try again. Nothing was sent.")
        }
    }

    private static func yamlProblem(_ error: any Error) -> Problem {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                let why = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
                return Problem(line: mark.line, path: "(body)", reason: "not valid YAML: \(why)")
            default: break
            }
        }
        return Problem(line: nil, path: "(body)", reason: "not valid YAML: \(error)")
    }

    // MARK: Where things are

    /// The steps of a path as the model's validation writes it: `sections[1].activities[0].status`.
    enum Step: Equatable {
        case key(String)
        case index(Int)
    }

    static func steps(_ path: String) -> [Step] {
        guard path != "(body)" else { return [] }
        var steps: [Step] = []
        for part in path.split(separator: ".") {
            var rest = Substring(part)
            if let bracket = rest.firstIndex(of: "[") {
                if bracket > rest.startIndex { steps.append(.key(String(rest[..<bracket]))) }
                rest = rest[bracket...]
                while rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                    if let index = Int(rest[rest.index(after: rest.startIndex)..<close]) { steps.append(.index(index)) }
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                steps.append(.key(String(rest)))
            }
        }
        return steps
    }

    /// The line of the value at `path`, or of the nearest enclosing value the file has (a
    /// missing field is reported where its object starts).
    func line(of path: String) -> Int? {
        guard var node = tree else { return nil }
        var line = node.mark?.line
        for step in Self.steps(path) {
            switch (step, node) {
            case (.key(let key), .mapping(let mapping)):
                guard let pair = mapping.first(where: { $0.key.string == key }) else { return line }
                line = pair.key.mark?.line ?? line
                node = pair.value
            case (.index(let index), .sequence(let sequence)):
                guard index >= 0, index < sequence.count else { return line }
                node = sequence[index]
                line = node.mark?.line ?? line
            default:
                return line
            }
        }
        return line
    }

    func problem(at path: String, _ reason: String) -> Problem {
        Problem(line: line(of: path), path: path, reason: reason)
    }

    // MARK: Placeholders

    /// Text in angle brackets starting with a letter: what a template asks the author to write.
    static let placeholderPattern = "<[A-Za-z][^<>\\n]*>"

    static func placeholders(in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: placeholderPattern) else { return [] }
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range, in: text).map { String(text[$0]) }
        }
    }

    /// Every placeholder left in the plan, in file order.
    var placeholders: [Problem] {
        var found: [Problem] = []
        func walk(_ value: Any, _ path: String) {
            if let text = value as? String {
                for placeholder in Self.placeholders(in: text) {
                    found.append(
                        problem(
                            at: path.isEmpty ? "(body)" : path,
                            "replace the placeholder \(Format.oneLine(placeholder, max: 90)) with what applies to this patient"))
                }
            } else if let object = value as? [String: Any] {
                for (key, inner) in object { walk(inner, path.isEmpty ? key : "\(path).\(key)") }
            } else if let list = value as? [Any] {
                for (index, inner) in list.enumerated() { walk(inner, "\(path)[\(index)]") }
            }
        }
        walk(object, "")
        return found.sorted { ($0.line ?? 0, $0.path) < ($1.line ?? 0, $1.path) }
    }

    /// The plan with each placeholder replaced by text that fits any field (an identifier
    /// included), so what the model says about it is about the rest of the plan.
    static func filled(_ value: Any, with replacement: String = "filled-in") -> Any {
        if let text = value as? String {
            guard let regex = try? NSRegularExpression(pattern: placeholderPattern) else { return text }
            return regex.stringByReplacingMatches(
                in: text, range: NSRange(text.startIndex..., in: text), withTemplate: NSRegularExpression.escapedTemplate(for: replacement))
        }
        if let object = value as? [String: Any] { return object.mapValues { filled($0, with: replacement) } }
        if let list = value as? [Any] { return list.map { filled($0, with: replacement) } }
        return value
    }

    // MARK: Checking

    /// Checks `object` (this file's values, perhaps with fields the client filled in) as the
    /// broker will: placeholders, then the model's validation. Returns the plan and its bytes.
    func check(_ object: [String: Any]) throws(Problems) -> (plan: CarePlanShare, bytes: [UInt8]) {
        var problems = PlanFile(object: object, tree: tree, source: source).placeholders
        // Checked with the placeholders filled in: each problem is reported once, as a placeholder.
        let checked = problems.isEmpty ? object : (Self.filled(object) as? [String: Any] ?? object)
        var result: (CarePlanShare, [UInt8])?
        do {
            let bytes = [UInt8](try JSONSerialization.data(withJSONObject: checked, options: [.sortedKeys, .withoutEscapingSlashes]))
            switch try MessageBody.decode(kind: .carePlanShare, json: bytes) {
            case .carePlanShare(let plan): result = (plan, bytes)
            default: problems.append(Problem(line: nil, path: "(body)", reason: "this is not a care plan"))
            }
        } catch let error as MessageValidationError {
            problems.append(problem(at: error.path, error.reason))
        } catch {
            problems.append(Problem(line: nil, path: "(body)", reason: "cannot be written as JSON: \(error.localizedDescription)"))
        }
        guard problems.isEmpty, let result else { throw Problems(source: source, problems: problems) }
        return result
    }
}

// MARK: Writing

/// Writes a plan as YAML a person can read and edit: the fields in the order a reader wants
/// them (whose plan, what it is, then its sections), one value per line, text unquoted
/// wherever YAML allows.
enum PlanYAML {
    /// The order of each mapping's fields, by the field that holds it ("" for the plan itself).
    static let orders: [String: [String]] = [
        "": [
            "plan", "version", "status", "intent", "patient", "patientName", "title", "description", "period", "author", "team",
            "careCoordinator", "created", "changeSummary", "sectionsWithheld", "sections",
        ],
        "sections": ["id", "kind", "title", "text", "labels", "changeNote", "activities"],
        "activities": ["description", "status", "performer", "schedule"],
        "performer": ["person", "team", "role", "display"],
        "patientName": ["prefix", "given", "family"],
        "period": ["start", "end"],
    ]

    static func text(_ object: [String: Any], header: String? = nil) throws -> String {
        let body = try Yams.serialize(node: node(object, field: ""), width: -1, allowUnicode: true)
        guard let header else { return body }
        return header.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "#" : "# \($0)" }.joined(separator: "\n")
            + "\n" + body
    }

    /// `field` is the name of the field holding `value`; a list's items share their list's.
    static func node(_ value: Any, field: String) -> Node {
        if let object = value as? [String: Any] {
            let order = orders[field] ?? []
            let keys = object.keys.sorted { a, b in
                let ia = order.firstIndex(of: a) ?? Int.max, ib = order.firstIndex(of: b) ?? Int.max
                return ia == ib ? a < b : ia < ib
            }
            return .mapping(Node.Mapping(keys.map { key in (Node(key), node(object[key] as Any, field: key)) }))
        }
        if let list = value as? [Any] {
            // Labels and given names read best on one line: [general, social-care].
            if ["labels", "given"].contains(field), list.allSatisfy({ $0 is String }) {
                return .sequence(Node.Sequence(list.map { scalar($0) }, .implicit, .flow))
            }
            return .sequence(Node.Sequence(list.map { node($0, field: field) }))
        }
        return scalar(value)
    }

    private static func scalar(_ value: Any) -> Node {
        if let text = value as? String {
            // Quoted only where YAML would otherwise read it as something else ("yes", "0191", "null").
            let plain = Node.Scalar(text)
            let style: Node.Scalar.Style =
                text.contains("\n") ? .literal : PlanFile.resolver.resolveTag(of: .scalar(plain)) == .str ? .any : .singleQuoted
            return .scalar(Node.Scalar(text, Tag(.str), style))
        }
        // Care plans hold no booleans or fractions: whole numbers (the version) are all there is.
        if let int = value as? Int { return Node(String(int), Tag(.int)) }
        if let double = value as? Double { return Node(String(double), Tag(.float)) }
        if let bool = value as? Bool { return Node(bool ? "true" : "false", Tag(.bool)) }
        return Node("null", Tag(.null))
    }
}
