import CareRelayModel
import Foundation

/// `notify`: what reaches a person outside CareRelay, by email and SMS, and what the site has
/// set up (CRP.md section 13). Anyone, for themselves; a gateway for someone it acts for.
public struct NotifyQuery: QueryRequest {
    public typealias Answer = NotificationChoicesView
    /// `for`: someone the asker acts for (a gateway's carer); nil for the asker.
    public var person: PersonID?

    public init(for person: PersonID? = nil) { self.person = person }

    public init(params: [String: String]) throws(ProtocolError) {
        person = try NotifySet.person(params["for"])
    }

    public var name: QueryName { .notify }
    public var params: [String: String] { person.map { ["for": $0.rawValue] } ?? [:] }
}

/// `notify.set`: a person's own choice of events by channel, their digest time and mobile
/// number. Parameters left out stay as they are.
public struct NotifySet: QueryRequest {
    public typealias Answer = NotificationChoicesView

    /// One channel's events: the defaults, or a list (empty: none).
    public enum Events: Sendable, Equatable {
        case defaults
        case only([NotificationEvent])

        /// `default`, `none`, or events separated by commas.
        init(parsing text: String, field: String) throws(ProtocolError) {
            switch text.lowercased() {
            case "default": self = .defaults
            case "none": self = .only([])
            default:
                var events: [NotificationEvent] = []
                for word in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    guard let event = NotificationEvent(rawValue: word) else {
                        throw ProtocolError(
                            .invalidHeader,
                            "params.\(field): '\(word.prefix(40))' is not an event; events are \(NotificationEvent.allCases.map(\.rawValue).joined(separator: ", ")), or write default or none"
                        )
                    }
                    if !events.contains(event) { events.append(event) }
                }
                self = .only(events)
            }
        }

        var text: String {
            switch self {
            case .defaults: "default"
            case .only(let events): events.isEmpty ? "none" : events.map(\.rawValue).joined(separator: ",")
            }
        }
    }

    public var person: PersonID?
    public var email: Events?
    public var sms: Events?
    /// "07:30", or "off" for none.
    public var digest: String?
    /// A UK mobile number, or "none" to remove it.
    public var phone: String?

    public init(for person: PersonID? = nil, email: Events? = nil, sms: Events? = nil, digest: String? = nil, phone: String? = nil) {
        self.person = person
        self.email = email
        self.sms = sms
        self.digest = digest
        self.phone = phone
    }

    public init(params: [String: String]) throws(ProtocolError) {
        person = try Self.person(params["for"])
        email = try params["email"].map { text throws(ProtocolError) in try Events(parsing: text, field: "email") }
        sms = try params["sms"].map { text throws(ProtocolError) in try Events(parsing: text, field: "sms") }
        if let text = params["digest"] {
            guard text == "off" || NotificationChoices(digest: text).digestMinute != nil else {
                throw ProtocolError(.invalidHeader, "params.digest: a time like 07:30, or off; not '\(text.prefix(20))'")
            }
            digest = text
        }
        if let text = params["phone"] {
            guard text == "none" || MobileNumber(text) != nil else {
                throw ProtocolError(.invalidHeader, "params.phone: a UK mobile number like 07700 900123, or none")
            }
            phone = text
        }
        guard email != nil || sms != nil || digest != nil || phone != nil else {
            throw ProtocolError(.invalidHeader, "notify.set: give at least one of email, sms, digest, phone")
        }
    }

    static func person(_ text: String?) throws(ProtocolError) -> PersonID? {
        guard let text else { return nil }
        guard PersonID.isWellFormed(text) else { throw ProtocolError(.invalidHeader, "params.for: name a person by their directory id") }
        return PersonID(text)
    }

    /// `choices` with this request's changes made.
    public func applied(to choices: NotificationChoices?) -> NotificationChoices {
        var result = choices ?? NotificationChoices()
        switch email {
        case .defaults?: result.email = nil
        case .only(let events)?: result.email = events
        case nil: break
        }
        switch sms {
        case .defaults?: result.sms = nil
        case .only(let events)?: result.sms = events
        case nil: break
        }
        if let digest { result.digest = digest == "off" ? nil : digest }
        return result
    }

    public var name: QueryName { .notifySet }
    public var params: [String: String] {
        var params: [String: String] = [:]
        params["for"] = person?.rawValue
        params["email"] = email?.text
        params["sms"] = sms?.text
        params["digest"] = digest
        params["phone"] = phone
        return params
    }
}

