import ArgumentParser
import Foundation

// The CareRelay command-line client. Exit codes are listed in Exit (Support/Failure.swift)
// and in `carerelay --help`.
do {
    var command = try Carerelay.parseAsRoot()
    try command.run()
    exit(Exit.ok)
} catch let failure as Failure {
    Console.err("carerelay: \(failure.message)")
    if let hint = failure.hint { Console.err(hint) }
    exit(failure.code)
} catch {
    Carerelay.exit(withError: error)
}
