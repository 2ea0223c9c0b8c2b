import Testing
@testable import CareRelayModel

@Suite struct NHSNumberTests {
    @Test(arguments: ["9434765919", "943 476 5919", "943-476-5919", "4010232137"])
    func acceptsValidNumbers(_ text: String) throws {
        let number = try NHSNumber(validating: text)
        #expect(number.digits == text.filter(\.isNumber))
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
        // Digits from other scripts, and a digit with a combining mark, are not NHS number digits;
        // the error names the whole character as the person typed it.
        #expect(throws: NHSNumber.ValidationError.nonDigit("٥")) { try NHSNumber(validating: "94347659٥9") }
        #expect(throws: NHSNumber.ValidationError.nonDigit("１")) { try NHSNumber(validating: "１434765919") }
        #expect(throws: NHSNumber.ValidationError.nonDigit("9\u{301}")) { try NHSNumber(validating: "9\u{301}434765919") }
    }

    @Test func rejectsNumbersWhoseCheckDigitWouldBeTen() {
        // 100000001x: the weighted sum leaves a check digit of 10, so no tenth digit can fit.
        #expect(throws: NHSNumber.ValidationError.self) { try NHSNumber(validating: "1000000010") }
    }
}
