//! `juju deploy smtp-integrator` deploys JujuLocal's stand-in: a played provider that
//! publishes the relay its options describe, as the real charm does with the `smtp`
//! library (plain strings in its application databag, the password in a secret
//! granted to the relation). A tiny shell requirer logs what it is given.

use std::path::{Path, PathBuf};

mod support;
use support::{shell_charm, Juju};

/// A requirer of `smtp` that logs the host and the password it reads (from the secret)
/// on relation-changed, and the new password on secret-changed.
fn requirer_charm(dir: &Path) -> PathBuf {
    let log = dir.join("req.log");
    let dispatch = format!(
        r#"#!/bin/sh
set -e
case "$JUJU_DISPATCH_PATH" in
  hooks/smtp-relation-changed)
    host=$(relation-get -r "$JUJU_RELATION_ID" --app host "$JUJU_REMOTE_APP")
    id=$(relation-get -r "$JUJU_RELATION_ID" --app password_id "$JUJU_REMOTE_APP")
    pw=""
    if [ -n "$id" ]; then pw=$(secret-get "$id" | sed -n 's/^password: //p'); fi
    echo "changed host=$host password=$pw" >> {log} ;;
  hooks/secret-changed)
    echo "secret-changed password=$(secret-get --refresh "$JUJU_SECRET_ID" | sed -n 's/^password: //p')" >> {log} ;;
esac
"#,
        log = log.display()
    );
    shell_charm(
        dir,
        "req",
        "name: req\nrequires:\n  smtp:\n    interface: smtp\n    limit: 1\n",
        &dispatch,
    )
}

#[test]
fn smtp_integrator_stand_in_publishes_its_options_and_the_password_through_a_secret() {
    let j = Juju::new("jujusmtp");
    j.ok(&["add-model", "m1"]);
    let charm = requirer_charm(j.home());
    j.ok(&["deploy", &charm.display().to_string(), "req"]);
    j.ok(&["deploy", "smtp-integrator", "--channel", "latest/stable"]);
    assert_eq!(
        j.status("smtp-integrator/0"),
        (
            "blocked".into(),
            "host must be set: juju config smtp-integrator host=...".into()
        )
    );
    j.ok(&["integrate", "req", "smtp-integrator"]);
    assert!(
        j.app_databag("smtp-integrator").is_empty(),
        "nothing without a host"
    );

    j.ok(&[
        "config",
        "smtp-integrator",
        "host=127.0.0.1",
        "port=2525",
        "auth_type=plain",
        "transport_security=starttls",
        "user=synapse",
        "password=first-password",
        "domain=example.com",
    ]);
    assert_eq!(j.status("smtp-integrator/0").0, "active");
    let bag = j.app_databag("smtp-integrator");
    let keys: Vec<&str> = bag.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "auth_type",
            "domain",
            "host",
            "password_id",
            "port",
            "skip_ssl_verify",
            "transport_security",
            "user"
        ]
    );
    assert_eq!(bag["port"], "2525");
    assert_eq!(bag["skip_ssl_verify"], "False");
    assert!(bag["password_id"].starts_with("secret:"));
    assert!(
        !bag.values().any(|v| v.contains("first-password")),
        "the password is only in the secret"
    );
    assert_eq!(
        requirer_log(&j).last().map(String::as_str),
        Some("changed host=127.0.0.1 password=first-password")
    );

    // A new password: a new revision of the same secret, secret-changed once.
    let id = bag["password_id"].clone();
    j.ok(&["config", "smtp-integrator", "password=second-password"]);
    assert_eq!(j.app_databag("smtp-integrator")["password_id"], id);
    let changed: Vec<String> = requirer_log(&j)
        .into_iter()
        .filter(|l| l.starts_with("secret-changed"))
        .collect();
    assert_eq!(changed, ["secret-changed password=second-password"]);
    // The same value again: no new revision, no event.
    j.ok(&["config", "smtp-integrator", "password=second-password"]);
    assert_eq!(
        requirer_log(&j)
            .iter()
            .filter(|l| l.starts_with("secret-changed"))
            .count(),
        1
    );

    // Unset options leave the databag.
    j.ok(&[
        "config",
        "smtp-integrator",
        "password=",
        "user=",
        "auth_type=none",
    ]);
    let bag = j.app_databag("smtp-integrator");
    assert!(
        !bag.contains_key("password_id") && !bag.contains_key("user"),
        "{bag:?}"
    );
    assert_eq!(bag["auth_type"], "none");

    // Options are typed as the real charm's.
    for bad in [
        "auth_type=login",
        "transport_security=ssl",
        "port=x",
        "colour=blue",
    ] {
        let o = j.cmd(&["config", "smtp-integrator", bad]);
        assert!(!o.status.success(), "{bad} accepted");
    }

    // Without a host it withdraws everything and is blocked again.
    j.ok(&["config", "smtp-integrator", "host="]);
    assert!(j.app_databag("smtp-integrator").is_empty());
    assert_eq!(j.status("smtp-integrator/0").0, "blocked");

    // `juju deploy --config` sets options at once.
    j.ok(&[
        "deploy",
        "smtp-integrator",
        "mail2",
        "--config",
        "host=mail.example.com",
    ]);
    assert_eq!(j.status("mail2/0").0, "active");
}

/// What the requirer logged, a line each.
fn requirer_log(j: &Juju) -> Vec<String> {
    std::fs::read_to_string(j.home().join("req.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
