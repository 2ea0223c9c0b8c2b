/// The agenda of a multidisciplinary team meeting (`kind: mdt.agenda`): which patients will
/// be discussed, why, what has been done by whom and with what result, and who owns each.
///
/// An item about a patient depends on that patient's permission; the consent engine replaces
/// items it may not show to a recipient with a `WithheldItem` (see `withholdingItems(where:)`).
public struct MDTAgenda: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .mdtAgenda }

    public enum Attendance: String, Hashable, Sendable, Codable, CaseIterable {
        case inPerson = "in-person"
        case remote
    }

    public struct Attendee: Hashable, Sendable, Codable {
        public var person: PersonID
        public var role: Role
        public var organisation: OrganisationID?
        public var attendance: Attendance?

        public init(person: PersonID, role: Role, organisation: OrganisationID? = nil, attendance: Attendance? = nil) {
            self.person = person
            self.role = role
            self.organisation = organisation
            self.attendance = attendance
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case person, role, organisation, attendance }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            person = try c.identifier(.person)
            role = try c.choice(.role)
            organisation = try c.identifierIfPresent(.organisation)
            attendance = try c.choiceIfPresent(.attendance)
        }
    }

    /// Something done for the patient since the last discussion, by whom, and the result.
    public struct Intervention: Hashable, Sendable, Codable {
        public var action: String
        public var by: PersonID
        public var role: Role?
        public var date: CalendarDate?
        public var result: String

        public init(action: String, by: PersonID, role: Role? = nil, date: CalendarDate? = nil, result: String) {
            self.action = action
            self.by = by
            self.role = role
            self.date = date
            self.result = result
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case action, by, role, date, result }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            action = try c.text(.action, max: 1000)
            by = try c.identifier(.by)
            role = try c.choiceIfPresent(.role)
            date = try c.decodeIfPresent(CalendarDate.self, forKey: .date)
            result = try c.text(.result, max: 2000)
        }
    }

    /// Something the meeting agreed someone will do, and by when.
    public struct Action: Hashable, Sendable, Codable {
        public var description: String
        /// Who does it (a person in the directory; checked by the broker).
        public var owner: PersonID
        public var due: CalendarDate?

        public init(description: String, owner: PersonID, due: CalendarDate? = nil) {
            self.description = description
            self.owner = owner
            self.due = due
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case description, owner, due }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            description = try c.text(.description, max: 1000)
            owner = try c.identifier(.owner)
            due = try c.decodeIfPresent(CalendarDate.self, forKey: .due)
        }
    }

    /// What the meeting decided about an item, and the actions that follow. It travels inside
    /// the item, so the patient's consent decides it with the item.
    public struct Outcome: Hashable, Sendable, Codable {
        public var decision: String
        public var actions: [Action]

        public init(decision: String, actions: [Action] = []) {
            self.decision = decision
            self.actions = actions
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case decision, actions }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            decision = try c.text(.decision, max: 2000)
            actions = try c.list(.actions, count: 0...20)
        }
    }

    /// One patient to discuss.
    public struct Item: Hashable, Sendable, Codable {
        public var patient: NHSNumber
        public var reason: String
        public var interventions: [Intervention]
        /// Who takes the actions from the discussion forward.
        public var owner: PersonID
        /// Sensitivity labels for what the discussion will touch (none means general).
        public var sensitivity: [DataCategory]?
        /// Once discussed: what was decided and who does what.
        public var outcome: Outcome?

        public init(
            patient: NHSNumber, reason: String, interventions: [Intervention] = [], owner: PersonID,
            sensitivity: [DataCategory]? = nil, outcome: Outcome? = nil
        ) {
            self.patient = patient
            self.reason = reason
            self.interventions = interventions
            self.owner = owner
            self.sensitivity = sensitivity
            self.outcome = outcome
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case patient, reason, interventions, owner, sensitivity, outcome }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            patient = try c.nhsNumber(.patient)
            reason = try c.text(.reason)
            interventions = try c.list(.interventions, count: 0...50)
            owner = try c.identifier(.owner)
            sensitivity = try c.labelsIfPresent(.sensitivity, count: 1...20)
            outcome = try c.decodeIfPresent(Outcome.self, forKey: .outcome)
        }
    }

    /// What stands in for an item a recipient may not see. It carries no patient details.
    public struct WithheldItem: Hashable, Sendable, Codable {
        public static let defaultNotice = "item withheld: no consent recorded"
        public var notice: String

        public init(notice: String = WithheldItem.defaultNotice) { self.notice = notice }

        enum CodingKeys: String, CodingKey, CaseIterable { case withheld, notice }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            guard try c.decode(Bool.self, forKey: .withheld) else {
                throw c.fail(.withheld, "a withheld placeholder has \"withheld\": true")
            }
            notice = try c.text(.notice, max: Limits.short)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(true, forKey: .withheld)
            try c.encode(notice, forKey: .notice)
        }
    }

    /// An agenda entry: an item, or the placeholder for one that was withheld.
    public enum Entry: Hashable, Sendable, Codable {
        case item(Item)
        case withheld(WithheldItem)

        public var item: Item? {
            if case .item(let item) = self { return item }
            return nil
        }

        public init(from decoder: any Decoder) throws {
            // The schema's oneOf: an object with "withheld" is the placeholder, else an item.
            let keys = try decoder.container(keyedBy: AnyCodingKey.self)
            if keys.contains(AnyCodingKey("withheld")) {
                self = .withheld(try WithheldItem(from: decoder))
            } else {
                self = .item(try Item(from: decoder))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .item(let item): try item.encode(to: encoder)
            case .withheld(let placeholder): try placeholder.encode(to: encoder)
            }
        }
    }

    public var meeting: MeetingID
    public var team: TeamID
    public var locality: LocalityID?
    public var title: String
    public var start: Timestamp
    public var end: Timestamp?
    /// Where: a room, or "Teams call"; at most 200 characters.
    public var location: String
    /// Starts at 1; a re-issued agenda carries a higher version and replaces the earlier one.
    public var version: Int
    public var chair: PersonID?
    public var attendees: [Attendee]
    public var items: [Entry]
    public var notes: String?

    public init(
        meeting: MeetingID, team: TeamID, locality: LocalityID? = nil, title: String, start: Timestamp,
        end: Timestamp? = nil, location: String, version: Int = 1, chair: PersonID? = nil,
        attendees: [Attendee], items: [Entry], notes: String? = nil
    ) {
        self.meeting = meeting
        self.team = team
        self.locality = locality
        self.title = title
        self.start = start
        self.end = end
        self.location = location
        self.version = version
        self.chair = chair
        self.attendees = attendees
        self.items = items
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case meeting, team, locality, title, start, end, location, version, chair, attendees, items, notes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        meeting = try c.identifier(.meeting)
        team = try c.identifier(.team)
        locality = try c.identifierIfPresent(.locality)
        title = try c.text(.title, max: Limits.short)
        start = try c.decode(Timestamp.self, forKey: .start)
        end = try c.decodeIfPresent(Timestamp.self, forKey: .end)
        location = try c.text(.location, max: Limits.short)
        version = try c.int(.version, in: 1...Int.max)
        chair = try c.identifierIfPresent(.chair)
        attendees = try c.list(.attendees, count: 1...50)
        items = try c.list(.items, count: 1...200)
        notes = try c.textIfPresent(.notes)
        if let end, let endDate = end.date, let startDate = start.date, endDate < startDate {
            throw c.fail(.end, "the meeting ends (\(end)) before it starts (\(start))")
        }
    }

    /// The patients the agenda names (withheld items name none).
    public var patients: [NHSNumber] { items.compactMap { $0.item?.patient } }

    /// A copy in which every item matching `shouldWithhold` is replaced, in place, by a
    /// placeholder that carries no patient details. Items already withheld stay withheld.
    public func withholdingItems(
        where shouldWithhold: (Item) throws -> Bool, notice: String = WithheldItem.defaultNotice
    ) rethrows -> MDTAgenda {
        var copy = self
        copy.items = try items.map { entry in
            guard case .item(let item) = entry, try shouldWithhold(item) else { return entry }
            return .withheld(WithheldItem(notice: notice))
        }
        return copy
    }
}
