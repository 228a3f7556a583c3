//! The backup integration's status: the decision (pure), and whole dispatches against
//! the in-memory Juju model and Pebble, with a local HTTP listener as the bucket.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::charm::reconcile::reconcile;
use crate::juju::{Event, RelationHook, Status};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

const PROVIDER: &str = "s3-integrator";

fn rel() -> RelationId {
    RelationId {
        endpoint: ENDPOINT.into(),
        id: 9,
    }
}

/// A bucket that answers every request with an empty listing; counts the requests.
fn bucket_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://127.0.0.1:{port}"), hits)
}

fn free_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

fn event(hook: RelationHook) -> Event {
    Event::Relation {
        hook,
        relation: rel(),
        remote_app: Some(PROVIDER.into()),
        remote_unit: (hook != RelationHook::Broken).then(|| format!("{PROVIDER}/0")),
        departing_unit: None,
    }
}

fn run(j: &mut Juju, event: Event, pod: &FakePod, hints: &mut UnitHints) -> Status {
    j.hook(UNIT, event, |ctx, tools| reconcile(ctx, tools, pod, hints))
        .unwrap()
}

fn related(endpoint: &str, config: serde_json::Value) -> (Juju, FakePod, UnitHints) {
    let mut j = Juju::new().with_config(config);
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    j.relate(&rel(), PROVIDER, &[&format!("{PROVIDER}/0")]);
    j.set_app_data(
        &rel(),
        PROVIDER,
        &[
            ("access-key", "AKIABACKUP"),
            ("secret-key", "backup-secret-value"),
            ("bucket", "synapse-backup"),
            ("endpoint", endpoint),
            ("s3-uri-style", "path"),
        ],
    );
    (j, p, hints)
}

#[test]
fn the_decision_names_backup_and_never_the_keys() {
    let bag: crate::juju::Databag = [
        ("access-key", "AK"),
        ("secret-key", "SECRETVALUE"),
        ("bucket", "b-1"),
        ("endpoint", "http://h:1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let info = s3::parse(&bag);
    assert_eq!(decide(&info, Some(&Reach::Ok)), Progress::Ready);
    assert_eq!(
        decide(&info, Some(&Reach::Failed("HTTP 404 NoSuchBucket".into()))),
        Progress::Blocked(
            "backup: bucket \"b-1\" does not exist or cannot be accessed: HTTP 404 NoSuchBucket"
                .into()
        )
    );
    let pending = s3::parse(&crate::juju::Databag::new());
    assert!(
        matches!(decide(&pending, None), Progress::Waiting(m) if m.starts_with("backup: waiting"))
    );
    let mut bad = bag.clone();
    bad.insert("s3-uri-style".into(), "virtual".into());
    let p = decide(&s3::parse(&bad), None);
    assert!(
        matches!(&p, Progress::Blocked(m) if m.starts_with("backup: the S3 integration sent invalid data: s3-uri-style") && !m.contains("SECRETVALUE")),
        "{p:?}"
    );
    assert_eq!(note(false, false, APP), None);
    assert_eq!(note(true, true, APP), None);
    assert!(note(true, false, APP)
        .unwrap()
        .contains("backup_passphrase"));
    assert!(note(false, true, APP).unwrap().contains("no effect"));
}

#[test]
fn a_reachable_bucket_is_checked_once_and_remembered() {
    let (endpoint, hits) = bucket_server();
    let (mut j, p, mut hints) = related(
        &endpoint,
        json!({"server_name": "example.com", "backup_passphrase": "pw"}),
    );
    assert_eq!(
        run(&mut j, event(RelationHook::Changed), &p, &mut hints),
        Status::active()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one bucket check");
    assert_eq!(
        j.app_data(&rel(), APP).get("bucket").map(String::as_str),
        Some(BUCKET_REQUEST),
        "the leader asked for a bucket"
    );
    // Steady hooks: no network, no extra hook tool.
    j.take_tool_names();
    assert_eq!(
        run(&mut j, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // The relation goes: nothing to check any more.
    j.remove_relation(&rel());
    assert_eq!(
        run(&mut j, event(RelationHook::Broken), &p, &mut hints),
        Status::new(
            crate::juju::StatusKind::Active,
            "backup_passphrase has no effect without a backup integration"
        )
    );
}

#[test]
fn an_unreachable_bucket_blocks_naming_backup_until_the_data_changes() {
    let (mut j, p, mut hints) = related(&free_endpoint(), json!({"server_name": "example.com"}));
    let status = run(&mut j, event(RelationHook::Changed), &p, &mut hints);
    assert_eq!(status.kind, crate::juju::StatusKind::Blocked, "{status}");
    assert!(
        status.message.starts_with(
            "backup: bucket \"synapse-backup\" does not exist or cannot be accessed: cannot reach the S3 endpoint"
        ),
        "{status}"
    );
    assert!(!status.message.contains("backup-secret-value"));
    // Kept by steady hooks, and Synapse was not touched for it.
    assert_eq!(run(&mut j, Event::UpdateStatus, &p, &mut hints), status);
    assert_eq!(*p.synapse.restarts.borrow(), 1);
    // The provider fixes its data: checked again, active (with the passphrase note).
    let (endpoint, _) = bucket_server();
    j.set_app_data(&rel(), PROVIDER, &[("endpoint", endpoint.as_str())]);
    let status = run(&mut j, event(RelationHook::Changed), &p, &mut hints);
    assert_eq!(status.kind, crate::juju::StatusKind::Active);
    assert!(status.message.contains("set backup_passphrase"), "{status}");
}
