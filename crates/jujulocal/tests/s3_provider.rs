//! `juju deploy s3-integrator` deploys JujuLocal's stand-in: a played `s3` provider
//! backed by a real S3 server (moto's standalone server). A tiny shell requirer asks
//! for a bucket as the `s3` library's `S3Requirer` does; the stand-in answers as
//! s3-integrator does once it has credentials, creates the bucket, and serves real S3
//! requests on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jujulocal::controller::providers::s3_integrator;

mod support;
use support::{shell_charm, Juju};

/// A requirer on an `s3` endpoint: the leader asks for bucket `synapse-media` when the
/// relation is joined (as `S3Requirer` does); `relation-changed` puts the provider's
/// endpoint and bucket in its status.
fn requirer_charm(dir: &Path) -> PathBuf {
    let dispatch = r#"#!/bin/sh
set -e
case "$JUJU_DISPATCH_PATH" in
  hooks/media-relation-joined)
    case "$(is-leader)" in [Tt]rue) relation-set -r "$JUJU_RELATION_ID" --app bucket=synapse-media ;; esac ;;
  hooks/media-relation-changed)
    status-set active "$(relation-get -r "$JUJU_RELATION_ID" --app endpoint "$JUJU_REMOTE_APP") $(relation-get -r "$JUJU_RELATION_ID" --app bucket "$JUJU_REMOTE_APP")" ;;
esac
"#;
    shell_charm(
        dir,
        "req",
        "name: req\nrequires:\n  media:\n    interface: s3\n    limit: 1\n",
        dispatch,
    )
}

fn s3(moto_url: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let port: u16 = moto_url.rsplit(':').next().unwrap().parse().unwrap();
    let req = http1::Request::new(method, path).body(body.to_vec());
    match http1::tcp_round_trip(([127, 0, 0, 1], port).into(), &req, Duration::from_secs(10)) {
        Ok(r) => (r.status, r.body),
        Err(_) => (0, vec![]),
    }
}

#[test]
fn s3_integrator_stand_in_answers_with_credentials_and_a_real_bucket() {
    let j = Juju::new("jujus3");
    j.ok(&["add-model", "m1"]);
    let charm = requirer_charm(j.home());
    j.ok(&["deploy", &charm.display().to_string(), "req"]);
    let out = j.cmd(&["deploy", "s3-integrator", "--channel", "latest/edge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        j.status("s3-integrator/0"),
        (
            "blocked".into(),
            "Missing parameters: ['access-key', 'secret-key']".into()
        )
    );
    let moto = s3_integrator::moto_of(&j.controller(), "s3-integrator").expect("moto state");
    let url = moto.url();
    assert_eq!(s3(&url, "GET", "/", b"").0, 200, "moto answers");

    j.ok(&["integrate", "req", "s3-integrator"]);
    assert!(
        j.app_databag("s3-integrator").is_empty(),
        "no answer without credentials: {:?}",
        j.app_databag("s3-integrator")
    );

    j.ok(&[
        "config",
        "s3-integrator",
        "access-key=AKIDSTANDIN",
        "secret-key=standin-secret",
        "path=synapse",
        "s3-uri-style=path",
    ]);
    assert_eq!(
        j.status("s3-integrator/0"),
        ("active".into(), format!("Serving S3 at {url}"))
    );
    let bag = j.app_databag("s3-integrator");
    assert_eq!(
        bag.get("access-key").map(String::as_str),
        Some("AKIDSTANDIN")
    );
    assert_eq!(
        bag.get("secret-key").map(String::as_str),
        Some("standin-secret")
    );
    assert_eq!(bag.get("bucket").map(String::as_str), Some("synapse-media"));
    assert_eq!(bag.get("endpoint"), Some(&url));
    assert_eq!(bag.get("path").map(String::as_str), Some("synapse"));
    assert_eq!(bag.get("s3-uri-style").map(String::as_str), Some("path"));
    assert_eq!(
        j.status("req/0"),
        ("active".into(), format!("{url} synapse-media")),
        "the requirer was told"
    );
    // The bucket is real: an object goes in and comes back.
    assert_eq!(s3(&url, "GET", "/synapse-media", b"").0, 200);
    assert_eq!(s3(&url, "PUT", "/synapse-media/synapse/x", b"hello").0, 200);
    let (code, listing) = s3(&url, "GET", "/synapse-media", b"");
    assert_eq!(code, 200);
    let listing = String::from_utf8_lossy(&listing);
    assert!(listing.contains("<Key>synapse/x</Key>"), "{listing}");
    // Objects are private: an unsigned read is refused, as S3 refuses it.
    assert_eq!(s3(&url, "GET", "/synapse-media/synapse/x", b"").0, 403);

    // Its own bucket option wins over the request; an unset option is withdrawn.
    j.ok(&["config", "s3-integrator", "bucket=operator-bucket", "path="]);
    let bag = j.app_databag("s3-integrator");
    assert_eq!(
        bag.get("bucket").map(String::as_str),
        Some("operator-bucket")
    );
    assert!(!bag.contains_key("path"), "{bag:?}");
    assert_eq!(s3(&url, "GET", "/operator-bucket", b"").0, 200);
    assert_eq!(j.status("req/0").1, format!("{url} operator-bucket"));

    // Unknown options are refused, as Juju refuses them.
    let bad = j.cmd(&["config", "s3-integrator", "nope=1"]);
    assert!(!bad.status.success());

    j.ok(&["remove-application", "s3-integrator"]);
    assert_eq!(s3(&url, "GET", "/", b"").0, 0, "moto stopped");
    assert!(!moto.dir.exists(), "its directory is gone");
}
