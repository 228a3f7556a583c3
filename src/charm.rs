//! One dispatch: read the context, reconcile, report.

use crate::juju::{Event, HookContext, HookTools, Status};
use crate::synapse::config::SynapseConfig;

/// What the process should do when the dispatch ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: done (possibly with a blocked/waiting status).
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
}

/// Runs one dispatch against the given hook tools.
pub fn dispatch(ctx: &HookContext, tools: &dyn HookTools) -> Result<Outcome, DispatchError> {
    tracing::debug!(event = %ctx.event.name(), unit = %ctx.unit_name, "dispatch");
    match &ctx.event {
        Event::Unknown { path } => {
            tracing::info!(%path, "ignoring an event this charm does not know");
            return Ok(Outcome::Done);
        }
        Event::Exec => return Ok(Outcome::Done),
        _ => {}
    }
    let raw = tools.config_get()?;
    let status = match SynapseConfig::from_juju(&raw) {
        Ok(_) => Status::active(),
        Err(e) => Status::blocked(e.to_string()),
    };
    tools.status_set(&status, false)?;
    Ok(Outcome::Done)
}
