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

/// The broker's table of live sessions, with the indexes delivery needs.
struct SessionTable {
    private(set) var byRoutingID: [[UInt8]: Session] = [:]
    private(set) var byPerson: [PersonID: [[UInt8]]] = [:]

    subscript(routingID: [UInt8]) -> Session? {
        get { byRoutingID[routingID] }
        set {
            if let newValue {
                if byRoutingID[routingID] == nil { byPerson[newValue.person, default: []].append(routingID) }
                byRoutingID[routingID] = newValue
            } else if let old = byRoutingID.removeValue(forKey: routingID) {
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

    var count: Int { byRoutingID.count }
    var all: Dictionary<[UInt8], Session>.Values { byRoutingID.values }
}
