//! Generic Pebble steps shared by every container: is a layer already in the plan,
//! apply a layer, and report (and repair) a service's state.

use pebble::{CheckStatus, Layer};

use super::Workload;
use crate::status::Progress;

/// Whether every service and check of `layer` is already in `plan` as `layer` has it
/// (pure). Pebble's replan restarts exactly the services whose spec changed.
pub fn layer_in_plan(plan: &Layer, layer: &Layer) -> bool {
    layer
        .services
        .iter()
        .all(|(n, s)| plan.services.get(n) == Some(s))
        && layer
            .checks
            .iter()
            .all(|(n, c)| plan.checks.get(n) == Some(c))
}

/// Adds the layer and replans if the plan differs from it. Returns whether anything changed.
pub fn apply_layer(
    w: &dyn Workload,
    plan: &Layer,
    label: &str,
    desired: &Layer,
) -> Result<bool, pebble::Error> {
    if layer_in_plan(plan, desired) {
        return Ok(false);
    }
    w.add_layer(label, desired)?;
    w.replan()?;
    Ok(true)
}

/// The status of a container whose Pebble cannot be reached (yet).
pub fn unreachable(container: &str) -> Progress {
    Progress::Waiting(format!("Waiting for Pebble in the {container} container"))
}

/// Reports a container's service state, starting enabled services that are not running
/// (stopped by hand, or given up on). A ready check that is up and has passed answers
/// for the service, so the steady state costs a single call.
pub fn service_state(
    w: &dyn Workload,
    service: &str,
    ready_check: &str,
    ready_url: &str,
    what: &str,
) -> Result<Progress, pebble::Error> {
    let checks = w.checks()?;
    let check = checks.iter().find(|c| c.name == ready_check);
    if check.is_some_and(|c| c.status == CheckStatus::Up && c.successes > 0) {
        return Ok(Progress::Ready);
    }
    let mut services = w.services()?;
    if services
        .iter()
        .any(|s| s.startup == pebble::Startup::Enabled && !s.is_running())
    {
        w.replan()?;
        services = w.services()?;
    }
    if !services.iter().any(|s| s.name == service && s.is_running()) {
        return Ok(Progress::Waiting(format!("Waiting for {what} to start")));
    }
    let ready = match check {
        Some(c) if c.status == CheckStatus::Down => false,
        // Not run yet, or a Pebble too old to count successes: ask the service itself.
        _ => w.probe(ready_url),
    };
    if !ready {
        return Ok(Progress::Waiting(format!(
            "{what} is starting (waiting for its ready check)"
        )));
    }
    Ok(Progress::Ready)
}
