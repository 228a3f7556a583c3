//! Observability integrations: `metrics-endpoint` (prometheus_scrape provider),
//! `grafana-dashboard` (provider) and `logging` (loki_push_api requirer, through
//! Pebble log forwarding).
//!
//! What is sent is computed by pure functions ([`topology`], [`prometheus`],
//! [`grafana`], [`loki`]); [`reconcile`] reads the databags and plans, and writes only
//! what differs. Which events call for which of this work is said in
//! [`crate::charm::work`]: a steady-state dispatch (update-status) costs no hook-tool
//! call here. A relation being broken is excluded everywhere (Juju still lists it);
//! Juju removes the data we wrote in it by itself.

pub mod grafana;
pub mod loki;
pub mod prometheus;
pub mod topology;

#[cfg(test)]
pub(crate) mod tests;

use crate::error::{pebble_err, CharmResult};
use crate::juju::{Databag, HookContext, HookTools, RelationId};
use crate::relations::{publish, relations, Leaving, Scope};
use crate::workload::Workload;

pub use topology::Topology;

/// What the observability relations depend on besides the Juju model.
pub struct ObservabilityInputs<'a> {
    pub leader: bool,
    /// The stats exporter runs (Synapse is on PostgreSQL and this is the main unit).
    pub exporter: bool,
    pub synapse: &'a dyn Workload,
    pub nginx: &'a dyn Workload,
}

/// The work one event calls for (see [`crate::charm::work`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    pub metrics: Option<Scope>,
    /// With `metrics`: the unit databag too (not only the leader's app keys).
    pub metrics_unit: bool,
    pub dashboards: Option<Scope>,
    pub logging: bool,
}

impl Work {
    pub fn everything() -> Self {
        Self {
            metrics: Some(Scope::All),
            metrics_unit: true,
            dashboards: Some(Scope::All),
            logging: true,
        }
    }

    /// The work plus what a started or stopped exporter calls for: the scrape jobs.
    pub fn with_exporter_changed(mut self, changed: bool) -> Self {
        if changed && self.metrics.is_none() {
            self.metrics = Some(Scope::All);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Brings the observability relations' databags (and log forwarding) in line.
pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    inputs: &ObservabilityInputs,
) -> CharmResult<()> {
    if work.is_empty() {
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
) -> CharmResult<()> {
    if rels.is_empty() {
        return Ok(());
    }
    if inputs.leader {
        let desired = prometheus::app_bag(topology, inputs.exporter);
        for rel in rels {
            let current = tools.relation_get(rel, &ctx.app_name, true)?;
            publish(tools, rel, true, &current, &desired)?;
        }
    }
    if unit_keys {
        let address = tools.network_get(prometheus::ENDPOINT)?.bind_address;
        let desired = prometheus::unit_bag(topology, address.as_deref());
        for rel in rels {
            let current = tools.relation_get(rel, &ctx.unit_name, false)?;
            publish(tools, rel, false, &current, &desired)?;
        }
    }
    Ok(())
}

fn reconcile_dashboards(
    ctx: &HookContext,
    tools: &dyn HookTools,
    topology: &Topology,
    rels: &[RelationId],
) -> CharmResult<()> {
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
) -> CharmResult<()> {
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
            publish(tools, rel, true, &current, &desired)?;
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
) -> CharmResult<()> {
    let err = pebble_err(container);
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
    match w.add_layer(loki::LAYER_LABEL, &desired) {
        // Gone mid-hook: its pebble-ready will bring the log targets.
        Err(e) if e.is_connect() => {
            tracing::warn!(container, "Pebble went away: log targets later");
            Ok(())
        }
        other => other.map_err(&err),
    }
}
