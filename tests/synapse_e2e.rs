//! End to end, under JujuLocal with real Pebble, real Synapse and real NGINX:
//! deploy, configure, use with a Matrix client, change config, churn the pod.

mod common;

use common::{TestModel, UNIT};

const URL: &str = "http://localhost:8080";

#[test]
fn deploy_configure_chat_and_survive_churn() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "chat.example.com")]);
    m.wait_ready();
    assert_eq!(
        m.status(),
        ("active".to_string(), String::new()),
        "after deploy"
    );

    // The entry point answers.
    assert_eq!(m.http_status(&format!("{URL}/health")), 204);
    assert!(m
        .http_get(&format!("{URL}/_matrix/client/versions"))
        .contains("\"versions\""));

    // A Matrix client registers, logs in, creates a room, sends and reads back.
    let secret = m.registration_secret();
    let reg = m.matrix(&["register", URL, &secret, "alice", "correct horse battery"]);
    assert_eq!(reg["user_id"], "@alice:chat.example.com");
    let chat = m.matrix(&[
        "chat",
        URL,
        "alice",
        "correct horse battery",
        "hello from the charm test",
    ]);
    assert!(
        chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "hello from the charm test"),
        "{chat}"
    );
    let room_id = chat["room_id"].as_str().unwrap().to_string();
    // Synapse rate-limits logins: reuse this session from here on.
    let session = format!("token:{}", chat["access_token"].as_str().unwrap());

    // Nothing restarts or is rewritten when nothing changed.
    let synapse_starts = m.starts("synapse", "synapse");
    let nginx_starts = m.starts("synapse-nginx", "nginx");
    assert_eq!(synapse_starts, 1);
    assert_eq!(nginx_starts, 1);
    let written = std::fs::metadata(m.data("homeserver.yaml"))
        .unwrap()
        .modified()
        .unwrap();
    m.c.update_status().unwrap();
    m.c.run(UNIT, jujulocal::Event::ConfigChanged).unwrap();
    m.c.run(UNIT, jujulocal::Event::LeaderElected).unwrap();
    m.c.run(
        UNIT,
        jujulocal::Event::PebbleReady {
            container: "synapse-nginx".into(),
        },
    )
    .unwrap();
    assert_eq!(
        m.starts("synapse", "synapse"),
        1,
        "no Synapse restart without a change"
    );
    assert_eq!(
        m.starts("synapse-nginx", "nginx"),
        1,
        "no NGINX restart without a change"
    );
    assert_eq!(
        std::fs::metadata(m.data("homeserver.yaml"))
            .unwrap()
            .modified()
            .unwrap(),
        written,
        "no file write without a change"
    );

    // A config change restarts Synapse exactly once, and its effect is visible.
    let before = m.matrix(&["public-rooms", URL, "alice", &session]);
    assert!(
        before["listed"]
            .as_array()
            .unwrap()
            .contains(&before["room_id"]),
        "{before}"
    );
    m.config(&[("enable_room_list_search", "false")]);
    m.wait_ready();
    assert_eq!(
        m.starts("synapse", "synapse"),
        2,
        "one restart for one change"
    );
    assert_eq!(
        m.starts("synapse-nginx", "nginx"),
        1,
        "NGINX untouched by a Synapse option"
    );
    let after = m.matrix(&["public-rooms", URL, "alice", &session]);
    assert_eq!(
        after["listed"],
        serde_json::json!([]),
        "room directory search is off: {after}"
    );
    m.config(&[("enable_room_list_search", "false")]);
    m.c.run(UNIT, jujulocal::Event::ConfigChanged).unwrap();
    assert_eq!(
        m.starts("synapse", "synapse"),
        2,
        "the same value again: no restart"
    );

    // server_name is bound to the database: a change blocks and is not applied.
    m.config(&[("server_name", "other.example.com")]);
    let (s, msg) = m.status();
    assert_eq!(s, "blocked");
    assert!(
        msg.contains(
            "server_name cannot change from \"chat.example.com\" to \"other.example.com\""
        ),
        "{msg}"
    );
    assert_eq!(
        m.starts("synapse", "synapse"),
        2,
        "Synapse keeps running with the old name"
    );
    let read = m.matrix(&["read", URL, "alice", &session, &room_id]);
    assert!(read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == "hello from the charm test"));
    m.config(&[("server_name", "chat.example.com")]);
    assert_eq!(
        m.status(),
        ("active".to_string(), String::new()),
        "back to the old name"
    );
    assert_eq!(m.starts("synapse", "synapse"), 2);

    // A configuration the charm accepts but Synapse rejects (the invite-checker module
    // in the image takes other options) is checked by Synapse and never reaches it.
    m.config(&[
        ("invite_checker_policy_rooms", "abc:chat.example.com"),
        (
            "invite_checker_blocklist_allowlist_url",
            "https://lists.example.com/l.json",
        ),
    ]);
    let (s, msg) = m.status();
    assert_eq!(s, "blocked", "{msg}");
    assert!(
        msg.starts_with("Synapse rejects the new configuration (invite_checker_blocklist_allowlist_url, invite_checker_policy_rooms): "),
        "{msg}"
    );
    assert!(msg.contains("Incomplete federation list config"), "{msg}");
    assert!(
        msg.ends_with("Synapse keeps its last good configuration"),
        "{msg}"
    );
    assert_eq!(m.starts("synapse", "synapse"), 2, "no restart");
    assert!(
        !m.data("homeserver.yaml.candidate").exists(),
        "no candidate left"
    );
    assert!(!std::fs::read_to_string(m.data("homeserver.yaml"))
        .unwrap()
        .contains("invite_checker"));
    assert_eq!(
        m.http_status(&format!("{URL}/_matrix/client/versions")),
        200,
        "Synapse keeps serving"
    );
    m.c.update_status().unwrap();
    assert_eq!(m.status().1, msg, "still said on later hooks");
    m.config(&[
        ("invite_checker_policy_rooms", ""),
        ("invite_checker_blocklist_allowlist_url", ""),
    ]);
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    assert_eq!(m.starts("synapse", "synapse"), 2, "back without a restart");

    // Pod churn: each container's Pebble restarts empty; pebble-ready restores it all.
    let key = std::fs::read_to_string(m.data("chat.example.com.signing.key")).unwrap();
    for container in ["synapse", "synapse-nginx"] {
        let socket = m.c.pebble_socket(UNIT, container);
        let boot_id = pebble::Client::new(&socket).system_info().unwrap().boot_id;
        let ready_before =
            m.c.history()
                .iter()
                .filter(|r| r.hook == format!("{container}-pebble-ready"))
                .count();
        m.c.restart_container(UNIT, container).unwrap();
        assert_ne!(
            pebble::Client::new(&socket).system_info().unwrap().boot_id,
            boot_id,
            "a new Pebble"
        );
        let ready_after =
            m.c.history()
                .iter()
                .filter(|r| r.hook == format!("{container}-pebble-ready"))
                .count();
        assert_eq!(
            ready_after,
            ready_before + 1,
            "JujuLocal fires {container}-pebble-ready after churn"
        );
        m.wait_ready();
        assert_eq!(m.status().0, "active", "after {container} churn");
    }
    let read = m.matrix(&["read", URL, "alice", &session, &room_id]);
    assert!(
        read["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "hello from the charm test"),
        "data survives churn"
    );
    assert_eq!(
        std::fs::read_to_string(m.data("chat.example.com.signing.key")).unwrap(),
        key,
        "same signing key"
    );
}

