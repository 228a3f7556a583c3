//! End-to-end tests: the real binary against a real throwaway PostgreSQL.

#[path = "common/postgres.rs"]
mod postgres;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use postgres::{free_port, PgOptions};

const BIN: &str = env!("CARGO_BIN_EXE_synapse-stats-exporter");

/// A running exporter; killed on drop.
struct Exporter {
    child: Child,
    port: u16,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

struct Scrape {
    head: String,
    body: String,
}

impl Scrape {
    fn status_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn values(&self) -> HashMap<String, f64> {
        self.body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(' ').expect("sample line");
                (name.to_owned(), value.parse().expect("sample value"))
            })
            .collect()
    }
}

impl Exporter {
    fn start(env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let port = free_port();
        let child = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("EXPORTER_PORT", port.to_string())
            .env("POLLING_INTERVAL_SECONDS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let exporter = Exporter {
            child,
            port,
            stderr,
            _dir: dir,
        };
        exporter.wait_until("the HTTP port answers", Duration::from_secs(10), |_| true);
        exporter
    }

    fn request(&self, request: &str) -> Option<Scrape> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        Some(Scrape {
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    fn get(&self, path: &str) -> Scrape {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
            .unwrap_or_else(|| panic!("GET {path} failed; stderr:\n{}", self.stderr()))
    }

    /// Polls /metrics until `cond` holds; panics after `limit`.
    fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&HashMap<String, f64>) -> bool,
    ) -> HashMap<String, f64> {
        let deadline = Instant::now() + limit;
        let mut last = None;
        loop {
            if let Some(scrape) = self.request("GET /metrics HTTP/1.1\r\n\r\n") {
                let values = scrape.values();
                if cond(&values) {
                    return values;
                }
                last = Some(scrape.body);
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{}\nstderr:\n{}",
                    last.unwrap_or_default(),
                    self.stderr()
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait_exit(&mut self.child, limit)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        sleep(Duration::from_millis(20));
    }
}

fn value(m: &HashMap<String, f64>, name: &str) -> f64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("{name} missing from {m:?}"))
}

const SCHEMA: &str = "
CREATE TABLE rooms(room_id text PRIMARY KEY);
CREATE TABLE users(name text PRIMARY KEY);
";

fn insert(pg: &postgres::Pg, table: &str, from: u32, to: u32) {
    let column = if table == "rooms" { "room_id" } else { "name" };
    pg.psql_in(
        "synapse",
        &format!(
            "INSERT INTO {table}({column}) SELECT '{table}-' || i FROM generate_series({from}, {to}) i;"
        ),
    );
}

#[test]
fn counts_survive_an_outage_and_recover() {
    let password = "pa'ss word-Zq81";
    let mut pg = postgres::start(PgOptions::default());
    pg.create_role("synapse", password, false);
    pg.create_database("synapse", "synapse");
    pg.psql_in("synapse", &format!("SET ROLE synapse;{SCHEMA}"));
    insert(&pg, "rooms", 1, 3);
    insert(&pg, "users", 1, 5);

    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let port = pg.port().to_string();
    let mut exporter = Exporter::start(&[
        ("PROM_SYNAPSE_HOST", "127.0.0.1"),
        ("PROM_SYNAPSE_PORT", &port),
        ("PROM_SYNAPSE_USER", "synapse"),
        ("PROM_SYNAPSE_DATABASE", "synapse"),
        ("PROM_SYNAPSE_PASSWORD", "not-this-one"),
        (
            "PROM_SYNAPSE_PASSWORD_FILE",
            password_file.to_str().unwrap(),
        ),
    ]);

    // First poll.
    let m = exporter.wait_until("the first poll", Duration::from_secs(10), |m| {
        m.contains_key("synapse_total_rooms")
    });
    assert_eq!(value(&m, "synapse_total_rooms"), 3.0);
    assert_eq!(value(&m, "synapse_total_users"), 5.0);
    assert_eq!(value(&m, "synapse_stats_exporter_last_poll_success"), 1.0);
    assert_eq!(value(&m, "synapse_stats_exporter_poll_errors_total"), 0.0);
    assert!(value(&m, "synapse_stats_exporter_polls_total") >= 1.0);
    assert!(value(&m, "synapse_stats_exporter_last_success_timestamp_seconds") > 1.6e9);
    assert!(value(&m, "synapse_stats_exporter_poll_duration_seconds") < 5.0);

    // Same exposition on / and /metrics, with the 0.0.4 content type.
    for path in ["/", "/metrics"] {
        let scrape = exporter.get(path);
        assert_eq!(scrape.status_line(), "HTTP/1.1 200 OK");
        assert!(
            scrape
                .head
                .contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
            "{}",
            scrape.head
        );
        assert!(scrape.body.contains(
            "# HELP synapse_total_rooms Total number of rooms in Synapse server\n\
             # TYPE synapse_total_rooms gauge\n"
        ));
        assert_eq!(value(&scrape.values(), "synapse_total_users"), 5.0);
    }

    // New rows show up within a couple of intervals.
    insert(&pg, "rooms", 4, 7);
    insert(&pg, "users", 6, 7);
    exporter.wait_until("the new rows", Duration::from_secs(5), |m| {
        m.get("synapse_total_rooms") == Some(&7.0) && m.get("synapse_total_users") == Some(&7.0)
    });

    // Outage: keeps serving the old counts, reports failure.
    pg.stop();
    let m = exporter.wait_until("a failed poll", Duration::from_secs(5), |m| {
        m.get("synapse_stats_exporter_last_poll_success") == Some(&0.0)
    });
    let errors = value(&m, "synapse_stats_exporter_poll_errors_total");
    assert!(errors >= 1.0);
    assert_eq!(value(&m, "synapse_total_rooms"), 7.0);
    assert_eq!(value(&m, "synapse_total_users"), 7.0);
    let m = exporter.wait_until("more failed polls", Duration::from_secs(5), |m| {
        m.get("synapse_stats_exporter_poll_errors_total")
            .is_some_and(|e| *e >= errors + 2.0)
    });
    assert_eq!(value(&m, "synapse_total_rooms"), 7.0);
    assert!(exporter.is_alive());
    let log = exporter.stderr();
    assert!(log.contains("poll failed: "), "{log}");
    assert!(
        !log.contains(password),
        "password leaked to the log:\n{log}"
    );
    assert!(!log.contains("not-this-one"), "{log}");

    // Recovery.
    pg.start_again();
    insert(&pg, "rooms", 8, 10);
    let m = exporter.wait_until("recovery", Duration::from_secs(10), |m| {
        m.get("synapse_stats_exporter_last_poll_success") == Some(&1.0)
            && m.get("synapse_total_rooms") == Some(&10.0)
    });
    assert_eq!(value(&m, "synapse_total_users"), 7.0);
    // One line for the first success, one for the recovery.
    let log = exporter.stderr();
    assert_eq!(log.matches("poll succeeded: ").count(), 2, "{log}");
    assert!(log.contains("poll succeeded: 3 rooms, 5 users"), "{log}");

    exporter.signal("TERM");
    let status = exporter.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", exporter.stderr());
}

