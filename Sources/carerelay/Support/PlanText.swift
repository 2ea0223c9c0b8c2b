import CareRelayModel
import CareRelayProtocol
import Foundation

/// Names for the people and teams a plan mentions, from the directory when the broker gave
/// it: a reader knows "Yusuf Ali", not "nurse.ali".
struct PlanNames {
    var directory: DirectoryListing?

    func person(_ id: PersonID) -> String {
        directory?.name(of: id).map { "\($0) (\(id))" } ?? id.rawValue
    }

    func team(_ id: TeamID) -> String {
        directory?.team(id).map { "\($0.name) (\(id))" } ?? id.rawValue
    }

    /// Who does an activity: the name the author gave, else the directory's, else the role.
    func performer(_ performer: PerformerReference?) -> String {
        guard let performer else { return "no one named" }
        let role = performer.role.map { $0.rawValue.replacingOccurrences(of: "-", with: " ") }
        let name =
            performer.display
            ?? performer.person.flatMap { directory?.name(of: $0) }
            ?? performer.team.flatMap { directory?.team($0)?.name }
        switch (name, role) {
        case (let name?, let role?): return "\(name) (\(role))"
        case (let name?, nil): return name
        case (nil, let role?): return performer.person.map { "\($0.rawValue), \(role)" } ?? performer.team.map { "\($0.rawValue), \(role)" } ?? role
        case (nil, nil): return performer.person?.rawValue ?? performer.team?.rawValue ?? "no one named"
        }
    }
}

enum PlanText {
    static func line(_ text: String) -> String { Terminal.safe(text, singleLine: true) }

    static func words(_ value: String) -> String { value.replacingOccurrences(of: "-", with: " ") }

    static func patient(_ plan: CarePlanShare) -> String {
        let name = plan.patientName.map { "\(line($0.text)), " } ?? ""
        return "\(name)NHS \(plan.patient.formatted)"
    }

    static func period(_ period: CarePlanShare.Period) -> String {
        "\(period.start) to \(period.end.map(\.text) ?? "review")"
    }

    static func activity(_ activity: CarePlanShare.Activity, names: PlanNames) -> String {
        var parts = [words(activity.status.rawValue)]
        if activity.performer != nil { parts.insert(names.performer(activity.performer), at: 0) }
        if let schedule = activity.schedule { parts.append(schedule) }
        return "\(line(activity.description)): \(line(parts.joined(separator: "; ")))"
    }

    static func sectionsWithheld(_ count: Int) -> String {
        count == 1 ? "1 section is not shared with you." : "\(count) sections are not shared with you."
    }

    /// The plan as a person reads it: who and what it is about, then section by section.
    static func show(_ plan: CarePlanShare, names: PlanNames, latest: Bool) -> [String] {
        var out: [String] = []
        out.append("Care plan \(plan.plan), version \(plan.version)\(latest ? " (the latest you hold)" : ""): \(words(plan.status.rawValue))")
        out.append("  \(line(plan.title))")
        func field(_ label: String, _ value: String) { out.append("  \(label.padding(toLength: 14, withPad: " ", startingAt: 0))\(value)") }
        field("Patient:", patient(plan))
        field("Period:", period(plan.period))
        let team = plan.team.map { ", \(names.team($0))" } ?? ""
        field("Written by:", "\(names.person(plan.author))\(team), \(plan.created)")
        if let coordinator = plan.careCoordinator { field("Co-ordinator:", names.person(coordinator)) }
        if plan.intent != .plan { field("Intent:", plan.intent.rawValue) }
        if let description = plan.description { field("About:", Terminal.block(description, indent: 16)) }
        field("Changes:", Terminal.block(plan.changeSummary, indent: 16))
        if let withheld = plan.sectionsWithheld { out.append("  \(sectionsWithheld(withheld))") }
        for (index, section) in plan.sections.enumerated() {
            out.append("")
            let kind = section.kind == .contingency ? "CONTINGENCY" : "care"
            out.append(
                "\(index + 1). \(line(section.title)) [\(section.id)]  \(kind); \(section.labels.map(\.rawValue).joined(separator: ", "))")
            out.append("   \(Terminal.block(section.text, indent: 3))")
            if let note = section.changeNote { out.append("   Changed in this version: \(line(note))") }
            for activity in section.activities ?? [] {
                out.append("   - \(self.activity(activity, names: names))")
            }
        }
        return out
    }
}

/// What changed between two versions of a plan, in words, section by section.
struct PlanDiff {
    struct Change: Codable {
        var section: String
        var change: String
        var title: String?
        var changeNote: String?
        var details: [String]
    }

    static func quoted(_ text: String) -> String { "\"\(PlanText.line(text))\"" }

    /// A long text as the old and new lines; the lines of the detail are the client's own.
    static func text(_ field: String, _ old: String, _ new: String) -> String {
        "\(field):\n      - \(PlanText.line(old))\n      + \(PlanText.line(new))"
    }

