//! Injected faults end to end, under JujuLocal with real Pebble, Synapse and NGINX:
//! a hook that fails half-way (a hook tool failing, or the charm SIGKILLed when it
//! calls a tool) commits none of its queued writes, and firing the same hook again
//! (JujuLocal does not retry by itself) reaches the state of a run without the fault.
//! A workload's Pebble dying mid-hook leaves the unit not active until the container
//! is back, and then converges without a retry.
//!
//! Prints `faults injected: N passed, M failed`, one count per injected fault.

mod common;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{TestModel, UNIT};
use jujulocal::{Error, Event};
use serde_json::Value;

const PEERS: &str = "synapse-peers";

/// Everything a hook may write that is not immediate: databags and secrets.
fn writes(m: &TestModel) -> (Value, Value) {
    (
        serde_json::to_value(&m.c.model.relations).unwrap(),
        serde_json::to_value(&m.c.model.secrets).unwrap(),
    )
}

/// The last dispatch: it failed, and at `tool`.
fn assert_failed_at(m: &TestModel, hook: &str, tool: &str) {
    let last = m.c.history().pop().unwrap();
    assert_eq!(last.hook, hook);
    assert_ne!(last.exit, 0, "{hook} failed");
    let call = last.calls.iter().find(|c| c.tool == tool);
    assert_eq!(
        call.map(|c| c.exit),
        Some(1),
        "{tool} failed on purpose: {:?}",
        last.calls
    );
    assert_eq!(
        m.c.model.applications["synapse"].units[UNIT]
            .error
            .as_deref(),
        Some(hook),
        "the unit is in error"
    );
    assert!(
        m.c.injected_faults().unwrap().is_empty(),
        "the fault was used"
    );
}

fn assert_resolved(m: &TestModel) {
    assert_eq!(m.c.model.applications["synapse"].units[UNIT].error, None);
}

fn set_server_name(m: &mut TestModel, name: &str) -> Result<(), Error> {
    m.c.config(
        "synapse",
        &[("server_name".to_string(), name.to_string())]
            .into_iter()
            .collect(),
        &[],
    )
}

/// `status-set` fails in a config-changed that changes the status: nothing changes;
/// the retry reports what a run without the fault reports.
fn status_set_fails_in_config_changed(m: &mut TestModel) {
    let before = writes(m);
    m.c.inject_tool_failure("status-set", 1).unwrap();
    assert!(set_server_name(m, "other.example.com").is_err());
    assert_failed_at(m, "config-changed", "status-set");
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    assert_eq!(writes(m), before, "databags and secrets unchanged");

    m.c.run(UNIT, Event::ConfigChanged).unwrap();
    assert_resolved(m);
    let retried = (m.status(), writes(m));
    assert_eq!(retried.0 .0, "blocked");

    // The same change without a fault, from the same state.
    set_server_name(m, "chat.example.com").unwrap();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    set_server_name(m, "other.example.com").unwrap();
    assert_eq!((m.status(), writes(m)), retried, "as without the fault");
    set_server_name(m, "chat.example.com").unwrap();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
}

/// The leader republishes the main unit in the peer databag (taken out here); the
/// hook dies at `relation-set` (the tool fails, or the charm is killed): the databag
/// stays as it was; the retry restores exactly the state of the fault-free deploy.
fn peer_write_fails_in_leader_elected(m: &mut TestModel, kill: bool) {
    let deployed = writes(m);
    let rel =
        m.c.model
            .relations
            .iter_mut()
            .find(|r| r.ends.iter().any(|e| e.endpoint == PEERS))
            .unwrap();
    let bag = rel.app_data.get_mut("synapse").unwrap();
    assert!(bag.remove("main-unit").is_some(), "{bag:?}");
    m.c.save().unwrap();
    let tampered = writes(m);

    if kill {
        m.c.inject_charm_kill("relation-set", 1).unwrap();
    } else {
        m.c.inject_tool_failure("relation-set", 1).unwrap();
    }
    assert!(m.c.run(UNIT, Event::LeaderElected).is_err());
    assert_failed_at(m, "leader-elected", "relation-set");
    if kill {
        let last = m.c.history().pop().unwrap();
        assert_eq!(last.exit, 128 + libc::SIGKILL, "the charm was killed");
    }
    assert_eq!(writes(m), tampered, "nothing committed");

    m.c.run(UNIT, Event::LeaderElected).unwrap();
    assert_resolved(m);
    assert_eq!(writes(m), deployed, "as after the fault-free deploy");
    m.c.update_status().unwrap();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
}

/// Pebble goes away mid-hook: the NGINX container is killed when the charm reads its
/// configuration in config-changed, so the rest of the hook finds no Pebble there. The
/// unit does not claim to be active meanwhile; once the container is back (a new
/// Pebble, pebble-ready) it converges to the state before, without a retry.
fn nginx_pebble_dies_mid_config_changed(m: &mut TestModel) {
    let before = writes(m);
    m.c.inject_container_kill("config-get", "synapse-nginx", 1)
        .unwrap();
    let outcome = m.c.run(UNIT, Event::ConfigChanged);
    assert!(
        m.c.injected_faults().unwrap().is_empty(),
        "the fault was used"
    );
    let last = m.c.history().pop().unwrap();
    assert_eq!(last.hook, "config-changed");
    assert_eq!(last.exit == 0, outcome.is_ok());
    assert_eq!(
        m.http_status("http://localhost:8080/health"),
        0,
        "NGINX is gone"
    );
    let (s, msg) = m.status();
    assert_ne!(s, "active", "not active without NGINX: {msg}");
    assert_eq!(writes(m), before, "databags and secrets unchanged");

    m.c.restart_container(UNIT, "synapse-nginx").unwrap();
    assert_resolved(m);
    m.wait_ready();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    assert_eq!(writes(m), before, "as before the fault");
}

/// One injected fault, run on the deployed model.
type Scenario = fn(&mut TestModel);

#[test]
fn failed_hooks_commit_nothing_and_retries_converge() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "chat.example.com")]);
    m.wait_ready();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    let starts = m.starts("synapse", "synapse");

    let scenarios: [(&str, Scenario); 4] = [
        (
            "status-set fails in config-changed",
            status_set_fails_in_config_changed,
        ),
        ("relation-set fails in leader-elected", |m| {
            peer_write_fails_in_leader_elected(m, false)
        }),
        ("charm killed at relation-set in leader-elected", |m| {
            peer_write_fails_in_leader_elected(m, true)
        }),
        (
            "NGINX's Pebble dies mid config-changed",
            nginx_pebble_dies_mid_config_changed,
        ),
    ];
    let mut failed = vec![];
    // Straight to stderr, not through print!: shown even when the test passes and
    // libtest captures its output.
    let mut out = std::io::stderr();
    for (name, scenario) in scenarios {
        let ok = catch_unwind(AssertUnwindSafe(|| scenario(&mut m))).is_ok();
        let _ = writeln!(out, "  {}  {name}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed.push(name);
        }
    }
    let _ = writeln!(
        out,
        "faults injected: {} passed, {} failed",
        scenarios.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert_eq!(
        m.starts("synapse", "synapse"),
        starts,
        "no fault made Synapse restart"
    );
}