#[test]
fn files_with_secrets_are_private_to_synapse() {
    use std::os::unix::fs::MetadataExt;
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "example.com")]);
    for f in ["homeserver.yaml", "example.com.signing.key"] {
        let meta = std::fs::metadata(m.data(f)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{f}");
        assert_eq!(meta.uid(), 584792, "{f} owned by the synapse user");
    }
    // The secrets are not in the Pebble plan (only a hash is).
    let plan = pebble::Client::new(m.c.pebble_socket(UNIT, "synapse"))
        .plan_yaml()
        .unwrap();
    assert!(!plan.contains(&m.registration_secret()));
}

#[test]
fn invalid_config_blocks_with_the_option_and_reason() {
    let mut m = TestModel::with_pods();
    m.deploy(&[]);
    let (s, msg) = m.status();
    assert_eq!(s, "blocked");
    assert!(
        msg.starts_with("invalid configuration: server_name: must be set"),
        "{msg}"
    );
    m.config(&[
        ("server_name", "example.com"),
        ("ip_range_whitelist", "10.0.0.0/33"),
    ]);
    assert_eq!(
        m.status(),
        (
            "blocked".into(),
            "invalid configuration: ip_range_whitelist: \"10.0.0.0/33\" is not a CIDR".into()
        )
    );
    // Nothing was started while the configuration was invalid.
    assert_eq!(m.starts("synapse", "synapse"), 0);
}
