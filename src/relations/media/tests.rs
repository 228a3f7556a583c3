//! The media integration: the decision (pure), the rendering, and whole dispatches
//! against the in-memory Juju model and Pebble.

use serde_json::json;

use super::*;
use crate::charm::reconcile::reconcile;
use crate::juju::{Event, RelationHook, Status, StatusKind};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

const PROVIDER: &str = "s3-integrator";

fn media() -> RelationId {
    RelationId {
        endpoint: ENDPOINT.into(),
        id: 7,
    }
}

fn info() -> S3Info {
    s3::parse(&provider_bag(&[])).unwrap()
}

fn provider_bag(extra: &[(&str, &str)]) -> crate::juju::Databag {
    let mut bag: crate::juju::Databag = [
        ("access-key", "AKIAMEDIA"),
        ("secret-key", "media-secret-value"),
        ("bucket", "synapse-media"),
        ("endpoint", "http://127.0.0.1:9000"),
        ("path", "synapse"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        bag.insert(k.to_string(), v.to_string());
    }
    bag
}

#[test]
fn the_decision_follows_the_relation_and_the_marker() {
    let marker = Marker {
        bucket: "old".into(),
        endpoint: String::new(),
    };
    assert_eq!(
        decide(false, None, None, APP),
        (Storage::Local, Progress::Ready)
    );
    let (storage, p) = decide(false, None, Some(&marker), APP);
    assert_eq!(storage, Storage::Local);
    let Progress::Blocked(msg) = p else {
        panic!("{p:?}")
    };
    assert!(
        msg.starts_with("media: the S3 integration was removed; media kept only in bucket \"old\""),
        "{msg}"
    );
    assert!(
        msg.contains("juju integrate synapse:media s3-integrator"),
        "{msg}"
    );
    assert_eq!(
        decide(true, Some(&Ok(info())), None, APP),
        (Storage::S3(Box::new(info())), Progress::Ready)
    );
    // Not ready yet: nothing from the provider is needed to keep the local store...
    let pending = Err(S3Error::MissingCredentials(vec!["access-key"]));
    assert_eq!(
        decide(true, Some(&pending), None, APP),
        (
            Storage::Local,
            Progress::Waiting(
                "media: waiting for the S3 provider's credentials (no access-key yet)".into()
            )
        )
    );
    // ...but once a bucket was in use, Synapse is left as it runs.
    assert_eq!(
        decide(true, Some(&pending), Some(&marker), APP).0,
        Storage::Keep
    );
    let (storage, p) = decide(true, Some(&Err(S3Error::NoBucket)), Some(&marker), APP);
    assert_eq!(storage, Storage::Keep);
    assert_eq!(
        p,
        Progress::Blocked("media: the S3 integration sent invalid data: no bucket".into())
    );
    let mut glacier = info();
    glacier.storage_class = Some("GLACIER".into());
    let (storage, p) = decide(true, Some(&Ok(glacier)), None, APP);
    assert_eq!(storage, Storage::Local);
    assert!(
        matches!(&p, Progress::Blocked(m) if m.contains("storage-class \"GLACIER\"")),
        "{p:?}"
    );
}

#[test]
fn the_storage_provider_is_rendered_as_the_module_reads_it() {
    let v = storage_providers(&info());
    assert_eq!(
        v,
        json!([{
            "module": "s3_storage_provider.S3StorageProviderBackend",
            "store_local": true, "store_remote": true, "store_synchronous": true,
            "config": {
                "bucket": "synapse-media", "prefix": "synapse/",
                "endpoint_url": "http://127.0.0.1:9000",
                "access_key_id": "AKIAMEDIA", "secret_access_key": "media-secret-value",
            }
        }])
    );
    let files = files(&info());
    assert_eq!(files.len(), 1);
    assert!(
        files[0].1.contains("addressing_style = auto"),
        "{}",
        files[0].1
    );
    let mut i = info();
    i.uri_style = UriStyle::Path;
    i.tls_ca_chain = vec!["-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----".into()];
    let files = super::files(&i);
    assert_eq!(files[0].0, AWS_CONFIG_PATH);
    assert!(files[0].1.contains("addressing_style = path"));
    assert!(files[0].1.contains(&format!("ca_bundle = {CA_PATH}")));
    assert_eq!(files[1].0, CA_PATH);
    assert!(!files.iter().any(|(_, c)| c.contains("media-secret-value")));
}

fn relation_event(hook: RelationHook) -> Event {
    Event::Relation {
        hook,
        relation: media(),
        remote_app: Some(PROVIDER.into()),
        remote_unit: (hook != RelationHook::Broken).then(|| format!("{PROVIDER}/0")),
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

fn plan_text(pod: &FakePod) -> String {
    format!("{:?}", pod.synapse.plan.borrow())
}

/// Deployed and serving, then related to an s3 provider that answered.
fn related() -> (Juju, FakePod, UnitHints) {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    j.relate(&media(), PROVIDER, &[&format!("{PROVIDER}/0")]);
    run(&mut j, relation_event(RelationHook::Joined), &p, &mut hints);
    let bag: Vec<(String, String)> = provider_bag(&[]).into_iter().collect();
    let bag: Vec<(&str, &str)> = bag.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    j.set_app_data(&media(), PROVIDER, &bag);
    (j, p, hints)
}

#[test]
fn the_bucket_is_used_after_one_restart_with_credentials_only_in_private_files() {
    let (mut j, p, mut hints) = related();
    assert_eq!(
        j.app_data(&media(), APP).get("bucket").map(String::as_str),
        Some(BUCKET_REQUEST),
        "the leader asked for a bucket"
    );
    assert_eq!(
        *p.synapse.restarts.borrow(),
        1,
        "nothing to use before the answer"
    );
    let status = run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    assert_eq!(status, Status::active());
    assert_eq!(*p.synapse.restarts.borrow(), 2, "one restart");
    let hs = homeserver(&p);
    assert!(
        hs.contains("s3_storage_provider.S3StorageProviderBackend"),
        "{hs}"
    );
    assert!(hs.contains("secret_access_key: media-secret-value"), "{hs}");
    assert!(hs.contains("prefix: synapse/"), "{hs}");
    assert!(p.synapse.files.borrow().contains_key(AWS_CONFIG_PATH));
    let plan = plan_text(&p);
    assert!(
        plan.contains(AWS_CONFIG_PATH),
        "boto3 is told where its config is"
    );
    assert!(
        !plan.contains("media-secret-value") && !plan.contains("AKIAMEDIA"),
        "no credential in the plan"
    );
    assert_eq!(
        read_marker(p.data.path()).map(|m| m.bucket),
        Some("synapse-media".into())
    );

    // The same answer again, and steady hooks: nothing read, written or restarted.
    run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    j.take_tool_names();
    let pushes = p.synapse.pushes.borrow().len();
    assert_eq!(
        run(&mut j, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
    assert_eq!(p.synapse.pushes.borrow().len(), pushes);
    assert_eq!(*p.synapse.restarts.borrow(), 2);

    // A configuration change keeps the bucket.
    j.set_config("block_non_admin_invites", json!(true));
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(*p.synapse.restarts.borrow(), 3);
    assert!(homeserver(&p).contains("S3StorageProviderBackend"));

    // New provider data: one restart, the new prefix and style.
    j.set_app_data(
        &media(),
        PROVIDER,
        &[("path", "other"), ("s3-uri-style", "path")],
    );
    run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    assert_eq!(*p.synapse.restarts.borrow(), 4);
    assert!(homeserver(&p).contains("prefix: other/"));
    assert!(
        String::from_utf8_lossy(&p.synapse.files.borrow()[AWS_CONFIG_PATH])
            .contains("addressing_style = path")
    );
}

#[test]
fn removing_the_relation_drops_the_credentials_and_blocks_naming_the_bucket() {
    let (mut j, p, mut hints) = related();
    run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    assert_eq!(*p.synapse.restarts.borrow(), 2);
    let status = run(&mut j, relation_event(RelationHook::Broken), &p, &mut hints);
    j.remove_relation(&media());
    assert_eq!(status.kind, StatusKind::Blocked, "{status:?}");
    assert!(
        status.message.contains("bucket \"synapse-media\""),
        "{}",
        status.message
    );
    assert_eq!(*p.synapse.restarts.borrow(), 3, "one restart");
    let hs = homeserver(&p);
    assert!(!hs.contains("media_storage_providers") && !hs.contains("media-secret-value"));
    assert!(!p.synapse.files.borrow().contains_key(AWS_CONFIG_PATH));
    assert!(!plan_text(&p).contains(AWS_CONFIG_PATH));
    // Still blocked in steady hooks, Synapse still serving the local store.
    let status = run(&mut j, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert_eq!(*p.synapse.restarts.borrow(), 3);
    // The operator confirms by removing the marker.
    std::fs::remove_file(p.data.path().join(MARKER)).unwrap();
    assert_eq!(
        run(&mut j, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
}

#[test]
fn no_credentials_yet_waits_and_keeps_the_local_store() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    j.relate(&media(), PROVIDER, &[&format!("{PROVIDER}/0")]);
    j.set_app_data(&media(), PROVIDER, &[("bucket", "synapse-media")]);
    let status = run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    assert_eq!(
        status,
        Status::waiting(
            "media: waiting for the S3 provider's credentials (no access-key or secret-key yet)"
        )
    );
    assert_eq!(*p.synapse.restarts.borrow(), 1);
    // Remembered: a steady hook says the same without reading the relation.
    j.take_tool_names();
    assert_eq!(run(&mut j, Event::UpdateStatus, &p, &mut hints), status);
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
}

#[test]
fn invalid_data_after_a_bucket_was_in_use_leaves_synapse_as_it_runs() {
    let (mut j, p, mut hints) = related();
    run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    j.set_app_data(&media(), PROVIDER, &[("endpoint", "ftp://nope")]);
    let status = run(
        &mut j,
        relation_event(RelationHook::Changed),
        &p,
        &mut hints,
    );
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status
            .message
            .starts_with("media: the S3 integration sent invalid data: endpoint \"ftp://nope\""),
        "{}",
        status.message
    );
    assert_eq!(*p.synapse.restarts.borrow(), 2, "no restart");
    assert!(homeserver(&p).contains("endpoint_url: http://127.0.0.1:9000"));
}
