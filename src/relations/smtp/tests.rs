//! The `smtp` integration through the whole reconcile, against the in-memory Juju model
//! and Pebble: the `email` section follows the relation, the password only in the file,
//! one restart per change, the statuses, and no hook-tool call in the steady state.

use serde_json::{json, Value};

use crate::charm::reconcile::reconcile;
use crate::juju::event::SecretHook;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, RelationHook, RelationId, Status};
use crate::testing::juju::UNIT;
use crate::testing::{FakePod, Juju};

const PROVIDER: &str = "smtp-integrator";
const SECRET_PASSWORD: &str = "p4ss-w0rd+secret";

fn rel() -> RelationId {
    RelationId {
        endpoint: super::ENDPOINT.into(),
        id: 9,
    }
}

fn relation_event(hook: RelationHook) -> Event {
    Event::Relation {
        hook,
        relation: rel(),
        remote_app: Some(PROVIDER.into()),
        remote_unit: (hook != RelationHook::Broken).then(|| format!("{PROVIDER}/0")),
        departing_unit: None,
    }
}

struct Setup {
    j: Juju,
    p: FakePod,
    hints: UnitHints,
}

impl Setup {
    fn new(config: Value) -> Self {
        let mut base = json!({"server_name": "example.com"});
        if let (Value::Object(b), Value::Object(c)) = (&mut base, config) {
            b.extend(c);
        }
        let mut s = Self {
            j: Juju::new().with_config(base),
            p: FakePod::up(),
            hints: UnitHints::default(),
        };
        assert_eq!(
            s.run(Event::ConfigChanged).kind,
            crate::juju::StatusKind::Active
        );
        s
    }

    fn run(&mut self, event: Event) -> Status {
        let (p, hints) = (&self.p, &mut self.hints);
        self.j
            .hook(UNIT, event, |ctx, tools| reconcile(ctx, tools, p, hints))
            .unwrap()
    }

    /// Relates smtp-integrator with `data` in its app databag and a password secret.
    fn relate(&mut self, data: &[(&str, &str)]) -> String {
        self.j.relate(&rel(), PROVIDER, &[&format!("{PROVIDER}/0")]);
        let uri = self.j.add_secret(
            PROVIDER,
            None,
            &[("password", SECRET_PASSWORD)],
            Some((&rel(), "synapse")),
        );
        let mut bag: Vec<(&str, &str)> = data.to_vec();
        bag.push(("password_id", &uri));
        self.j.set_app_data(&rel(), PROVIDER, &bag);
        uri
    }

    fn homeserver(&self) -> Value {
        let raw = self.p.synapse.files.borrow()["/data/homeserver.yaml"].clone();
        serde_saphyr::from_str(&String::from_utf8(raw).unwrap()).unwrap()
    }

    fn restarts(&self) -> u32 {
        *self.p.synapse.restarts.borrow()
    }
}

fn starttls() -> Vec<(&'static str, &'static str)> {
    vec![
        ("host", "smtp.example.com"),
        ("port", "587"),
        ("auth_type", "plain"),
        ("transport_security", "starttls"),
        ("skip_ssl_verify", "False"),
        ("user", "synapse"),
        ("domain", "mail.example.com"),
    ]
}

#[test]
fn the_relation_renders_the_email_section_with_the_secret_password_in_the_file_only() {
    let mut s = Setup::new(json!({"enable_email_notifs": true}));
    let before = s.restarts();
    s.relate(&starttls());
    assert_eq!(
        s.run(relation_event(RelationHook::Changed)),
        Status::active()
    );
    let email = s.homeserver()["email"].clone();
    assert_eq!(
        email,
        json!({"smtp_host": "smtp.example.com", "smtp_port": 587, "smtp_user": "synapse",
            "smtp_pass": SECRET_PASSWORD, "enable_tls": true, "require_transport_security": true,
            "force_tls": false, "notif_from": "%(app)s <noreply@mail.example.com>",
            "enable_notifs": true})
    );
    assert_eq!(s.restarts(), before + 1, "one restart for the new section");
    let plan = format!("{:?}", s.p.synapse.plan.borrow());
    assert!(!plan.contains(SECRET_PASSWORD), "no password in the plan");
    assert!(
        !s.j.take_calls().join("\n").contains(SECRET_PASSWORD),
        "no password in a hook tool's arguments"
    );
    // Steady: no call for the relation, no write, no restart, still active.
    s.j.take_calls();
    assert_eq!(s.run(Event::UpdateStatus), Status::active());
    let calls = s.j.take_calls().join("\n");
    assert!(
        !calls.contains("secret-get") && !calls.contains("smtp"),
        "{calls}"
    );
    assert_eq!(s.restarts(), before + 1);
}

