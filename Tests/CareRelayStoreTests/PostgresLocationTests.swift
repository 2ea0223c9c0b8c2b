import CareRelayPostgres
import CareRelayStore
import Testing

/// How a `--store postgres://...` URL is read: no server needed.
@Suite struct PostgresLocationTests {
    @Test func aURLNamesServerUserDatabaseAndTLS() throws {
        let remote = try PostgresLocation(url: "postgres://carerelay:secret@db.example.nhs.uk:6432/region")
        #expect(remote.host == "db.example.nhs.uk" && remote.port == 6432 && remote.user == "carerelay")
        #expect(remote.password == "secret" && remote.database == "region")
        // Patient data crosses this connection: off loopback, TLS with a verified server by default.
        #expect(remote.security == .verifyFull(rootCertificate: nil))
        #expect(!remote.description.contains("secret"))
        #expect(try PostgresLocation(url: "postgres://u@127.0.0.1/db").security == .disable)
        #expect(try PostgresLocation(url: "postgres://u@localhost/db").port == 5432)
        #expect(try PostgresLocation(url: "postgres://u@h/db?sslmode=require").security == .require)
        #expect(
            try PostgresLocation(url: "postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem").security
                == .verifyFull(rootCertificate: "/etc/ca.pem"))
        #expect(try PostgresLocation(url: "postgres://u@h/db?sslrootcert=/etc/ca.pem").security == .verifyFull(rootCertificate: "/etc/ca.pem"))
        #expect(try PostgresLocation(url: "postgres://u@h/db").timeout == .seconds(10))
        #expect(try PostgresLocation(url: "postgres://u@h/db?timeout=2.5").timeout == .milliseconds(2500))
    }

    @Test func whatItWritesItReadsBack() throws {
        for text in [
            "postgres://u@127.0.0.1:5/db", "postgres://u@h:5/db?sslmode=require", "postgres://u@h:5/db?sslmode=disable",
            "postgres://u@h:5/db", "postgres://u@h:5/db?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            "postgres://u@127.0.0.1:5/db?timeout=2.5", "postgres://u@h:5/db?sslmode=require&timeout=30",
        ] {
            let location = try PostgresLocation(url: text)
            #expect(try PostgresLocation(url: location.description) == location, "\(text)")
        }
    }

    @Test func aWrongURLIsRefusedSayingWhatToWrite() {
        for (text, hint) in [
            ("mysql://u@h/db", "postgres://USER"), ("postgres://h/db", "postgres://USER"), ("postgres://u@h", "names no database"),
            ("postgres://u@h/db?sslmode=prefer", "disable, require or verify-full"),
            ("postgres://u@h/db?connect_timeout=3", "sslmode, sslrootcert and timeout"),
            ("postgres://u@h/db?timeout=0", "from 0.1 to 600"), ("postgres://u@h/db?timeout=soon", "from 0.1 to 600"),
        ] {
            #expect { try PostgresLocation(url: text) } throws: { "\($0)".contains(hint) }
        }
    }
}
