//! Independent check of JujuLocal against Canonical's `ops` library.
//!
//! Real Juju cannot run here, so we run a charm written with `ops` (Python, from
//! PyPI) under the stand-in: `ops` only works if the hook tools take its flags and
//! print the formats it parses, with Juju's errors and commit rules. The fixture
//! (`tests/fixtures/ops-charm`) records what each ops call returned in its databags,
//! status, workload version, ports, secrets, action results and logs; this test
//! checks all of that in the model.
//!
//! A second test runs a tiny shell charm (`tests/fixtures/strict-charm`) that calls
//! hook tools the way real Juju refuses (non-leader app writes, unknown flags,
//! ungranted secrets, failing hooks) and checks the stand-in refuses them too.
//!
//! The ops test needs a Python with ops 3.x: `OPS_PYTHON`, else the test venv
//! `/opt/synapse-charm/test-venv/bin/python`. It fails (never skips) without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use jujulocal::controller::HookRecord;
use jujulocal::meta::Role;
use jujulocal::model::{Bag, Relation, Unit};
use jujulocal::{Controller, Error};

const DEFAULT_PYTHON: &str = "/opt/synapse-charm/test-venv/bin/python";

// ----- helpers ---------------------------------------------------------------------

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("jujulocal-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Hook tools are symlinks to the `jujulocal` binary; in a test the current exe is
/// the test binary, so point the controller at the real one.
fn use_jujulocal_bin() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal")));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture charm into `dest` (ops writes `.unit-state.db` into the charm
/// directory, which must not land in the source tree), keeping file modes.
fn copy_charm(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == ".unit-state.db" {
            continue;
        }
        let to = dest.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_charm(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The python that runs the ops fixture; panics with a clear message if it is
/// missing or cannot import ops.
fn ops_python() -> (PathBuf, bool) {
    let (py, from_env) = match std::env::var("OPS_PYTHON") {
        Ok(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (PathBuf::from(DEFAULT_PYTHON), false),
    };
    assert!(
        py.exists(),
        "the ops conformance test needs a Python with `ops` 3.x installed, but {} does not \
         exist. Create the test venv (python3 -m venv /opt/synapse-charm/test-venv && \
         /opt/synapse-charm/test-venv/bin/pip install 'ops>=3,<4') or set OPS_PYTHON.",
        py.display()
    );
    let out = Command::new(&py)
        .args(["-c", "import ops; print(ops.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(
        out.status.success(),
        "{} cannot import ops (install `ops` 3.x into it or set OPS_PYTHON): {}",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        version.starts_with("3."),
        "the fixture is written for ops 3.x, {} has ops {version}",
        py.display()
    );
    (py, from_env)
}

fn s(v: &str) -> String {
    v.to_string()
}

fn bag(kv: &[(&str, &str)]) -> Bag {
    kv.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn unit<'a>(c: &'a Controller, name: &str) -> &'a Unit {
    c.model
        .applications
        .get(name.split('/').next().unwrap())
        .and_then(|a| a.units.get(name))
        .unwrap_or_else(|| panic!("unit {name} not in the model"))
}

fn relation(c: &Controller, id: u64) -> &Relation {
    c.model
        .relation(id)
        .unwrap_or_else(|| panic!("relation {id} not in the model"))
}

/// A unit's databag in its application's peer relation.
fn peer_bag(c: &Controller, unit: &str) -> Bag {
    let app = unit.split('/').next().unwrap();
    let rel = c
        .model
        .relations
        .iter()
        .find(|r| r.is_peer() && r.end_for(app).is_some())
        .unwrap_or_else(|| panic!("{app} has no peer relation"));
    rel.unit_data.get(unit).cloned().unwrap_or_default()
}

fn get<'a>(b: &'a Bag, k: &str) -> &'a str {
    b.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("key {k:?} missing from databag {b:?}"))
}

fn hooks_of(history: &[HookRecord], unit: &str) -> Vec<String> {
    history
        .iter()
        .filter(|r| r.unit == unit)
        .map(|r| r.hook.clone())
        .collect()
}

/// The given dispatches with their hook-tool calls, for assertion messages.
fn describe(history: &[HookRecord]) -> String {
    history
        .iter()
        .map(|r| {
            let calls: Vec<String> = r
                .calls
                .iter()
                .map(|c| format!("{} {:?} -> {}", c.tool, c.args, c.exit))
                .collect();
            format!(
                "#{} {} {} exit={}\n    {}",
                r.seq,
                r.unit,
                r.hook,
                r.exit,
                calls.join("\n    ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The end of the debug log (where ops puts tracebacks) and the last dispatches.
fn diagnostics(c: &Controller) -> String {
    let log = c.debug_log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
    let history = c.history();
    let last = &history[history.len().saturating_sub(3)..];
    format!(
        "--- last dispatches ---\n{}\n--- debug log (tail) ---\n{tail}",
        describe(last)
    )
}

/// Unwraps a controller call, showing what the charm did when it failed.
macro_rules! ok {
    ($c:ident, $call:expr) => {{
        let r = $call;
        match r {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e:?}\n{}", stringify!($call), diagnostics(&$c)),
        }
    }};
}

fn assert_subsequence(haystack: &[String], needles: &[&str], what: &str) {
    let mut it = haystack.iter();
    for n in needles {
        assert!(
            it.any(|h| h == n),
            "{what}: expected {needles:?} in this order within {haystack:?}"
        );
    }
}

// ----- the ops charm -------------------------------------------------------------------

#[test]
fn ops_charm_runs_under_jujulocal() {
    let (python, python_from_env) = ops_python();
    use_jujulocal_bin();
    let tmp = TempDir::new("ops");
    let charm = tmp.path().join("charm");
    copy_charm(&fixture("ops-charm"), &charm);
    if python_from_env {
        // Juju runs dispatch with a clean environment: bake the interpreter in.
        let path = charm.join("dispatch");
        let text = std::fs::read_to_string(&path).unwrap();
        let (shebang, rest) = text.split_once('\n').unwrap();
        let baked = format!(
            "{shebang}\nOPS_PYTHON='{}'\n{rest}",
            python.display().to_string().replace('\'', "'\\''")
        );
        std::fs::write(&path, baked).unwrap();
    }
    // The charmcraft entrypoint rule: the last line execs the charm by a literal path.
    let dispatch = std::fs::read_to_string(fixture("ops-charm/dispatch")).unwrap();
    assert_eq!(
        dispatch.lines().last().unwrap().trim(),
        r#"exec "$PY" ./src/charm.py"#
    );

    let mut c = Controller::bootstrap(&tmp.path().join("model"), "ops-check").unwrap();

    // --- deploy: install, peers-relation-created, leader-elected, config-changed, start
    let config = BTreeMap::from([(s("count"), s("3"))]);
    ok!(c, c.deploy(&charm, None, 1, &config, false));
    let history = c.history();
    assert_eq!(
        hooks_of(&history, "opscheck/0"),
        [
            "install",
            "peers-relation-created",
            "leader-elected",
            "config-changed",
            "start"
        ]
    );
    let u = unit(&c, "opscheck/0");
    let st = u.status.as_ref().unwrap();
    assert_eq!(
        (st.status.as_str(), st.message.as_str()),
        ("active", "hello world")
    );
    assert!(
        u.status_history
            .iter()
            .any(|e| e.status == "maintenance" && e.message == "installing"),
        "install's MaintenanceStatus missing: {:?}",
        u.status_history
    );
    assert_eq!(u.workload_version, "hello-1.0");
    assert_eq!(u.opened_ports, ["8080/tcp"]);
    let app = &c.model.applications["opscheck"];
    assert_eq!(app.leader.as_deref(), Some("opscheck/0"));
    let app_status = app.status.as_ref().expect("app status set by the leader");
    assert_eq!(
        (app_status.status.as_str(), app_status.message.as_str()),
        ("active", "leading")
    );

    // What ops read back (config-get, is-leader, relation ids, status-get, opened-ports).
    let peer = peer_bag(&c, "opscheck/0");
    assert_eq!(get(&peer, "greeting"), "hello");
    assert_eq!(get(&peer, "count"), "3");
    assert_eq!(
        get(&peer, "count-type"),
        "int",
        "config-get must keep int options typed"
    );
    assert_eq!(get(&peer, "peers-app"), "opscheck");
    assert_eq!(get(&peer, "opened-ports"), "8080/tcp");
    assert_eq!(get(&peer, "status-seen"), "active:hello world");
    assert_eq!(get(&peer, "app-status-seen"), "active:leading");
    assert_eq!(get(&peer, "start-is-leader"), "True");
    assert_eq!(get(&peer, "planned-units"), "1");

    // The app secret created in leader-elected and read back by label in the same hook.
    let mine: Vec<_> = c
        .model
        .secrets
        .values()
        .filter(|s| s.owner == "opscheck" && s.label.as_deref() == Some("mine"))
        .collect();
    assert_eq!(mine.len(), 1, "exactly one app secret labelled 'mine'");
    let mine = mine[0];
    assert_eq!(mine.latest().unwrap().content, bag(&[("token", "tok-1")]));
    assert_eq!(mine.description.as_deref(), Some("opscheck own secret"));
    assert_eq!(get(&peer, "mine-label"), "mine");
    assert_eq!(get(&peer, "mine-revision"), "1");
    assert!(get(&peer, "mine-info-id").ends_with(&mine.id));
    let peer_rel = c
        .model
        .relations
        .iter()
        .find(|r| r.is_peer() && r.end_for("opscheck").is_some())
        .unwrap();
    let peer_app = &peer_rel.app_data["opscheck"];
    assert_eq!(get(peer_app, "mine-token"), "tok-1");
    assert_eq!(get(peer_app, "mine-id"), mine.uri());

    // --- a remote application played by the stand-in, with a granted secret
    ok!(
        c,
        c.add_played("pg", &[(s("db"), s("pgsql-test"), Role::Provides)], 1)
    );
    let rel_id = ok!(c, c.integrate("opscheck", "pg"));
    let pg_secret = ok!(
        c,
        c.played_secret_add("pg", &bag(&[("password", "s3cret")]), None)
    );
    ok!(c, c.played_secret_grant(&pg_secret, rel_id));
    ok!(
        c,
        c.played_relation_set(
            rel_id,
            "pg",
            &bag(&[("app-key", "a1"), ("secret-uri", &pg_secret)]),
        )
    );
    ok!(
        c,
        c.played_relation_set(rel_id, "pg/0", &bag(&[("unit-key", "u1")]))
    );
    let history = c.history();
    assert_subsequence(
        &hooks_of(&history, "opscheck/0"),
        &[
            "db-relation-created",
            "db-relation-joined",
            "db-relation-changed",
            "db-relation-changed",
            "db-relation-changed",
        ],
        "integrate + two remote writes",
    );
    let peer = peer_bag(&c, "opscheck/0");
    assert_eq!(get(&peer, "db-created"), format!("db:{rel_id}"));
    assert_eq!(get(&peer, "db-joined"), "pg/0");
    let rel = relation(&c, rel_id);
    let mine_db = &rel.unit_data["opscheck/0"];
    assert_eq!(
        get(mine_db, "seen-app-key"),
        "a1",
        "remote app databag read"
    );
    assert_eq!(
        get(mine_db, "seen-units"),
        "pg/0=u1",
        "remote unit databag read"
    );
    assert_eq!(get(mine_db, "seen-event-unit"), "pg/0");
    assert_eq!(get(mine_db, "secret-seen"), "s3cret", "granted secret read");
    let own_app = &rel.app_data["opscheck"];
    assert_eq!(
        get(own_app, "leader-ack"),
        "a1",
        "leader wrote its app databag"
    );
    assert!(get(own_app, "own-app-read").parse::<u32>().unwrap() >= 1);
    let consumed = &c.model.secrets[pg_secret.trim_start_matches("secret:")];
    assert_eq!(
        consumed.consumers["opscheck/0"].revision, 1,
        "first read pins rev 1"
    );
    assert_eq!(
        consumed.consumers["opscheck/0"].label.as_deref(),
        Some("pg-pass"),
        "secret-get <uri> --label sets the consumer label"
    );
    // network-get and relation-model-get, as parsed by ops.
    assert_eq!(get(mine_db, "bind-address"), "127.0.0.1");
    assert_eq!(get(mine_db, "ingress-address"), "127.0.0.1");
    assert_eq!(get(mine_db, "remote-model"), c.model.uuid);
    // The leader granted its own secret to pg on this relation.
    let mine = c
        .model
        .secrets
        .values()
        .find(|s| s.owner == "opscheck" && s.label.as_deref() == Some("mine"))
        .unwrap();
    assert!(
        mine.grants
            .iter()
            .any(|g| g.relation_id == rel_id && g.app == "pg" && g.unit.is_none()),
        "secret-grant --relation missing: {:?}",
        mine.grants
    );

    // --- actions
    let params = BTreeMap::from([(s("who"), s("bob"))]);
    let done = ok!(c, c.run_action("opscheck/0", "do-thing", &params));
    assert_eq!(done.status, "completed", "{done:?}");
    assert_eq!(done.results["greeting"], "hello, bob");
    assert_eq!(done.results["detail"]["who"], "bob");
    assert_eq!(done.results["return-code"], 0);
    assert_eq!(done.log, ["doing it for bob"]);
    let params = BTreeMap::from([(s("who"), s("nobody"))]);
    let failed = ok!(c, c.run_action("opscheck/0", "do-thing", &params));
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert_eq!(failed.message.as_deref(), Some("cannot do it for nobody"));
    assert_eq!(failed.log, ["refusing"]);
    assert_eq!(
        failed.results["return-code"], 0,
        "action-fail is not an exit code"
    );
    // Juju validates params against actions.yaml before running anything.
    let missing = c.run_action("opscheck/0", "do-thing", &BTreeMap::new());
    assert!(
        matches!(&missing, Err(Error::Usage(m)) if m.contains("\"who\" is required")),
        "{missing:?}"
    );

    // --- config change
    ok!(
        c,
        c.config("opscheck", &BTreeMap::from([(s("greeting"), s("hi"))]), &[])
    );
    let u = unit(&c, "opscheck/0");
    let st = u.status.as_ref().unwrap();
    assert_eq!(
        (st.status.as_str(), st.message.as_str()),
        ("active", "hi world")
    );
    assert_eq!(u.workload_version, "hi-1.0");
    assert_eq!(get(&peer_bag(&c, "opscheck/0"), "greeting"), "hi");

    // --- a new revision of the remote secret: secret-changed, refresh, new value read
    ok!(
        c,
        c.played_secret_set(&pg_secret, &bag(&[("password", "n3w")]))
    );
    let history = c.history();
    let changed = history
        .iter()
        .rev()
        .find(|r| r.unit == "opscheck/0" && r.hook == "secret-changed")
        .unwrap_or_else(|| panic!("no secret-changed delivered:\n{}", describe(&history)));
    assert!(
        changed
            .calls
            .iter()
            .any(|call| call.tool == "secret-get" && call.args.iter().any(|a| a == "--refresh")),
        "get_content(refresh=True) must call secret-get --refresh: {:?}",
        changed.calls
    );
    let rel = relation(&c, rel_id);
    assert_eq!(get(&rel.unit_data["opscheck/0"], "secret-seen"), "n3w");
    let consumed = &c.model.secrets[pg_secret.trim_start_matches("secret:")];
    assert_eq!(
        consumed.consumers["opscheck/0"].revision, 2,
        "refresh tracks rev 2"
    );
    let peer = peer_bag(&c, "opscheck/0");
    assert!(get(&peer, "secret-changed").ends_with(pg_secret.trim_start_matches("secret:")));
    assert_eq!(
        get(&peer, "secret-changed-label"),
        "pg-pass",
        "JUJU_SECRET_LABEL carries the consumer label"
    );

    // --- remove the relation: departed, then broken; the relation is gone
    let before = c.history().len();
    ok!(c, c.remove_relation("opscheck", "pg"));
    let history = c.history();
    assert_eq!(
        hooks_of(&history[before..], "opscheck/0"),
        ["db-relation-departed", "db-relation-broken"]
    );
    assert!(
        c.model.relation(rel_id).is_none(),
        "relation still in the model"
    );
    assert!(
        c.model.secrets[pg_secret.trim_start_matches("secret:")]
            .grants
            .is_empty(),
        "grants die with the relation"
    );
    let peer = peer_bag(&c, "opscheck/0");
    assert_eq!(get(&peer, "db-departed"), "pg/0");
    assert_eq!(get(&peer, "db-broken"), rel_id.to_string());
    assert_eq!(
        get(&peer, "db-relations-in-broken"),
        "0",
        "ops hides the broken relation from Model.relations"
    );

    // --- every hook exited 0 and no hook tool call failed
    let history = c.history();
    for r in &history {
        assert_eq!(r.exit, 0, "{} on {} exited {}", r.hook, r.unit, r.exit);
        for call in &r.calls {
            assert_eq!(
                call.exit,
                0,
                "{} {:?} failed in {} on {}\n--- debug log ---\n{}",
                call.tool,
                call.args,
                r.hook,
                r.unit,
                c.debug_log()
            );
        }
    }
    // ops keeps secret content out of argv (key#file=...).
    for call in history.iter().flat_map(|r| &r.calls) {
        for secret in ["tok-1", "s3cret", "n3w"] {
            assert!(
                !call.args.iter().any(|a| a.contains(secret)),
                "secret value in argv: {} {:?}",
                call.tool,
                call.args
            );
        }
    }
    let add = history
        .iter()
        .flat_map(|r| &r.calls)
        .find(|call| call.tool == "secret-add")
        .unwrap();
    assert!(add.args.windows(2).any(|w| w == ["--owner", "application"]));
    assert!(add.args.iter().any(|a| a.starts_with("token#file=")));

    // logging -> juju-log -> the debug log, with levels.
    let log = c.debug_log();
    for line in [
        "INFO opscheck install: greeting=hello",
        "INFO opscheck config-changed: greeting=hello count=3",
        "INFO opscheck config-changed: greeting=hi count=3",
        "INFO opscheck secret-changed: refreshed",
        "DEBUG Emitting Juju event do_thing_action.",
    ] {
        assert!(log.contains(line), "{line:?} not in the debug log:\n{log}");
    }
    assert!(
        !log.contains("Traceback"),
        "a Python traceback in the debug log:\n{log}"
    );
}

// ----- strictness, with a shell charm -------------------------------------------------------

/// The "probe <name> ..." lines the strict charm logged.
fn probe<'a>(log: &'a str, unit: &str, name: &str) -> &'a str {
    let prefix = format!("unit-{} ", unit.replace('/', "-"));
    let tag = format!("probe {name} rc=");
    log.lines()
        .filter(|l| l.starts_with(&prefix))
        .find_map(|l| {
            l.find(&tag)
                .map(|i| &l[i + "probe ".len() + name.len() + 1..])
        })
        .unwrap_or_else(|| panic!("no probe {name:?} from {unit} in the debug log:\n{log}"))
}

#[test]
fn strict_charm_is_refused_like_juju_would() {
    use_jujulocal_bin();
    let tmp = TempDir::new("strict");
    let charm = tmp.path().join("charm");
    copy_charm(&fixture("strict-charm"), &charm);
    let mut c = Controller::bootstrap(&tmp.path().join("model"), "strict").unwrap();
    ok!(c, c.deploy(&charm, None, 2, &BTreeMap::new(), false));
    assert_eq!(
        c.model.applications["strict"].leader.as_deref(),
        Some("strict/0")
    );
    ok!(
        c,
        c.add_played("pg", &[(s("db"), s("pgsql-test"), Role::Provides)], 2)
    );
    let rel_id = ok!(c, c.integrate("strict", "pg"));
    // A secret pg never grants: reading it must be refused.
    let ungranted = ok!(
        c,
        c.played_secret_add("pg", &bag(&[("password", "nope")]), None)
    );
    ok!(
        c,
        c.played_relation_set(rel_id, "pg", &bag(&[("secret-uri", &ungranted)]))
    );

    let log = c.debug_log();
    // The leader may write its app databag and the app status.
    assert_eq!(probe(&log, "strict/0", "leader-app-set"), "rc=0 out=");
    assert_eq!(probe(&log, "strict/0", "leader-app-status"), "rc=0 out=");
    // A follower may not.
    assert_eq!(probe(&log, "strict/1", "is-leader"), "rc=0 out=false");
    let p = probe(&log, "strict/1", "follower-app-set");
    assert!(
        p.starts_with("rc=1 ") && p.contains("cannot write relation settings"),
        "{p}"
    );
    let p = probe(&log, "strict/1", "follower-app-status");
    assert!(
        p.starts_with("rc=1 ") && p.contains("this unit is not the leader"),
        "{p}"
    );
    let p = probe(&log, "strict/1", "follower-app-status-get");
    assert!(
        p.starts_with("rc=1 ")
            && p.contains("finding application status: this unit is not the leader"),
        "{p}"
    );
    // status-get formats (Juju's status-get.go): the bare word by default, only
    // "status" without --include-data, message and status-data with it.
    assert_eq!(
        probe(&log, "strict/1", "status-get-bare"),
        "rc=0 out=maintenance"
    );
    assert_eq!(
        probe(&log, "strict/1", "status-get-json"),
        r#"rc=0 out={"status":"maintenance"}"#
    );
    assert_eq!(
        probe(&log, "strict/1", "status-get-data"),
        r#"rc=0 out={"message":"probing","status":"maintenance","status-data":{}}"#
    );
    // Unknown flags are usage errors (gnuflag: exit 2).
    let p = probe(&log, "strict/1", "unknown-flag");
    assert!(
        p.starts_with("rc=2 ") && p.contains("flag provided but not defined"),
        "{p}"
    );
    // A secret without a grant.
    let p = probe(&log, "strict/1", "secret-no-grant");
    assert!(
        p.starts_with("rc=1 ") && p.contains("permission denied"),
        "{p}"
    );
    assert!(!p.contains("nope"), "secret content leaked: {p}");
    assert_eq!(
        probe(&log, "strict/1", "follower-own-unit-set"),
        "rc=0 out="
    );

    // The refused writes left no trace; the allowed ones were committed.
    let rel = relation(&c, rel_id);
    let app_bag = rel.app_data.get("strict").cloned().unwrap_or_default();
    assert_eq!(app_bag, bag(&[("leader-wrote", "yes")]));
    assert_eq!(get(&rel.unit_data["strict/1"], "follower-unit"), "yes");
    let app_status = c.model.applications["strict"].status.clone().unwrap();
    assert_eq!(
        (app_status.status.as_str(), app_status.message.as_str()),
        ("active", "leader ok")
    );

    // The failed calls are exactly the deliberate ones.
    let history = c.history();
    let failed: Vec<(String, i32)> = history
        .iter()
        .flat_map(|r| &r.calls)
        .filter(|call| call.exit != 0)
        .map(|call| (call.tool.clone(), call.exit))
        .collect();
    assert_eq!(
        failed,
        [
            (s("relation-set"), 1),
            (s("status-set"), 1),
            (s("status-get"), 1),
            (s("relation-get"), 2),
            (s("secret-get"), 1),
        ],
        "\n{}",
        describe(&history)
    );
    assert!(
        history.iter().all(|r| r.exit == 0),
        "{}",
        describe(&history)
    );

    // --- remove the relation: relation-ids in -departed still lists it, in -broken
    // not (Juju 3.4+, juju/juju#17464), while peer relations stay listed (#18253).
    ok!(c, c.remove_relation("strict", "pg"));
    let log = c.debug_log();
    assert_eq!(
        probe(&log, "strict/0", "ids-in-departed"),
        format!(r#"rc=0 out=["db:{rel_id}"]"#)
    );
    // Each unit sees the remote units leave one by one.
    for u in ["strict/0", "strict/1"] {
        assert_eq!(
            probe(&log, u, "list-at-departed-pg/0"),
            r#"rc=0 out=["pg/1"]"#,
            "{u}"
        );
        assert_eq!(
            probe(&log, u, "list-at-departed-pg/1"),
            "rc=0 out=[]",
            "{u}"
        );
    }
    assert_eq!(probe(&log, "strict/0", "ids-in-broken"), "rc=0 out=[]");
    let peer_id = c
        .model
        .relations
        .iter()
        .find(|r| r.is_peer() && r.end_for("strict").is_some())
        .map(|r| r.id)
        .unwrap();
    assert_eq!(
        probe(&log, "strict/0", "peers-in-broken"),
        format!(r#"rc=0 out=["peers:{peer_id}"]"#)
    );
    assert_eq!(probe(&log, "strict/0", "list-in-broken"), "rc=0 out=[]");
    assert!(c.model.relation(rel_id).is_none());

    // --- a hook that exits 1: queued changes are discarded, status-set is kept
    let r = c.update_status();
    match &r {
        Err(Error::HookFailed { unit, hook, .. }) => {
            assert_eq!(
                (unit.as_str(), hook.as_str()),
                ("strict/0", "update-status")
            )
        }
        other => panic!("expected update-status to fail on strict/0, got {other:?}"),
    }
    let u = unit(&c, "strict/0");
    assert_eq!(u.error.as_deref(), Some("update-status"));
    let st = u.status.as_ref().unwrap();
    assert_eq!(
        (st.status.as_str(), st.message.as_str()),
        ("blocked", "about to fail"),
        "status-set applies at once, even in a failing hook"
    );
    assert_eq!(
        u.state,
        bag(&[("started", "yes")]),
        "state-set of a failed hook must not be committed"
    );
    assert!(
        u.opened_ports.is_empty(),
        "open-port of a failed hook committed"
    );
    let peers = relation(&c, peer_id);
    assert!(
        !peers
            .unit_data
            .get("strict/0")
            .is_some_and(|b| b.contains_key("doomed")),
        "relation-set of a failed hook committed: {:?}",
        peers.unit_data.get("strict/0")
    );
    assert!(c.debug_log().contains("update-status failing on purpose"));
    let last = c.history().pop().unwrap();
    assert_eq!((last.hook.as_str(), last.exit), ("update-status", 1));
    assert!(
        last.calls.iter().all(|call| call.exit == 0),
        "the tool calls themselves succeeded: {:?}",
        last.calls
    );
}
