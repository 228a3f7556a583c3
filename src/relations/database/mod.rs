//! The `database` integration (postgresql_client requirer): the request, the typed
//! answer of the provider ([`relation`]), preparing a provided database ([`postgres`]),
//! and looking into the embedded SQLite default before leaving it ([`sqlite`]).
//!
//! A marker on the data volume records that Synapse has run on PostgreSQL: from then
//! on it never falls back to SQLite, even when the integration is removed.

pub mod postgres;
pub mod relation;
pub mod sqlite;

use std::path::Path;

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::tools::SecretRead;
use crate::juju::{Event, HookContext, HookTools, RelationId};
use crate::status::Progress;
use postgres::{DbError, Locale};
pub use relation::{DatabaseInfo, Provided, ENDPOINT};

/// A file on the data volume recording that Synapse has run on PostgreSQL. It lives
/// with the data it protects.
pub const BACKEND_MARKER: &str = ".charm-database-backend";

/// Whether Synapse has run on PostgreSQL with the data on this volume.
pub fn ran_on_postgres(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join(BACKEND_MARKER)).is_ok_and(|s| s.trim() == "postgresql")
}

/// Records that Synapse now runs on PostgreSQL.
pub fn mark_postgres(data_dir: &Path) -> std::io::Result<()> {
    std::fs::write(data_dir.join(BACKEND_MARKER), "postgresql\n")
}

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Look the relation id up again: the relation may have appeared or gone.
    pub lookup: bool,
    /// Leader: make sure the request is in the application databag.
    pub request: bool,
    /// The provider's answer (or its secret) may differ from what Synapse runs with.
    pub answer_may_change: bool,
}

/// The `database` relation, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    /// No relation: SQLite.
    None,
    /// Related; the answer is read lazily (it changes only with relation or secret events).
    Related { relation: RelationId },
}

/// Finds the relation (its id is remembered between dispatches and looked up again
/// only when `work` says so; a relation being broken counts as gone), and has the
/// leader ask the provider for the database.
pub fn relation(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    hints: &mut UnitHints,
) -> CharmResult<Db> {
    if work.lookup || hints.database_relation.is_none() {
        let broken = crate::relations::Leaving::of(&ctx.event).broken;
        let id = tools
            .relation_ids(ENDPOINT)?
            .into_iter()
            .find(|r| Some(r) != broken);
        hints.database_relation = Some(id.map(|r| r.to_string()).unwrap_or_default());
    }
    let Some(relation) = hints
        .database_relation
        .as_deref()
        .and_then(RelationId::parse)
    else {
        return Ok(Db::None);
    };
    if work.request && tools.is_leader()? {
        let own = tools.relation_get(&relation, &ctx.app_name, true)?;
        if crate::relations::publish_value(tools, &relation, true, &own, &relation::request())? {
            tracing::info!("asked the database integration for a database");
        }
    }
    Ok(Db::Related { relation })
}

