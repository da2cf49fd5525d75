import Logging
import RoasCore
import RoasGen
import RoasRuntime
import Testing

@testable import RoasServer

/// `--sink postgres://…` parsing, without a server.
@Suite("PostgreSQL sink URL")
struct PostgresURLTests {
    @Test(
        "accepted forms",
        arguments: [
            ("postgres://roas@db.internal/analytics", "roas", nil, "db.internal", 5432, "analytics"),
            (
                "postgresql://roas:s3cret@127.0.0.1:6543/roas?sslmode=disable", "roas", "s3cret", "127.0.0.1", 6543,
                "roas"
            ),
            ("postgres://a%40b:p%2Fw@[::1]:5433/my%20db", "a@b", "p/w", "::1", 5433, "my db"),
            ("POSTGRES://u:@h/d?sslmode=prefer", "u", "", "h", 5432, "d"),
        ] as [(String, String, String?, String, Int, String)]
    )
    func acceptedForms(text: String, user: String, password: String?, host: String, port: Int, database: String) throws {
        let url = try PostgresURL(text)
        #expect(url.username == user && url.password == password)
        #expect(url.host == host && url.port == port && url.database == database)
    }

    @Test(
        "rejected forms say what is wrong and never show the password",
        arguments: [
            ("mysql://u:pw@h/d", "postgres://"),
            ("postgres://u:pw@h", "database name is missing"),
            ("postgres://u:pw@h/", "one database name"),
            ("postgres://u:pw@h/a/b", "one database name"),
            ("postgres://h/d", "user name is missing"),
            ("postgres://:pw@h/d", "user name is missing"),
            ("postgres://u:pw@/d", "host is missing"),
            ("postgres://u:pw@h:0/d", "port must be a number"),
            ("postgres://u:pw@h:54x/d", "port must be a number"),
            ("postgres://u:pw@[::1/d", "lacks its ]"),
            ("postgres://u:pw@h/d?sslmode=require", "use sslmode=disable"),
            ("postgres://u:pw@h/d?connect_timeout=3", "unknown parameter connect_timeout"),
        ]
    )
    func rejectedForms(text: String, reason: String) {
        let error = #expect(throws: RoasError.self) { try PostgresURL(text) }
        #expect(error?.code == .options)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("USER[:PASSWORD]@HOST") == true)
        #expect(error?.message.contains("pw") == false)
    }

    @Test("the sink refuses a bad URL when made, and log lines show the URL without its password")
    func sinkChecksItsURL() throws {
        #expect(throws: RoasError.self) { try PostgresRowSink(url: "postgres://nobody", logger: Logger(label: "test")) }
        #expect(throws: RoasError.self) {
            try PostgresRowSink(url: "postgres://u@h/d", logger: Logger(label: "test"), maximumQueuedRows: 0)
        }
        #expect(try PostgresURL("postgres://u:pw@h:1/d").redacted == "postgres://u:***@h:1/d")
    }
}
