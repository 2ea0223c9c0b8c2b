import Foundation
import Yams

/// A care plan template: the start of a plan (title, description, sections with their
/// activities) with `<placeholders>` where the author writes what applies to the patient,
/// and a `template` mapping that describes it (`description`, and `reviewWeeks`: how long
/// until the plan is reviewed, which sets the period's end).
struct CarePlanTemplate {
    var name: String
    /// The file's text, exactly.
    var text: String
    /// "built in", or the file it came from.
    var source: String
    var description: String
    var reviewWeeks: Int?
    /// The plan's fields, without `template`.
    var plan: [String: Any]
    var tree: Node?
}

/// The templates a person can start a plan from: those built into the client, then a site's
/// own files (`--templates DIR` or CARERELAY_TEMPLATES), which add templates or replace a
/// built-in one of the same name.
enum CarePlanTemplates {
    static let environmentVariable = "CARERELAY_TEMPLATES"

    /// The site's folder: the option, else the environment variable.
    static func folder(_ option: String?) -> String? {
        if let option, !option.isEmpty { return Globals.expand(option) }
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty { return Globals.expand(env) }
        return nil
    }

    static func all(folder: String?) throws -> [CarePlanTemplate] {
        var byName: [String: CarePlanTemplate] = [:]
        for (name, text) in BuiltInCarePlanTemplates.files {
            // The literal holds the file without its last line break.
            byName[name] = try parse(name: name, text: text + "\n", source: "built in")
        }
        if let folder {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw Failure(
                    Exit.ioError, "the templates folder \(folder) does not exist", hint: "It is set by --templates or \(environmentVariable).")
            }
            let files: [String]
            do { files = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                throw Failure(Exit.ioError, "cannot read the templates folder \(folder): \(error.localizedDescription)")
            }
            for file in files.sorted() where Input.isYAML(file) {
                let path = (folder as NSString).appendingPathComponent(file)
                let name = ((file as NSString).deletingPathExtension as NSString).lastPathComponent
                let data = try Input.read(path)
                byName[name] = try parse(name: name, text: String(decoding: data, as: UTF8.self), source: path)
            }
        }
        return byName.values.sorted { $0.name < $1.name }
    }

    static func named(_ name: String, folder: String?) throws -> CarePlanTemplate {
        let templates = try all(folder: folder)
        guard let template = templates.first(where: { $0.name == name }) else {
            throw Failure.usage(
                "there is no care plan template named '\(name)'",
                hint: "carerelay careplan templates lists them: \(templates.map(\.name).joined(separator: ", ")).")
        }
        return template
    }

    static func parse(name: String, text: String, source: String) throws -> CarePlanTemplate {
        let file: PlanFile
        do { file = try PlanFile.parse(text, source: "template \(name) (\(source))", yaml: true) } catch {
            throw Failure.usage(error.message)
        }
        var plan = file.object
        let about = plan.removeValue(forKey: "template") as? [String: Any] ?? [:]
        let description = (about["description"] as? String).map { Format.oneLine($0, max: 200) } ?? "(no description)"
        return CarePlanTemplate(
            name: name, text: text, source: source, description: description, reviewWeeks: about["reviewWeeks"] as? Int, plan: plan,
            tree: file.tree)
    }
}
