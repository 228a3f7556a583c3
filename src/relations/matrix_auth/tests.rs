//! The matrix-auth integration: the decision (pure) and whole dispatches against the
//! in-memory Juju model and Pebble.

use serde_json::json;

use super::*;
use crate::charm::reconcile::reconcile;
use crate::juju::{Event, RelationHook, Status, StatusKind};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

const IRC: &str = "irc-bridge";
const SLACK: &str = "slack-bridge";

fn rel(id: u64) -> RelationId {
    RelationId {
        endpoint: ENDPOINT.into(),
        id,
    }
}

fn registration(id: &str, sender: &str, token: &str, regex: &str) -> String {
    format!(
        "id: {id}\nurl: http://10.1.0.7:29328\nas_token: {token}\nhs_token: hs-{token}\nsender_localpart: {sender}\nrate_limited: false\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '{regex}'\n  aliases: []\n  rooms: []\n"
    )
}

fn event(hook: RelationHook, id: u64, app: &str) -> Event {
    Event::Relation {
        hook,
        relation: rel(id),
        remote_app: Some(app.into()),
        remote_unit: (hook != RelationHook::Broken).then(|| format!("{app}/0")),
        departing_unit: None,
    }
}

fn run(j: &mut Juju, event: Event, pod: &FakePod, hints: &mut UnitHints) -> Status {
    j.hook(UNIT, event, |ctx, tools| reconcile(ctx, tools, pod, hints))
        .unwrap()
}

fn homeserver(pod: &FakePod) -> String {
    String::from_utf8_lossy(&pod.synapse.files.borrow()["/data/homeserver.yaml"]).into_owned()
}

fn secret<'a>(j: &'a Juju, label: &str) -> &'a jujulocal::model::Secret {
    j.secrets_owned_by(APP)
        .into_iter()
        .find(|s| s.label.as_deref() == Some(label))
        .unwrap_or_else(|| panic!("no secret {label}"))
}

fn content(j: &Juju, label: &str, key: &str) -> String {
    secret(j, label).revisions.last().unwrap().content[key].clone()
}

/// Encrypts a registration with the key Synapse shared, as the requirer's library does.
fn encrypt(j: &Juju, plain: &str) -> String {
    let key = Key::parse(&content(j, KEY_LABEL, KEY_CONTENT)).unwrap();
    key.encrypt_with(plain.as_bytes(), 1_700_000_000, [9; 16])
}

/// Deployed and serving, related to `apps` (relation ids 9, 10, ...), each joined.
fn related(apps: &[&str]) -> (Juju, FakePod, UnitHints) {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    for (i, app) in apps.iter().enumerate() {
        let id = 9 + i as u64;
        j.relate(&rel(id), app, &[&format!("{app}/0")]);
        run(
            &mut j,
            event(RelationHook::Created, id, app),
            &p,
            &mut hints,
        );
        run(&mut j, event(RelationHook::Joined, id, app), &p, &mut hints);
    }
    (j, p, hints)
}

fn send(
    j: &mut Juju,
    p: &FakePod,
    hints: &mut UnitHints,
    id: u64,
    app: &str,
    token: &str,
) -> Status {
    j.set_app_data(&rel(id), app, &[(REGISTRATION_KEY, token)]);
    run(j, event(RelationHook::Changed, id, app), p, hints)
}

#[test]
fn the_leader_publishes_the_homeserver_and_two_secrets_granted_to_each_relation_only() {
    let (j, p, _) = related(&[IRC, SLACK]);
    assert_eq!(*p.synapse.restarts.borrow(), 1, "nothing to load yet");
    for (id, app) in [(9, IRC), (10, SLACK)] {
        let bag = j.app_data(&rel(id), APP);
        assert_eq!(bag["homeserver"], "https://example.com/");
        assert_eq!(
            crate::util::secret_id(&bag["shared_secret_id"]),
            secret(&j, SHARED_SECRET_LABEL).id
        );
        assert_eq!(
            crate::util::secret_id(&bag["encryption_key_secret_id"]),
            secret(&j, KEY_LABEL).id
        );
        for label in [SHARED_SECRET_LABEL, KEY_LABEL] {
            assert!(
                secret(&j, label)
                    .grants
                    .iter()
                    .any(|g| g.relation_id == id && g.app == app && g.unit.is_none()),
                "{label} granted to {app}"
            );
        }
    }
    // Created once, shared by both relations; the shared secret is Synapse's.
    assert_eq!(j.secrets_owned_by(APP).len(), 3, "keys + the two secrets");
    let keys = secret(&j, crate::synapse::keys::SECRET_LABEL)
        .revisions
        .last()
        .unwrap()
        .content["registration-shared-secret"]
        .clone();
    assert_eq!(
        content(&j, SHARED_SECRET_LABEL, SHARED_SECRET_CONTENT),
        keys
    );
    assert!(Key::parse(&content(&j, KEY_LABEL, KEY_CONTENT)).is_ok());
    // No secret value in any databag.
    let bag = format!("{:?}", j.app_data(&rel(9), APP));
    assert!(!bag.contains(&keys), "{bag}");
}

