import ArgumentParser
import CareRelayBroker
import CareRelayModel
import Foundation
import ZeroMQ

/// Writes a sample care system for the demonstration: a directory modelled on Sunderland's
/// five localities, and keys for those the site's operator sets up: the broker, the carers'
/// bridge and the first administrator (with a client configuration). Everyone else is in the
/// directory without a key, to enrol with a code (`carerelay admin enrol`, `carerelay enrol`);
/// carers never need one. Keys are generated once; running it again keeps them.
struct SampleSystem: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write a sample directory, keys and client configurations for a demonstration.",
        discussion: """
            Example:
              carerelay-broker sample --folder var/demo --endpoint tcp://127.0.0.1:5570
              carerelay-broker serve --directory var/demo/directory.yaml --key-file var/demo/keys/broker.key \\
                --store var/demo/carerelay.sqlite --endpoint tcp://127.0.0.1:5570
              CARERELAY_CONFIG=var/demo/people/admin.it/config.yaml carerelay admin enrol gp.khan
            """)

    @Option(help: "Where to write directory.yaml, keys/ and people/.")
    var folder = "var/demo"

    @Option(help: "The endpoint clients will connect to.")
    var endpoint = "tcp://127.0.0.1:5570"

    struct Locality {
        let id: String, name: String, practice: String
        let gp: (String, String), nurse: (String, String), socialWorkers: [(String, String)]
        let coordinator: (String, String), chair: (String, String), volunteer: (String, String)
    }

    /// Sunderland's five localities (000 L68), each with a community integrated team.
    static let localities: [Locality] = [
        Locality(
            id: "west", name: "Sunderland West", practice: "Pallion Health Centre",
            gp: ("gp.khan", "Dr Amina Khan"), nurse: ("nurse.ali", "Yusuf Ali"),
            socialWorkers: [("sw.okafor", "Grace Okafor"), ("sw.lee", "Daniel Lee")],
            coordinator: ("coord.patel", "Priya Patel"), chair: ("mdt.jones", "Sam Jones"), volunteer: ("vsb.green", "Tom Green")),
        Locality(
            id: "north", name: "Sunderland North", practice: "Southwick Surgery",
            gp: ("gp.reid", "Dr Fiona Reid"), nurse: ("nurse.hall", "Karen Hall"),
            socialWorkers: [("sw.dixon", "Mark Dixon")],
            coordinator: ("coord.wood", "Lesley Wood"), chair: ("mdt.shaw", "Ian Shaw"), volunteer: ("vsb.cook", "Ann Cook")),
        Locality(
            id: "east", name: "Sunderland East", practice: "Hendon Surgery",
            gp: ("gp.moss", "Dr Chris Moss"), nurse: ("nurse.ford", "Beth Ford"),
            socialWorkers: [("sw.ahmed", "Tariq Ahmed")],
            coordinator: ("coord.gray", "Helen Gray"), chair: ("mdt.bell", "Paul Bell"), volunteer: ("vsb.rose", "Sue Rose")),
        Locality(
            id: "washington", name: "Washington", practice: "Galleries Health Centre",
            gp: ("gp.singh", "Dr Ravi Singh"), nurse: ("nurse.young", "Claire Young"),
            socialWorkers: [("sw.price", "Megan Price")],
            coordinator: ("coord.hunt", "Joanne Hunt"), chair: ("mdt.king", "Alan King"), volunteer: ("vsb.west", "Pat West")),
        Locality(
            id: "coalfield", name: "Coalfield", practice: "Houghton Primary Care Centre",
            gp: ("gp.bates", "Dr Ruth Bates"), nurse: ("nurse.scott", "Gail Scott"),
            socialWorkers: [("sw.watson", "Lee Watson")],
            coordinator: ("coord.lamb", "Nicola Lamb"), chair: ("mdt.ross", "Derek Ross"), volunteer: ("vsb.hart", "Jim Hart")),
    ]

    /// Carers of patients in the demonstration (the patients themselves are NHS numbers in
    /// the store, not directory entries). Others join by their co-ordinator's invitation.
    static let carers: [(String, String)] = [("carer.ellis", "Jean Ellis"), ("carer.dodds", "Mary Dodds")]

    /// The people the site's operator sets up with keys: the bridge and the first administrator.
    static let operatorKeyed: Set<String> = ["bridge", "admin.it"]

    func run() throws {
        let keysFolder = "\(folder)/keys"
        try FileManager.default.createDirectory(atPath: keysFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        func key(_ id: String) throws -> CurveKeyPair {
            let path = "\(keysFolder)/\(id).key"
            if FileManager.default.fileExists(atPath: path) {
                let loaded = try CurveKeyPair.load(path: path)
                if let secret = loaded.secretKey { return CurveKeyPair(publicKey: loaded.publicKey, secretKey: secret) }
            }
            let pair = try CurveKeyPair.generate()
            try pair.save(path: path, comment: "CareRelay sample key for \(id)")
            return pair
        }
        let broker = try key("broker")
        try broker.savePublic(path: "\(keysFolder)/broker.key.pub", comment: "CareRelay sample broker public key")

        var teams: [Directory.Team] = []
        var people: [Directory.Person] = []
        func person(_ entry: (String, String), _ roles: [Role], _ teams: [TeamID], actsFor: [PersonID]? = nil) throws {
            let staff = !roles.contains(.carer) && !roles.contains(.gateway)
            people.append(
                Directory.Person(
                    id: PersonID(entry.0), name: entry.1, roles: roles, organisation: staff ? "sunderland-ccg" : nil,
                    teams: teams, key: Self.operatorKeyed.contains(entry.0) ? try key(entry.0).publicKey : nil,
                    email: staff ? Self.email(entry.1) : nil, actsFor: actsFor))
        }
        for l in Self.localities {
            let locality = LocalityID(l.id)
            let gp = TeamID("\(l.id).gp"), nursing = TeamID("\(l.id).nursing"), social = TeamID("\(l.id).social-care")
            let mdt = TeamID("\(l.id).mdt"), voluntary = TeamID("\(l.id).voluntary")
            teams += [
                .init(id: gp, name: l.practice, locality: locality),
                .init(
                    id: nursing, name: "\(l.name) community nursing", locality: locality,
                    hours: "mon-sun 08:00-22:00", fallback: ["Out-of-hours district nurses: 0191 555 0100", "Emergency: 999"]),
                .init(
                    id: social, name: "\(l.name) social care intake", locality: locality, coordinator: PersonID(l.coordinator.0),
                    hours: "mon-fri 08:30-17:00",
                    fallback: ["\(l.name) district nurses: 0191 555 0100", "Out-of-hours social care: 0191 555 0200", "Emergency: 999"],
                    // As Torbay's single point of access: an urgent referral within the hour.
                    responseTargets: ResponseTargets(urgent: try ResponseTime(parsing: "1h")),
                    // Urgent work nobody has picked up: the social workers in turn, then out of
                    // hours the co-ordinator.
                    onCall: l.socialWorkers.map { PersonID($0.0) }, onCallOutOfHours: [PersonID(l.coordinator.0)], escalateAfter: "15m"),
                .init(id: mdt, name: "\(l.name) Wednesday MDT", kind: .mdt, locality: locality, coordinator: PersonID(l.chair.0)),
                .init(id: voluntary, name: "Age UK Sunderland, \(l.name)", locality: locality),
            ]
            try person(l.gp, [.gp], [gp, mdt])
            try person(l.nurse, [.communityNurse], [nursing, mdt])
            for worker in l.socialWorkers { try person(worker, [.socialWorker], [social, mdt]) }
            try person(l.coordinator, [.careCoordinator], [social, mdt])
            try person(l.chair, [.mdtCoordinator], [mdt])
            try person(l.volunteer, [.voluntarySectorBroker], [voluntary, mdt])
        }
        teams.append(.init(id: "sunderland.carers-centre", name: "Sunderland Carers' Centre", locality: "west"))
        try person(("carers-centre.brown", "Lynn Brown"), [.voluntarySectorBroker], ["sunderland.carers-centre"])
        for carer in Self.carers { try person(carer, [.carer], []) }
        try person(("bridge", "CareRelay carer bridge"), [.gateway], [], actsFor: Self.carers.map { PersonID($0.0) })
        try person(("admin.it", "CareRelay service desk"), [.administrator], [])

        let directory = Directory(
            organisations: [.init(id: "sunderland-ccg", name: "Sunderland Clinical Commissioning Group")],
            localities: Self.localities.map { .init(id: LocalityID($0.id), name: $0.name) },
            // Every team belongs to the commissioning organisation, whose service desk administers them.
            teams: teams.map { team in
                var team = team
                team.organisation = "sunderland-ccg"
                return team
            }, people: people)
        _ = try DirectoryIndex(directory)
        try DirectoryFile.encode(directory).write(toFile: "\(folder)/directory.yaml", atomically: true, encoding: .utf8)

        // The administrator's client configuration, as `carerelay config init` would write it;
        // everyone else's is written by `carerelay enrol`.
        for entry in people where Self.operatorKeyed.contains(entry.id.rawValue) && entry.roles.contains(.administrator) {
            let home = "\(folder)/people/\(entry.id)"
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            let config = """
                # carerelay configuration for \(entry.name) (sample)
                endpoint: \(endpoint)
                brokerKey: \(URL(fileURLWithPath: "\(keysFolder)/broker.key.pub").path)
                identity: \(URL(fileURLWithPath: "\(keysFolder)/\(entry.id).key").path)

                """
            try config.write(toFile: "\(home)/config.yaml", atomically: true, encoding: .utf8)
        }
        print(
            "Wrote \(folder)/directory.yaml (\(people.count) people in \(teams.count) teams, to enrol with codes), the broker's, the bridge's and the administrator's keys in \(keysFolder), the administrator's configuration in \(folder)/people/admin.it"
        )
    }

    /// "Dr Amina Khan" works as amina.khan@sunderland.example.
    static func email(_ name: String) -> String {
        let words = name.split(separator: " ").filter { $0 != "Dr" }.map { $0.lowercased() }
        return words.joined(separator: ".") + "@sunderland.example"
    }
}
