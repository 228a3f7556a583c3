//! One dispatch: route the event to an action or to the reconcile, then report the
//! status. [`work`] says which event calls for which work; [`reconcile`] runs the
//! concerns in order.

pub mod reconcile;
pub mod work;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bad_configs;

#[cfg(test)]
mod expose_tests;

#[cfg(test)]
mod scale_tests;

use std::path::Path;

use crate::error::CharmError;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, HookContext, HookTools};
use crate::workload::Workloads;

pub use crate::workload::PodWorkloads;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error(transparent)]
    Charm(#[from] CharmError),
}

/// Runs one dispatch against the given hook tools and workloads. `charm_dir` is where
/// the unit keeps its hints between dispatches (the hook's working directory).
pub fn dispatch(
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
    charm_dir: &Path,
) -> Result<(), DispatchError> {
    tracing::debug!(event = %ctx.event.name(), unit = %ctx.unit_name, "dispatch");
    match &ctx.event {
        Event::Unknown { path } => {
            tracing::info!(%path, "ignoring an event this charm does not know");
            return Ok(());
        }
        Event::Exec => return Ok(()),
        Event::Action { name, .. } if crate::actions::backup::ACTIONS.contains(&name.as_str()) => {
            crate::actions::backup::run(name, ctx, tools, workloads)?;
            if name == "restore-backup" {
                forget_start(charm_dir, &ctx.unit_name);
            }
            return Ok(());
        }
        Event::Action { name, .. } => {
            crate::actions::run(
                name,
                ctx,
                tools,
                &crate::synapse::admin::SynapseApi::local(),
            )?;
            return Ok(());
        }
        // Nothing to do while the unit goes away.
        Event::Stop | Event::Remove => return Ok(()),
        _ => {}
    }
    if work::Work::for_event(&ctx.event).open_port {
        // NGINX is the entry point: expose it on the application's Kubernetes service.
        tools.open_port(crate::nginx::PORT)?;
    }
    let hints_path = UnitHints::path(charm_dir, &ctx.unit_name);
    let mut hints = UnitHints::load(&hints_path);
    let before = hints.clone();
    let status = reconcile::reconcile(ctx, tools, workloads, &mut hints)?;
    tracing::info!(%status, "reconciled");
    // Status is shown at once and kept by Juju: set it only when it changes.
    let shown = status.to_string();
    if hints.status.as_deref() != Some(shown.as_str()) {
        tools.status_set(&status, false)?;
        hints.status = Some(shown);
    }
    if hints != before {
        hints.save(&hints_path);
    }
    Ok(())
}

/// A restore stops and starts Synapse: the charm's own restart, so Synapse's next
/// start time is not one to report as Pebble's.
fn forget_start(charm_dir: &Path, unit: &str) {
    let path = UnitHints::path(charm_dir, unit);
    let mut hints = UnitHints::load(&path);
    let watched = hints.watches.get_mut(crate::synapse::layer::CONTAINER);
    if watched.and_then(|w| w.since.take()).is_some() {
        hints.save(&path);
    }
}