#[test]
fn database_errors_are_reported_and_recovered_from() {
    let pg = postgres::start(PgOptions::default());
    pg.create_role("synapse", "right-password", false);
    pg.create_database("synapse", "synapse");
    let port = pg.port().to_string();
    let common = [
        ("PROM_SYNAPSE_HOST", "127.0.0.1"),
        ("PROM_SYNAPSE_PORT", port.as_str()),
        ("PROM_SYNAPSE_USER", "synapse"),
        ("PROM_SYNAPSE_DATABASE", "synapse"),
    ];

    let mut wrong = common.to_vec();
    wrong.push(("PROM_SYNAPSE_PASSWORD", "wrong-Secret-4u"));
    let wrong = Exporter::start(&wrong);

    // Right password, but the tables do not exist yet.
    let mut right = common.to_vec();
    right.push(("PROM_SYNAPSE_PASSWORD", "right-password"));
    let right = Exporter::start(&right);

    for exporter in [&wrong, &right] {
        let m = exporter.wait_until("a failed poll", Duration::from_secs(10), |m| {
            m.get("synapse_stats_exporter_poll_errors_total")
                .is_some_and(|e| *e >= 1.0)
        });
        assert!(!m.contains_key("synapse_total_rooms"), "{m:?}");
        assert!(!m.contains_key("synapse_total_users"), "{m:?}");
        assert_eq!(value(&m, "synapse_stats_exporter_last_poll_success"), 0.0);
        assert_eq!(
            value(&m, "synapse_stats_exporter_last_success_timestamp_seconds"),
            0.0
        );
    }
    let log = wrong.stderr();
    assert!(log.contains("password authentication failed"), "{log}");
    assert!(!log.contains("wrong-Secret-4u"), "{log}");
    for line in log.lines().filter(|l| l.contains("poll failed")) {
        assert!(
            line.starts_with(
                "synapse-stats-exporter: poll failed: cannot connect to PostgreSQL at 127.0.0.1:"
            ),
            "{line}"
        );
    }
    let log = right.stderr();
    assert!(log.contains(r#"relation "rooms" does not exist"#), "{log}");

    pg.psql_in("synapse", &format!("SET ROLE synapse;{SCHEMA}"));
    insert(&pg, "rooms", 1, 2);
    let m = right.wait_until("the tables to be found", Duration::from_secs(5), |m| {
        m.get("synapse_total_rooms") == Some(&2.0)
    });
    assert_eq!(value(&m, "synapse_total_users"), 0.0);
    assert_eq!(value(&m, "synapse_stats_exporter_last_poll_success"), 1.0);

    // The server drops the kept connection: the exporter reconnects without
    // a failed poll.
    let errors = value(&m, "synapse_stats_exporter_poll_errors_total");
    let polls = value(&m, "synapse_stats_exporter_polls_total");
    let terminated = pg.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'synapse-stats-exporter' AND usename = 'synapse'",
    );
    assert!(terminated.parse::<u32>().unwrap() >= 1, "{terminated}");
    insert(&pg, "users", 1, 4);
    let m = right.wait_until(
        "polls after the disconnection",
        Duration::from_secs(5),
        |m| {
            m.get("synapse_stats_exporter_polls_total")
                .is_some_and(|n| *n >= polls + 2.0)
                && m.get("synapse_total_users") == Some(&4.0)
        },
    );
    assert_eq!(
        value(&m, "synapse_stats_exporter_poll_errors_total"),
        errors,
        "{}",
        right.stderr()
    );
}

#[test]
fn signals_end_it_promptly_and_cleanly() {
    for signal in ["TERM", "INT"] {
        // Nothing listens on port 1: every poll fails, quickly.
        let mut exporter = Exporter::start(&[
            ("PROM_SYNAPSE_HOST", "127.0.0.1"),
            ("PROM_SYNAPSE_PORT", "1"),
        ]);
        exporter.wait_until("a failed poll", Duration::from_secs(5), |m| {
            m.get("synapse_stats_exporter_polls_total")
                .is_some_and(|n| *n >= 1.0)
        });
        // Other methods are refused, and the process goes on.
        let post = exporter
            .request("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        assert_eq!(post.status_line(), "HTTP/1.1 405 Method Not Allowed");
        assert!(exporter.is_alive());

        let started = Instant::now();
        exporter.signal(signal);
        let status = exporter.wait_exit(Duration::from_secs(3));
        assert_eq!(status.code(), Some(0), "SIG{signal}: {}", exporter.stderr());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(exporter
            .stderr()
            .contains(&format!("received SIG{signal}, exiting")));
    }
}

#[test]
fn bad_environment_exits_with_code_2_and_a_message() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "PROM_SYNAPSE_PORT",
            "five",
            r#"invalid PROM_SYNAPSE_PORT: "five" is not a port number (expected 1-65535)"#,
        ),
        (
            "PROM_SYNAPSE_PORT",
            "0",
            "invalid PROM_SYNAPSE_PORT: port 0 is not allowed (expected 1-65535)",
        ),
        (
            "EXPORTER_PORT",
            "70000",
            "invalid EXPORTER_PORT: 70000 is out of range (expected 1-65535)",
        ),
        (
            "EXPORTER_PORT",
            "0",
            "invalid EXPORTER_PORT: port 0 is not allowed (expected 1-65535)",
        ),
        (
            "POLLING_INTERVAL_SECONDS",
            "0",
            "invalid POLLING_INTERVAL_SECONDS: 0 is not allowed (expected 1-31536000)",
        ),
        (
            "POLLING_INTERVAL_SECONDS",
            "1m",
            r#"invalid POLLING_INTERVAL_SECONDS: "1m" is not a whole number of seconds (expected 1-31536000)"#,
        ),
        (
            "PROM_SYNAPSE_PASSWORD_FILE",
            "/nonexistent/password",
            "invalid PROM_SYNAPSE_PASSWORD_FILE: cannot read /nonexistent/password: No such file or directory (os error 2)",
        ),
        (
            "EXPORTER_BIND",
            "everywhere",
            r#"invalid EXPORTER_BIND: "everywhere" is not an IP address (for example :: or 0.0.0.0)"#,
        ),
    ];
    for (variable, value, message) in cases {
        let mut child = Command::new(BIN)
            .env_clear()
            .env(variable, value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(5));
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{variable}={value}: {stderr}");
        assert_eq!(
            stderr,
            format!("synapse-stats-exporter: {message}\n"),
            "{variable}={value}"
        );
    }
}

