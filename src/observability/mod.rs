//! Observability integrations: `metrics-endpoint` (prometheus_scrape provider),
//! `grafana-dashboard` (provider) and `logging` (loki_push_api requirer, through
//! Pebble log forwarding).
//!
//! What is sent is computed by pure functions ([`topology`], [`prometheus`],
//! [`grafana`], [`loki`]); [`reconcile`] reads the databags and plans, and writes only
//! what differs. It acts only on the events after which something can differ, so that
//! a steady-state dispatch (update-status) costs no hook-tool call.
//!
//! | Event | Work |
//! |---|---|
//! | `metrics-endpoint-relation-{created,joined,changed,departed}` | that relation: leader app keys, unit keys |
//! | `grafana-dashboard-relation-{created,joined,changed,departed}` | that relation: leader `dashboards` |
//! | `logging-relation-*` | log targets of both containers; leader `metadata` |
//! | `metrics-endpoint` / `grafana-dashboard` `-relation-broken` | the other relations of the endpoint |
//! | `database-relation-*`, `secret-*` | leader: `scrape_jobs` (the exporter may have started or stopped) |
//! | `leader-elected`, `upgrade-charm`, `start`, `synapse`/`synapse-nginx-pebble-ready` | everything |
//! | anything else (`update-status`, `config-changed`, …) | nothing |
//!
//! A relation being broken is excluded everywhere (Juju still lists it); Juju removes
//! the data we wrote in it by itself.

pub mod grafana;
pub mod loki;
pub mod prometheus;
pub mod topology;

#[cfg(test)]
pub(crate) mod tests;

use crate::juju::{Databag, Event, HookContext, HookTools, RelationHook, RelationId};
use crate::reconcile::ReconcileError;
use crate::workload::Workload;

pub use topology::Topology;

/// What the observability relations depend on besides the Juju model.
pub struct ObservabilityInputs<'a> {
    pub leader: bool,
    /// The stats exporter runs (Synapse is on PostgreSQL and this is the main unit).
    pub exporter: bool,
    /// The exporter started or stopped in this dispatch (the scrape jobs follow).
    pub exporter_changed: bool,
    pub synapse: &'a dyn Workload,
    pub nginx: &'a dyn Workload,
}

/// Which relations of an endpoint to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// The relation of this event only (the others cannot have changed).
    This(RelationId),
    /// Every relation of the endpoint (`relation-ids`), the broken one excluded.
    All,
}

/// The work one event calls for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Work {
    metrics: Option<Scope>,
    /// With `metrics`: the unit databag too (not only the leader's app keys).
    metrics_unit: bool,
    dashboards: Option<Scope>,
    logging: bool,
}

impl Work {
    fn everything() -> Self {
        Self {
            metrics: Some(Scope::All),
            metrics_unit: true,
            dashboards: Some(Scope::All),
            logging: true,
        }
    }

    fn for_event(event: &Event) -> Self {
        match event {
            Event::Relation { hook, relation, .. } => {
                let scope = if *hook == RelationHook::Broken {
                    Scope::All
                } else {
                    Scope::This(relation.clone())
                };
                match relation.endpoint.as_str() {
                    prometheus::ENDPOINT => Self {
                        metrics: Some(scope),
                        metrics_unit: true,
                        ..Self::default()
                    },
                    grafana::ENDPOINT => Self {
                        dashboards: Some(scope),
                        ..Self::default()
                    },
                    loki::ENDPOINT => Self {
                        logging: true,
                        ..Self::default()
                    },
                    crate::database::relation::ENDPOINT => Self {
                        metrics: Some(Scope::All),
                        ..Self::default()
                    },
                    _ => Self::default(),
                }
            }
            Event::Secret { .. } => Self {
                metrics: Some(Scope::All),
                ..Self::default()
            },
            Event::LeaderElected | Event::UpgradeCharm | Event::Start => Self::everything(),
            // Pebble lost its layers (log targets included) with the container.
            Event::PebbleReady { container }
                if container == crate::synapse::layer::CONTAINER
                    || container == crate::nginx::CONTAINER =>
            {
                Self::everything()
            }
            _ => Self::default(),
        }
    }
}

/// The relation this event breaks, and the remote unit it says is leaving.
struct Leaving<'a> {
    broken: Option<&'a RelationId>,
    departing: Option<(&'a RelationId, &'a str)>,
}

impl<'a> Leaving<'a> {
    fn of(event: &'a Event) -> Self {
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

fn relations(
    tools: &dyn HookTools,
    endpoint: &str,
    scope: &Scope,
    leaving: &Leaving,
) -> Result<Vec<RelationId>, ReconcileError> {
    let all = match scope {
        Scope::This(r) => vec![r.clone()],
        Scope::All => tools.relation_ids(endpoint)?,
    };
    Ok(all
        .into_iter()
        .filter(|r| Some(r) != leaving.broken)
        .collect())
}

/// Writes the keys of `desired` that `current` does not already hold.
fn write_differences(
    tools: &dyn HookTools,
    relation: &RelationId,
    app: bool,
    current: &Databag,
    desired: &Databag,
) -> Result<(), ReconcileError> {
    let changed: Databag = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        tracing::info!(
            relation = %relation,
            keys = ?changed.keys().collect::<Vec<_>>(),
            app,
            "updating observability relation data"
        );
        tools.relation_set(relation, app, &changed)?;
    }
    Ok(())
}

/// Brings the observability relations' databags (and log forwarding) in line.
fn work_for(event: &Event, exporter_changed: bool) -> Work {
    let mut work = Work::for_event(event);
    if exporter_changed && work.metrics.is_none() {
        work.metrics = Some(Scope::All);
    }
    work
}

/// Whether [`reconcile`] has anything to do for this event (so the caller can avoid
/// asking for leadership when it does not).
pub fn acts_on(event: &Event, exporter_changed: bool) -> bool {
    work_for(event, exporter_changed) != Work::default()
}

pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    inputs: &ObservabilityInputs,
) -> Result<(), ReconcileError> {
    let work = work_for(&ctx.event, inputs.exporter_changed);
    if work == Work::default() {
        return Ok(());
    }
    let topology = Topology::from_context(ctx);
    let leaving = Leaving::of(&ctx.event);
    if let Some(scope) = &work.metrics {
        if inputs.leader || work.metrics_unit {
            let rels = relations(tools, prometheus::ENDPOINT, scope, &leaving)?;
            reconcile_metrics(ctx, tools, &topology, &rels, inputs, work.metrics_unit)?;
        }
    }
    if let (Some(scope), true) = (&work.dashboards, inputs.leader) {
        let rels = relations(tools, grafana::ENDPOINT, scope, &leaving)?;
        reconcile_dashboards(ctx, tools, &topology, &rels)?;
    }
    if work.logging {
        reconcile_logging(ctx, tools, &topology, inputs, &leaving)?;
    }
    Ok(())
}

