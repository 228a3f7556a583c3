//! The charm's database preparation against a real PostgreSQL: an empty database gets
//! the C locale; one that holds tables is left alone and reported.

#[path = "../crates/stats-exporter/tests/common/postgres.rs"]
mod postgres;

use synapse_k8s_charm::relations::database::postgres::{prepare, DbError, Locale};
use synapse_k8s_charm::relations::database::DatabaseInfo;

fn info(pg: &postgres::Pg, db: &str, user: &str, password: &str) -> DatabaseInfo {
    DatabaseInfo {
        host: "127.0.0.1".into(),
        port: pg.port(),
        endpoints: vec![],
        database: db.into(),
        user: user.into(),
        password: password.into(),
    }
}

#[test]
fn empty_database_gets_c_locale_and_full_one_is_reported() {
    let pg = postgres::start(postgres::PgOptions::default());
    pg.create_role("admin_role", "pw", true);
    pg.create_database("empty", "admin_role");
    pg.create_database("full", "admin_role");
    pg.psql_in("full", "CREATE TABLE users(name text PRIMARY KEY)");
    let locale = pg.locale().to_string();

    assert_eq!(
        prepare(&info(&pg, "empty", "admin_role", "pw")).unwrap(),
        Locale::Switched {
            from: locale.clone()
        }
    );
    assert_eq!(
        pg.psql("SELECT datcollate FROM pg_database WHERE datname = 'empty'"),
        "C"
    );
    assert_eq!(
        prepare(&info(&pg, "empty", "admin_role", "pw")).unwrap(),
        Locale::Ready
    );

    match prepare(&info(&pg, "full", "admin_role", "pw")).unwrap() {
        Locale::Unsafe {
            collate, tables, ..
        } => assert_eq!((collate, tables), (locale, 1)),
        other => panic!("{other:?}"),
    }
    assert_ne!(
        pg.psql("SELECT datcollate FROM pg_database WHERE datname = 'full'"),
        "C",
        "untouched"
    );

    // Errors name the problem, never the password.
    let err = prepare(&info(&pg, "empty", "admin_role", "wrong-password")).unwrap_err();
    assert!(matches!(err, DbError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-password"));
    pg.create_role("plain_role", "pw2", false);
    pg.create_database("plain", "plain_role");
    let err = prepare(&info(&pg, "plain", "plain_role", "pw2")).unwrap_err();
    assert!(
        matches!(err, DbError::Query(_)),
        "without superuser the update is refused: {err}"
    );
}

#[test]
fn every_endpoint_is_tried_and_each_failure_is_named() {
    use synapse_k8s_charm::relations::database::postgres::inspect;
    use synapse_k8s_charm::relations::database::relation::Endpoint;
    let pg = postgres::start(postgres::PgOptions::default());
    pg.create_role("admin_role", "pw", true);
    pg.create_database("synapse", "admin_role");
    // A port nobody listens on (refused) first, then the real server.
    let closed = postgres::free_port();
    let mut i = info(&pg, "synapse", "admin_role", "pw");
    i.endpoints = vec![
        Endpoint {
            host: "127.0.0.1".into(),
            port: closed,
        },
        Endpoint {
            host: "127.0.0.1".into(),
            port: pg.port(),
        },
    ];
    let found = inspect(&i).unwrap();
    assert_eq!(found.endpoint, format!("127.0.0.1:{}", pg.port()));
    assert!(!found.synapse_schema, "no Synapse schema yet");
    pg.psql_in("synapse", "CREATE TABLE schema_version(version int)");
    assert!(inspect(&i).unwrap().synapse_schema);

    // None answers: each endpoint and why.
    i.endpoints = vec![
        Endpoint {
            host: "127.0.0.1".into(),
            port: closed,
        },
        Endpoint {
            host: "no-such-host.invalid".into(),
            port: 5432,
        },
    ];
    let err = inspect(&i).unwrap_err().to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{closed}: connection refused")),
        "{err}"
    );
    assert!(
        err.contains("no-such-host.invalid:5432: unresolvable"),
        "{err}"
    );
}
