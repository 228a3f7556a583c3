//! Generic Pebble steps shared by every container: is a layer already in the plan,
//! apply a layer, and report (and repair) a service's state truthfully.
//!
//! "Ready" means the service's ready check passed since the charm last restarted it
//! (or the service answers its ready URL now); a service Pebble keeps restarting is
//! `blocked` with its last log line, never `active` or "starting".

use pebble::{CheckInfo, CheckStatus, Layer, ServiceInfo, ServiceStatus, Startup};

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

/// Adds the layer and replans if the plan differs from it. Returns whether anything
/// changed.
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

/// One service with a ready check, as the status reports it.
#[derive(Debug, Clone, Copy)]
pub struct Watched<'a> {
    pub service: &'a str,
    pub ready_check: &'a str,
    pub ready_url: &'a str,
    /// How the status names it ("Synapse").
    pub what: &'a str,
    /// The container, for the message pointing at its logs.
    pub container: &'a str,
    /// The key of its ready check's baseline in the hints (the container's name for
    /// the container's main service).
    pub baseline: &'a str,
}

/// What the ready check alone says (pure).
fn ready_by_check(check: Option<&CheckInfo>, baseline: Option<u64>) -> bool {
    check.is_some_and(|c| c.status == CheckStatus::Up && c.successes > baseline.unwrap_or(0))
}

/// What the service's state says (pure): `None` when it is running.
fn not_running(svc: Option<&ServiceInfo>, watched: &Watched) -> Option<Progress> {
    match svc.map(|s| s.current) {
        Some(ServiceStatus::Active) => None,
        Some(ServiceStatus::Backoff) | Some(ServiceStatus::Error) => Some(Progress::Blocked(
            format!(
                "{} keeps exiting and Pebble restarts it; see `juju debug-log` and the {} container's Pebble logs",
                watched.what, watched.container
            ),
        )),
        _ => Some(Progress::Waiting(format!(
            "Waiting for {} to start",
            watched.what
        ))),
    }
}

/// The last line of a log that says why a program stopped (pure): the last line
/// with words in it that is not a traceback frame, a box border or Synapse's closing
/// "There may be more information in the logs.", bounded.
pub fn last_error_line(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .flat_map(|l| l.lines())
        .rev()
        .map(str::trim)
        .find(|l| {
            l.chars().any(char::is_alphanumeric)
                && !l.starts_with("File \"")
                && !l.starts_with('^')
                && !l.starts_with("There may be more information")
                && !l.starts_with("Traceback (most recent call last)")
        })
        .map(crate::util::bounded)
}

/// Reports the service's state, starting enabled services that are not running
/// (stopped by hand), but never pushing a service Pebble is already restarting.
/// `baseline` is the ready check's success count when the charm last restarted the
/// service: only later successes count. Returns the progress and the check's
/// current success count (to clear the baseline once passed).
pub fn service_state(
    w: &dyn Workload,
    watched: &Watched,
    baseline: Option<u64>,
) -> Result<(Progress, Option<u64>), pebble::Error> {
    let checks = w.checks()?;
    state_with(w, &checks, &mut None, watched, baseline)
}

/// The services, read (and the enabled ones stopped by hand started) at most once for
/// every service watched in a container.
fn services_once<'s>(
    w: &dyn Workload,
    cache: &'s mut Option<Vec<ServiceInfo>>,
) -> Result<&'s [ServiceInfo], pebble::Error> {
    if cache.is_none() {
        let mut services = w.services()?;
        // Stopped by hand (inactive) while enabled: start it. Backoff means Pebble is
        // already restarting it; a replan would only restart it once more.
        if services
            .iter()
            .any(|s| s.startup == Startup::Enabled && s.current == ServiceStatus::Inactive)
        {
            w.replan()?;
            services = w.services()?;
        }
        *cache = Some(services);
    }
    Ok(cache.as_deref().unwrap_or_default())
}

