import Foundation

/// A version of a patient's care plan (`kind: careplan.share`), shared with the GP, community
/// teams, specialists, and the patient or carer. Field names follow FHIR R4 `CarePlan`.
///
/// Each section carries sensitivity labels; the consent engine removes sections a recipient
/// may not see (see `removingSections(where:)`).
public struct CarePlanShare: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .carePlanShare }

    /// FHIR `CarePlan.status` (RequestStatus).
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        case draft, active
        case onHold = "on-hold"
        case revoked, completed
    }

    /// FHIR `CarePlan.intent`.
    public enum Intent: String, Hashable, Sendable, Codable, CaseIterable {
        case proposal, plan, order, option
    }

    /// FHIR `Period` at day precision; an open end means "until reviewed".
    public struct Period: Hashable, Sendable, Codable {
        public var start: CalendarDate
        public var end: CalendarDate?

        public init(start: CalendarDate, end: CalendarDate? = nil) {
            self.start = start
            self.end = end
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case start, end }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            start = try c.decode(CalendarDate.self, forKey: .start)
            end = try c.decodeIfPresent(CalendarDate.self, forKey: .end)
            if let end, end < start {
                throw c.fail(.end, "the period ends (\(end)) before it starts (\(start))")
            }
        }
    }

    /// Section kinds: ordinary care, or the contingency plan for when the carer falls ill
    /// or things go wrong out of hours.
    public enum SectionKind: String, Hashable, Sendable, Codable, CaseIterable {
        case care, contingency
    }

    /// FHIR `CarePlan.activity.detail.status`.
    public enum ActivityStatus: String, Hashable, Sendable, Codable, CaseIterable {
        case notStarted = "not-started"
        case scheduled
        case inProgress = "in-progress"
        case onHold = "on-hold"
        case completed, cancelled, stopped
    }

    /// Something someone will do (FHIR `CarePlan.activity.detail`).
    public struct Activity: Hashable, Sendable, Codable {
        public var description: String
        public var status: ActivityStatus
        public var performer: PerformerReference?
        /// When, in words ("twice daily, 08:00 and 20:00").
        public var schedule: String?

        public init(
            description: String, status: ActivityStatus, performer: PerformerReference? = nil,
            schedule: String? = nil
        ) {
            self.description = description
            self.status = status
            self.performer = performer
            self.schedule = schedule
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case description, status, performer, schedule }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            description = try c.text(.description, max: 1000)
            status = try c.choice(.status)
            performer = try c.decodeIfPresent(PerformerReference.self, forKey: .performer)
            schedule = try c.textIfPresent(.schedule, max: Limits.short)
        }
    }

    public struct Section: Hashable, Sendable, Codable {
        /// Stable within the plan across versions, so readers can follow a section.
        public var id: String
        public var kind: SectionKind?
        public var title: String
        public var text: String
        public var activities: [Activity]?
        /// At least one label; `general` for nothing sensitive.
        public var labels: [DataCategory]
        /// What changed in this section in this version ("Morning call moved to 09:00"). Unlike
        /// the plan's `changeSummary` it travels with the section, so a copy that leaves other
        /// sections out can still say what changed in the ones it keeps.
        public var changeNote: String?

        public init(
            id: String, kind: SectionKind? = nil, title: String, text: String,
            activities: [Activity]? = nil, labels: [DataCategory], changeNote: String? = nil
        ) {
            self.id = id
            self.kind = kind
            self.title = title
            self.text = text
            self.activities = activities
            self.labels = labels
            self.changeNote = changeNote
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case id, kind, title, text, activities, labels, changeNote }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            let id = try c.decode(String.self, forKey: .id)
            if let problem = Check.identifier(id) { throw c.fail(.id, problem) }
            self.id = id
            kind = try c.choiceIfPresent(.kind)
            title = try c.text(.title, max: Limits.short)
            text = try c.text(.text)
            activities = try c.listIfPresent(.activities, count: 0...50)
            labels = try c.labels(.labels, count: 1...20)
            changeNote = try c.textIfPresent(.changeNote, max: 1000)
        }
    }

    /// The plan's identifier, the same for every version.
    public var plan: String
    /// 1 for the first version, then increasing.
    public var version: Int
    public var status: Status
    public var intent: Intent
    /// FHIR `CarePlan.subject`: the patient's NHS number. Must agree with the envelope.
    public var patient: NHSNumber
    /// The patient's name (FHIR HumanName), so a reader is told whose plan it is by name
    /// rather than from its title.
    public var patientName: PatientDetails.Name?
    public var title: String
    public var description: String?
    public var period: Period
    /// Who wrote this version (FHIR `CarePlan.author`), and their team.
    public var author: PersonID
    public var team: TeamID?
    public var careCoordinator: PersonID?
    /// When this version was issued.
    public var created: Timestamp
    public var sections: [Section]
    /// What changed since the previous version (medication and status changes the GP must
    /// hear about belong here); "First version" for version 1.
    public var changeSummary: String
    /// Set by redaction: how many sections this copy leaves out for this recipient.
    public var sectionsWithheld: Int?

    public init(
        plan: String, version: Int, status: Status = .active, intent: Intent = .plan, patient: NHSNumber,
        patientName: PatientDetails.Name? = nil, title: String, description: String? = nil, period: Period, author: PersonID, team: TeamID? = nil,
        careCoordinator: PersonID? = nil, created: Timestamp, sections: [Section], changeSummary: String,
        sectionsWithheld: Int? = nil
    ) {
        self.plan = plan
        self.version = version
        self.status = status
        self.intent = intent
        self.patient = patient
        self.patientName = patientName
        self.title = title
        self.description = description
        self.period = period
        self.author = author
        self.team = team
        self.careCoordinator = careCoordinator
        self.created = created
        self.sections = sections
        self.changeSummary = changeSummary
        self.sectionsWithheld = sectionsWithheld
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case plan, version, status, intent, patient, patientName, title, description, period, author, team, careCoordinator
        case created, sections, changeSummary, sectionsWithheld
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        let plan = try c.decode(String.self, forKey: .plan)
        if let problem = Check.identifier(plan) { throw c.fail(.plan, problem) }
        self.plan = plan
        version = try c.int(.version, in: 1...Int.max)
        status = try c.choice(.status)
        intent = try c.choice(.intent)
        patient = try c.nhsNumber(.patient)
        patientName = try c.decodeIfPresent(PatientDetails.Name.self, forKey: .patientName)
        title = try c.text(.title, max: Limits.short)
        description = try c.textIfPresent(.description)
        period = try c.decode(Period.self, forKey: .period)
        author = try c.identifier(.author)
        team = try c.identifierIfPresent(.team)
        careCoordinator = try c.identifierIfPresent(.careCoordinator)
        created = try c.decode(Timestamp.self, forKey: .created)
        sectionsWithheld = try c.intIfPresent(.sectionsWithheld, in: 1...Int.max)
        // A plan has at least one section unless redaction removed them all.
        sections = try c.list(.sections, count: (sectionsWithheld == nil ? 1 : 0)...50)
        changeSummary = try c.text(.changeSummary)
        var ids = Set<String>()
        for (index, section) in sections.enumerated() where !ids.insert(section.id).inserted {
            throw MessageValidationError(
                c.codingPath + [CodingKeys.sections, AnyCodingKey.index(index), Section.CodingKeys.id],
                "section id \"\(section.id)\" is used twice in this plan")
        }
    }

    /// All labels on all sections.
    public var labels: Set<DataCategory> { Set(sections.flatMap(\.labels)) }

    /// A copy without the sections matching `shouldRemove`, counting them in
    /// `sectionsWithheld` so the reader knows the plan is partial.
    ///
    /// The plan's `changeSummary` is free text about the whole plan and may describe what a
    /// removed section says ("referred to talking therapies"), so a copy that leaves anything
    /// out says instead what changed in the sections it keeps, from their own change notes.
    public func removingSections(where shouldRemove: (Section) throws -> Bool) rethrows -> CarePlanShare {
        var copy = self
        copy.sections = try sections.filter { try !shouldRemove($0) }
        let removed = sections.count - copy.sections.count
        guard removed > 0 else { return copy }
        copy.sectionsWithheld = (sectionsWithheld ?? 0) + removed
        copy.changeSummary = changeSummary(keeping: copy.sections)
        return copy
    }

    /// The change summary of a copy that keeps only `kept`.
    private func changeSummary(keeping kept: [Section]) -> String {
        let notSharedNote = "Some sections are not shared with you."
        if version == 1 { return "First version. \(notSharedNote)" }
        let notes = kept.compactMap { section in
            section.changeNote.map { "\(section.title): \($0.trimmingCharacters(in: CharacterSet(charactersIn: ". ")))" }
        }
        if !notes.isEmpty {
            return "Changes in the sections shared with you: \(notes.joined(separator: "; ")). \(notSharedNote)"
        }
        // A plan whose author notes changes per section changed none of these; one that does not
        // (the earlier shape) cannot say, so the copy says only that it is partial.
        let notesChanges = sections.contains { $0.changeNote != nil }
        return notesChanges
            ? "Version \(version): nothing changed in the sections shared with you. \(notSharedNote)"
            : "Version \(version) of this plan. \(notSharedNote)"
    }
}
