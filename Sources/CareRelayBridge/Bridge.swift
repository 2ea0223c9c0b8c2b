import CareRelayClient
import CareRelayCodes
import CareRelayModel
import CareRelayProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// How the bridge behaves.
public struct BridgeConfiguration: Sendable {
    /// The bridge's own directory id (a person with role `gateway` and `actsFor`).
    public var gatewayID: PersonID
    /// Mark cookies `Secure`: set when the bridge is served over TLS (directly or behind a proxy).
    public var secureCookies: Bool
    /// Take the client address from the first `X-Forwarded-For` value (only behind a trusted proxy).
    public var trustForwardedFor: Bool
    public var sessionLifetime: TimeInterval
    /// Sign-in attempts allowed per IP address and per code within `signInWindow`.
    public var signInLimit: Int
    public var signInWindow: TimeInterval
    /// Sign-in attempts allowed from everyone together within `signInWindow`.
    public var signInOverallLimit: Int
    /// How many addresses, and how many codes, the sign-in limiter remembers at most.
    public var signInRemembered: Int
    /// The time zone of service hours and of the times shown.
    public var timeZone: TimeZone
    public var now: @Sendable () -> Date

    public init(
        gatewayID: PersonID, secureCookies: Bool = false, trustForwardedFor: Bool = false,
        sessionLifetime: TimeInterval = 8 * 3600, signInLimit: Int = 5, signInWindow: TimeInterval = 15 * 60,
        signInOverallLimit: Int = 1_000, signInRemembered: Int = 10_000,
        timeZone: TimeZone = TimeZone(identifier: "Europe/London") ?? .gmt, now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.gatewayID = gatewayID
        self.secureCookies = secureCookies
        self.trustForwardedFor = trustForwardedFor
        self.sessionLifetime = sessionLifetime
        self.signInLimit = signInLimit
        self.signInWindow = signInWindow
        self.signInOverallLimit = signInOverallLimit
        self.signInRemembered = signInRemembered
        self.timeZone = timeZone
        self.now = now
    }
}

/// The broker's `directory` answer, cached for a few minutes.
final class DirectoryCache: Sendable {
    private let cached = Mutex<(listing: DirectoryListing, at: Date)?>(nil)
    let link: any BrokerLink

    init(link: any BrokerLink) { self.link = link }

    func listing(now: Date) async -> DirectoryListing? {
        let current = cached.withLock { $0 }
        if let current, now.timeIntervalSince(current.at) < 300 { return current.listing }
        let request = DirectoryQuery()
        guard let bytes = try? await link.query(request.name.rawValue, request.params),
            let listing = try? JSONDecoder().decode(DirectoryListing.self, from: Data(bytes))
        else { return current?.listing }
        cached.withLock { $0 = (listing, now) }
        return listing
    }
}

/// The carers' web app.
public struct Bridge: Sendable {
    public let configuration: BridgeConfiguration
    public let store: BridgeStore
    public let link: any BrokerLink
    public let hub: LiveHub
    let renderer = Renderer()
    let limiter: SignInLimiter
    let directory: DirectoryCache
    let logger: Logger

    static let sessionCookie = "crb_session"
    static let formCookie = "crb_form"

    public init(configuration: BridgeConfiguration, store: BridgeStore, link: any BrokerLink, hub: LiveHub, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.link = link
        self.hub = hub
        self.limiter = SignInLimiter(
            limit: configuration.signInLimit, overallLimit: configuration.signInOverallLimit,
            window: configuration.signInWindow, remembering: configuration.signInRemembered)
        self.directory = DirectoryCache(link: link)
        self.logger = logger
    }

    var now: Date { configuration.now() }

    // MARK: Router

