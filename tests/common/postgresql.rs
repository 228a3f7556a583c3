//! Plays postgresql-k8s for the end-to-end tests: answers the charm's database request.
//!
//! Not part of `common` (it needs the PostgreSQL harness): a test that uses it includes
//! it next to `common` and the harness, at the root of the test crate:
//!
//! ```ignore
//! mod common;
//! #[path = "../crates/stats-exporter/tests/common/postgres.rs"]
//! mod postgres;
//! #[path = "common/postgresql.rs"]
//! mod postgresql;
//! ```

use std::collections::BTreeMap;

use crate::common::TestModel;
use crate::postgres;

fn bag(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Plays postgresql-k8s: answers the charm's request the way that charm does (a role
/// named after the relation, the requested database with the cluster's default
/// locale, credentials in a secret granted to the relation).
pub fn provide(m: &mut TestModel, pg: &postgres::Pg, rel: u64, create: bool) -> (String, String) {
    let request =
        m.c.model
            .relation(rel)
            .unwrap()
            .app_data
            .get("synapse")
            .cloned()
            .unwrap_or_default();
    assert_eq!(
        request.get("database").map(String::as_str),
        Some("synapse"),
        "the leader asks for a database: {request:?}"
    );
    assert_eq!(
        request.get("extra-user-roles").map(String::as_str),
        Some("SUPERUSER")
    );
    assert!(request
        .get("requested-secrets")
        .unwrap()
        .contains("\"password\""));
    let user = format!("relation_id_{rel}");
    let password = format!("pw-{rel}-{}", std::process::id());
    pg.create_role(&user, &password, true);
    if create {
        pg.create_database("synapse", &user);
    } else {
        pg.psql(&format!("ALTER DATABASE synapse OWNER TO {user}"));
    }
    let uri =
        m.c.played_secret_add(
            "postgresql-k8s",
            &bag(&[
                ("username", &user),
                ("password", &password),
                (
                    "uris",
                    &format!(
                        "postgresql://{user}:{password}@127.0.0.1:{}/synapse",
                        pg.port()
                    ),
                ),
            ]),
            None,
        )
        .unwrap();
    m.c.played_secret_grant(&uri, rel).unwrap();
    m.c.played_relation_set(
        rel,
        "postgresql-k8s",
        &bag(&[
            ("endpoints", &format!("127.0.0.1:{}", pg.port())),
            ("database", "synapse"),
            ("secret-user", &uri),
            ("version", "15"),
        ]),
    )
    .unwrap();
    (uri, password)
}

/// Adds the played postgresql-k8s and integrates it: the charm's request is then in
/// the relation, waiting for [`provide`]. Returns the relation id.
pub fn integrate(m: &mut TestModel) -> u64 {
    if !m.c.model.applications.contains_key("postgresql-k8s") {
        m.c.add_played(
            "postgresql-k8s",
            &[(
                "database".into(),
                "postgresql_client".into(),
                jujulocal::meta::Role::Provides,
            )],
            1,
        )
        .unwrap();
    }
    m.c.integrate("synapse:database", "postgresql-k8s:database")
        .unwrap()
}