fn reconcile_metrics(
    ctx: &HookContext,
    tools: &dyn HookTools,
    topology: &Topology,
    rels: &[RelationId],
    inputs: &ObservabilityInputs,
    unit_keys: bool,
) -> Result<(), ReconcileError> {
    if rels.is_empty() {
        return Ok(());
    }
    if inputs.leader {
        let desired = prometheus::app_bag(topology, inputs.exporter);
        for rel in rels {
            let current = tools.relation_get(rel, &ctx.app_name, true)?;
            write_differences(tools, rel, true, &current, &desired)?;
        }
    }
    if unit_keys {
        let address = tools.network_get(prometheus::ENDPOINT)?.bind_address;
        let desired = prometheus::unit_bag(topology, address.as_deref());
        for rel in rels {
            let current = tools.relation_get(rel, &ctx.unit_name, false)?;
            write_differences(tools, rel, false, &current, &desired)?;
        }
    }
    Ok(())
}

fn reconcile_dashboards(
    ctx: &HookContext,
    tools: &dyn HookTools,
    topology: &Topology,
    rels: &[RelationId],
) -> Result<(), ReconcileError> {
    if rels.is_empty() {
        return Ok(());
    }
    let wanted = match grafana::decoded_templates(topology) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("not sending the Grafana dashboards: {e}");
            return Ok(());
        }
    };
    let mut document: Option<String> = None;
    for rel in rels {
        let current = tools.relation_get(rel, &ctx.app_name, true)?;
        if grafana::same_templates(
            current.get(grafana::DASHBOARDS).map(String::as_str),
            &wanted,
        ) {
            continue;
        }
        if document.is_none() {
            match grafana::dashboards(topology) {
                Ok(d) => document = Some(d),
                Err(e) => {
                    tracing::error!("not sending the Grafana dashboards: {e}");
                    return Ok(());
                }
            }
        }
        if let Some(d) = &document {
            tracing::info!(relation = %rel, "sending the Grafana dashboards");
            tools.relation_set(
                rel,
                true,
                &Databag::from([(grafana::DASHBOARDS.to_string(), d.clone())]),
            )?;
        }
    }
    Ok(())
}

fn reconcile_logging(
    ctx: &HookContext,
    tools: &dyn HookTools,
    topology: &Topology,
    inputs: &ObservabilityInputs,
    leaving: &Leaving,
) -> Result<(), ReconcileError> {
    let rels = relations(tools, loki::ENDPOINT, &Scope::All, leaving)?;
    let mut loki_units = Vec::new();
    for rel in &rels {
        for unit in tools.relation_list(rel)? {
            if leaving.departing == Some((rel, unit.as_str())) {
                continue;
            }
            match loki::endpoint_url(&tools.relation_get(rel, &unit, false)?) {
                Some(url) => loki_units.push((unit, url)),
                None => tracing::debug!(%unit, "Loki unit without a push endpoint yet"),
            }
        }
        if inputs.leader {
            let current = tools.relation_get(rel, &ctx.app_name, true)?;
            let desired = Databag::from([(loki::METADATA.to_string(), topology.to_json())]);
            write_differences(tools, rel, true, &current, &desired)?;
        }
    }
    for (container, w) in [
        (crate::synapse::layer::CONTAINER, inputs.synapse),
        (crate::nginx::CONTAINER, inputs.nginx),
    ] {
        apply_log_targets(container, w, topology, &loki_units)?;
    }
    Ok(())
}

fn apply_log_targets(
    container: &str,
    w: &dyn Workload,
    topology: &Topology,
    loki_units: &[(String, String)],
) -> Result<(), ReconcileError> {
    let err = |source: pebble::Error| ReconcileError::Pebble {
        container: container.to_string(),
        source: Box::new(source),
    };
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => {
            // Its pebble-ready will come and bring the log targets.
            tracing::debug!(container, "Pebble not reachable: log targets later");
            return Ok(());
        }
        Err(e) => return Err(err(e)),
    };
    let desired = loki::log_targets(topology, loki_units, &plan.log_targets);
    if !loki::differs(&plan, &desired) {
        return Ok(());
    }
    tracing::info!(
        container,
        targets = ?desired.log_targets.iter().map(|(n, t)| format!("{n}:{}", t.services.join(","))).collect::<Vec<_>>(),
        "updating Loki log forwarding"
    );
    // Log targets take effect when the layer is added: no replan (which would also
    // start or restart services this module does not own).
    w.add_layer(loki::LAYER_LABEL, &desired).map_err(err)
}
