import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

/// `notify` and `notify.set` (CRP.md section 13, access-policy.md rule 14): what reaches a
/// person outside CareRelay. Their choices live in their directory entry, so a change is a
/// directory revision like an administrator's, audited in the person's own name.
extension BrokerCore {
    func notificationChoices(_ request: NotifyQuery, person asker: Directory.Person) throws(ProtocolError) -> NotificationChoicesView {
        let person = try choosingFor(request.person, asker: asker)
        return view(person)
    }

    func setNotificationChoices(_ request: NotifySet, person asker: Directory.Person) throws(ProtocolError) -> NotificationChoicesView {
        let now = configuration.clock()
        // Made again on the newer directory if another broker saved one meanwhile.
        for _ in 0..<3 {
            let person = try choosingFor(request.person, asker: asker)
            var changed = person
            changed.notify = request.applied(to: person.notify)
            if let phone = request.phone { changed.phone = phone == "none" ? nil : phone }
            var directory = self.directory.directory
            guard let index = directory.people.firstIndex(where: { $0.id == person.id }) else { break }
            directory.people[index] = changed
            let detail =
                "notification choices of \(person.id): \(request.params.filter { $0.key != "for" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
            switch save(directory, audit: [AuditEntry(at: now, actor: asker.id.rawValue, action: .directory, detail: detail)], now: now) {
            case .saved:
                return view(changed)
            case .changedMeanwhile:
                continue
            case .failed(let error):
                throw error
            }
        }
        throw ProtocolError(.storeUnavailable, "the directory kept changing while your choices were saved; nothing was saved. Try again")
    }

    private func choosingFor(_ named: PersonID?, asker: Directory.Person) throws(ProtocolError) -> Directory.Person {
        let id = named ?? asker.id
        try AccessPolicy.enforce(consent.access.mayChooseNotifications(for: id, asker: asker))
        guard let person = directory.person(id) else { throw ProtocolError(.notPermitted, "'\(id)' is not in the directory") }
        return person
    }

    private func view(_ person: Directory.Person) -> NotificationChoicesView {
        NotificationChoicesView(
            person, coordinator: !directory.teams(coordinatedBy: person.id).isEmpty, site: configuration.notifications)
    }
}
