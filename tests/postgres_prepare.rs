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