/// The answer to `notify` and `notify.set`: what reaches the person on each channel now.
public struct NotificationChoicesView: Codable, Sendable, Equatable {
    public struct Channel: Codable, Sendable, Equatable {
        /// Whether the site has set this channel up.
        public var available: Bool
        /// Where it goes: the person's email or mobile number; nil if the directory has none.
        public var address: String?
        /// The events that reach them on it now (the site's limits applied).
        public var events: [NotificationEvent]
        /// Whether these are the person's own choice rather than the defaults.
        public var chosen: Bool

        public init(available: Bool, address: String?, events: [NotificationEvent], chosen: Bool) {
            self.available = available
            self.address = address
            self.events = events
            self.chosen = chosen
        }
    }

    public var person: PersonID
    public var email: Channel
    public var sms: Channel
    /// The daily digest time of notifications that are not urgent; nil when each goes at once.
    public var digest: String?

    public init(person: PersonID, email: Channel, sms: Channel, digest: String?) {
        self.person = person
        self.email = email
        self.sms = sms
        self.digest = digest
    }

    /// What `person` receives under `site` (nil: the site sends none).
    public init(_ person: Directory.Person, coordinator: Bool, site: NotificationSite?) {
        let defaults = NotificationEvent.defaults(coordinator: coordinator)
        let choices = person.notify
        let order = NotificationEvent.allCases
        let byEmail = choices?.email.map(Set.init) ?? defaults
        let bySMS = (choices?.sms.map(Set.init) ?? defaults).intersection(site?.smsEvents ?? [])
        self.person = person.id
        email = Channel(
            available: site?.channels.contains(.email) == true, address: person.email,
            events: person.email == nil ? [] : order.filter(byEmail.contains), chosen: choices?.email != nil)
        let phone = person.phone.flatMap(MobileNumber.init)?.international
        sms = Channel(
            available: site?.channels.contains(.sms) == true, address: phone, events: phone == nil ? [] : order.filter(bySMS.contains),
            chosen: choices?.sms != nil)
        digest = choices?.digest
    }
}

/// `oncall.ack`: "I have it": ends the on-call chains about a message (CRP.md section 13.2).
/// `id` is the check-in's or referral's id, or one chain's id (`ID.TEAM`); `token`, the
/// secret of the link a notification carried, which the carer bridge presents for whoever
/// followed it.
public struct OnCallAcknowledge: QueryRequest {
    public typealias Answer = OnCallAcknowledged
    public var id: String
    public var token: String?

    public init(id: String, token: String? = nil) {
        self.id = id
        self.token = token
    }

    public init(params: [String: String]) throws(ProtocolError) {
        guard let id = params["id"], !id.isEmpty, id.utf8.count <= 200 else {
            throw ProtocolError(.invalidHeader, "params.id: name the check-in or referral (or the chain) to acknowledge")
        }
        self.id = id
        token = params["token"]
    }

    /// The message the chains are about.
    public var message: String { id.split(separator: ".", maxSplits: 1).first.map(String.init) ?? id }
    /// One chain, when `id` names one.
    public var chain: String? { id.contains(".") ? id : nil }

    public var name: QueryName { .onCallAck }
    public var params: [String: String] {
        var params = ["id": id]
        params["token"] = token
        return params
    }
}

/// The answer to `oncall.ack`: each chain about the message, as it now stands.
public struct OnCallAcknowledged: Codable, Sendable, Equatable {
    public struct Chain: Codable, Sendable, Equatable {
        public var team: TeamID
        /// `open`, `acknowledged` or `exhausted`.
        public var state: String
        public var acknowledgedBy: PersonID?
        public var acknowledgedAt: Date?
        /// Who had been told, in order.
        public var told: [PersonID]

        public init(team: TeamID, state: String, acknowledgedBy: PersonID?, acknowledgedAt: Date?, told: [PersonID]) {
            self.team = team
            self.state = state
            self.acknowledgedBy = acknowledgedBy
            self.acknowledgedAt = acknowledgedAt
            self.told = told
        }
    }

    public var message: String
    public var chains: [Chain]

    public init(message: String, chains: [Chain]) {
        self.message = message
        self.chains = chains
    }
}
