//! The operator actions against a real Synapse under JujuLocal.

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

/// HTTP status of an admin API call made with the user's token, inside the pod.
fn admin_call_status(m: &TestModel, token: &str) -> u16 {
    let out = m.in_pod(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "http://localhost:8008/_synapse/admin/v2/users?limit=1",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn login(m: &TestModel, user: &str, pw: &str) -> serde_json::Value {
    m.matrix(&["login", URL, user, pw])
}

#[test]
fn register_promote_anonymize() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    let status = m.status();

    // register-user: the returned password logs in; admin=false is not an admin.
    let a = run(&mut m, "register-user", &[("username", "alice")]);
    assert_eq!(a.status, "completed", "{a:?}");
    assert_eq!(result(&a, "user-id"), "@alice:example.com");
    let alice_pw = password(&m, &a);
    assert!(alice_pw.len() >= 24);
    let alice = login(&m, "alice", &alice_pw);
    assert_eq!(alice["ok"], true, "{alice}");
    assert_eq!(
        admin_call_status(&m, alice["access_token"].as_str().unwrap()),
        403
    );

    // admin=true gives a user the admin API accepts.
    let a = run(
        &mut m,
        "register-user",
        &[("username", "root"), ("admin", "true")],
    );
    assert_eq!(a.status, "completed", "{a:?}");
    let root = login(&m, "root", &password(&m, &a));
    assert_eq!(
        admin_call_status(&m, root["access_token"].as_str().unwrap()),
        200
    );

    // promote-user-admin: bob's admin calls now succeed.
    let a = run(&mut m, "register-user", &[("username", "bob")]);
    let bob_pw = password(&m, &a);
    let bob = login(&m, "bob", &bob_pw);
    assert_eq!(
        admin_call_status(&m, bob["access_token"].as_str().unwrap()),
        403
    );
    let a = run(&mut m, "promote-user-admin", &[("username", "bob")]);
    assert_eq!(a.status, "completed", "{a:?}");
    assert_eq!(
        admin_call_status(&m, bob["access_token"].as_str().unwrap()),
        200
    );

    // anonymize-user: alice can no longer log in and her display name is gone.
    let alice_session = format!("token:{}", alice["access_token"].as_str().unwrap());
    let bob_session = format!("token:{}", bob["access_token"].as_str().unwrap());
    m.matrix(&[
        "set-displayname",
        URL,
        "alice",
        &alice_session,
        "Alice Liddell",
    ]);
    let before = m.matrix(&["profile", URL, "bob", &bob_session, "@alice:example.com"]);
    assert_eq!(before["displayname"], "Alice Liddell");
    let a = run(&mut m, "anonymize-user", &[("username", "alice")]);
    assert_eq!(a.status, "completed", "{a:?}");
    assert_eq!(result(&a, "deactivated"), "true");
    assert_eq!(login(&m, "alice", &alice_pw)["ok"], false);
    let after = m.matrix(&["profile", URL, "bob", &bob_session, "@alice:example.com"]);
    assert_ne!(after["displayname"], "Alice Liddell", "{after}");

    // Failure modes: clear messages, status untouched.
    let fail = |m: &mut TestModel, action: &str, params: &[(&str, &str)], needle: &str| {
        let a = run(m, action, params);
        assert_eq!(a.status, "failed", "{action} {params:?}: {a:?}");
        let msg = a.message.clone().unwrap_or_default();
        assert!(msg.contains(needle), "{action} {params:?}: {msg}");
    };
    fail(
        &mut m,
        "register-user",
        &[("username", "bob")],
        "user @bob:example.com already exists",
    );
    fail(
        &mut m,
        "register-user",
        &[("username", "Not Valid")],
        "invalid username \"Not Valid\"",
    );
    fail(
        &mut m,
        "promote-user-admin",
        &[("username", "nobody")],
        "user @nobody:example.com not found",
    );
    fail(
        &mut m,
        "anonymize-user",
        &[("username", "nobody")],
        "user @nobody:example.com not found",
    );
    fail(
        &mut m,
        "anonymize-user",
        &[("username", "alice")],
        "already deactivated",
    );
    // Synapse not running: the action fails fast instead of hanging.
    let sock = m.c.pebble_socket(UNIT, "synapse");
    pebble::Client::new(&sock)
        .stop(&["synapse"], std::time::Duration::from_secs(30))
        .unwrap();
    fail(
        &mut m,
        "register-user",
        &[("username", "carol")],
        "Synapse is not answering",
    );
    fail(
        &mut m,
        "promote-user-admin",
        &[("username", "bob")],
        "Synapse is not answering",
    );
    assert_eq!(m.status(), status, "actions never change the unit status");

    // The charm's admin token is validated and renewed when Synapse rejects it.
    m.c.run(UNIT, jujulocal::Event::UpdateStatus).unwrap();
    m.wait_ready();
    let admin =
        m.c.model
            .secrets
            .values()
            .find(|s| s.label.as_deref() == Some("synapse-admin"))
            .unwrap()
            .clone();
    let token = admin.latest().unwrap().content["access-token"].clone();
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
    let a = run(&mut m, "promote-user-admin", &[("username", "root")]);
    assert_eq!(a.status, "completed", "renewed token: {a:?}");
    let renewed =
        m.c.model
            .secrets
            .values()
            .find(|s| s.label.as_deref() == Some("synapse-admin"))
            .unwrap()
            .latest()
            .unwrap()
            .content["access-token"]
            .clone();
    assert_ne!(renewed, token);

    // Leadership moves to a unit that does not run Synapse: the unit that runs it can
    // still act, even with a rejected token it may not store; the leader says where
    // to run the actions instead of failing obscurely.
    let other = m.c.add_unit("synapse").unwrap();
    m.c.set_leader(&other).unwrap();
    let out = m.in_pod(
        "curl",
        &[
            "-s",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {renewed}"),
            "http://localhost:8008/_matrix/client/v3/logout",
        ],
    );
    assert!(out.status.success());
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

    // No password ever appears in hook-tool argv or the logs.
    let passwords = [alice_pw, bob_pw];
    let calls = std::fs::read_to_string(m.dir.path().join("model/hooks.jsonl")).unwrap();
    let log = m.c.debug_log();
    for pw in &passwords {
        assert!(
            !calls.contains(pw.as_str()),
            "a password is in the recorded hook-tool calls"
        );
        assert!(
            !log.contains(pw.as_str()),
            "a password is in the charm's logs"
        );
    }
    for a in &m.c.model.actions {
        let text = serde_json::to_string(&a.results).unwrap();
        for pw in &passwords {
            assert!(
                !text.contains(pw.as_str()),
                "a password is in the action output"
            );
        }
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
