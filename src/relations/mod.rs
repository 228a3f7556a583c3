//! The integrations: one module per endpoint family. Each has a typed view of what
//! the remote side sent (parsed with clear errors) and a typed value for what this
//! charm publishes; publishing goes through [`publish`], which writes only what changed.
//!
//! | Module | Endpoints |
//! |---|---|
//! | [`database`] | `database` (postgresql_client requirer) |
//! | [`observability`] | `metrics-endpoint`, `grafana-dashboard`, `logging` |
//! | [`ingress`] | `ingress` (traefik-k8s), `nginx-route` (nginx-ingress-integrator) |
//! | [`smtp`] | `smtp` (smtp-integrator's `smtp` requirer) |
//! | [`matrix_auth`] | `matrix-auth` (provider): bridges' appservice registrations |
//! | [`media`] | `media` (s3 requirer): Synapse's media in an S3 bucket |
//! | [`backup`] | `backup` (s3 requirer): the bucket of the backup actions |
//! | [`redis`] | `redis` (redis-k8s requirer): Redis for Synapse workers |
//! | [`s3`] | the `s3` interface shared by `media` and `backup` (s3-integrator requirer) |
//!
//! Which event calls for which work is decided in one place: [`crate::charm::work`].

pub mod backup;
pub mod database;
pub mod ingress;
pub mod matrix_auth;
pub mod media;
pub mod observability;
pub mod redis;
pub mod s3;
pub mod smtp;

use crate::juju::{Databag, Event, HookTools, RelationHook, RelationId, ToolResult};

/// The keys of `desired` whose value differs from `current` (pure): what a
/// `relation-set` must carry. An empty desired value deletes a key, as in Juju.
pub fn changes(current: &Databag, desired: &Databag) -> Databag {
    desired
        .iter()
        .filter(|(k, v)| match current.get(*k) {
            Some(c) => c != *v,
            None => !v.is_empty(),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The keys of `current` that `owned` names but `desired` no longer has, set to ""
/// (deleted): for publishers that own a fixed key set and must remove stale keys.
pub fn stale(current: &Databag, desired: &Databag, owned: &[&str]) -> Databag {
    owned
        .iter()
        .filter(|k| current.contains_key(**k) && !desired.contains_key(**k))
        .map(|k| (k.to_string(), String::new()))
        .collect()
}

/// Writes what differs between the databag as read (`current`) and `desired`: this
/// unit's bag, or with `app` the application's (leader only). Returns whether it wrote.
pub fn publish(
    tools: &dyn HookTools,
    relation: &RelationId,
    app: bool,
    current: &Databag,
    desired: &Databag,
) -> ToolResult<bool> {
    let changed = changes(current, desired);
    if changed.is_empty() {
        return Ok(false);
    }
    tracing::info!(
        relation = %relation,
        keys = ?changed.keys().collect::<Vec<_>>(),
        app,
        "updating relation data"
    );
    tools.relation_set(relation, app, &changed)?;
    Ok(true)
}

/// A typed value an integration publishes in one databag. It owns `KEYS`: a key it
/// no longer sets is deleted (Juju keeps databag keys until they are set empty).
pub trait Publish {
    const KEYS: &'static [&'static str];
    fn to_databag(&self) -> Databag;
}

/// Publishes `value`: writes what differs and deletes the owned keys it dropped.
pub fn publish_value<P: Publish>(
    tools: &dyn HookTools,
    relation: &RelationId,
    app: bool,
    current: &Databag,
    value: &P,
) -> ToolResult<bool> {
    let mut desired = value.to_databag();
    let gone = stale(current, &desired, P::KEYS);
    desired.extend(gone);
    publish(tools, relation, app, current, &desired)
}

/// Which relations of an endpoint an event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The relation of this event only (the others cannot have changed).
    This(RelationId),
    /// Every relation of the endpoint (`relation-ids`), the broken one excluded.
    All,
}

impl Scope {
    /// The relation of a relation event, or all of them when it is being broken.
    pub fn of(hook: RelationHook, relation: &RelationId) -> Self {
        if hook == RelationHook::Broken {
            Scope::All
        } else {
            Scope::This(relation.clone())
        }
    }
}

/// The relation this event breaks, and the remote unit it says is leaving: Juju still
/// lists both during the hook, so readers leave them out.
#[derive(Debug, Clone, Copy)]
pub struct Leaving<'a> {
    pub broken: Option<&'a RelationId>,
    pub departing: Option<(&'a RelationId, &'a str)>,
}

impl<'a> Leaving<'a> {
    pub fn of(event: &'a Event) -> Self {
        match event {
            Event::Relation {
                hook,
                relation,
                departing_unit,
                ..
            } => Self {
                broken: (*hook == RelationHook::Broken).then_some(relation),
                departing: departing_unit.as_deref().map(|u| (relation, u)),
            },
            _ => Self {
                broken: None,
                departing: None,
            },
        }
    }
}

/// The live relations of `endpoint` in `scope`.
pub fn relations(
    tools: &dyn HookTools,
    endpoint: &str,
    scope: &Scope,
    leaving: &Leaving,
) -> ToolResult<Vec<RelationId>> {
    let all = match scope {
        Scope::This(r) => vec![r.clone()],
        Scope::All => tools.relation_ids(endpoint)?,
    };
    Ok(all
        .into_iter()
        .filter(|r| Some(r) != leaving.broken)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_carry_only_what_differs() {
        let current = bag(&[("a", "1"), ("b", "2")]);
        assert_eq!(
            changes(&current, &bag(&[("a", "1"), ("b", "3"), ("c", "4")])),
            bag(&[("b", "3"), ("c", "4")])
        );
        assert!(changes(&current, &bag(&[("a", "1")])).is_empty());
        // Deleting a key that is there is a change; deleting one that is not, is not.
        assert_eq!(changes(&current, &bag(&[("a", "")])), bag(&[("a", "")]));
        assert!(changes(&current, &bag(&[("z", "")])).is_empty());
    }

    #[test]
    fn stale_keys_are_deleted_only_when_owned() {
        let current = bag(&[("a", "1"), ("b", "2"), ("theirs", "x")]);
        let desired = bag(&[("a", "1")]);
        assert_eq!(
            stale(&current, &desired, &["a", "b", "c"]),
            bag(&[("b", "")])
        );
    }
}
