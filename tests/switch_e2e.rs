//! Switching from Canonical's charm, end to end: a data volume laid out as that charm
//! leaves it, by a real Synapse (its own signing key, a SQLite database with a user, an
//! uploaded file under `/data/media`), is taken over by this charm under JujuLocal with
//! real Pebble, Synapse and NGINX. The server keeps its identity, its user and its media.

mod common;

use std::path::Path;
use std::process::Command;

use common::{tools_dir, TestModel};

const URL: &str = "http://localhost:8080";

/// Builds the reference's volume in `data` (tests/e2e/reference_volume.sh) and returns
/// what the reference's Synapse answered.
fn reference_volume(data: &Path, out: &Path) -> serde_json::Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(data).unwrap();
    let status = Command::new("unshare")
        .arg("-n")
        .arg("bash")
        .arg(repo.join("tests/e2e/reference_volume.sh"))
        .arg(data)
        .arg(out)
        .arg(tools_dir().join("synapse-venv/bin/python"))
        .arg(tools_dir().join("test-venv/bin/python"))
        .arg(repo.join("tests/e2e/matrix_client.py"))
        .status()
        .unwrap();
    assert!(status.success(), "the reference volume could not be built");
    // The rock's Synapse user owns what its Synapse wrote.
    let chown = Command::new("chown")
        .args(["-R", "584792:584792"])
        .arg(data)
        .status()
        .unwrap();
    assert!(chown.success());
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn a_reference_volume_keeps_its_signing_key_users_and_media() {
    let mut m = TestModel::with_pods();
    let before = reference_volume(&m.data(""), &m.dir.path().join("reference.json"));
    let key_file = std::fs::read(m.data("example.com.signing.key")).unwrap();

    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    assert_eq!(m.status(), ("active".to_string(), String::new()));

    // The same federation identity: key id and public key.
    let after: serde_json::Value =
        serde_json::from_str(&m.http_get(&format!("{URL}/_matrix/key/v2/server"))).unwrap();
    assert_eq!(after["server_name"], "example.com");
    assert_eq!(after["verify_keys"], before["key"]["verify_keys"]);
    assert!(after["verify_keys"]
        .as_object()
        .is_some_and(|k| k.len() == 1));
    assert_eq!(
        std::fs::read(m.data("example.com.signing.key")).unwrap(),
        key_file,
        "the key file is kept as it was"
    );
    let key_mode = m.in_pod(
        "stat",
        &[
            "-c",
            "%a %u",
            m.data("example.com.signing.key").to_str().unwrap(),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&key_mode.stdout).trim(),
        "600 584792",
        "and private to Synapse"
    );

    // The user registered before the switch logs in.
    let login = m.matrix(&["login", URL, "alice", "alice-password"]);
    let token = login["access_token"].as_str().expect("alice logs in");

    // The file uploaded before the switch is still served.
    let mxc = before["mxc"].as_str().unwrap();
    let media_id = mxc.rsplit('/').next().unwrap();
    let out = m.in_pod(
        "curl",
        &[
            "-s",
            "--max-time",
            "10",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{URL}/_matrix/client/v1/media/download/example.com/{media_id}"),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "media kept across the switch"
    );
    assert_eq!(
        std::fs::read_to_string(m.data(".charm-media-path")).unwrap(),
        "/data/media\n"
    );
    // The reference's registration secret is kept (bridges and scripts that use it
    // keep working).
    assert_eq!(m.registration_secret(), "reference-registration-secret");
}