#[test]
fn port_in_use_is_a_start_failure() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN)
        .env_clear()
        .env("EXPORTER_PORT", &port)
        .env("EXPORTER_BIND", "0.0.0.0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "synapse-stats-exporter: cannot listen on port {port}: "
        )),
        "{stderr}"
    );
}

#[test]
fn harness_cluster_uses_a_non_c_default_collation() {
    let pg = postgres::start(PgOptions::default());
    let collation = pg.psql("SELECT datcollate FROM pg_database WHERE datname = 'postgres'");
    assert_ne!(collation, "C");
    assert_eq!(collation, pg.locale());
    assert_eq!(pg.psql("SHOW server_encoding"), "UTF8");

    let c = postgres::start(PgOptions {
        locale: Some("C".to_owned()),
    });
    assert_ne!(pg.port(), c.port());
    assert_eq!(
        c.psql("SELECT datcollate FROM pg_database WHERE datname = 'postgres'"),
        "C"
    );
    c.create_role("o'hara", "x", true);
    c.create_database("with \"quotes\"", "o'hara");
    assert_eq!(
        c.psql_in("with \"quotes\"", "SELECT current_database(); SELECT 1 + 1"),
        "with \"quotes\"\n2"
    );
    let dir = c.data_dir().to_path_buf();
    drop(c);
    assert!(!dir.exists(), "the cluster directory is removed on drop");
}
