import ArgumentParser
import CareRelayBroker
import CareRelayModel
import Foundation
import ZeroMQ

/// A care system of many people, written as the files `carerelay-broker serve` starts from:
/// the directory (YAML, every person with a CURVE key) and the broker's key file. One GP sends
/// referrals; the staff (social workers and community nurses, in teams of 100) receive them.
/// Everything lives in a temporary folder that `remove()` deletes, store included.
struct CareSystemFiles {
    static let gp: PersonID = "gp.scale"

    let folder: URL
    let brokerKeys: CurveKeyPair
    let staff: [PersonID]
    let keys: [PersonID: CurveKeyPair]

    var directoryPath: String { folder.appendingPathComponent("directory.yaml").path }
    var keyFilePath: String { folder.appendingPathComponent("broker.key").path }
    var storePath: String { folder.appendingPathComponent("store.sqlite").path }
    var logPath: String { folder.appendingPathComponent("broker.log").path }

    init(staff count: Int) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-bench-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        try brokerKeys.save(path: folder.appendingPathComponent("broker.key").path, comment: "CareRelay benchmark broker")

        var people: [Directory.Person] = []
        var keys: [PersonID: CurveKeyPair] = [:]
        func add(_ id: PersonID, _ role: Role, team: TeamID) throws {
            let pair = try CurveKeyPair.generate()
            keys[id] = pair
            people.append(Directory.Person(id: id, name: id.rawValue, roles: [role], teams: [team], key: pair.publicKey))
        }
        try add(Self.gp, .gp, team: "scale.gp")
        let staff = (0..<count).map { PersonID("staff.\($0)") }
        for (index, id) in staff.enumerated() {
            try add(id, index % 2 == 0 ? .socialWorker : .communityNurse, team: Self.team(of: index))
        }
        let teamCount = (count + 99) / 100
        let directory = Directory(
            organisations: [], localities: [.init(id: "scale", name: "Scale")],
            teams: [.init(id: "scale.gp", name: "GP practice", locality: "scale")]
                + (0..<teamCount).map { .init(id: Self.team(of: $0 * 100), name: "Team \($0)", locality: "scale") },
            people: people)
        try DirectoryFile.encode(directory).write(toFile: folder.appendingPathComponent("directory.yaml").path, atomically: true, encoding: .utf8)
        self.staff = staff
        self.keys = keys
    }

    private static func team(of staffIndex: Int) -> TeamID { TeamID("scale.team.\(staffIndex / 100)") }

    /// A connection for one person that the broker has welcomed.
    func connection(_ person: PersonID, in context: ZMQContext, endpoint: String, receive: Bool, credit: Int = 64) throws -> Socket {
        guard let pair = keys[person] else { throw ValidationError("\(person) is not in the generated directory") }
        return try CRPConnection.open(
            in: context, keys: pair, brokerKey: brokerKeys.publicKey, endpoint: endpoint,
            receive: receive, credit: credit)
    }

    func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}
