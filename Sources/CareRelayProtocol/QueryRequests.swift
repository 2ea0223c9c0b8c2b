import CareRelayModel
import Foundation

/// The queries a client may ask (Protocols/CRP.md section 13), by their names on the wire.
public enum QueryName: String, Sendable, Codable, CaseIterable {
    case status, inbox, track, message
    case careTeam = "careteam"
    case careTeamLink = "careteam.link"
    case careTeamUnlink = "careteam.unlink"
    case consent, audit
    case auditVerify = "audit.verify"
    case directory
    case directoryChange = "directory.change"
    case enrolIssue = "enrol.issue"
    case enrol
    case worklist
    case notify
    case notifySet = "notify.set"
    case onCallAck = "oncall.ack"

    /// The name a QUERY header carries, or `404 invalid-header` listing the known ones.
    public init(query: String) throws(ProtocolError) {
        guard let name = QueryName(rawValue: query) else {
            throw ProtocolError(
                .invalidHeader, "query: unknown query '\(query)'; queries are \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = name
    }
}

/// One query: its name, its parameters and the type of its answer. A client builds one and
/// sends `query(req:)`; the broker reads one from the QUERY header's `params` with
/// `init(params:)`, which refuses a missing or malformed parameter as CRP.md says (`404`, or
/// `407` for an NHS number).
public protocol QueryRequest: Sendable {
    associatedtype Answer: Codable & Sendable
    var name: QueryName { get }
    /// The QUERY header's `params`.
    var params: [String: String] { get }
    /// The QUERY's body frame, for a query that writes a list; nil for most.
    var body: [UInt8]? { get }
}

extension QueryRequest {
    public var body: [UInt8]? { nil }

    public func query(req: String? = nil) -> Query {
        Query(query: name.rawValue, params: params.isEmpty ? nil : params, req: req, body: body)
    }
}

/// How the parameters common to several queries are read.
public enum QueryParameter {
    /// `patient`: an NHS number, spaces allowed.
    public static func patient(_ text: String?) throws(ProtocolError) -> NHSNumber {
        guard let text else { throw ProtocolError(.invalidHeader, "params.patient: name the patient's NHS number") }
        do { return try NHSNumber(validating: text) } catch {
            throw ProtocolError(.invalidNHSNumber, "params.patient: \(error.description)")
        }
    }

    /// `id`: a message id.
    public static func id(_ text: String?) throws(ProtocolError) -> String {
        guard let text else { throw ProtocolError(.invalidHeader, "params.id: name the message id") }
        return text
    }

    /// `limit` as a number, nil when absent or not a number.
    public static func limit(_ text: String?) -> Int? { Int(text ?? "") }

    /// A limit within `range`, `value` when none was given.
    public static func limit(_ asked: Int?, default value: Int, in range: ClosedRange<Int>) -> Int {
        min(max(asked ?? value, range.lowerBound), range.upperBound)
    }
}

/// `status`: anyone.
public struct StatusQuery: QueryRequest {
    public typealias Answer = StatusReport
    public var name: QueryName { .status }
    public var params: [String: String] { [:] }
    public init() {}
}

/// `inbox`: the messages a person sent or received, newest first.
public struct InboxQuery: QueryRequest {
    public typealias Answer = [InboxLine]
    public static let limits = 1...500
    public static let defaultLimit = 50

    /// `for`: someone the asker acts for (a gateway's carer); nil for the asker.
    public var person: PersonID?
    public var kind: MessageKind?
    /// As asked; the broker answers at most `effectiveLimit` lines.
    public var limit: Int?

    public init(for person: PersonID? = nil, kind: MessageKind? = nil, limit: Int? = nil) {
        self.person = person
        self.kind = kind
        self.limit = limit
    }

    public init(params: [String: String]) throws(ProtocolError) {
        person = params["for"].map(PersonID.init)
        if let text = params["kind"] {
            guard let kind = MessageKind(rawValue: text) else { throw ProtocolError(.invalidHeader, "params.kind: unknown kind '\(text)'") }
            self.kind = kind
        }
        limit = QueryParameter.limit(params["limit"])
    }

    /// How many lines the broker answers with.
    public var effectiveLimit: Int { QueryParameter.limit(limit, default: Self.defaultLimit, in: Self.limits) }

    public var name: QueryName { .inbox }
    public var params: [String: String] {
        var params: [String: String] = [:]
        params["for"] = person?.rawValue
        params["kind"] = kind?.rawValue
        params["limit"] = limit.map(String.init)
        return params
    }
}

/// `worklist`: an intake's referrals, most urgent first: those sent to the asker's teams (or
/// teams they co-ordinate) and to the asker by name.
public struct WorklistQuery: QueryRequest {
    public typealias Answer = [WorklistLine]
    public static let limits = 1...500
    public static let defaultLimit = 100
    /// The statuses listed when none are asked for: the referrals still open.
    public static let openStatuses: Set<ReferralStatus> = [.sent, .accepted, .allocated]

    /// `team`: one of the asker's teams; nil for all of them.
    public var team: TeamID?
    /// `status`: comma-separated statuses; nil for the open ones.
    public var statuses: Set<ReferralStatus>?
    /// `priority`: comma-separated priorities; nil for all.
    public var priorities: Set<Priority>?
    /// `overdue`: only those past their respond-by time and not yet taken.
    public var overdue: Bool
    /// `mine`: only those the asker holds.
    public var mine: Bool
    public var limit: Int?

    public init(
        team: TeamID? = nil, statuses: Set<ReferralStatus>? = nil, priorities: Set<Priority>? = nil, overdue: Bool = false, mine: Bool = false,
        limit: Int? = nil
    ) {
        self.team = team
        self.statuses = statuses
        self.priorities = priorities
        self.overdue = overdue
        self.mine = mine
        self.limit = limit
    }

    public init(params: [String: String]) throws(ProtocolError) {
        team = params["team"].map(TeamID.init)
        statuses = try Self.list(params["status"], "status", ReferralStatus.self)
        priorities = try Self.list(params["priority"], "priority", Priority.self)
        overdue = params["overdue"] == "true"
        mine = params["mine"] == "true"
        limit = QueryParameter.limit(params["limit"])
    }

    private static func list<T: RawRepresentable & CaseIterable & Hashable>(
        _ text: String?, _ name: String, _ type: T.Type
    ) throws(ProtocolError) -> Set<T>? where T.RawValue == String {
        guard let text else { return nil }
        var values = Set<T>()
        for part in text.split(separator: ",") {
            guard let value = T(rawValue: String(part)) else {
                throw ProtocolError(
                    .invalidHeader, "params.\(name): '\(part)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            values.insert(value)
        }
        return values
    }

    public var effectiveLimit: Int { QueryParameter.limit(limit, default: Self.defaultLimit, in: Self.limits) }

    public var name: QueryName { .worklist }
    public var params: [String: String] {
        var params: [String: String] = [:]
        params["team"] = team?.rawValue
        params["status"] = statuses.map { $0.map(\.rawValue).sorted().joined(separator: ",") }
        params["priority"] = priorities.map { $0.map(\.rawValue).sorted().joined(separator: ",") }
        if overdue { params["overdue"] = "true" }
        if mine { params["mine"] = "true" }
        params["limit"] = limit.map(String.init)
        return params
    }
}

/// `track`: who has a message and, for a referral, where it stands.
public struct TrackQuery: QueryRequest {
    public typealias Answer = Tracking
    public var id: String

    public init(id: String) { self.id = id }
    public init(params: [String: String]) throws(ProtocolError) { id = try QueryParameter.id(params["id"]) }

    public var name: QueryName { .track }
    public var params: [String: String] { ["id": id] }
}

/// `message`: a message as the asker, or (for its sender) one recipient, receives it.
public struct MessageQuery: QueryRequest {
    public typealias Answer = MessageView
    public var id: String
    /// `as`: the recipient whose copy to show; nil for the asker.
    public var viewer: PersonID?
    /// `breakGlass`: a registered professional's stated reason to read their own copy whole,
    /// overriding consent (CRP.md section 10.3); audited, and the care co-ordinators told.
    public var breakGlass: String?

    public init(id: String, as viewer: PersonID? = nil, breakGlass: String? = nil) {
        self.id = id
        self.viewer = viewer
        self.breakGlass = breakGlass
    }

    public init(params: [String: String]) throws(ProtocolError) {
        id = try QueryParameter.id(params["id"])
        viewer = params["as"].map(PersonID.init)
        breakGlass = params["breakGlass"]
        if let breakGlass, breakGlass.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ProtocolError(.invalidHeader, "params.breakGlass: give the reason, or leave it out")
        }
        if breakGlass != nil, viewer != nil {
            throw ProtocolError(.invalidHeader, "params.breakGlass: an override reads your own copy; it cannot be combined with 'as'")
        }
    }

    public var name: QueryName { .message }
    public var params: [String: String] {
        var params = ["id": id]
        params["as"] = viewer?.rawValue
        params["breakGlass"] = breakGlass
        return params
    }
}

/// `careteam`: a patient's care team.
public struct CareTeamQuery: QueryRequest {
    public typealias Answer = [CareTeamMember]
    public var patient: NHSNumber

    public init(patient: NHSNumber) { self.patient = patient }
    public init(params: [String: String]) throws(ProtocolError) { patient = try QueryParameter.patient(params["patient"]) }

    public var name: QueryName { .careTeam }
    public var params: [String: String] { ["patient": patient.digits] }
}

/// `careteam.link` and `careteam.unlink`: answered with the care team after the change.
public struct CareTeamChange: QueryRequest {
    public typealias Answer = [CareTeamMember]
    /// True to add the member, false to remove them.
    public var link: Bool
    public var patient: NHSNumber
    public var member: CareTeamMember

    public init(link: Bool, patient: NHSNumber, member: CareTeamMember) {
        self.link = link
        self.patient = patient
        self.member = member
    }

    public init(link: Bool, params: [String: String]) throws(ProtocolError) {
        self.link = link
        patient = try QueryParameter.patient(params["patient"])
        guard let text = params["member"], let member = CareTeamMember(text) else {
            throw ProtocolError(.invalidHeader, "params.member: write team:ID or person:ID")
        }
        self.member = member
    }

    public var name: QueryName { link ? .careTeamLink : .careTeamUnlink }
    public var params: [String: String] { ["patient": patient.digits, "member": member.description] }
}

/// `consent`: a patient's consent messages.
public struct ConsentQuery: QueryRequest {
    public typealias Answer = [ConsentLine]
    public var patient: NHSNumber

    public init(patient: NHSNumber) { self.patient = patient }
    public init(params: [String: String]) throws(ProtocolError) { patient = try QueryParameter.patient(params["patient"]) }

    public var name: QueryName { .consent }
    public var params: [String: String] { ["patient": patient.digits] }
}

/// `audit`: the audit lines a filter selects, oldest first. The filter's fields are sent as
/// they are: `patient` is not checked here, since who may ask depends on which are given.
extension AuditFilter: QueryRequest {
    public typealias Answer = [AuditRow]
    public static let limits = 1...5_000

    public init(params: [String: String]) {
        self.init(
            patient: params["patient"], person: params["person"], message: params["message"],
            limit: QueryParameter.limit(QueryParameter.limit(params["limit"]), default: 200, in: Self.limits))
    }

    public var name: QueryName { .audit }
    public var params: [String: String] {
        var params = ["limit": String(limit)]
        params["patient"] = patient
        params["person"] = person
        params["message"] = message
        return params
    }
}

/// `audit.verify`: whether the hash chain holds.
public struct AuditVerifyQuery: QueryRequest {
    public typealias Answer = AuditVerification
    public var name: QueryName { .auditVerify }
    public var params: [String: String] { [:] }
    public init() {}
}

/// `directory`: everyone and every team, without keys.
public struct DirectoryQuery: QueryRequest {
    public typealias Answer = DirectoryListing
    public var name: QueryName { .directory }
    public var params: [String: String] { [:] }
    public init() {}
}

/// `directory.change`: administrators, within what they administer (access-policy.md rule
/// 13). The changes travel as the QUERY's body, a JSON array (an import of a workforce file
/// is larger than a header may be); all are applied, or none. With `dryRun` nothing is saved
/// and the answer says what would change.
public struct DirectoryChangeRequest: QueryRequest {
    public typealias Answer = DirectoryChangeResult
    public var changes: [DirectoryChange]
    public var dryRun: Bool

    public init(changes: [DirectoryChange], dryRun: Bool = false) {
        self.changes = changes
        self.dryRun = dryRun
    }

    public init(params: [String: String], body: [UInt8]?) throws(ProtocolError) {
        guard let body else {
            throw ProtocolError(.invalidBody, "directory.change carries its changes as the QUERY's body: a JSON array of changes")
        }
        do {
            changes = try JSONDecoder().decode([DirectoryChange].self, from: Data(body))
        } catch let error as DecodingError {
            throw ProtocolError(.invalidBody, "directory.change body: \(DecodingErrorText.describe(error))")
        } catch {
            throw ProtocolError(.invalidBody, "directory.change body: not a JSON array of changes")
        }
        guard !changes.isEmpty, changes.count <= 10_000 else {
            throw ProtocolError(.invalidBody, "directory.change body: 1 to 10,000 changes at a time, found \(changes.count)")
        }
        dryRun = params["dryRun"] == "true"
    }

    public var name: QueryName { .directoryChange }
    public var params: [String: String] { dryRun ? ["dryRun": "true"] : [:] }
    public var body: [UInt8]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(changes)).map { [UInt8]($0) }
    }
}

/// `enrol.issue`: administrators, for a person they administer. The answer holds the code,
/// once: the store keeps only its hash.
public struct EnrolmentIssue: QueryRequest {
    public typealias Answer = EnrolmentCodeIssued
    public static let hours = 1...168
    public var person: PersonID
    /// How long the code works, 1 to 168 hours; the broker's default (48) when nil.
    public var hours: Int?

