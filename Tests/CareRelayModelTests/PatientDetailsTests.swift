import Foundation
import Testing

@testable import CareRelayModel

/// The checks a schema pattern cannot make, and the forms people type.
@Suite struct PatientDetailsTests {
    @Test(arguments: ["SR4 6TJ", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT"])
    func postcodesOfEveryShape(_ text: String) {
        #expect(UKPostcode.problem(text) == nil, "\(text)")
    }

    @Test(arguments: ["SR46TJ", "sr4 6tj", "SR4  6TJ", "4SR 6TJ", "SR4 6T", "SR4 T6J", "SRXX 6TJ", "", "SR4 6TJ "])
    func postcodesThatAreNot(_ text: String) {
        #expect(UKPostcode.problem(text) != nil, "\(text)")
    }

    @Test func typedPostcodesAreWrittenAsRoyalMailWritesThem() throws {
        #expect(try UKPostcode.normalising(" sr46tj ").text == "SR4 6TJ")
        #expect(try UKPostcode.normalising("ec1a1bb").text == "EC1A 1BB")
        #expect(throws: MessageValidationError.self) { try UKPostcode.normalising("not a postcode") }
    }

    @Test(arguments: ["0191 496 0123", "+44 7700 900123", "(01632) 960001", "07700-900-123", "01914960123"])
    func telephoneNumbers(_ text: String) {
        #expect(PatientDetails.ContactPoint.telephoneProblem(text) == nil, "\(text)")
    }

    @Test(arguments: ["0191 496", "+33 1 23 45 67 89", "191 496 0123", "0191 496 0123 ext 4", "07700 9001234567", "0191+4960123", ""])
    func telephoneNumbersThatAreNot(_ text: String) {
        #expect(PatientDetails.ContactPoint.telephoneProblem(text) != nil, "\(text)")
    }

    @Test func languageTags() {
        for fine in ["en", "pl", "bfi", "pa-IN", "zh-Hant"] { #expect(PatientDetails.languageProblem(fine) == nil, "\(fine)") }
        for bad in ["English", "EN", "e", "pl-", "en_GB"] { #expect(PatientDetails.languageProblem(bad) != nil, "\(bad)") }
    }

    @Test func aDateOfBirthIsInThePastAndWithinALifetime() {
        let details = { (born: String) in
            PatientDetails(name: .init(given: ["Margaret"], family: "Ellis"), birthDate: CalendarDate(unchecked: born))
        }
        let written = Timestamp(unchecked: "2025-03-11T10:42:00Z")
        #expect(details("1940-06-14").birthDateProblem(authoredOn: written) == nil)
        #expect(details("2025-03-11").birthDateProblem(authoredOn: written) == nil, "born the day the referral was written")
        #expect(details("2025-03-12").birthDateProblem(authoredOn: written)?.contains("in the past") == true)
        #expect(details("1890-01-01").birthDateProblem(authoredOn: written)?.contains("older than 130") == true)
    }

    @Test func namesAndAddressesReadAsPeopleWriteThem() {
        let name = PatientDetails.Name(prefix: "Mrs", given: ["Margaret", "Anne"], family: "Ellis")
        #expect(name.text == "Mrs Margaret Anne Ellis")
        let address = PatientDetails.Address(line: ["12 Harbour View", "Pallion"], city: "Sunderland", postalCode: UKPostcode(unchecked: "SR4 6TJ"))
        #expect(address.text == "12 Harbour View, Pallion, Sunderland SR4 6TJ")
    }
}