    static func compare(_ older: CarePlanShare, _ newer: CarePlanShare, names: PlanNames) -> [Change] {
        var changes: [Change] = []
        var plan: [String] = []
        if older.status != newer.status { plan.append("status changed from \(older.status.rawValue) to \(newer.status.rawValue)") }
        if older.intent != newer.intent { plan.append("intent changed from \(older.intent.rawValue) to \(newer.intent.rawValue)") }
        if older.title != newer.title { plan.append("title changed from \(quoted(older.title)) to \(quoted(newer.title))") }
        if older.description != newer.description {
            plan.append(text("description", older.description ?? "(none)", newer.description ?? "(none)"))
        }
        if older.period != newer.period {
            plan.append("period changed from \(PlanText.period(older.period)) to \(PlanText.period(newer.period))")
        }
        if older.patientName != newer.patientName {
            plan.append(
                "patient's name changed from \(older.patientName.map { quoted($0.text) } ?? "none") to \(newer.patientName.map { quoted($0.text) } ?? "none")"
            )
        }
        if older.team != newer.team {
            plan.append("team changed from \(older.team.map(names.team) ?? "none") to \(newer.team.map(names.team) ?? "none")")
        }
        if older.careCoordinator != newer.careCoordinator {
            plan.append(
                "care co-ordinator changed from \(older.careCoordinator.map(names.person) ?? "none") to \(newer.careCoordinator.map(names.person) ?? "none")"
            )
        }
        if !plan.isEmpty { changes.append(Change(section: "(plan)", change: "changed", details: plan)) }

        let oldByID = Dictionary(older.sections.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let newIDs = Set(newer.sections.map(\.id))
        for section in newer.sections {
            guard let old = oldByID[section.id] else {
                var details = ["\(section.kind == .contingency ? "contingency" : "care"); \(section.labels.map(\.rawValue).joined(separator: ", "))"]
                details.append("text: \(PlanText.line(section.text))")
                details += (section.activities ?? []).map { "activity: \(PlanText.activity($0, names: names))" }
                changes.append(Change(section: section.id, change: "added", title: section.title, changeNote: section.changeNote, details: details))
                continue
            }
            let details = sectionChanges(old, section, names: names)
            if !details.isEmpty {
                changes.append(Change(section: section.id, change: "changed", title: section.title, changeNote: section.changeNote, details: details))
            }
        }
        for section in older.sections where !newIDs.contains(section.id) {
            changes.append(Change(section: section.id, change: "removed", title: section.title, details: []))
        }
        return changes
    }

    static func sectionChanges(_ old: CarePlanShare.Section, _ new: CarePlanShare.Section, names: PlanNames) -> [String] {
        var details: [String] = []
        if old.title != new.title { details.append("title changed from \(quoted(old.title)) to \(quoted(new.title))") }
        if (old.kind ?? .care) != (new.kind ?? .care) {
            details.append(new.kind == .contingency ? "now a contingency section" : "now a care section (was contingency)")
        }
        let added = new.labels.filter { !old.labels.contains($0) }, removed = old.labels.filter { !new.labels.contains($0) }
        if !added.isEmpty || !removed.isEmpty {
            var words: [String] = []
            if !added.isEmpty { words.append("added \(added.map(\.rawValue).joined(separator: ", "))") }
            if !removed.isEmpty { words.append("removed \(removed.map(\.rawValue).joined(separator: ", "))") }
            details.append("labels: \(words.joined(separator: "; "))")
        }
        if old.text != new.text { details.append(text("text", old.text, new.text)) }
        details += activityChanges(old.activities ?? [], new.activities ?? [], names: names)
        return details
    }

    /// Activities are matched by their description, the words people know them by.
    static func activityChanges(_ old: [CarePlanShare.Activity], _ new: [CarePlanShare.Activity], names: PlanNames) -> [String] {
        var details: [String] = []
        var unmatched = old
        for activity in new {
            guard let index = unmatched.firstIndex(where: { $0.description == activity.description }) else {
                details.append("activity added: \(PlanText.activity(activity, names: names))")
                continue
            }
            let before = unmatched.remove(at: index)
            var what: [String] = []
            if before.status != activity.status {
                what.append("status \(PlanText.words(before.status.rawValue)) -> \(PlanText.words(activity.status.rawValue))")
            }
            if before.schedule != activity.schedule {
                what.append("schedule \(before.schedule.map(quoted) ?? "none") -> \(activity.schedule.map(quoted) ?? "none")")
            }
            if before.performer != activity.performer {
                what.append("by \(PlanText.line(names.performer(before.performer))) -> \(PlanText.line(names.performer(activity.performer)))")
            }
            if !what.isEmpty { details.append("activity \(quoted(activity.description)): \(what.joined(separator: "; "))") }
        }
        details += unmatched.map { "activity removed: \(PlanText.line($0.description))" }
        return details
    }
}