    public init(person: PersonID, hours: Int? = nil) {
        self.person = person
        self.hours = hours
    }

    public init(params: [String: String]) throws(ProtocolError) {
        guard let text = params["person"], PersonID.isWellFormed(text) else {
            throw ProtocolError(.invalidHeader, "params.person: name the person to enrol by their directory id")
        }
        person = PersonID(text)
        if let text = params["hours"] {
            guard let value = Int(text), Self.hours.contains(value) else {
                throw ProtocolError(.invalidHeader, "params.hours: a code works for 1 to 168 hours, not '\(text.prefix(20))'")
            }
            hours = value
        }
    }

    public var name: QueryName { .enrolIssue }
    public var params: [String: String] {
        var params = ["person": person.rawValue]
        params["hours"] = hours.map(String.init)
        return params
    }
}

/// `enrol`: sent over a connection whose key is not yet in the directory, with the code an
/// administrator gave; the connection's key becomes the person's.
public struct EnrolmentRequest: QueryRequest {
    public typealias Answer = Enrolment
    public var code: String

    public init(code: String) { self.code = code }

    public init(params: [String: String]) throws(ProtocolError) {
        guard let code = params["code"], !code.isEmpty, code.utf8.count <= 64 else {
            throw ProtocolError(.invalidHeader, "params.code: give the enrolment code your administrator issued")
        }
        self.code = code
    }

    public var name: QueryName { .enrol }
    public var params: [String: String] { ["code": code] }
}