    public func router() -> Router<BridgeContext> {
        let router = Router(context: BridgeContext.self)
        router.add(middleware: SecurityHeaders())
        router.get("/health") { _, _ in "ok" }
        router.get("/static/bridge.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: Templates.css)))
        }
        router.get("/static/live.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: Templates.script)))
        }
        router.get("/") { request, context in try await home(request) }
        router.get("/sign-in") { request, _ in signInPage(request) }
        router.post("/sign-in") { request, context in try await signIn(request, context: context) }
        router.post("/sign-out") { request, _ in try await signOut(request) }
        router.get("/people/:nhs") { request, context in try await personPage(request, context: context) }
        router.get("/people/:nhs/check-in") { request, context in try await checkInPage(request, context: context) }
        router.post("/people/:nhs/check-in") { request, context in try await checkIn(request, context: context) }
        router.get("/people/:nhs/check-ins") { request, context in try await checkInsPage(request, context: context) }
        router.get("/people/:nhs/events") { request, context in try await events(request, context: context) }
        router.get("/on-call/:chain/:token") { request, context in try await onCallPage(request, context: context) }
        router.post("/on-call/:chain/:token") { request, context in try await acknowledgeOnCall(request, context: context) }
        return router
    }

    // MARK: Sessions

    struct Signed {
        let token: String
        let session: BridgeStore.Session
    }

    func signedIn(_ request: Request) throws -> Signed? {
        guard let token = Cookies.parse(request)[Self.sessionCookie], !token.isEmpty,
            let session = try store.session(token: token, now: now)
        else { return nil }
        return Signed(token: token, session: session)
    }

    func readForm(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        return Form.parse(String(buffer: buffer))
    }

    func problem(
        _ heading: String, _ message: String, status: HTTPResponse.Status, link: String = "/", linkText: String = "Go to the start page",
        csrf: String? = nil
    ) -> Response {
        .html(
            renderer.page("problem", title: heading, ["heading": heading, "message": message, "link": link, "linkText": linkText], csrf: csrf),
            status: status)
    }

    var formExpired: Response {
        problem(
            "This form has expired", "For your safety, forms only work from the page that showed them. Go back, reload the page and try again.",
            status: .forbidden)
    }

    // MARK: Sign in and out

    func signInPage(_ request: Request, code: String = "", error: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let token = Tokens.random()
        var context: [String: Any] = ["csrf": token, "code": code, "signedOut": request.uri.queryParameters.get("signed-out") != nil]
        if let error {
            context["errors"] = ["code": error]
            context["hasErrors"] = true
            context["errorList"] = [["target": "code", "message": error]]
        }
        var response = Response.html(renderer.page("signIn", title: error == nil ? "Sign in" : "Error: Sign in", context), status: status)
        response.headers[.setCookie] = Cookies.make(Self.formCookie, token, maxAge: 3600, secure: configuration.secureCookies)
        return response
    }

