//! Synapse on PostgreSQL under JujuLocal, with a real PostgreSQL (Debian) that the test
//! starts in a temporary directory and JujuLocal playing postgresql-k8s.

mod common;

#[path = "../crates/stats-exporter/tests/common/postgres.rs"]
mod postgres;
#[path = "common/postgresql.rs"]
mod postgresql;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{TestModel, UNIT};
use postgresql::provide;

const URL: &str = "http://localhost:8080";

fn bag(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The stats exporter's value for a metric, scraped on 9877.
fn exporter_value(m: &TestModel, metric: &str) -> Option<f64> {
    let text = m.http_get("http://localhost:9877/metrics");
    text.lines()
        .find(|l| l.starts_with(&format!("{metric} ")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn synapse_moves_to_postgresql_and_never_falls_back_to_sqlite() {
    let _lock = common::host_network_lock();
    let mut pg = postgres::start(postgres::PgOptions::default());
    assert_ne!(pg.locale(), "C", "the provider's default locale is not C");
    let mut m = TestModel::with_host_network_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();

    let rel = postgresql::integrate(&mut m);
    // Until the provider answers, Synapse keeps serving from SQLite.
    let (s, msg) = m.status();
    assert_eq!(s, "waiting", "{msg}");
    let starts = m.starts("synapse", "synapse");
    let (uri, _) = provide(&mut m, &pg, rel, true);
    m.wait_ready();
    assert_eq!(m.status(), ("active".into(), String::new()));
    assert_eq!(
        m.starts("synapse", "synapse"),
        starts + 1,
        "one restart to move to PostgreSQL"
    );
    assert_eq!(
        pg.psql("SELECT datcollate || ' ' || datctype FROM pg_database WHERE datname = 'synapse'"),
        "C C",
        "the empty database got the C locale"
    );
    let hs = std::fs::read_to_string(m.data("homeserver.yaml")).unwrap();
    assert!(hs.contains("name: psycopg2"), "{hs}");

    // Users and rooms land in PostgreSQL and the exporter counts them.
    let secret = m.registration_secret();
    for user in ["alice", "bob"] {
        m.matrix(&["register", URL, &secret, user, "correct horse battery"]);
    }
    let chat = m.matrix(&[
        "chat",
        URL,
        "alice",
        "correct horse battery",
        "stored in postgres",
    ]);
    let session = format!("token:{}", chat["access_token"].as_str().unwrap());
    let room = chat["room_id"].as_str().unwrap().to_string();
    m.matrix(&["public-rooms", URL, "alice", &session]);
    let users: f64 = pg
        .psql_in("synapse", "SELECT count(*) FROM users")
        .parse()
        .unwrap();
    let rooms: f64 = pg
        .psql_in("synapse", "SELECT count(*) FROM rooms")
        .parse()
        .unwrap();
    assert_eq!((users, rooms), (2.0, 2.0));
    wait_for(
        "the exporter to report the users and rooms",
        Duration::from_secs(40),
        || {
            exporter_value(&m, "synapse_total_users") == Some(users)
                && exporter_value(&m, "synapse_total_rooms") == Some(rooms)
        },
    );
    assert_eq!(
        exporter_value(&m, "synapse_stats_exporter_last_poll_success"),
        Some(1.0)
    );

    // Password rotation: Synapse and the exporter reconnect, with one Synapse restart.
    let starts = m.starts("synapse", "synapse");
    let exporter_starts = m.starts("synapse", "stats-exporter");
    let user = format!("relation_id_{rel}");
    pg.psql(&format!("ALTER ROLE {user} PASSWORD 'rotated-password'"));
    m.c.played_secret_set(
        &uri,
        &bag(&[("username", &user), ("password", "rotated-password")]),
    )
    .unwrap();
    assert!(
        m.c.history().iter().any(|r| r.hook == "secret-changed"),
        "secret-changed delivered"
    );
    m.wait_ready();
    assert_eq!(
        m.starts("synapse", "synapse"),
        starts + 1,
        "one Synapse restart for a password rotation"
    );
    assert_eq!(m.starts("synapse", "stats-exporter"), exporter_starts + 1);
    let read = m.matrix(&["read", URL, "alice", &session, &room]);
    assert!(read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == "stored in postgres"));
    wait_for(
        "the exporter to poll with the new password",
        Duration::from_secs(40),
        || {
            exporter_value(&m, "synapse_stats_exporter_last_poll_success") == Some(1.0)
                && exporter_value(&m, "synapse_stats_exporter_polls_total").unwrap_or(0.0) >= 1.0
        },
    );

    // A rotation to a password PostgreSQL refuses: the charm tries it before Synapse
    // does, says why in the status, and Synapse keeps serving with the one that works.
    let starts = m.starts("synapse", "synapse");
    m.c.played_secret_set(
        &uri,
        &bag(&[("username", &user), ("password", "not-the-password")]),
    )
    .unwrap();
    let (s, msg) = m.status();
    assert_eq!(s, "waiting", "{msg}");
    assert!(
        msg.starts_with("cannot reach PostgreSQL at 127.0.0.1:")
            && msg.contains("password authentication failed"),
        "{msg}"
    );
    assert!(
        !msg.contains("not-the-password"),
        "no password in the status"
    );
    assert_eq!(m.starts("synapse", "synapse"), starts, "no restart");
    let read = m.matrix(&["read", URL, "alice", &session, &room]);
    assert!(
        !read["messages"].as_array().unwrap().is_empty(),
        "still serving"
    );
    m.c.played_secret_set(
        &uri,
        &bag(&[("username", &user), ("password", "rotated-password")]),
    )
    .unwrap();
    assert_eq!(m.status(), ("active".into(), String::new()));
    assert_eq!(m.starts("synapse", "synapse"), starts, "still no restart");

    // PostgreSQL down while the synapse container restarts: Synapse cannot start, and
    // the status says so with Synapse's own error, never "active" or "starting"
    // forever; once PostgreSQL is back, Synapse serves again.
    pg.stop();
    // While Synapse runs, its ready check does not touch the database: the status
    // says PostgreSQL does not answer (from the exporter's failing polls).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let msg = loop {
        m.c.update_status().unwrap();
        let (s, msg) = m.status();
        if s == "waiting" && msg.starts_with("PostgreSQL is not answering") {
            break msg;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the outage is not shown: {s}: {msg}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(msg.contains("stats exporter's last poll failed"), "{msg}");
    m.c.restart_container(UNIT, "synapse").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let msg = loop {
        m.c.update_status().unwrap();
        let (s, msg) = m.status();
        if s == "blocked" {
            break msg;
        }
        assert_ne!(
            s, "active",
            "never active while Synapse cannot start: {msg}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "not blocked in time: {s}: {msg}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(msg.starts_with("Synapse keeps exiting"), "{msg}");
    assert!(msg.contains("last log line: "), "{msg}");
    pg.start_again();
    m.wait_ready();
    assert_eq!(m.status(), ("active".into(), String::new()));

    // Removing the relation: Synapse stops and nothing is written to SQLite.
    let sqlite = std::fs::metadata(m.data("homeserver.db"))
        .map(|md| (md.len(), md.modified().unwrap()))
        .ok();
    m.c.remove_relation("synapse:database", "postgresql-k8s:database")
        .unwrap();
    let (s, msg) = m.status();
    assert_eq!(s, "blocked");
    assert!(
        msg.starts_with("the database integration was removed"),
        "{msg}"
    );
    let services = pebble::Client::new(m.c.pebble_socket(UNIT, "synapse"))
        .services(&[])
        .unwrap();
    assert!(
        services.iter().all(|s| !s.is_running()),
        "Synapse and the exporter are stopped: {services:?}"
    );
    m.c.update_status().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        pebble::Client::new(m.c.pebble_socket(UNIT, "synapse"))
            .services(&[])
            .unwrap()
            .iter()
            .all(|s| !s.is_running()),
        "still stopped"
    );
    assert_eq!(
        std::fs::metadata(m.data("homeserver.db"))
            .map(|md| (md.len(), md.modified().unwrap()))
            .ok(),
        sqlite,
        "SQLite untouched"
    );
    assert!(
        std::fs::read_to_string(m.data("homeserver.yaml"))
            .unwrap()
            .contains("psycopg2"),
        "not re-rendered for SQLite"
    );
    assert!(
        !m.data("stats-exporter.password").exists(),
        "the exporter's credentials went with the relation"
    );

    // Integrating a database without Synapse's data (a new, empty one) never brings
    // Synapse up empty: it stays stopped and the status says what to do.
    pg.psql("ALTER DATABASE synapse RENAME TO synapse_kept");
    let rel2 = postgresql::integrate(&mut m);
    provide(&mut m, &pg, rel2, true);
    let (s, msg) = m.status();
    assert_eq!(s, "blocked", "{msg}");
    assert!(
        msg.starts_with(
            "database \"synapse\" holds no Synapse data, but Synapse's data was in PostgreSQL"
        ),
        "{msg}"
    );
    assert!(
        pebble::Client::new(m.c.pebble_socket(UNIT, "synapse"))
            .services(&[])
            .unwrap()
            .iter()
            .all(|s| !s.is_running()),
        "Synapse stays stopped"
    );
    assert_eq!(
        pg.psql_in(
            "synapse",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "nothing was created in the empty database"
    );

    // The database that holds the data comes back: Synapse resumes with all of it.
    pg.psql("DROP DATABASE synapse");
    pg.psql("ALTER DATABASE synapse_kept RENAME TO synapse");
    // The provider's next relation-changed (any key it updates) brings the charm back.
    m.c.played_relation_set(rel2, "postgresql-k8s", &bag(&[("version", "15.1")]))
        .unwrap();
    m.wait_ready();
    assert_eq!(m.status(), ("active".into(), String::new()));
    let login = m.matrix(&["login", URL, "bob", "correct horse battery"]);
    assert_eq!(login["ok"], true, "{login}");
    let read = m.matrix(&["read", URL, "alice", &session, &room]);
    assert!(read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == "stored in postgres"));
}

#[test]
fn sqlite_with_data_is_not_abandoned() {
    let _lock = common::host_network_lock();
    let pg = postgres::start(postgres::PgOptions::default());
    let mut m = TestModel::with_host_network_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    let secret = m.registration_secret();
    m.matrix(&["register", URL, &secret, "carol", "correct horse battery"]);
    let rel = postgresql::integrate(&mut m);
    let starts = m.starts("synapse", "synapse");
    provide(&mut m, &pg, rel, true);
    let (s, msg) = m.status();
    assert_eq!(s, "blocked");
    assert!(
        msg.starts_with("the SQLite database holds 1 users and 0 rooms"),
        "{msg}"
    );
    assert_eq!(
        m.starts("synapse", "synapse"),
        starts,
        "Synapse keeps running on SQLite"
    );
    let login = m.matrix(&["login", URL, "carol", "correct horse battery"]);
    assert_eq!(login["ok"], true, "the SQLite users still work: {login}");
    assert_eq!(
        pg.psql_in(
            "synapse",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "nothing was written to PostgreSQL"
    );
}