/// [`service_state`] from checks already read; the services are read only when the
/// ready check alone does not tell.
fn state_with(
    w: &dyn Workload,
    checks: &[CheckInfo],
    services: &mut Option<Vec<ServiceInfo>>,
    watched: &Watched,
    baseline: Option<u64>,
) -> Result<(Progress, Option<u64>), pebble::Error> {
    let check = checks.iter().find(|c| c.name == watched.ready_check);
    let successes = check.map(|c| c.successes);
    if ready_by_check(check, baseline) {
        return Ok((Progress::Ready, successes));
    }
    let svc = services_once(w, services)?
        .iter()
        .find(|s| s.name == watched.service)
        .cloned();
    if let Some(p) = not_running(svc.as_ref(), watched) {
        let p = match p {
            Progress::Blocked(msg) => {
                let why = w.logs(watched.service, 30).ok().and_then(|l| {
                    last_error_line(&l.into_iter().map(|e| e.message).collect::<Vec<_>>())
                });
                Progress::Blocked(match why {
                    Some(line) => format!("{msg}; last log line: {line}"),
                    None => msg,
                })
            }
            other => other,
        };
        return Ok((p, successes));
    }
    let ready = match check {
        Some(c) if c.status == CheckStatus::Down => false,
        // Not passed since the restart (or not run yet): ask the service itself.
        _ => w.probe(watched.ready_url),
    };
    if !ready {
        return Ok((
            Progress::Waiting(format!(
                "{} is starting (waiting for its ready check)",
                watched.what
            )),
            successes,
        ));
    }
    Ok((Progress::Ready, successes))
}

/// Baselines of the ready checks, per container (kept in the unit's hints).
pub type Baselines = std::collections::BTreeMap<String, u64>;

/// [`apply_layer`] for watched services: when it replans (a restart), each ready
/// check's success count before it becomes the baseline that later successes must pass.
pub fn apply_layer_tracked(
    w: &dyn Workload,
    plan: &Layer,
    label: &str,
    desired: &Layer,
    watched: &[Watched],
    baselines: &mut Baselines,
) -> Result<bool, pebble::Error> {
    if layer_in_plan(plan, desired) {
        return Ok(false);
    }
    let checks = w.checks()?;
    w.add_layer(label, desired)?;
    w.replan()?;
    for wt in watched {
        let before = checks
            .iter()
            .find(|c| c.name == wt.ready_check)
            .map(|c| c.successes)
            .unwrap_or(0);
        baselines.insert(wt.baseline.to_string(), before);
    }
    Ok(true)
}

/// [`service_state`] of each watched service of one container (its checks read once),
/// with their baselines, each dropped once its check passed it. The first `blocked`
/// one wins, then the first `waiting` one.
pub fn tracked_state(
    w: &dyn Workload,
    watched: &[Watched],
    baselines: &mut Baselines,
) -> Result<Progress, pebble::Error> {
    let checks = w.checks()?;
    let mut services = None;
    let mut worst = Progress::Ready;
    for wt in watched {
        let baseline = baselines.get(wt.baseline).copied();
        let (progress, successes) = state_with(w, &checks, &mut services, wt, baseline)?;
        if let (Some(b), Some(s)) = (baseline, successes) {
            if s > b {
                baselines.remove(wt.baseline);
            }
        }
        match (&worst, &progress) {
            (Progress::Blocked(_), _) => {}
            (_, Progress::Blocked(_)) | (Progress::Ready, Progress::Waiting(_)) => worst = progress,
            _ => {}
        }
    }
    Ok(worst)
}

/// The ready check's success count before a restart (the baseline of
/// [`service_state`]).
pub fn ready_successes(w: &dyn Workload, ready_check: &str) -> Result<u64, pebble::Error> {
    Ok(w.checks()?
        .iter()
        .find(|c| c.name == ready_check)
        .map(|c| c.successes)
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_line_skips_traceback_frames() {
        let lines: Vec<String> = [
            "Traceback (most recent call last):",
            "  File \"/opt/synapse/x.py\", line 3, in <module>",
            "    raise ValueError(\"bad\")",
            "psycopg2.OperationalError: connection to server at \"10.0.0.1\" failed: Connection refused",
            "",
            " There may be more information in the logs.",
            "*****************************",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            last_error_line(&lines).as_deref(),
            Some("psycopg2.OperationalError: connection to server at \"10.0.0.1\" failed: Connection refused")
        );
        assert_eq!(last_error_line(&[]), None);
    }

    #[test]
    fn a_check_passed_before_the_restart_does_not_count() {
        let check = CheckInfo {
            name: "r".into(),
            level: None,
            startup: None,
            status: CheckStatus::Up,
            successes: 5,
            failures: 0,
            threshold: 3,
            change_id: None,
            prev_change_id: None,
        };
        assert!(ready_by_check(Some(&check), None));
        assert!(!ready_by_check(Some(&check), Some(5)));
        assert!(ready_by_check(Some(&check), Some(4)));
        assert!(!ready_by_check(None, None));
    }
}
