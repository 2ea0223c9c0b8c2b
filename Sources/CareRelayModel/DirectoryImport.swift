import Foundation

/// A workforce system's staff file (CSV) as directory changes: who is new, who changed, and
/// (when asked) who is no longer there. Every row is checked before anything is planned; a
/// file with any bad row is refused whole, naming each bad row and field, so a half-imported
/// workforce never happens. Pure: the CLI gives it the directory as the broker lists it and
/// sends what it plans as one `directory.change`.
public enum DirectoryImport {
    /// A person as the directory holds them now.
    public struct Existing: Sendable, Equatable {
        public var id: PersonID
        public var name: String
        public var email: String?
        public var roles: [Role]
        public var teams: [TeamID]
        public var organisation: OrganisationID?
        public init(id: PersonID, name: String, email: String?, roles: [Role], teams: [TeamID], organisation: OrganisationID?) {
            self.id = id
            self.name = name
            self.email = email
            self.roles = roles
            self.teams = teams
            self.organisation = organisation
        }
    }

    /// What the file changes: each change with the file's row it comes from (row 1 is the
    /// header), and how many people it names who need no change.
    public struct Plan: Sendable, Equatable {
        public var changes: [DirectoryChange]
        public var rows: [Int]
        public var unchanged: Int
    }

    public struct RowProblem: Sendable, Equatable, CustomStringConvertible {
        public var row: Int
        public var field: String
        public var reason: String
        public var description: String { "row \(row), \(field): \(reason)" }
    }

