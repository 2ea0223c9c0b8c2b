import PostgresNIO

/// One SQL statement built in parts, its values bound as parameters ($1, $2, ...) in the
/// order they are added: so that several parts (a WITH clause of inserts and updates) travel
/// in one round trip instead of one each.
struct Statement {
    private var text: PostgresQuery.StringInterpolation

    init(_ start: String) {
        text = PostgresQuery.StringInterpolation(literalCapacity: 1_024, interpolationCount: 16)
        text.appendLiteral(start)
    }

    mutating func sql(_ literal: String) {
        text.appendLiteral(literal)
    }

    /// A value as a parameter cast to `type`, then `literal`.
    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value, as type: String, then literal: String = "") {
        text.appendInterpolation(value)
        text.appendLiteral("::\(type)" + literal)
    }

    var query: PostgresQuery { PostgresQuery(stringInterpolation: text) }
}
