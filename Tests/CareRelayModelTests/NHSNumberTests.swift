import Testing
@testable import CareRelayModel

@Suite struct NHSNumberTests {
    @Test(arguments: ["9434765919", "943 476 5919", "943-476-5919", "4010232137"])
    func acceptsValidNumbers(_ text: String) throws {
        let number = try NHSNumber(validating: text)
        #expect(number.digits.count == 10)
        #expect(number.formatted.count == 12)
    }

    @Test func rejectsWrongCheckDigit() {
        #expect(throws: NHSNumber.ValidationError.checkDigitMismatch(expected: 9, found: 8)) {
            try NHSNumber(validating: "9434765918")
        }
    }

    @Test func rejectsWrongLengthAndLetters() {
        #expect(throws: NHSNumber.ValidationError.wrongLength(9)) { try NHSNumber(validating: "943476591") }
        #expect(throws: NHSNumber.ValidationError.nonDigit("x")) { try NHSNumber(validating: "94347659x9") }
    }

    @Test func rejectsNumbersWhoseCheckDigitWouldBeTen() {
        // 100000001x: the weighted sum leaves a check digit of 10, so no tenth digit can fit.
        #expect(throws: NHSNumber.ValidationError.self) { try NHSNumber(validating: "1000000010") }
    }
}