    /// Every bad row of a file, in order.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var problems: [RowProblem]
        public var description: String {
            "the file was not imported; nothing was changed. Fix \(problems.count == 1 ? "this row" : "these \(problems.count) rows") and import it again:\n"
                + problems.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// The columns, by what a workforce system's export may call them.
    enum Column: String, CaseIterable {
        case name, email, role, team, organisation, id

        static func named(_ header: String) -> Column? {
            let key = header.lowercased().filter { $0.isLetter }
            switch key {
            case "name", "fullname", "staffname": return .name
            case "email", "workemail", "emailaddress": return .email
            case "role", "roles", "jobrole": return .role
            case "team", "teams": return .team
            case "organisation", "organisationcode", "organization", "organizationcode", "orgcode", "org": return .organisation
            case "id", "directoryid": return .id
            default: return nil
            }
        }
    }

    /// `removeMissing`: people of the file's organisations whom it does not name are removed
    /// (never `importer`, never a gateway, never a carer).
    public static func plan(
        csv text: String, existing: [Existing], teams: Set<TeamID>, organisations: Set<OrganisationID>, removeMissing: Bool = false,
        importer: PersonID? = nil
    ) throws(Refusal) -> Plan {
        let records = CSV.records(text)
        guard let header = records.first else { throw Refusal(problems: [RowProblem(row: 1, field: "header", reason: "the file is empty")]) }
        var columns: [Column: Int] = [:]
        var problems: [RowProblem] = []
        for (index, title) in header.enumerated() where !title.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let column = Column.named(title) else {
                problems.append(
                    RowProblem(row: 1, field: title, reason: "not a column this import knows (name, email, role, team, organisation code, id)"))
                continue
            }
            if columns[column] != nil { problems.append(RowProblem(row: 1, field: title, reason: "a second \(column.rawValue) column")) }
            columns[column] = index
        }
        for required in [Column.name, .email, .role, .organisation] where columns[required] == nil {
            problems.append(RowProblem(row: 1, field: required.rawValue, reason: "the column is missing"))
        }
        guard problems.isEmpty else { throw Refusal(problems: problems) }

        let byEmail = Dictionary(existing.compactMap { p in p.email.map { ($0.lowercased(), p) } }, uniquingKeysWith: { first, _ in first })
        let byID = Dictionary(existing.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var seenEmails: [String: Int] = [:], seenIDs: [PersonID: Int] = [:]
        var plan = Plan(changes: [], rows: [], unchanged: 0)
        var named = Set<PersonID>(), fileOrganisations = Set<OrganisationID>()
        for (offset, record) in records.dropFirst().enumerated() {
            let row = offset + 2
            func cell(_ column: Column) -> String {
                guard let index = columns[column], index < record.count else { return "" }
                return record[index].trimmingCharacters(in: .whitespaces)
            }
            if record.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            var rowProblems: [RowProblem] = []
            func problem(_ field: Column, _ reason: String) { rowProblems.append(RowProblem(row: row, field: field.rawValue, reason: reason)) }

            let name = cell(.name)
            if name.isEmpty || name.count > 200 { problem(.name, "a name of 1-200 characters is needed") }
            let email = cell(.email)
            if let why = PatientDetails.ContactPoint.emailProblem(email) { problem(.email, why) }
            if let earlier = seenEmails[email.lowercased()] { problem(.email, "\(email) is also on row \(earlier)") }
            seenEmails[email.lowercased()] = row
            var roles: [Role] = []
            for text in cell(.role).split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !text.isEmpty {
                guard let role = Self.role(text) else {
                    problem(.role, "'\(text)' is not a role (\(Role.allCases.filter { $0 != .gateway }.map(\.rawValue).joined(separator: ", ")))")
                    continue
                }
                if role == .gateway || role == .carer || role == .patient {
                    problem(
                        .role,
                        "\(role.rawValue) is not a staff role: gateways are set up by the site's operator, carers invited by their co-ordinator")
                }
                if !roles.contains(role) { roles.append(role) }
            }
            if roles.isEmpty && !rowProblems.contains(where: { $0.field == "role" }) { problem(.role, "at least one role is needed") }
            var rowTeams: [TeamID] = []
            for text in cell(.team).split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !text.isEmpty {
                let team = TeamID(text.lowercased())
                if !teams.contains(team) {
                    problem(.team, "'\(text)' is not a team in the directory")
                } else if !rowTeams.contains(team) {
                    rowTeams.append(team)
                }
            }
            let organisationText = cell(.organisation).lowercased()
            let organisation = OrganisationID(organisationText)
            if !organisations.contains(organisation) { problem(.organisation, "'\(cell(.organisation))' is not an organisation in the directory") }

            // Who the row is: the person with that email; else the person with the row's id (its
            // id column, or the id its email gives) if they have no email yet (a directory seeded
            // from a file); else someone new.
            var current = byEmail[email.lowercased()]
            var id: PersonID?
            let given = cell(.id)
            if !given.isEmpty {
                if PersonID.isWellFormed(given) {
                    id = PersonID(given)
                } else {
                    problem(.id, "'\(given)' is not a directory id (1-64 of a-z, 0-9, '.', '-', '_')")
                }
            } else if current == nil {
                id = Directory.suggestedID(name: name, email: email)
                if id == nil { problem(.id, "no directory id can be made from the email or name; add an id column") }
            }
            if let matched = current, let id, matched.id != id {
                problem(.id, "\(email) belongs to \(matched.id) in the directory, not \(id)")
            }
            if current == nil, let wanted = id, let other = byID[wanted] {
                if other.email == nil {
                    current = other
                } else {
                    problem(
                        .id,
                        "\(wanted) already belongs to \(other.name)\(other.email.map { " (\($0))" } ?? ""); give this person another id in an id column"
                    )
                }
            }
            id = current?.id ?? id
            if let id {
                if let earlier = seenIDs[id] { problem(.id, "\(id) is also on row \(earlier)") }
                seenIDs[id] = row
            }
            problems += rowProblems
            guard rowProblems.isEmpty, let id else { continue }
            named.insert(id)
            fileOrganisations.insert(organisation)
            guard let current else {
                plan.changes.append(
                    .addPerson(
                        Directory.Person(id: id, name: name, roles: roles, organisation: organisation, teams: rowTeams, key: nil, email: email)))
                plan.rows.append(row)
                continue
            }
            var change = DirectoryChange.PersonChange(id: id)
            if current.name != name { change.name = name }
            if current.roles != roles { change.roles = roles }
            if current.teams != rowTeams { change.teams = rowTeams }
            if current.organisation != organisation { change.organisation = organisation }
            if current.email?.lowercased() != email.lowercased() { change.email = email }
            if change.isEmpty {
                plan.unchanged += 1
            } else {
                plan.changes.append(.changePerson(change))
                plan.rows.append(row)
            }
        }
        guard problems.isEmpty else { throw Refusal(problems: problems) }
        if removeMissing {
            for person in existing
            where person.organisation.map(fileOrganisations.contains) == true && !named.contains(person.id) && person.id != importer
                && !person.roles.contains(.gateway) && !person.roles.contains(.carer)
            {
                plan.changes.append(.removePerson(person.id))
                plan.rows.append(1)
            }
        }
        return plan
    }

    /// "Social Worker", "social_worker" and "SOCIAL-WORKER" are `social-worker`; "GP" is `gp`;
    /// "Occupational therapist" is `therapist`.
    static func role(_ text: String) -> Role? {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "_" || $0 == "-" }).joined(separator: "-")
        if let role = Role(rawValue: words) { return role }
        switch words {
        case "general-practitioner": return .gp
        case "district-nurse", "nurse": return .communityNurse
        case "care-co-ordinator", "coordinator", "co-ordinator": return .careCoordinator
        case "mdt-co-ordinator": return .mdtCoordinator
        case "occupational-therapist", "physiotherapist": return .therapist
        default: return nil
        }
    }
}

/// RFC 4180 records: fields separated by commas, quoted with `"` where they hold a comma, a
/// quote (doubled) or a line break; lines end with CRLF or LF; a UTF-8 byte order mark at the
/// start is ignored.
enum CSV {
    static func records(_ text: String) -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var characters = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        var first = true
        func next() -> Unicode.Scalar? {
            if let scalar = pending {
                pending = nil
                return scalar
            }
            return characters.next()
        }
        while let scalar = next() {
            if first {
                first = false
                if scalar == "\u{FEFF}" { continue }
            }
            if quoted {
                if scalar == "\"" {
                    let after = next()
                    if after == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        quoted = false
                        pending = after
                    }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\r":
                continue
            case "\n":
                record.append(field)
                records.append(record)
                record = []
                field = ""
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        return records
    }
}
