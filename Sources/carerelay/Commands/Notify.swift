import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct NotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "See and choose what reaches you by email and SMS when you are not at CareRelay.",
        discussion: """
            Notifications say only that something is waiting and how urgent it is, never who \
            it is about. Urgent ones always go at once; the rest can wait for a daily digest.

            Examples:
              carerelay notify
              carerelay notify set --email referral.new,referral.allocated,checkin.urgent --sms checkin.urgent
              carerelay notify set --digest 07:30 --phone "07700 900123"
              carerelay notify set --email default --digest off
            """,
        subcommands: [Show.self, Set.self], defaultSubcommand: Show.self)

    static let eventsHelp = "Events are \(NotificationEvent.allCases.map(\.rawValue).joined(separator: ", "))."

    static func print(_ view: NotificationChoicesView, json: Bool) {
        if json {
            Console.json(view)
            return
        }
        for (name, channel) in [("Email", view.email), ("SMS", view.sms)] {
            guard channel.available else {
                Console.out("\(name): not set up at this site.")
                continue
            }
            guard let address = channel.address else {
                Console.out("\(name): no \(name == "SMS" ? "mobile number" : "address") in the directory, so none are sent.")
                continue
            }
            let events = channel.events.isEmpty ? "nothing" : channel.events.map(\.rawValue).joined(separator: ", ")
            Console.out("\(name) to \(address): \(events)\(channel.chosen ? "" : " (the defaults)").")
        }
        Console.out(
            view.digest.map { "Digest: what is not urgent waits for one email a day at \($0)." } ?? "Digest: off; each notification goes at once.")
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What reaches you now, on which channel.")
        @OptionGroup var globals: Globals

        @Option(name: .customLong("for"), help: "A carer the bridge acts for (gateways only).")
        var person: String?

        func run() throws {
            let client = try globals.connect()
            let request = NotifyQuery(for: person.map(PersonID.init))
            let view = try brokerCall { () throws(ClientError) in try client.query(request) }
            NotifyCommand.print(view, json: globals.json)
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Choose events by channel, a digest time, or your mobile number.", discussion: NotifyCommand.eventsHelp)
        @OptionGroup var globals: Globals

        @Option(help: "Events by email, separated by commas; 'default' or 'none'.")
        var email: String?
        @Option(help: "Events by SMS (within what the site sends by SMS); 'default' or 'none'.")
        var sms: String?
        @Option(help: "Take what is not urgent as one email a day at this time (07:30); 'off' for each at once.")
        var digest: String?
        @Option(help: "Your mobile number for SMS; 'none' to remove it.")
        var phone: String?
        @Option(name: .customLong("for"), help: "A carer the bridge acts for (gateways only).")
        var person: String?

        func run() throws {
            var params: [String: String] = [:]
            params["email"] = email
            params["sms"] = sms
            params["digest"] = digest
            params["phone"] = phone
            params["for"] = person
            // Checked here as the broker checks it: a typo stops before anything is sent.
            let request: NotifySet
            do { request = try NotifySet(params: params) } catch { throw Failure.usage(error.reason) }
            let client = try globals.connect()
            let view = try brokerCall { () throws(ClientError) in try client.query(request) }
            NotifyCommand.print(view, json: globals.json)
        }
    }
}

struct OnCallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oncall",
        abstract: "Say you have urgent work you were called about, so nobody else on call is called.",
        subcommands: [Acknowledge.self])

    struct Acknowledge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ack",
            abstract: "Acknowledge an urgent check-in or overdue referral you were called about as on call.",
            discussion: """
                The notification names the id. Acknowledging the check-in (checkin acknowledge) \
                or taking the referral also ends the calling.

                Example:
                  carerelay oncall ack m9x2k7q1-4hd8s0a2
                """)
        @OptionGroup var globals: Globals

        @Argument(help: "The check-in's or referral's id, as the notification gives it.")
        var id: String

        func run() throws {
            let client = try globals.connect()
            let request = OnCallAcknowledge(id: id)
            let answer = try brokerCall { () throws(ClientError) in try client.query(request) }
            if globals.json {
                Console.json(answer)
                return
            }
            for chain in answer.chains {
                let who = chain.acknowledgedBy.map { $0.rawValue } ?? "nobody"
                switch chain.state {
                case "acknowledged":
                    Console.out(
                        "On call for \(chain.team): acknowledged by \(who); nobody else will be called (told: \(chain.told.map(\.rawValue).joined(separator: ", ")))."
                    )
                default:
                    Console.out("On call for \(chain.team): \(chain.state) (told: \(chain.told.map(\.rawValue).joined(separator: ", "))).")
                }
            }
        }
    }
}
