import CareRelayModel
import Foundation

/// One delivery: a message to one recipient.
struct DeliveryKey: Hashable {
    let seq: Int64
    let recipient: PersonID
}

/// One client connection that has said HELLO. Keyed by the ROUTER's routing id, which
/// libzmq assigns per connection; the person comes from the ZAP handler, never the client.
struct Session {
    let routingID: [UInt8]
    let person: PersonID
    /// The CURVE key the connection authenticated with: a reload that takes it from the
    /// person ends the session.
    let key: String
    let receives: Bool
    var credit: Int
    /// Deliveries sent on this connection and not yet confirmed, with their message ids.
    var inFlight: [DeliveryKey: String] = [:]
    var lastHeard: Date
    var subscriptions: [TopicPattern] = []

    var spareCredit: Int { receives ? max(0, credit - inFlight.count) : 0 }
}

/// The broker's live sessions and the delivery state that goes with them: who is connected
/// (with the indexes delivery needs), who acts for whom, whose mailbox may have something to
/// send, how far each mailbox has been read, and how often each delivery has gone out. A value:
/// the core changes it only through these methods, and a test can drive it alone.
struct SessionTable {
    /// Gateways (the carer bridge) that act for each carer.
    private(set) var gatewaysFor: [PersonID: [PersonID]] = [:]
    /// People whose mailbox may have something new to send.
    private(set) var waiting = Set<PersonID>()
    /// How often each unconfirmed delivery has gone out, for the DELIVER header.
    private var attempts: [DeliveryKey: Int] = [:]
    /// Per person, the highest message sequence handed to a live connection: the mailbox is
    /// read from there on, not from the start. Cleared when a connection ends, so what it
    /// held unconfirmed is found again.
    private var cursors: [PersonID: Int64] = [:]

    private(set) var byRoutingID: [[UInt8]: Session] = [:]
    private(set) var byPerson: [PersonID: [[UInt8]]] = [:]
    /// Connections with at least one topic subscription: every routed message is matched
    /// against these, so it must not mean a walk over every connected client.
    private var subscribing = Set<[UInt8]>()

    subscript(routingID: [UInt8]) -> Session? {
        get { byRoutingID[routingID] }
        set {
            if let newValue {
                if byRoutingID[routingID] == nil { byPerson[newValue.person, default: []].append(routingID) }
                byRoutingID[routingID] = newValue
                if newValue.subscriptions.isEmpty { subscribing.remove(routingID) } else { subscribing.insert(routingID) }
            } else if let old = byRoutingID.removeValue(forKey: routingID) {
                subscribing.remove(routingID)
                byPerson[old.person]?.removeAll { $0 == routingID }
                if byPerson[old.person]?.isEmpty == true { byPerson[old.person] = nil }
            }
        }
    }

    func sessions(of person: PersonID) -> [[UInt8]] { byPerson[person] ?? [] }

    /// Every message in flight to this person on the given connections, so a message is
    /// never on the wire twice for the same person.
    func inFlight(for person: PersonID, via connections: [[UInt8]]) -> Set<Int64> {
        var result = Set<Int64>()
        for id in connections {
            for key in byRoutingID[id]?.inFlight.keys ?? [:].keys where key.recipient == person { result.insert(key.seq) }
        }
        return result
    }

    // MARK: Delivery state

    /// Who acts for whom, from the directory's gateway entries.
    mutating func actFor(_ directory: Directory) {
        var index: [PersonID: [PersonID]] = [:]
        for person in directory.people where person.roles.contains(.gateway) {
            for carer in person.actsFor ?? [] { index[carer, default: []].append(person.id) }
        }
        gatewaysFor = index
    }

    /// The person's mailbox may have something to send.
    mutating func wake(_ person: PersonID) { waiting.insert(person) }
    mutating func wake(_ people: some Sequence<PersonID>) { waiting.formUnion(people) }
    /// Everyone connected: something that decides what they may receive has changed.
    mutating func wakeEveryone() { waiting.formUnion(byPerson.keys) }
    /// The person and, for a gateway, everyone it acts for.
    mutating func wake(sessionOf person: Directory.Person) {
        waiting.insert(person.id)
        if person.roles.contains(.gateway) { waiting.formUnion(person.actsFor ?? []) }
    }
    /// Everyone woken since the last call.
    mutating func takeWaiting() -> Set<PersonID> {
        defer { waiting.removeAll(keepingCapacity: true) }
        return waiting
    }

    /// The person's mailbox is read again from the start: what was in flight may be unconfirmed.
    mutating func readAgain(_ person: PersonID) {
        cursors[person] = nil
        waiting.insert(person)
    }

    /// Where the person's mailbox is read from.
    func cursor(of person: PersonID) -> Int64 { cursors[person] ?? 0 }

    /// The connections that may carry a person's deliveries: their own, and those of any
    /// gateway acting for them.
    func connections(for person: PersonID) -> [[UInt8]] {
        var result = sessions(of: person)
        for gateway in gatewaysFor[person] ?? [] { result += sessions(of: gateway) }
        return result
    }

    /// Ends a connection's session. What it held unconfirmed goes back to the mailbox: the
    /// cursor of everyone it received for is reset so their mailbox is read again.
    @discardableResult
    mutating func end(_ routingID: [UInt8]) -> Session? {
        guard let session = byRoutingID[routingID] else { return nil }
        self[routingID] = nil
        readAgain(session.person)
        for key in session.inFlight.keys { readAgain(key.recipient) }
        return session
    }

    /// A mailbox item read for delivery: the cursor moves past it whether or not it is sent.
    mutating func read(_ seq: Int64, of person: PersonID) {
        cursors[person] = max(cursors[person] ?? 0, seq)
    }

    /// Which attempt the next delivery of this copy is.
    func nextAttempt(_ key: DeliveryKey) -> Int { 1 + (attempts[key] ?? 0) }

    /// A delivery handed to a connection: it holds one credit until confirmed.
    mutating func handedOut(_ key: DeliveryKey, id: String, via routingID: [UInt8], attempt: Int) {
        attempts[key] = attempt
        byRoutingID[routingID]?.inFlight[key] = id
    }

    /// A delivery that could not leave: no longer in flight and not an attempt, and offered
    /// again from the mailbox.
    mutating func notHandedOut(_ key: DeliveryKey, via routingID: [UInt8]) {
        byRoutingID[routingID]?.inFlight[key] = nil
        attempts[key] = attempts[key].flatMap { $0 > 1 ? $0 - 1 : nil }
        readAgain(key.recipient)
    }

    /// Confirmed deliveries free the credit they held on the connection that confirmed them.
    mutating func confirmed(_ ids: Set<String>, for recipient: PersonID, via routingID: [UInt8]) {
        if var session = byRoutingID[routingID] {
            for (key, id) in session.inFlight where key.recipient == recipient && ids.contains(id) {
                session.inFlight[key] = nil
                attempts[key] = nil
            }
            byRoutingID[routingID] = session
        }
        waiting.insert(recipient)
    }

    var count: Int { byRoutingID.count }
    var withSubscriptions: [Session] { subscribing.compactMap { byRoutingID[$0] } }
    var all: Dictionary<[UInt8], Session>.Values { byRoutingID.values }
}
