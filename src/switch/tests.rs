//! Taking over Canonical's charm's data: the pure decisions, then whole dispatches on a
//! volume and peer databag laid out as that charm leaves them.

use serde_json::json;

use super::*;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, RelationId, Status, StatusKind};
use crate::peers::{ENDPOINT as PEERS, KEYS_SECRET_KEY, MAIN_UNIT_KEY};
use crate::synapse::keys::SECRET_LABEL;
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

const SN: &str = "example.com";
const KEY: &str = "ed25519 a_Ref1 ZmFrZS1zZWVkLW9mLXRoZS1yZWZlcmVuY2UtY2hhcm0tMDE\n";
const OTHER_KEY: &str = "ed25519 a_Oth2 b3RoZXItc2VlZC1vZi1hbm90aGVyLXNlcnZlci0wMDAwMDA\n";

fn origin(dir: &Path) -> Origin<'_> {
    Origin {
        data_dir: dir,
        server_name: SN,
        app: APP,
        unit: UNIT,
    }
}

fn fresh() -> SynapseKeys {
    SynapseKeys::generate().unwrap()
}

fn reference_config(server_name: &str) -> PreviousConfig {
    PreviousConfig {
        server_name: Some(server_name.into()),
        registration_shared_secret: Some("ref-registration".into()),
        macaroon_secret_key: Some("ref-macaroon".into()),
        form_secret: None,
    }
}

#[test]
fn nothing_on_the_volume_means_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let new = fresh();
    assert_eq!(
        decide(&origin(dir.path()), &Volume::default(), None, new.clone()),
        Adoption::Fresh(new)
    );
}

#[test]
fn the_volume_key_and_secrets_are_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume {
        signing_key: Some(KEY.into()),
        config: Some(reference_config(SN)),
        ..Default::default()
    };
    let new = fresh();
    let Adoption::Adopt(keys) = decide(&origin(dir.path()), &volume, Some(KEY), new.clone()) else {
        panic!("not adopted")
    };
    assert_eq!(
        keys.signing_key, KEY,
        "the same file content, never a new key"
    );
    assert_eq!(keys.key_id(), "a_Ref1");
    assert_eq!(keys.registration_shared_secret, "ref-registration");
    assert_eq!(keys.macaroon_secret_key, "ref-macaroon");
    assert_eq!(keys.form_secret, new.form_secret, "the reference has none");
}

#[test]
fn the_secret_key_is_adopted_when_the_file_is_gone_and_files_give_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume {
        registration_file: Some("from-file\n".into()),
        ..Default::default()
    };
    let Adoption::Adopt(keys) = decide(&origin(dir.path()), &volume, Some(KEY.trim()), fresh())
    else {
        panic!("not adopted")
    };
    assert_eq!(keys.signing_key, KEY.trim());
    assert_eq!(keys.registration_shared_secret, "from-file");
}