#[test]
fn a_new_password_revision_restarts_synapse_once() {
    let mut s = Setup::new(json!({}));
    let uri = s.relate(&starttls());
    s.run(relation_event(RelationHook::Changed));
    let before = s.restarts();
    let id = crate::util::secret_id(&uri).to_string();
    let secret = s.j.model.secrets.get_mut(&id).unwrap();
    secret.revisions.push(jujulocal::model::SecretRevision {
        revision: 2,
        content: [("password".to_string(), "rotated".to_string())].into(),
    });
    let changed = Event::Secret {
        hook: SecretHook::Changed,
        id: uri.clone(),
        label: None,
        revision: Some(2),
    };
    assert_eq!(s.run(changed.clone()), Status::active());
    assert_eq!(s.homeserver()["email"]["smtp_pass"], json!("rotated"));
    assert_eq!(s.restarts(), before + 1);
    // The same event again changes nothing.
    assert_eq!(s.run(changed), Status::active());
    assert_eq!(s.restarts(), before + 1);
}

#[test]
fn removing_the_relation_turns_email_off_with_one_restart() {
    let mut s = Setup::new(json!({"enable_email_notifs": true}));
    s.relate(&starttls());
    s.run(relation_event(RelationHook::Changed));
    let before = s.restarts();
    let status = s.run(relation_event(RelationHook::Broken));
    s.j.remove_relation(&rel());
    assert!(s.homeserver().get("email").is_none());
    assert_eq!(s.restarts(), before + 1);
    assert_eq!(
        status.message,
        "enable_email_notifs has no effect: no mail is sent without an smtp integration"
    );
    assert_eq!(s.run(Event::UpdateStatus), status);
    assert_eq!(s.restarts(), before + 1);
}

#[test]
fn unsupported_data_blocks_naming_it_and_email_stays_off_until_fixed() {
    let mut s = Setup::new(json!({}));
    let mut data = starttls();
    data.retain(|(k, _)| *k != "auth_type");
    data.push(("auth_type", "cram-md5"));
    s.relate(&data);
    let before = s.restarts();
    let blocked = Status::blocked(
        "smtp: auth_type \"cram-md5\" (none, not_provided or plain) is not supported",
    );
    assert_eq!(s.run(relation_event(RelationHook::Changed)), blocked);
    assert!(s.homeserver().get("email").is_none());
    assert_eq!(s.restarts(), before, "nothing Synapse reads changed");
    // The problem stays in the status across steady hooks, without reading again.
    s.j.take_calls();
    assert_eq!(s.run(Event::UpdateStatus), blocked);
    assert!(!s
        .j
        .take_calls()
        .join("\n")
        .contains("relation-get --app -r smtp"));
    // Fixed by the provider: email on, one restart.
    s.j.set_app_data(&rel(), PROVIDER, &[("auth_type", "plain")]);
    assert_eq!(
        s.run(relation_event(RelationHook::Changed)),
        Status::active()
    );
    assert_eq!(
        s.homeserver()["email"]["smtp_host"],
        json!("smtp.example.com")
    );
    assert_eq!(s.restarts(), before + 1);
}

#[test]
fn a_relation_without_data_yet_is_waiting() {
    let mut s = Setup::new(json!({}));
    s.j.relate(&rel(), PROVIDER, &[&format!("{PROVIDER}/0")]);
    let status = s.run(relation_event(RelationHook::Joined));
    assert_eq!(
        status,
        Status::waiting("waiting for the smtp integration to send the relay's host")
    );
    assert!(s.homeserver().get("email").is_none());
}

#[test]
fn notif_from_changes_restart_once_and_show_in_the_file() {
    let mut s = Setup::new(json!({}));
    s.relate(&starttls());
    s.run(relation_event(RelationHook::Changed));
    let before = s.restarts();
    s.j.set_config("notif_from", json!("Chat <chat@example.com>"));
    assert_eq!(s.run(Event::ConfigChanged), Status::active());
    assert_eq!(
        s.homeserver()["email"]["notif_from"],
        json!("Chat <chat@example.com>")
    );
    assert_eq!(s.restarts(), before + 1);
    assert_eq!(s.run(Event::ConfigChanged), Status::active());
    assert_eq!(s.restarts(), before + 1);
}

#[test]
fn without_the_relation_the_options_are_named_and_nothing_is_rendered() {
    let mut s = Setup::new(json!({}));
    s.j.set_config("enable_email_notifs", json!(true));
    let status = s.run(Event::ConfigChanged);
    assert_eq!(
        status.message,
        "enable_email_notifs has no effect: no mail is sent without an smtp integration"
    );
    assert_eq!(status.kind, crate::juju::StatusKind::Active);
    assert!(s.homeserver().get("email").is_none());
}

#[test]
fn an_ungranted_password_secret_blocks_and_is_not_a_failed_hook() {
    let mut s = Setup::new(json!({}));
    s.j.relate(&rel(), PROVIDER, &[&format!("{PROVIDER}/0")]);
    let uri =
        s.j.add_secret(PROVIDER, None, &[("password", SECRET_PASSWORD)], None);
    let mut bag = starttls();
    bag.push(("password_id", &uri));
    s.j.set_app_data(&rel(), PROVIDER, &bag);
    let status = s.run(relation_event(RelationHook::Changed));
    assert_eq!(status.kind, crate::juju::StatusKind::Blocked);
    assert!(
        status
            .message
            .starts_with("smtp: the password secret cannot be read ("),
        "{status}"
    );
    assert!(s.homeserver().get("email").is_none());
}
