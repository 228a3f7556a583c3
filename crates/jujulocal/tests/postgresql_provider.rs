//! `juju deploy postgresql-k8s` deploys JujuLocal's stand-in: a played provider backed
//! by a real PostgreSQL. A tiny shell requirer asks for a database the way the
//! data-platform lib does; the stand-in answers with a role, the database and a
//! credentials secret granted to the relation, and psql logs in with them.

use std::path::{Path, PathBuf};
use std::process::Command;

use jujulocal::Controller;

mod support;
use support::{shell_charm, Juju};

/// A requirer: its leader asks for database `app` with SUPERUSER when the relation is
/// created, and reports active once the provider answered.
fn requirer_charm(dir: &Path) -> PathBuf {
    let dispatch = r#"#!/bin/sh
set -e
case "$JUJU_DISPATCH_PATH" in
  hooks/database-relation-created)
    case "$(is-leader)" in
      [Tt]rue) relation-set -r "$JUJU_RELATION_ID" --app database=app \
        'requested-secrets=["username","password","tls","tls-ca","uris"]' \
        extra-user-roles=SUPERUSER ;;
    esac ;;
  hooks/database-relation-changed)
    if [ -n "$(relation-get -r "$JUJU_RELATION_ID" --app secret-user "$JUJU_REMOTE_APP")" ]; then
      status-set active 'database ready'
      exit 0
    fi ;;
esac
status-set waiting 'waiting for a database'
"#;
    shell_charm(
        dir,
        "req",
        "name: req\nrequires:\n  database:\n    interface: postgresql_client\n    limit: 1\n",
        dispatch,
    )
}

#[test]
fn deploy_postgresql_k8s_answers_database_requests_with_a_real_server() {
    if !Path::new("/usr/lib/postgresql").is_dir() {
        eprintln!("skipped: no PostgreSQL under /usr/lib/postgresql");
        return;
    }
    let j = Juju::new("jujupg");
    j.ok(&["add-model", "m1"]);
    let charm = requirer_charm(j.home());
    j.ok(&["deploy", &charm.display().to_string(), "req"]);
    j.ok(&["deploy", "postgresql-k8s", "--trust"]);
    j.ok(&["integrate", "req:database", "postgresql-k8s:database"]);

    std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"));
    let c = Controller::open(&j.model_dir()).unwrap();
    let rel = c
        .model
        .relations
        .iter()
        .find(|r| r.end_for("postgresql-k8s").is_some())
        .unwrap();
    let answer = rel
        .app_data
        .get("postgresql-k8s")
        .cloned()
        .unwrap_or_default();
    assert_eq!(answer.get("database").map(String::as_str), Some("app"));
    let endpoint = answer.get("endpoints").unwrap().clone();
    let (host, port) = endpoint.split_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    assert!(answer.get("version").is_some_and(|v| !v.is_empty()));
    assert!(
        !answer.contains_key("password"),
        "credentials go in a secret"
    );
    let uri = answer.get("secret-user").unwrap();
    let id = uri.strip_prefix("secret:").unwrap();
    let secret = c.model.secrets.get(id).unwrap();
    assert_eq!(secret.owner, "postgresql-k8s");
    assert!(secret
        .grants
        .iter()
        .any(|g| g.relation_id == rel.id && g.app == "req"));
    let content = &secret.latest().unwrap().content;
    let user = content["username"].clone();
    assert_eq!(user, format!("relation_id_{}", rel.id));
    let password = content["password"].clone();
    assert_eq!(
        content["uris"],
        format!("postgresql://{user}:{password}@{endpoint}/app")
    );
    // The requirer read the answer (relation-changed reached it).
    let status = j.ok(&["status"]);
    assert!(status.contains("database ready"), "{status}");

    // psql logs in over TCP with those credentials; the role is a superuser and owns
    // the database, whose collation is not C.
    let psql = |password: &str, sql: &str| {
        Command::new(
            std::fs::read_dir("/usr/lib/postgresql")
                .unwrap()
                .flatten()
                .map(|e| e.path().join("bin/psql"))
                .find(|p| p.is_file())
                .unwrap(),
        )
        .args([
            "-X", "-At", "-h", host, "-p", port, "-U", &user, "-d", "app", "-c", sql,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap()
    };
    let out = psql(
        &password,
        "SELECT current_user, rolsuper, pg_get_userbyid(datdba), datcollate \
         FROM pg_roles, pg_database WHERE rolname = current_user AND datname = 'app'",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let fields: Vec<&str> = row.split('|').collect();
    assert_eq!(&fields[..3], &[user.as_str(), "t", user.as_str()], "{row}");
    assert_ne!(fields[3], "C", "{row}");
    assert!(!psql("wrong", "SELECT 1").status.success());

    // Removing the application stops the server.
    j.ok(&["remove-application", "postgresql-k8s"]);
    let out = psql(&password, "SELECT 1");
    assert!(!out.status.success(), "the server still answers");
    assert!(!j.model_dir().join("providers/postgresql-k8s.json").exists());

    // Destroying the model stops a stand-in's server too.
    j.ok(&["deploy", "postgresql-k8s", "db"]);
    let c = Controller::open(&j.model_dir()).unwrap();
    let cluster = jujulocal::controller::providers::postgresql::cluster_of(&c, "db").unwrap();
    assert!(cluster.psql("SELECT 1").is_ok());
    j.ok(&["destroy-model", "m1", "--no-prompt"]);
    assert!(cluster.psql("SELECT 1").is_err());
    assert!(!cluster.dir.exists());
}
