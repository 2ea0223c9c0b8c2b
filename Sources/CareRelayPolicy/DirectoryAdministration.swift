import CareRelayModel

/// Who may change the directory (Protocols/access-policy.md, rule 13): administrators, each
/// within the organisations and localities their own entry gives them (`administers`, else
/// their own organisation). Pure: the broker applies the changes (`Directory.applying`) and
/// asks this about the directory before and after.
extension AccessPolicy {
    public struct DirectoryRefusal: Error, Equatable, Sendable {
        /// The change refused, by its place in the list; nil for the whole request.
        public var index: Int?
        public var reason: String
    }

    /// What `asker` administers.
    public static func scopes(of asker: Directory.Person) -> [AdministrationScope] {
        asker.administers ?? asker.organisation.map { [.organisation($0)] } ?? []
    }

    /// Nil when `asker` may make every one of `changes`, which turn `before` into `after`.
    public static func mayChange(
        _ changes: [DirectoryChange], asker: Directory.Person, before: Directory, after: Directory
    ) -> DirectoryRefusal? {
        guard asker.roles.contains(.administrator) else {
            return DirectoryRefusal(index: nil, reason: "only a directory administrator may change the directory or issue enrolment codes")
        }
        let scopes = scopes(of: asker)
        guard !scopes.isEmpty else {
            return DirectoryRefusal(
                index: nil, reason: "your directory entry names no organisation or locality for you to administer; ask the site's operator")
        }
        let scope = Scope(scopes: scopes)
        for (index, change) in changes.enumerated() {
            if let reason = scope.refusal(of: change, before: before, after: after) {
                return DirectoryRefusal(index: index, reason: reason)
            }
        }
        return nil
    }

    /// Nil when `asker` may issue an enrolment code for `person` (or clear their key).
    public static func mayEnrol(_ person: Directory.Person, asker: Directory.Person, in directory: Directory) -> DirectoryRefusal? {
        mayChange([.setKey(person.id, key: nil)], asker: asker, before: directory, after: directory)
    }

    private struct Scope {
        let organisations: Set<OrganisationID>
        let localities: Set<LocalityID>

        init(scopes: [AdministrationScope]) {
            var organisations = Set<OrganisationID>(), localities = Set<LocalityID>()
            for scope in scopes {
                switch scope {
                case .organisation(let id): organisations.insert(id)
                case .locality(let id): localities.insert(id)
                }
            }
            self.organisations = organisations
            self.localities = localities
        }

        var text: String {
            (organisations.sorted().map { "organisation \($0)" } + localities.sorted().map { "locality \($0)" }).joined(separator: ", ")
        }

        func covers(_ team: Directory.Team) -> Bool {
            team.organisation.map(organisations.contains) == true || localities.contains(team.locality)
        }

        /// A person of one of the organisations, or whose every team is administered here (a
        /// locality's administrator looks after everyone working only in that locality).
        func covers(_ person: Directory.Person, in directory: Directory) -> Bool {
            if let organisation = person.organisation, organisations.contains(organisation) { return true }
            let teams = person.teams.compactMap { id in directory.teams.first { $0.id == id } }
            return !teams.isEmpty && teams.count == person.teams.count && teams.allSatisfy(covers)
        }

        func refusal(of change: DirectoryChange, before: Directory, after: Directory) -> String? {
            let outside = "outside what you administer (\(text))"
            switch change {
            case .addPerson(let person):
                if person.actsFor != nil || person.roles.contains(.gateway) {
                    return "a gateway, and whom it acts for, is set up by the site's operator (directory import), not by a command"
                }
                if person.key != nil { return "\(change.subject): a new person enrols with a code (enrol.issue); a key cannot be set here" }
                if let refusal = grants(person) { return refusal }
                return covers(person, in: after) ? nil : "\(change.subject) is \(outside)"
            case .changePerson(let c):
                guard let old = before.people.first(where: { $0.id == c.id }) else { return nil }
                guard covers(old, in: before) else { return "\(change.subject) is \(outside)" }
                if let new = after.people.first(where: { $0.id == c.id }) {
                    if new.roles.contains(.gateway) != old.roles.contains(.gateway) {
                        return "a gateway is set up by the site's operator (directory import), not by a command"
                    }
                    if let refusal = grants(new) { return refusal }
                    if !covers(new, in: after) { return "\(change.subject) would move \(outside)" }
                }
                return nil
            case .removePerson(let id), .setKey(let id, _):
                guard let old = before.people.first(where: { $0.id == id }) else { return nil }
                if old.roles.contains(.gateway) { return "a gateway is set up by the site's operator (directory import), not by a command" }
                return covers(old, in: before) ? nil : "\(change.subject) is \(outside)"
            case .addTeam(let team):
                return covers(team) ? nil : "\(change.subject) is \(outside)"
            case .changeTeam(let c):
                if let old = before.teams.first(where: { $0.id == c.id }), !covers(old) { return "\(change.subject) is \(outside)" }
                if let new = after.teams.first(where: { $0.id == c.id }), !covers(new) { return "\(change.subject) would move \(outside)" }
                return nil
            }
        }

        /// An administrator hands on no more than they hold.
        private func grants(_ person: Directory.Person) -> String? {
            for scope in person.administers ?? [] {
                switch scope {
                case .organisation(let id) where !organisations.contains(id):
                    return "person:\(person.id) cannot be made to administer organisation \(id), which you do not administer"
                case .locality(let id) where !localities.contains(id):
                    return "person:\(person.id) cannot be made to administer locality \(id), which you do not administer"
                default: continue
                }
            }
            return nil
        }
    }
}
