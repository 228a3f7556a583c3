//! One dispatch: route the event, reconcile, report the status.

use std::path::PathBuf;

use crate::juju::hints::UnitHints;
use crate::juju::{Event, HookContext, HookTools};
use crate::reconcile::{self, ReconcileError, Workloads};
use crate::workload::{PebbleWorkload, Workload};

/// The production workloads: Pebble sockets under /charm/containers and the `data`
/// storage mounted in the charm container at /data.
pub struct PodWorkloads {
    pub data_dir: PathBuf,
}

impl Default for PodWorkloads {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/data"),
        }
    }
}

impl Workloads for PodWorkloads {
    fn container(&self, name: &str) -> Box<dyn Workload + '_> {
        Box::new(PebbleWorkload::new(name))
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    fn own_data_dir(&self, uid: u32) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.data_dir)?;
        if meta.uid() != uid || meta.gid() != uid {
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(uid))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

/// Runs one dispatch against the given hook tools and workloads.
pub fn dispatch(
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
) -> Result<(), DispatchError> {
    tracing::debug!(event = %ctx.event.name(), unit = %ctx.unit_name, "dispatch");
    match &ctx.event {
        Event::Unknown { path } => {
            tracing::info!(%path, "ignoring an event this charm does not know");
            return Ok(());
        }
        Event::Exec => return Ok(()),
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
    if matches!(
        ctx.event,
        Event::Install | Event::UpgradeCharm | Event::Start
    ) {
        // NGINX is the entry point: expose it on the application's Kubernetes service.
        tools.open_port(crate::nginx::PORT)?;
    }
    let hints_path = UnitHints::path(&std::env::current_dir().unwrap_or_default(), &ctx.unit_name);
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