    /// The client's address, for sign-in limits and logs. X-Forwarded-For's first value is
    /// whatever the client sent the proxy, so only the characters of an IPv4 or IPv6 address
    /// are kept, and at most 64 of them.
    func clientAddress(_ request: Request, context: BridgeContext) -> String {
        var address = context.peer ?? ""
        if configuration.trustForwardedFor, let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!] {
            address = forwarded.split(separator: ",").first.map(String.init) ?? ""
        }
        let kept = address.unicodeScalars.filter { $0.properties.isASCIIHexDigit || ".:[]".unicodeScalars.contains($0) }.prefix(64)
        return kept.isEmpty ? "unknown" : String(String.UnicodeScalarView(kept))
    }

    func signIn(_ request: Request, context: BridgeContext) async throws -> Response {
        let fields = try await readForm(request)
        // Before a session exists the form is protected by a double-submit token: the cookie
        // (SameSite=Strict, so never sent from another site) must match the hidden field.
        guard let cookie = Cookies.parse(request)[Self.formCookie], let field = fields["csrf"], !cookie.isEmpty,
            Tokens.same(cookie, field)
        else { return formExpired }
        let typed = fields["code"] ?? ""
        let normalised = InvitationCode.normalise(typed)
        let shown = String(typed.prefix(40))
        guard !normalised.isEmpty else {
            return signInPage(request, code: shown, error: "Enter the invitation code your care co-ordinator gave you.", status: .badRequest)
        }
        let hash = InvitationCode.hash(typed)
        let address = clientAddress(request, context: context)
        guard limiter.attempt(address: address, codeHash: hash, now: now) else {
            logger.notice("sign-in attempts limited", metadata: ["address": "\(address)"])
            return signInPage(
                request, code: "",
                error: "Too many attempts. For your safety, wait 15 minutes and try again, or ask your care co-ordinator for a new code.",
                status: .tooManyRequests)
        }
        switch try store.redeem(codeHash: hash, now: now, sessionLifetime: configuration.sessionLifetime) {
        case .failure(let problem):
            let message =
                switch problem {
                case .unknown: "That code is not right. Check it against the one your care co-ordinator gave you and try again."
                case .used: "That code has already been used. Each code works once: ask your care co-ordinator for a new one."
                case .expired: "That code has expired. Ask your care co-ordinator for a new one."
                }
            logger.info("sign-in refused", metadata: ["reason": "\(problem)", "address": "\(address)"])
            return signInPage(request, code: shown, error: message, status: .unauthorized)
        case .success(let opened):
            logger.info("carer signed in", metadata: ["carer": "\(opened.session.carer)"])
            var response = Response.redirect("/")
            response.headers.append(
                HTTPField(
                    name: .setCookie,
                    value: Cookies.make(
                        Self.sessionCookie, opened.token, maxAge: Int(configuration.sessionLifetime), secure: configuration.secureCookies)))
            response.headers.append(
                HTTPField(name: .setCookie, value: Cookies.make(Self.formCookie, "", maxAge: 0, secure: configuration.secureCookies)))
            return response
        }
    }

    func signOut(_ request: Request) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        let fields = try await readForm(request)
        guard let csrf = fields["csrf"], Tokens.same(csrf, signed.session.csrf) else { return formExpired }
        try store.endSession(token: signed.token)
        var response = Response.redirect("/sign-in?signed-out=1")
        response.headers[.setCookie] = Cookies.make(Self.sessionCookie, "", maxAge: 0, secure: configuration.secureCookies)
        return response
    }

    // MARK: Pages

    func home(_ request: Request) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        let carer = signed.session.carer
        var people: [[String: Any]] = []
        for patient in try store.patients(of: carer) {
            let plans = try plans(carer: carer, patient: patient)
            var entry: [String: Any] = ["nhs": patient.digits, "nhsSpaced": Display.nhs(patient)]
            if let latest = plans.last {
                entry["heading"] = Self.heading(latest.plan)
                entry["latest"] =
                    "Care plan version \(latest.plan.version), shared \(Display.when(latest.header.sentAt, timeZone: configuration.timeZone))."
            } else {
                entry["heading"] = "Person with NHS number \(Display.nhs(patient))"
                entry["latest"] = "No care plan shared yet."
            }
            people.append(entry)
        }
        return .html(
            renderer.page(
                "home", title: "The people you care for", ["people": people, "hasPeople": !people.isEmpty],
                csrf: signed.session.csrf))
    }

    struct PlanVersion {
        let header: DeliverHeader
        let plan: CarePlanShare
        let seq: Int64
    }

    /// Care plans delivered to this carer about this patient, each version of each plan once (the
    /// latest delivery of it wins), in the order they arrived: the last is the latest shared.
    /// A patient may have several plans (a home plan, a falls plan), each with its own versions.
    func plans(carer: PersonID, patient: NHSNumber) throws -> [PlanVersion] {
        var byVersion: [String: PlanVersion] = [:]
        for message in try store.messages(for: carer, patient: patient, kind: .carePlanShare) {
            guard let plan = try? CarePlanShare.decode(json: message.body) else { continue }
            byVersion["\(plan.plan)\u{0}\(plan.version)"] = PlanVersion(header: message.header, plan: plan, seq: message.seq)
        }
        return byVersion.values.sorted { $0.seq < $1.seq }
    }

    /// What the broker took back from this carer about this patient, oldest first.
    func revocations(carer: PersonID, patient: NHSNumber) throws -> [(BrokerNotice, DeliverHeader)] {
        try store.messages(for: carer, patient: patient, kind: .notice).compactMap { message in
            guard let notice = try? BrokerNotice.decode(json: message.body), notice.notice == .revoked else { return nil }
            return (notice, message.header)
        }
    }

    /// The patient in the path, if this carer may look at them here.
    func patient(_ context: BridgeContext, carer: PersonID) throws -> NHSNumber? {
        guard let text = context.parameters.get("nhs"), let number = try? NHSNumber(validating: text) else { return nil }
        return try store.patients(of: carer).contains(number) ? number : nil
    }

    var notYours: Response {
        problem("Page not found", "There is nothing here for you. If you think there should be, ask your care co-ordinator.", status: .notFound)
    }

    /// Who does an activity, by name: the plan's own `display`, else the directory's name,
    /// else the role in words. A carer is never shown a directory id.
    func performer(_ reference: PerformerReference?, directory: DirectoryListing?) -> String? {
        guard let reference else { return nil }
        if let display = reference.display { return display }
        if let name = reference.person.flatMap({ directory?.name(of: $0) }) ?? reference.team.flatMap({ directory?.team($0)?.name }) {
            return name
        }
        if let role = reference.role { return role.rawValue.replacingOccurrences(of: "-", with: " ") }
        return reference.team != nil ? "another service" : "someone from the care team"
    }

    func planContext(_ version: PlanVersion, directory: DirectoryListing?) -> [String: Any] {
        let plan = version.plan
        var period = Display.day(plan.period.start)
        if let end = plan.period.end { period += " to \(Display.day(end))" } else { period = "from \(period)" }
        let sections: [[String: Any]] = plan.sections.map { section in
            let activities: [[String: Any]] = (section.activities ?? []).map { activity in
                var entry: [String: Any] = ["description": activity.description]
                if let schedule = activity.schedule { entry["schedule"] = schedule }
                if let who = performer(activity.performer, directory: directory) { entry["who"] = who }
                return entry
            }
            return [
                "id": section.id, "title": section.title, "text": section.text, "contingency": section.kind == .contingency,
                "activities": activities, "hasActivities": !activities.isEmpty,
            ]
        }
        var context: [String: Any] = [
            "title": plan.title, "version": plan.version, "changeSummary": plan.changeSummary, "period": period,
            "sharedBy": version.header.fromName, "sharedOn": Display.when(version.header.sentAt, timeZone: configuration.timeZone),
            "sections": sections, "message": version.header.id, "planID": plan.plan,
        ]
        if let description = plan.description { context["description"] = description }
        return context
    }

    static let upcoming: Set<CarePlanShare.ActivityStatus> = [.scheduled, .inProgress, .notStarted]

    func personPage(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        let carer = signed.session.carer
        guard let patient = try patient(context, carer: carer) else { return notYours }
        let all = try plans(carer: carer, patient: patient)
        // One plan at a time: the one asked for, else the one shared most recently.
        let planID = request.uri.queryParameters.get("plan").map { String($0) } ?? all.last?.plan.plan
        let versions = all.filter { $0.plan.plan == planID }.sorted { $0.plan.version < $1.plan.version }
        let directory = await directory.listing(now: now)
        let wanted = request.uri.queryParameters.get("version").flatMap { Int($0) }
        let shown = wanted.flatMap { v in versions.first { $0.plan.version == v } } ?? versions.last
        let after = try store.messages(for: carer, patient: patient).last?.seq ?? 0
        var page: [String: Any] = [
            "nhs": patient.digits, "nhsSpaced": Display.nhs(patient), "after": after,
            "heading": shown.map { Self.heading($0.plan) } ?? "Person with NHS number \(Display.nhs(patient))", "liveHint": true,
        ]
        if let shown {
            page["plan"] = planContext(shown, directory: directory)
            page["viewingOld"] = shown.plan.version != versions.last?.plan.version
            let contacts: [[String: Any]] = shown.plan.sections.flatMap { section in (section.activities ?? []).map { (section.id, $0) } }
                .filter { Self.upcoming.contains($0.1.status) }
                .map { section, activity in
                    var entry: [String: Any] = [
                        "description": activity.description, "section": section,
                        "status": activity.status.rawValue.replacingOccurrences(of: "-", with: " "),
                    ]
                    if let schedule = activity.schedule { entry["schedule"] = schedule }
                    if let who = performer(activity.performer, directory: directory) { entry["who"] = who }
                    return entry
                }
            page["contacts"] = contacts
            page["hasContacts"] = !contacts.isEmpty
        }
        let history: [[String: Any]] = versions.reversed().map { version in
            [
                "nhs": patient.digits, "version": version.plan.version, "changeSummary": version.plan.changeSummary, "message": version.header.id,
                "planID": version.plan.plan,
                "sharedOn": Display.when(version.header.sentAt, timeZone: configuration.timeZone),
                "current": version.plan.version == shown?.plan.version,
            ]
        }
        page["history"] = history
        page["revocations"] = try revocations(carer: carer, patient: patient).map { notice, header in
            ["text": notice.text, "on": Display.when(header.sentAt, timeZone: configuration.timeZone)]
        }
        page["hasHistory"] = versions.count > 1
        // The patient's other plans, by title, each at its latest version.
        var others: [String: PlanVersion] = [:]
        for version in all where version.plan.plan != planID {
            if (others[version.plan.plan]?.plan.version ?? 0) < version.plan.version { others[version.plan.plan] = version }
        }
        let otherPlans: [[String: Any]] = others.values.sorted { $0.seq > $1.seq }.map {
            ["nhs": patient.digits, "planID": $0.plan.plan, "title": $0.plan.title, "version": $0.plan.version, "message": $0.header.id]
        }
        page["otherPlans"] = otherPlans
        page["hasOtherPlans"] = !otherPlans.isEmpty
        let sent = try store.checkInCount(carer: carer, patient: patient)
        if sent > 0 { page["checkInText"] = "You have sent \(sent) check-in\(sent == 1 ? "" : "s") about this person." }
        return .html(renderer.page("person", title: page["heading"] as? String ?? "Care plan", page, csrf: signed.session.csrf, live: true))
    }

    // MARK: Check-in

    struct Recipient {
        let coordinator: PersonID
        let coordinatorName: String
        let team: DirectoryListing.Team?
    }

    /// Who a check-in about this patient goes to: the plan's care co-ordinator, else whoever
    /// invited the carer; and the team whose hours and fallback contacts apply.
    func recipient(carer: PersonID, patient: NHSNumber, directory: DirectoryListing?) throws -> Recipient? {
        let latest = try plans(carer: carer, patient: patient).last?.plan
        let invitedBy = try store.coordinator(carer: carer, patient: patient)
        guard let coordinator = latest?.careCoordinator ?? invitedBy else { return nil }
        var team: DirectoryListing.Team?
        if let id = latest?.team, let found = directory?.team(id), found.hours != nil { team = found }
        if team == nil { team = directory?.teams.first { $0.coordinator == coordinator && $0.hours != nil } }
        if team == nil, let entry = directory?.people.first(where: { $0.id == coordinator }) {
            team = entry.teams.lazy.compactMap { directory?.team($0) }.first { $0.hours != nil }
        }
        return Recipient(coordinator: coordinator, coordinatorName: directory?.name(of: coordinator) ?? coordinator.rawValue, team: team)
    }

    /// The person by name, from the plan's structured `patientName`; never guessed from its title.
    func patientName(carer: PersonID, patient: NHSNumber) throws -> String {
        try plans(carer: carer, patient: patient).last?.plan.patientName?.plain ?? "the person you care for"
    }

    /// "Margaret Ellis: Living well at home", or the plan's title alone when it names no one.
    static func heading(_ plan: CarePlanShare) -> String {
        plan.patientName.map { "\($0.plain): \(plan.title)" } ?? plan.title
    }

    func checkInForm(
        _ form: CheckInForm, signed: Signed, patient: NHSNumber, name: String, recipient: Recipient?,
        sendProblem: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        let errors = Dictionary(form.errors.map { ($0.field, $0.message) }, uniquingKeysWith: { first, _ in first })
        var context = form.context(errorsByField: errors)
        context["nhs"] = patient.digits
        context["name"] = name
        context["csrf"] = signed.session.csrf
        context["key"] = form.key.isEmpty ? UUID().uuidString.lowercased() : form.key
        context["coordinatorName"] = recipient?.coordinatorName ?? "the care co-ordinator"
        context["errors"] = errors
        context["hasErrors"] = !form.errors.isEmpty
        context["errorList"] = form.errors.map { ["target": CheckInForm.focusTarget(of: $0.field), "message": $0.message] }
        if let sendProblem { context["sendProblem"] = sendProblem }
        let title = (form.errors.isEmpty && sendProblem == nil ? "" : "Error: ") + "Check in"
        return .html(renderer.page("checkIn", title: title, context, csrf: signed.session.csrf), status: status)
    }

    func checkInPage(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        guard let patient = try patient(context, carer: signed.session.carer) else { return notYours }
        let directory = await directory.listing(now: now)
        return checkInForm(
            CheckInForm(), signed: signed, patient: patient,
            name: try patientName(carer: signed.session.carer, patient: patient),
            recipient: try recipient(carer: signed.session.carer, patient: patient, directory: directory))
    }

    func checkIn(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        let fields = try await readForm(request)
        guard let csrf = fields["csrf"], Tokens.same(csrf, signed.session.csrf) else { return formExpired }
        let carer = signed.session.carer
        guard let patient = try patient(context, carer: carer) else { return notYours }
        let directory = await directory.listing(now: now)
        let name = try patientName(carer: carer, patient: patient)
        let recipient = try recipient(carer: carer, patient: patient, directory: directory)
        var form = CheckInForm(fields)
        let moment = now
        guard let body = form.validate(patient: patient, carer: carer, name: name, now: moment) else {
            return checkInForm(form, signed: signed, patient: patient, name: name, recipient: recipient, status: .badRequest)
        }
        guard let recipient else {
            return checkInForm(
                form, signed: signed, patient: patient, name: name, recipient: nil,
                sendProblem: "We do not know who your care co-ordinator is yet. Please phone the care team.", status: .serviceUnavailable)
        }
        // The form's key makes a second press of the button (or a reload) the same message.
        let key =
            form.key.count >= 8 && form.key.count <= 64 && form.key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" })
            ? "bridge-checkin-\(form.key)" : "bridge-checkin-\(UUID().uuidString.lowercased())"
        let header = SendHeader(
            key: key, kind: .carerCheckIn, to: [.person(recipient.coordinator)], patient: patient,
            priority: body.urgency == .urgent ? .urgent : nil, onBehalfOf: carer)
        let accepted: Accepted
        do {
            accepted = try await link.send(header, body: body.encode())
        } catch {
            logger.error("check-in not sent", metadata: ["carer": "\(carer)", "error": "\(error)"])
            return checkInForm(
                form, signed: signed, patient: patient, name: name, recipient: recipient,
                sendProblem:
                    "The care team's system did not take it just now. Your answers are still here: try again in a minute. If it is urgent, phone the team.",
                status: .serviceUnavailable)
        }
        try store.recordCheckIn(
            key: key, carer: carer, patient: patient, message: accepted.id, recipient: "person:\(recipient.coordinator)",
            urgency: body.urgency.rawValue, body: body.encode(), now: moment)
        var page: [String: Any] = [
            "nhs": patient.digits, "name": name, "coordinatorName": recipient.coordinatorName,
            "sentAt": Display.when(moment, timeZone: configuration.timeZone),
        ]
        if body.urgency == .urgent {
            // Hours that do not read count as closed: that errs towards the fallback contacts.
            let hours = recipient.team?.hours.flatMap { try? ServiceHours(parsing: $0) }
            let open = hours?.isOpen(at: moment, in: configuration.timeZone) ?? false
            if open {
                page["urgentOpen"] = true
            } else {
                page["closed"] = true
                page["teamName"] = recipient.team?.name ?? "The care team"
                page["hours"] = recipient.team?.hours ?? "at set times"
                let fallback = recipient.team?.fallback ?? []
                page["fallback"] = fallback.isEmpty ? ["Your GP practice", "NHS 111", "Emergency: 999"] : fallback
            }
        }
        return .html(renderer.page("checkInSent", title: "Check-in sent", page, csrf: signed.session.csrf))
    }

    /// The carer's past check-ins about this person, each with who read it (the
    /// acknowledgements the broker delivered to her) and their note.
    func checkInsPage(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let signed = try signedIn(request) else { return .redirect("/sign-in") }
        let carer = signed.session.carer
        guard let patient = try patient(context, carer: carer) else { return notYours }
        let name = try patientName(carer: carer, patient: patient)
        var readers: [String: [[String: Any]]] = [:]
        for message in try store.messages(for: carer, patient: patient, kind: .checkInAcknowledgement) {
            guard let acknowledgement = try? CheckInAcknowledgement.decode(json: message.body) else { continue }
            var reader: [String: Any] = [
                "name": message.header.fromName, "at": Display.when(acknowledgement.at.date ?? Date(), timeZone: configuration.timeZone),
            ]
            if let note = acknowledgement.note { reader["note"] = note }
            readers[acknowledgement.checkIn, default: []].append(reader)
        }
        let checkIns: [[String: Any]] = try store.checkIns(carer: carer, patient: patient).map { sent in
            var entry: [String: Any] = [
                "message": sent.message, "sentAt": Display.when(sent.sentAt, timeZone: configuration.timeZone),
                "readers": readers[sent.message] ?? [], "hasReaders": readers[sent.message] != nil, "name": name,
            ]
            if let body = sent.body {
                entry["hasBody"] = true
                entry["urgency"] = ["routine": "", "soon": "you asked for a reply soon", "urgent": "you marked it urgent"][body.urgency.rawValue]
                entry["patientScore"] = body.patientWellbeing.score
                entry["patientText"] = body.patientWellbeing.text
                entry["carerScore"] = body.carerWellbeing.wellbeing
                entry["strain"] = body.carerWellbeing.strain
                if let text = body.carerWellbeing.text { entry["carerText"] = text }
                if let concerns = body.concerns { entry["concerns"] = concerns }
            }
            return entry
        }
        let page: [String: Any] = ["nhs": patient.digits, "name": name, "checkIns": checkIns, "hasCheckIns": !checkIns.isEmpty]
        return .html(renderer.page("checkIns", title: "Your check-ins", page, csrf: signed.session.csrf))
    }

    // MARK: Live updates

    func liveFragment(_ header: DeliverHeader, body: [UInt8], patient: NHSNumber) -> String {
        var context: [String: Any] = [:]
        let time = Display.when(header.sentAt, timeZone: configuration.timeZone)
        if header.kind == .notice, let notice = try? BrokerNotice.decode(json: body), notice.notice == .revoked {
            context["heading"] = notice.parts == nil ? "Taken back: no longer shared with you" : "Part taken back: no longer shared with you"
            context["detail"] = notice.text
            context["revokes"] = notice.parts.map { $0.map { "\(notice.message)/\($0)" }.joined(separator: " ") } ?? notice.message
        } else if header.kind == .checkInAcknowledgement, let acknowledgement = try? CheckInAcknowledgement.decode(json: body) {
            context["heading"] = "\(header.fromName) read your check-in"
            context["detail"] = "Read on \(time).\(acknowledgement.note.map { " Their note: \($0)" } ?? "")"
            context["link"] = "/people/\(patient.digits)/check-ins"
            context["linkText"] = "See your check-ins"
        } else if header.kind == .carePlanShare, let plan = try? CarePlanShare.decode(json: body) {
            context["heading"] = "New care plan: version \(plan.version)"
            context["detail"] = "\(header.fromName) shared it on \(time). What changed: \(plan.changeSummary)"
            context["link"] = "/people/\(patient.digits)"
            context["linkText"] = "Show version \(plan.version)"
        } else {
            context["heading"] = "New message from \(header.fromName)"
            context["detail"] = "Sent \(time)."
        }
        return renderer.fragment("liveUpdate", context)
    }

    func events(_ request: Request, context: BridgeContext) async throws -> Response {
        guard let signed = try signedIn(request) else { return problem("Signed out", "Sign in again to see updates.", status: .unauthorized) }
        let carer = signed.session.carer
        guard let patient = try patient(context, carer: carer) else { return notYours }
        // Everything stored after what the page showed (or after the browser's Last-Event-ID on a
        // reconnect) is sent first, so nothing falls between the page and the stream.
        let after =
            request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
            ?? request.uri.queryParameters.get("after").flatMap { Int64($0) } ?? Int64.max
        let stream = hub.subscribe(carer: carer, patient: patient)
        let backlog = after == Int64.max ? [] : try store.messages(for: carer, patient: patient).filter { $0.seq > after }
        let bridge = self
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
                var sent = Set<String>()
                var lastSeq = after == Int64.max ? 0 : after
                for message in backlog {
                    sent.insert(message.header.id)
                    lastSeq = message.seq
                    let html = bridge.liveFragment(message.header, body: message.body, patient: patient)
                    try await writer.write(ByteBuffer(string: EventStreamFormat.event("update", id: String(message.seq), data: html)))
                }
                for await event in stream {
                    guard event.seq > lastSeq, sent.insert(event.header.id).inserted else { continue }
                    lastSeq = event.seq
                    let html = bridge.liveFragment(event.header, body: event.body, patient: patient)
                    try await writer.write(ByteBuffer(string: EventStreamFormat.event("update", id: String(lastSeq), data: html)))
                }
                try await writer.finish(nil)
            })
    }
}
