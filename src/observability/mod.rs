//! Observability integrations: `metrics-endpoint` (prometheus_scrape provider),
//! `grafana-dashboard` (provider) and `logging` (loki_push_api requirer, through
//! Pebble log forwarding).

use crate::juju::{HookContext, HookTools};
use crate::reconcile::ReconcileError;
use crate::workload::Workload;

/// What the observability relations depend on besides the Juju model.
pub struct ObservabilityInputs<'a> {
    pub leader: bool,
    /// The stats exporter runs (Synapse is on PostgreSQL and this is the main unit).
    pub exporter: bool,
    pub synapse: &'a dyn Workload,
    pub nginx: &'a dyn Workload,
}

/// Brings the observability relations' databags (and log forwarding) in line.
pub fn reconcile(
    _ctx: &HookContext,
    _tools: &dyn HookTools,
    _inputs: &ObservabilityInputs,
) -> Result<(), ReconcileError> {
    Ok(())
}
