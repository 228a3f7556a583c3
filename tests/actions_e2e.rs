//! The operator actions when leadership moves, under JujuLocal with a real Synapse: what
//! the `juju` CLI cannot drive (JujuLocal's `set-leader`) and what only JujuLocal
//! records (every hook tool's arguments). The actions' results and failures as a user
//! sees them are in tests/integration/test_actions.py.

mod common;

use std::collections::BTreeMap;

use common::{TestModel, UNIT};

const URL: &str = "http://localhost:8080";

fn run(m: &mut TestModel, action: &str, params: &[(&str, &str)]) -> jujulocal::model::Action {
    let p: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.c.run_action(UNIT, action, &p).unwrap()
}

fn result(a: &jujulocal::model::Action, key: &str) -> String {
    a.results
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The password the action handed over in a Juju secret.
fn password(m: &TestModel, a: &jujulocal::model::Action) -> String {
    let uri = result(a, "password-secret-id");
    m.c.model
        .secret_by_uri(&uri)
        .expect("password secret")
        .latest()
        .unwrap()
        .content["password"]
        .clone()
}

/// The admin token in the leader's `synapse-admin` secret.
fn admin_token(m: &TestModel) -> String {
    m.c.model
        .secrets
        .values()
        .find(|s| s.label.as_deref() == Some("synapse-admin"))
        .expect("the synapse-admin secret")
        .latest()
        .unwrap()
        .content["access-token"]
        .clone()
}

/// Logs the token out behind the charm's back.
fn log_out(m: &TestModel, token: &str) {
    let out = m.in_pod(
        "curl",
        &[
            "-s",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "http://localhost:8008/_matrix/client/v3/logout",
        ],
    );
    assert!(out.status.success());
}

/// Leadership moves to a unit that does not run Synapse (Juju moves it on its own; the
/// `juju` CLI cannot, so this stays here: the user-level scenarios are in
/// tests/integration/test_actions.py). The unit that runs Synapse can still act, even
/// with a rejected token it may not store; the leader says where to run the actions.
/// No password ever reaches a hook tool's arguments.
#[test]
fn actions_follow_synapse_when_leadership_moves() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    let a = run(&mut m, "register-user", &[("username", "alice")]);
    assert_eq!(a.status, "completed", "{a:?}");
    let alice_pw = password(&m, &a);
    let login = m.matrix(&["login", URL, "alice", &alice_pw]);
    assert_eq!(login["ok"], true, "{login}");
    let a = run(&mut m, "register-user", &[("username", "root")]);
    let root_pw = password(&m, &a);
    // The leader's admin account, made by the first action that needs one.
    let a = run(&mut m, "promote-user-admin", &[("username", "alice")]);
    assert_eq!(a.status, "completed", "{a:?}");

    let other = m.c.add_unit("synapse").unwrap();
    m.c.set_leader(&other).unwrap();
    let token = admin_token(&m);
    log_out(&m, &token);
    let a = run(&mut m, "promote-user-admin", &[("username", "root")]);
    assert_eq!(
        a.status, "completed",
        "not the leader, token rejected: {a:?}"
    );
    let p: BTreeMap<String, String> = BTreeMap::from([("username".into(), "dave".into())]);
    let a = m.c.run_action(&other, "register-user", &p).unwrap();
    assert_eq!(a.status, "failed", "{a:?}");
    assert!(
        a.message
            .as_deref()
            .unwrap_or_default()
            .starts_with(&format!("Synapse runs on {UNIT}, not on this unit")),
        "{a:?}"
    );

    let calls = std::fs::read_to_string(m.dir.path().join("model/hooks.jsonl")).unwrap();
    for pw in [&alice_pw, &root_pw] {
        assert!(
            !calls.contains(pw.as_str()),
            "a password is in the recorded hook-tool calls"
        );
    }
}

#[test]
fn the_unit_that_runs_synapse_acts_before_any_leader_made_an_admin_account() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    let other = m.c.add_unit("synapse").unwrap();
    m.c.set_leader(&other).unwrap();
    let a = run(&mut m, "register-user", &[("username", "erin")]);
    assert_eq!(a.status, "completed", "{a:?}");
    // Promoting needs an admin account: this unit makes its own.
    let a = run(&mut m, "promote-user-admin", &[("username", "erin")]);
    assert_eq!(a.status, "completed", "{a:?}");
    let own =
        m.c.model
            .secrets
            .values()
            .find(|s| s.label.as_deref() == Some("synapse-admin-synapse-0"))
            .expect("the unit's own admin account");
    assert_eq!(own.owner, UNIT, "owned by the unit that runs Synapse");
    // And it is used again, not recreated.
    let a = run(
        &mut m,
        "register-user",
        &[("username", "frank"), ("admin", "false")],
    );
    assert_eq!(a.status, "completed", "{a:?}");
    let a = run(&mut m, "promote-user-admin", &[("username", "frank")]);
    assert_eq!(a.status, "completed", "{a:?}");
    assert_eq!(
        m.c.model
            .secrets
            .values()
            .filter(|s| s
                .label
                .as_deref()
                .is_some_and(|l| l.starts_with("synapse-admin")))
            .count(),
        1
    );
}