/// Reads the provider's answer: endpoints, database and credentials.
pub fn read_provided(
    ctx: &HookContext,
    tools: &dyn HookTools,
    rel: &RelationId,
) -> CharmResult<Provided> {
    let Some(remote) = tools.relation_remote_app(rel)? else {
        return Ok(Provided::Pending("the provider"));
    };
    let bag = tools.relation_get(rel, &remote, true)?;
    let secret = match bag.get("secret-user") {
        Some(uri) => {
            // Follow the provider's rotations when it tells us (secret-changed).
            let refresh =
                matches!(&ctx.event, Event::Secret { id, .. } if crate::util::same_secret(id, uri));
            let mode = if refresh {
                SecretRead::Refresh
            } else {
                SecretRead::Pinned
            };
            match tools.secret_get(Some(uri), None, mode) {
                Ok(content) => Some(content),
                // Missing, not granted to us, or gone: the provider's data is unusable
                // for now; every other part of the charm keeps working.
                Err(e) if e.kind != crate::juju::ToolErrorKind::Spawn => {
                    return Ok(Provided::Invalid(crate::util::bounded(&format!(
                        "its credentials secret cannot be read ({})",
                        e.message
                    ))))
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => None,
    };
    Ok(relation::provided(&bag, secret.as_ref()))
}

/// Before Synapse, which has run on PostgreSQL (the volume says so), is pointed at a
/// database other than the one it ran on: never bring it up on a database without its
/// data. `None` when it can go ahead.
pub fn check_return_to_postgres(info: &DatabaseInfo) -> Option<Progress> {
    let found = match postgres::inspect(info) {
        Ok(found) => found,
        Err(e @ DbError::Query(_)) => {
            return Some(Progress::Blocked(format!(
                "inspecting the database failed: {e}"
            )))
        }
        Err(e) => return Some(Progress::Waiting(format!("{e}"))),
    };
    if !found.synapse_schema {
        return Some(Progress::Blocked(format!(
            "database {:?} holds no Synapse data, but Synapse's data was in PostgreSQL: integrate the database that holds it, or restore it from a backup; to start over with an empty database, remove /data/{BACKEND_MARKER} (see docs/how-to/postgresql.md)",
            info.database
        )));
    }
    if found.collate != "C" || found.ctype != "C" {
        return Some(Progress::Blocked(format!(
            "database {:?} has collation {:?} and ctype {:?}; Synapse needs \"C\": recreate it with LC_COLLATE and LC_CTYPE \"C\" and restore Synapse's data into it (see docs/how-to/postgresql.md)",
            info.database, found.collate, found.ctype
        )));
    }
    None
}

/// Before moving from SQLite to PostgreSQL: never leave users or rooms behind, and give
/// an empty provided database the `C` locale Synapse requires. `None` when the move
/// can go ahead.
pub fn check_switch_to_postgres(data_dir: &Path, info: &DatabaseInfo) -> Option<Progress> {
    // The locale first: an empty database gets `C` even if SQLite still holds data, so
    // that synapse_port_db can migrate into it.
    match postgres::prepare(info) {
        Ok(Locale::Ready) => {}
        Ok(Locale::Switched { from }) => {
            tracing::info!(%from, "gave the empty database the C locale Synapse requires");
        }
        Ok(Locale::Unsafe { collate, ctype, tables }) => {
            return Some(Progress::Blocked(format!(
                "database {:?} has collation {collate:?} and ctype {ctype:?} and already holds {tables} tables; Synapse needs \"C\": recreate it with LC_COLLATE and LC_CTYPE \"C\" (see docs/how-to/postgresql.md)",
                info.database
            )))
        }
        Err(e @ DbError::Query(_)) => {
            return Some(Progress::Blocked(format!("preparing the database failed: {e}")))
        }
        Err(e) => return Some(Progress::Waiting(format!("{e}"))),
    }
    match sqlite::contents(&data_dir.join("homeserver.db")) {
        Ok(Some(c)) if !c.is_empty() => Some(Progress::Blocked(format!(
            "the SQLite database holds {} users and {} rooms: migrate them with synapse_port_db, then move /data/homeserver.db aside (see docs/how-to/postgresql.md)",
            c.users, c.rooms
        ))),
        Ok(_) => None,
        Err(e) => Some(Progress::Blocked(format!(
            "cannot read the SQLite database to check for data: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::work::Work as EventWork;
    use crate::juju::RelationHook;
    use crate::relations::Publish;
    use crate::testing::juju::{APP, UNIT};
    use crate::testing::Juju;

    fn db() -> RelationId {
        RelationId {
            endpoint: ENDPOINT.into(),
            id: 1,
        }
    }

    fn joined() -> Event {
        Event::Relation {
            hook: RelationHook::Joined,
            relation: db(),
            remote_app: Some("postgresql-k8s".into()),
            remote_unit: Some("postgresql-k8s/0".into()),
            departing_unit: None,
        }
    }

    fn run(j: &mut Juju, unit: &str, event: Event, hints: &mut UnitHints) -> Db {
        j.hook(unit, event, |ctx, tools| {
            relation(
                ctx,
                tools,
                &EventWork::for_event(&ctx.event).database,
                hints,
            )
        })
        .unwrap()
    }

    #[test]
    fn the_leader_asks_once_and_other_units_never() {
        let mut j = Juju::new();
        let other = j.add_unit();
        j.relate(&db(), "postgresql-k8s", &["postgresql-k8s/0"]);
        let mut hints = UnitHints::default();
        assert_eq!(
            run(&mut j, UNIT, joined(), &mut hints),
            Db::Related { relation: db() }
        );
        assert_eq!(j.app_data(&db(), APP), relation::request().to_databag());
        j.take_sets();
        // Again: already there, nothing written; another unit writes nothing either.
        run(&mut j, UNIT, joined(), &mut hints);
        run(&mut j, &other, joined(), &mut UnitHints::default());
        assert!(j.take_sets().is_empty());
    }

    #[test]
    fn a_relation_being_broken_counts_as_gone_and_is_remembered() {
        let mut j = Juju::new();
        j.relate(&db(), "postgresql-k8s", &["postgresql-k8s/0"]);
        let mut hints = UnitHints::default();
        run(&mut j, UNIT, joined(), &mut hints);
        let broken = Event::Relation {
            hook: RelationHook::Broken,
            relation: db(),
            remote_app: Some("postgresql-k8s".into()),
            remote_unit: None,
            departing_unit: None,
        };
        assert_eq!(run(&mut j, UNIT, broken, &mut hints), Db::None);
        j.remove_relation(&db());
        j.take_tool_names();
        // Remembered: a quiet event does not look the relation up again.
        assert_eq!(run(&mut j, UNIT, Event::UpdateStatus, &mut hints), Db::None);
        assert!(j.take_tool_names().is_empty());
    }
}

#[cfg(test)]
mod provider_tests {
    use super::*;
    use crate::juju::RelationHook;
    use crate::testing::juju::UNIT;
    use crate::testing::Juju;

    #[test]
    fn an_ungranted_credentials_secret_is_invalid_data_not_a_failed_hook() {
        let db = RelationId {
            endpoint: ENDPOINT.into(),
            id: 1,
        };
        let mut j = Juju::new();
        j.relate(&db, "postgresql-k8s", &["postgresql-k8s/0"]);
        // The provider names a secret it never granted to this relation.
        let uri = j.add_secret(
            "postgresql-k8s",
            None,
            &[("username", "u"), ("password", "p")],
            None,
        );
        j.set_app_data(
            &db,
            "postgresql-k8s",
            &[
                ("endpoints", "10.0.0.9:5432"),
                ("database", "synapse"),
                ("secret-user", &uri),
            ],
        );
        let event = Event::Relation {
            hook: RelationHook::Changed,
            relation: db.clone(),
            remote_app: Some("postgresql-k8s".into()),
            remote_unit: Some("postgresql-k8s/0".into()),
            departing_unit: None,
        };
        let got = j
            .hook(UNIT, event, |ctx, tools| read_provided(ctx, tools, &db))
            .unwrap();
        let Provided::Invalid(msg) = got else {
            panic!("{got:?}")
        };
        assert!(
            msg.starts_with("its credentials secret cannot be read"),
            "{msg}"
        );
    }
}