fn unsafe_message(volume: &Volume, secret: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    match decide(&origin(dir.path()), volume, secret, fresh()) {
        Adoption::Unsafe(m) => m,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn unsafe_cases_name_the_fix() {
    let m = unsafe_message(
        &Volume {
            signing_key: Some(KEY.into()),
            ..Default::default()
        },
        Some(OTHER_KEY),
    );
    assert!(
        m.contains("key id a_Ref1") && m.contains("key id a_Oth2"),
        "{m}"
    );
    assert!(m.contains(&format!(
        "`juju ssh --container synapse {UNIT} mv /data/{SN}.signing.key /data/{SN}.signing.key.old`"
    )));

    let m = unsafe_message(
        &Volume {
            config: Some(reference_config("old.org")),
            ..Default::default()
        },
        None,
    );
    assert!(
        m.contains(&format!("`juju config {APP} server_name=old.org`")),
        "{m}"
    );

    let m = unsafe_message(
        &Volume {
            other_servers: vec!["old.org".into()],
            ..Default::default()
        },
        None,
    );
    assert!(m.contains("/data/old.org.signing.key"), "{m}");

    let m = unsafe_message(
        &Volume {
            signing_key: Some(format!("{KEY}{OTHER_KEY}")),
            ..Default::default()
        },
        None,
    );
    assert!(
        m.contains("not a single ed25519 Synapse signing key"),
        "{m}"
    );
}

#[test]
fn the_media_path_is_chosen_once() {
    assert_eq!(
        decide_media(None, true, false),
        (REFERENCE_MEDIA.into(), true)
    );
    assert_eq!(
        decide_media(None, true, true),
        ("/data/media_store".into(), true),
        "our own store exists: never move away from it"
    );
    assert_eq!(
        decide_media(None, false, false),
        ("/data/media_store".into(), true)
    );
    assert_eq!(
        decide_media(Some("/data/media\n"), false, true),
        (REFERENCE_MEDIA.into(), false),
        "the recorded choice wins"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("media/local_content")).unwrap();
    assert_eq!(media_store_path(dir.path()).unwrap(), REFERENCE_MEDIA);
    std::fs::remove_dir_all(dir.path().join("media")).unwrap();
    std::fs::create_dir_all(dir.path().join("media_store")).unwrap();
    assert_eq!(
        media_store_path(dir.path()).unwrap(),
        REFERENCE_MEDIA,
        "never flips"
    );
}

// Whole dispatches.

fn peer() -> RelationId {
    RelationId {
        endpoint: PEERS.into(),
        id: 0,
    }
}

fn run(j: &mut Juju, event: Event, pod: &FakePod) -> Status {
    run_with(j, event, pod, &mut UnitHints::default())
}

fn run_with(j: &mut Juju, event: Event, pod: &FakePod, hints: &mut UnitHints) -> Status {
    j.hook(UNIT, event, |ctx, tools| {
        crate::charm::reconcile::reconcile(ctx, tools, pod, hints)
    })
    .unwrap()
}

/// A volume and peer databag as the reference charm leaves them.
fn reference_layout(j: &mut Juju, p: &FakePod, key: &str, secret_key: &str) {
    let d = p.data.path();
    std::fs::write(d.join(format!("{SN}.signing.key")), key).unwrap();
    std::fs::write(
        d.join("homeserver.yaml"),
        format!(
            "server_name: \"{SN}\"\nregistration_shared_secret: \"ref-registration\"\n\
             macaroon_secret_key: \"ref-macaroon\"\nmedia_store_path: \"/data/media\"\n\
             signing_key_path: \"/data/{SN}.signing.key\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("media/local_content/ab")).unwrap();
    std::fs::write(d.join("media/local_content/ab/cdef"), "png").unwrap();
    // The same key, as Synapse sees it in its container.
    p.synapse
        .files
        .borrow_mut()
        .insert(format!("/data/{SN}.signing.key"), key.as_bytes().to_vec());
    let uri = j.add_secret(APP, None, &[(REFERENCE_SIGNING_FIELD, secret_key)], None);
    j.set_app_data(
        &peer(),
        APP,
        &[(REFERENCE_SIGNING_ID, uri.as_str()), ("main_unit_id", UNIT)],
    );
}

fn homeserver_yaml(p: &FakePod) -> String {
    String::from_utf8_lossy(&p.synapse.files.borrow()["/data/homeserver.yaml"]).into_owned()
}

#[test]
fn a_switch_keeps_the_signing_key_secrets_and_media() {
    let mut j = Juju::new().with_config(json!({"server_name": SN}));
    let p = FakePod::up();
    reference_layout(&mut j, &p, KEY, KEY);
    let mut hints = UnitHints::default();
    assert_eq!(
        run_with(&mut j, Event::UpgradeCharm, &p, &mut hints),
        Status::active()
    );
    let ours: Vec<_> = j
        .secrets_owned_by(APP)
        .into_iter()
        .filter(|s| s.label.as_deref() == Some(SECRET_LABEL))
        .cloned()
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(
        j.app_data(&peer(), APP).get(KEYS_SECRET_KEY),
        Some(&ours[0].uri())
    );
    let file = &p.synapse.files.borrow()[&format!("/data/{SN}.signing.key")];
    assert_eq!(file.as_slice(), KEY.as_bytes(), "the key file is unchanged");
    assert!(
        !p.synapse
            .pushes
            .borrow()
            .contains(&format!("/data/{SN}.signing.key")),
        "and never rewritten"
    );
    let hs = homeserver_yaml(&p);
    assert!(hs.contains("media_store_path: /data/media\n"), "{hs}");
    assert!(
        hs.contains("registration_shared_secret: ref-registration"),
        "{hs}"
    );
    assert!(hs.contains("macaroon_secret_key: ref-macaroon"), "{hs}");
    assert_eq!(
        std::fs::read_to_string(p.data.path().join(MEDIA_MARKER)).unwrap(),
        "/data/media\n"
    );
    // Steady afterwards: nothing more is read than before the switch.
    j.take_tool_names();
    assert_eq!(
        run_with(&mut j, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
}

#[test]
fn a_key_that_disagrees_with_the_reference_secret_blocks_and_is_kept() {
    let mut j = Juju::new().with_config(json!({"server_name": SN}));
    let p = FakePod::up();
    reference_layout(&mut j, &p, KEY, OTHER_KEY);
    let status = run(&mut j, Event::UpgradeCharm, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(status
        .message
        .contains("differs from the one in the previous charm's secret"));
    assert!(j
        .secrets_owned_by(APP)
        .iter()
        .all(|s| s.label.as_deref() != Some(SECRET_LABEL)));
    assert!(p.synapse.pushes.borrow().is_empty(), "nothing written");
    // The operator follows the message: the file moves aside, the secret's key is adopted.
    std::fs::remove_file(p.data.path().join(format!("{SN}.signing.key"))).unwrap();
    p.synapse
        .files
        .borrow_mut()
        .remove(&format!("/data/{SN}.signing.key"));
    assert_eq!(run(&mut j, Event::UpdateStatus, &p), Status::active());
    let file = &p.synapse.files.borrow()[&format!("/data/{SN}.signing.key")];
    assert_eq!(file.as_slice(), OTHER_KEY.as_bytes());
}

#[test]
fn a_different_server_name_blocks_with_the_command() {
    let mut j = Juju::new().with_config(json!({"server_name": "new.org"}));
    let p = FakePod::up();
    reference_layout(&mut j, &p, KEY, KEY);
    let status = run(&mut j, Event::UpgradeCharm, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status
            .message
            .contains(&format!("`juju config {APP} server_name={SN}`")),
        "{}",
        status.message
    );
}

#[test]
fn a_foreign_key_under_existing_keys_blocks_and_is_never_overwritten() {
    let mut j = Juju::new().with_config(json!({"server_name": SN}));
    let p = FakePod::up();
    assert_eq!(run(&mut j, Event::ConfigChanged, &p), Status::active());
    let path = format!("/data/{SN}.signing.key");
    p.synapse
        .files
        .borrow_mut()
        .insert(path.clone(), KEY.as_bytes().to_vec());
    let status = run(&mut j, Event::UpgradeCharm, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status.message.contains("holds signing key \"a_Ref1\""),
        "{}",
        status.message
    );
    assert_eq!(p.synapse.files.borrow()[&path].as_slice(), KEY.as_bytes());
}

#[test]
fn the_reference_main_unit_stays_main() {
    let mut j = Juju::new().with_config(json!({"server_name": SN}));
    let other = j.add_unit();
    j.set_app_data(&peer(), APP, &[("main_unit_id", other.as_str())]);
    let p = FakePod::up();
    let status = run(&mut j, Event::UpgradeCharm, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    // This unit is a worker of the reference's main unit: without PostgreSQL and Redis
    // it runs nothing (the main unit's own message says it serves alone).
    assert!(
        status.message.starts_with("2 units need PostgreSQL")
            && !status.message.contains("alone meanwhile"),
        "{}",
        status.message
    );
    assert_eq!(j.app_data(&peer(), APP).get(MAIN_UNIT_KEY), None);
}

#[test]
fn a_removed_reference_secret_leaves_the_volume_to_decide() {
    let mut j = Juju::new().with_config(json!({"server_name": SN}));
    let p = FakePod::up();
    reference_layout(&mut j, &p, KEY, KEY);
    j.set_app_data(
        &peer(),
        APP,
        &[(REFERENCE_SIGNING_ID, "secret:d0000000000000000000")],
    );
    assert_eq!(run(&mut j, Event::UpgradeCharm, &p), Status::active());
    let file = &p.synapse.files.borrow()[&format!("/data/{SN}.signing.key")];
    assert_eq!(file.as_slice(), KEY.as_bytes());
}
