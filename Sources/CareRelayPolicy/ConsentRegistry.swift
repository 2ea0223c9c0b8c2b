import CareRelayModel
import Foundation

/// The broker's in-memory index of consent directives in force, keyed by patient.
///
/// A dictionary from NHS number to that patient's (short) directive list: `directives(for:)`
/// is one hash lookup, and a decision only ever reads the lists of the patients its message
/// is about, so its cost does not grow with the number of patients (designed for 1,000,000).
/// The broker loads it from its store at start and applies each consent message as it is
/// accepted; withdrawal removes the directive at once, so the check just before delivery sees it.
public struct ConsentRegistry: Sendable, ConsentDirectiveSource {
    private var byPatient: [NHSNumber: [ConsentDirective]] = [:]
    public private(set) var directiveCount = 0

    public init() {}

    public init(directives: some Sequence<ConsentDirective>) {
        for d in directives { record(d) }
    }

    /// Reserve room for `patients` patients before a bulk load.
    public mutating func reserveCapacity(_ patients: Int) { byPatient.reserveCapacity(patients) }

    public var patientCount: Int { byPatient.count }

    public func directives(for patient: NHSNumber) -> [ConsentDirective] { byPatient[patient] ?? [] }

    /// Adds a directive, or replaces the patient's directive with the same id. A directive that
    /// is not `active` is removed instead (it would never count).
    public mutating func record(_ directive: ConsentDirective) {
        guard directive.status == .active else {
            withdraw(directive.id, patient: directive.patient)
            return
        }
        var list = byPatient.removeValue(forKey: directive.patient) ?? []
        if let i = list.firstIndex(where: { $0.id == directive.id }) {
            list[i] = directive
        } else {
            list.append(directive)
            directiveCount += 1
        }
        byPatient[directive.patient] = list
    }

    /// Withdraws a directive by id, at once. Returns whether it was there.
    @discardableResult
    public mutating func withdraw(_ id: ConsentDirectiveID, patient: NHSNumber) -> Bool {
        guard var list = byPatient[patient], let i = list.firstIndex(where: { $0.id == id }) else { return false }
        list.remove(at: i)
        directiveCount -= 1
        byPatient[patient] = list.isEmpty ? nil : list
        return true
    }

    /// Applies an accepted consent message. Returns false for a withdrawal of an unknown id.
    @discardableResult
    public mutating func apply(_ body: ConsentBody) -> Bool {
        switch body {
        case .grant(let d), .object(let d):
            record(d)
            return true
        case .withdraw(let w):
            return withdraw(w.directive, patient: w.patient)
        }
    }

    /// Housekeeping: drops directives whose period ended at or before `instant` (they are
    /// ignored by decisions anyway). Returns how many were dropped.
    @discardableResult
    public mutating func removeExpired(asOf instant: Date) -> Int {
        var dropped = 0
        for (patient, list) in byPatient {
            let kept = list.filter { d in d.period.end.map { $0 > instant } ?? true }
            guard kept.count != list.count else { continue }
            dropped += list.count - kept.count
            byPatient[patient] = kept.isEmpty ? nil : kept
        }
        directiveCount -= dropped
        return dropped
    }
}