#[test]
fn a_public_baseurl_change_reaches_the_bridges() {
    let (mut j, p, mut hints) = related(&[IRC]);
    // The same configuration: the leader reads its own databag, looks no secret up.
    j.take_tool_names();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(
        j.take_tool_names(),
        vec!["config-get", "relation-get", "is-leader", "relation-get"]
    );
    j.set_config("public_baseurl", json!("https://matrix.example.com"));
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(
        j.app_data(&rel(9), APP)["homeserver"],
        "https://matrix.example.com/"
    );
}

#[test]
fn a_registration_is_loaded_after_one_restart_and_goes_with_its_relation() {
    let (mut j, p, mut hints) = related(&[IRC]);
    let token = encrypt(
        &j,
        &registration("irc", "ircbot", "at-irc", "@irc_.*:example\\.com"),
    );
    assert_eq!(
        send(&mut j, &p, &mut hints, 9, IRC, &token),
        Status::active()
    );
    assert_eq!(*p.synapse.restarts.borrow(), 2, "one restart");
    let path = path_for(IRC);
    assert_eq!(path, "/data/appservices/irc-bridge.yaml");
    let hs = homeserver(&p);
    assert!(
        hs.contains(&format!("app_service_config_files:\n- {path}")),
        "{hs}"
    );
    let file = String::from_utf8_lossy(&p.synapse.files.borrow()[&path]).into_owned();
    let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["as_token"], "at-irc");
    assert_eq!(
        doc["namespaces"]["users"][0]["regex"],
        "@irc_.*:example\\.com"
    );
    assert!(!format!("{:?}", p.synapse.plan.borrow()).contains("at-irc"));

    // The same data again, and a steady hook: nothing written or restarted.
    let pushes = p.synapse.pushes.borrow().len();
    assert_eq!(
        send(&mut j, &p, &mut hints, 9, IRC, &token),
        Status::active()
    );
    j.take_tool_names();
    assert_eq!(
        run(&mut j, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
    assert_eq!(p.synapse.pushes.borrow().len(), pushes);
    assert_eq!(*p.synapse.restarts.borrow(), 2);

    // A changed registration (newly encrypted): one restart.
    let changed = encrypt(
        &j,
        &registration("irc", "ircbot", "at-irc-2", "@irc_.*:example\\.com"),
    );
    send(&mut j, &p, &mut hints, 9, IRC, &changed);
    assert_eq!(*p.synapse.restarts.borrow(), 3);
    // The same content encrypted again (a new IV): no restart.
    let key = Key::parse(&content(&j, KEY_LABEL, KEY_CONTENT)).unwrap();
    let again = key.encrypt_with(
        registration("irc", "ircbot", "at-irc-2", "@irc_.*:example\\.com").as_bytes(),
        1_800_000_000,
        [3; 16],
    );
    send(&mut j, &p, &mut hints, 9, IRC, &again);
    assert_eq!(*p.synapse.restarts.borrow(), 3);

    // Broken: one restart, the file deleted, the grants revoked.
    let status = run(&mut j, event(RelationHook::Broken, 9, IRC), &p, &mut hints);
    j.remove_relation(&rel(9));
    assert_eq!(status, Status::active());
    assert_eq!(*p.synapse.restarts.borrow(), 4);
    assert!(!homeserver(&p).contains("app_service_config_files"));
    assert!(!p.synapse.files.borrow().contains_key(&path));
    for label in [SHARED_SECRET_LABEL, KEY_LABEL] {
        assert!(secret(&j, label).grants.is_empty(), "{label} revoked");
    }
    run(&mut j, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(*p.synapse.restarts.borrow(), 4);
}

#[test]
fn hostile_registrations_block_naming_the_relation_and_field_while_the_others_work() {
    let (mut j, p, mut hints) = related(&[IRC, SLACK]);
    let good = encrypt(&j, &registration("irc", "ircbot", "at-irc", "@irc_.*"));
    send(&mut j, &p, &mut hints, 9, IRC, &good);
    assert_eq!(*p.synapse.restarts.borrow(), 2);
    let cases = [
        (
            encrypt(&j, &registration("slack", "slackbot", "at-slack", "@slack_(.*")),
            "matrix-auth:10 (slack-bridge): registration left out: namespaces.users[0].regex: \"@slack_(.*\" is not a valid regex: unclosed group",
        ),
        (
            encrypt(&j, &registration("slack", "slackbot", "at-slack", "@irc_.*")),
            "matrix-auth:10 (slack-bridge): registration left out: namespaces.users: exclusive regex \"@irc_.*\" is already claimed by irc-bridge (matrix-auth:9)",
        ),
        (
            encrypt(&j, &registration("slack", "slackbot", "at slack", "@slack_.*")),
            "matrix-auth:10 (slack-bridge): registration left out: as_token: must be printable ASCII without spaces",
        ),
        (
            encrypt(&j, &registration("irc", "slackbot", "at-slack", "@slack_.*")),
            "matrix-auth:10 (slack-bridge): registration left out: id: \"irc\" is already used by irc-bridge (matrix-auth:9)",
        ),
        (
            Key::generate().unwrap().encrypt_with(b"id: x", 1, [0; 16]),
            "matrix-auth:10 (slack-bridge): registration left out: registration_secret: cannot decrypt: the token's signature does not match the key (encrypted with another key, or altered)",
        ),
        (
            "not-fernet".to_string(),
            "matrix-auth:10 (slack-bridge): registration left out: registration_secret: cannot decrypt: the token is not URL-safe base64",
        ),
    ];
    for (token, message) in cases {
        let status = send(&mut j, &p, &mut hints, 10, SLACK, &token);
        assert_eq!(status, Status::blocked(message));
        assert_eq!(*p.synapse.restarts.borrow(), 2, "Synapse keeps serving");
        assert!(homeserver(&p).contains(&path_for(IRC)));
        assert!(!p.synapse.files.borrow().contains_key(&path_for(SLACK)));
        // Remembered by steady hooks.
        assert_eq!(run(&mut j, Event::UpdateStatus, &p, &mut hints), status);
    }
    // Fixed: loaded after one restart, the status clears.
    let fixed = encrypt(
        &j,
        &registration("slack", "slackbot", "at-slack", "@slack_.*"),
    );
    assert_eq!(
        send(&mut j, &p, &mut hints, 10, SLACK, &fixed),
        Status::active()
    );
    assert_eq!(*p.synapse.restarts.borrow(), 3);
    let hs = homeserver(&p);
    assert!(
        hs.contains(&path_for(IRC)) && hs.contains(&path_for(SLACK)),
        "{hs}"
    );
    // A second bad registration beside the first: both named in the log, one status.
    let bad = |reg: String| encrypt(&j, &reg);
    let a = bad(registration("irc", "ircbot", "at-irc", "("));
    let b = bad(registration("slack", "slackbot", "at-slack", ")"));
    send(&mut j, &p, &mut hints, 9, IRC, &a);
    let status = send(&mut j, &p, &mut hints, 10, SLACK, &b);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status.message.starts_with(
            "matrix-auth:9 (irc-bridge): registration left out: namespaces.users[0].regex"
        ),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .ends_with("(and 1 more: see `juju debug-log`)"),
        "{}",
        status.message
    );
    assert!(!homeserver(&p).contains("app_service_config_files"));
}

#[test]
fn the_decision_keeps_the_earlier_relation_on_a_clash() {
    let reg = |s: &str| Some(Ok(s.to_string()));
    let d = decide(vec![
        Submitted {
            relation: rel(12),
            app: "b".into(),
            plain: reg(&registration("same", "b", "tb", "@b.*")),
        },
        Submitted {
            relation: rel(3),
            app: "a".into(),
            plain: reg(&registration("same", "a", "ta", "@a.*")),
        },
        Submitted {
            relation: rel(4),
            app: "pending".into(),
            plain: None,
        },
    ]);
    assert_eq!(d.paths(), vec!["/data/appservices/a.yaml"]);
    assert_eq!(
        d.problems,
        vec!["matrix-auth:12 (b): registration left out: id: \"same\" is already used by a (matrix-auth:3)"]
    );
}

#[test]
fn listed_files_are_read_back_from_homeserver_yaml() {
    let yaml = b"server_name: x\napp_service_config_files:\n- /data/appservices/a.yaml\n- /elsewhere.yaml\n";
    assert_eq!(listed(Some(yaml)), vec!["/data/appservices/a.yaml"]);
    assert!(listed(Some(b"[")).is_empty());
    assert!(listed(None).is_empty());
}
