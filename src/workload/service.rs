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
    /// The key of its [`WatchHint`] in the unit's hints (the container's name for the
    /// container's main service).
    pub key: &'a str,
}

/// What the ready check alone says (pure): `up` with a success after the baseline.
/// Pebble counts successes from the check's start or its last recovery (`down` to
/// `up`), so a count below the baseline was reset since, and its successes are all
/// later than the baseline; an equal count is taken as not passed (at worst one more
/// period of waiting).
fn ready_by_check(check: Option<&CheckInfo>, baseline: Option<u64>) -> bool {
    check.is_some_and(|c| {
        c.status == CheckStatus::Up && c.successes.is_some_and(|n| n > 0 && Some(n) != baseline)
    })
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

/// What the charm remembers about a watched service between dispatches (in the
/// unit's hints), per [`Watched::key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchHint {
    /// The ready check's success count when the service last (re)started; "ready"
    /// needs a success after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<u64>,
    /// Pebble's `current-since` of the running service as last seen; cleared when the
    /// charm itself (re)starts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The last restart was Pebble's (the service exited), not the charm's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_pebble: bool,
}

/// The watched services' hints, per [`Watched::key`].
pub type Watches = std::collections::BTreeMap<String, WatchHint>;

/// Takes in what Pebble says now (pure): a running service whose `current-since`
/// differs from the one last seen was restarted by Pebble, so only ready-check
/// successes after this one count; a success past the baseline clears it.
fn observe(hint: &WatchHint, svc: Option<&ServiceInfo>, check: Option<&CheckInfo>) -> WatchHint {
    let mut next = hint.clone();
    if let Some(s) = svc.filter(|s| s.current == ServiceStatus::Active) {
        if let Some(now) = &s.current_since {
            if hint.since.as_ref().is_some_and(|seen| seen != now) {
                next.baseline = Some(check.and_then(|c| c.successes).unwrap_or(0));
                next.by_pebble = true;
            }
            next.since = Some(now.clone());
        }
    }
    if next.baseline.is_some() && ready_by_check(check, next.baseline) {
        next.baseline = None;
        next.by_pebble = false;
    }
    next
}

/// A container's services as read once per dispatch, with those the charm itself
/// started because they had been stopped by hand.
struct Services {
    now: Vec<ServiceInfo>,
    started_by_charm: Vec<String>,
}

/// The services, read (and the enabled ones stopped by hand started) at most once for
/// every service watched in a container.
fn services_once<'s>(
    w: &dyn Workload,
    cache: &'s mut Option<Services>,
) -> Result<&'s Services, pebble::Error> {
    let read = match cache.take() {
        Some(read) => read,
        None => {
            let mut now = w.services()?;
            // Stopped by hand (inactive) while enabled: start it. Backoff means Pebble
            // is already restarting it; a replan would only restart it once more.
            let stopped: Vec<String> = now
                .iter()
                .filter(|s| s.startup == Startup::Enabled && s.current == ServiceStatus::Inactive)
                .map(|s| s.name.clone())
                .collect();
            if !stopped.is_empty() {
                w.replan()?;
                now = w.services()?;
            }
            Services {
                now,
                started_by_charm: stopped,
            }
        }
    };
    Ok(cache.insert(read))
}

/// Reports one watched service's state from checks already read and services read at
/// most once, starting enabled services that are not running (stopped by hand), but
/// never pushing a service Pebble is already restarting. `hint` holds the ready
/// check's baseline (only later successes count) and the service's start time as last
/// seen; it is updated in place.
fn state_with(
    w: &dyn Workload,
    checks: &[CheckInfo],
    services: &mut Option<Services>,
    watched: &Watched,
    hint: &mut WatchHint,
) -> Result<Progress, pebble::Error> {
    let check = checks.iter().find(|c| c.name == watched.ready_check);
    let read = services_once(w, services)?;
    if read.started_by_charm.iter().any(|n| n == watched.service) {
        // The charm's own start, not one to report as Pebble's.
        hint.since = None;
    }
    let svc = read.now.iter().find(|s| s.name == watched.service).cloned();
    *hint = observe(hint, svc.as_ref(), check);
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
        return Ok(p);
    }
    if ready_by_check(check, hint.baseline) {
        return Ok(Progress::Ready);
    }
    let restarted = format!(
        "{} was restarted by Pebble (it exited or stopped answering); waiting for it to be ready",
        watched.what
    );
    // Only a ready check passed after the restart was seen says it is back: the
    // status keeps saying so until then, however fast it comes back (also when the
    // check had not passed yet before it, a count of 0). A Pebble that does not count
    // successes cannot tell: then ask the service.
    if hint.by_pebble && check.is_some_and(|c| c.successes.is_some()) {
        return Ok(Progress::Waiting(restarted));
    }
    let ready = match check {
        Some(c) if c.status == CheckStatus::Down => false,
        // Not passed since the restart (or not run yet): ask the service itself.
        _ => w.probe(watched.ready_url),
    };
    if !ready {
        return Ok(Progress::Waiting(if hint.by_pebble {
            restarted
        } else {
            format!("{} is starting (waiting for its ready check)", watched.what)
        }));
    }
    if hint.by_pebble {
        *hint = WatchHint {
            since: hint.since.take(),
            ..WatchHint::default()
        };
    }
    Ok(Progress::Ready)
}

/// [`apply_layer`] for watched services: when it replans (a restart), each ready
/// check's success count before it becomes the baseline that later successes must
/// pass, and the restart is the charm's (not reported as Pebble's).
pub fn apply_layer_tracked(
    w: &dyn Workload,
    plan: &Layer,
    label: &str,
    desired: &Layer,
    watched: &[Watched],
    watches: &mut Watches,
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
            .and_then(|c| c.successes)
            .unwrap_or(0);
        watches.insert(
            wt.key.to_string(),
            WatchHint {
                baseline: Some(before),
                since: None,
                by_pebble: false,
            },
        );
    }
    Ok(true)
}

/// The state of each watched service of one container (its checks and
/// services read once), with their hints, each dropped once it holds nothing. The
/// first `blocked` one wins, then the first `waiting` one.
pub fn tracked_state(
    w: &dyn Workload,
    watched: &[Watched],
    watches: &mut Watches,
) -> Result<Progress, pebble::Error> {
    let checks = w.checks()?;
    let mut services = None;
    let mut worst = Progress::Ready;
    for wt in watched {
        let mut hint = watches.remove(wt.key).unwrap_or_default();
        let progress = state_with(w, &checks, &mut services, wt, &mut hint);
        if hint != WatchHint::default() {
            watches.insert(wt.key.to_string(), hint);
        }
        let progress = progress?;
        match (&worst, &progress) {
            (Progress::Blocked(_), _) => {}
            (_, Progress::Blocked(_)) | (Progress::Ready, Progress::Waiting(_)) => worst = progress,
            _ => {}
        }
    }
    Ok(worst)
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
            successes: Some(5),
            failures: 0,
            threshold: 3,
            change_id: None,
            prev_change_id: None,
        };
        assert!(ready_by_check(Some(&check), None));
        assert!(!ready_by_check(Some(&check), Some(5)));
        assert!(ready_by_check(Some(&check), Some(4)));
        assert!(!ready_by_check(None, None));
        // Down and up again since the baseline: Pebble counts from 1 again.
        let recovered = CheckInfo {
            successes: Some(1),
            ..check.clone()
        };
        assert!(ready_by_check(Some(&recovered), Some(40)));
        // A check started anew (its definition changed) has not passed yet.
        let new = CheckInfo {
            successes: Some(0),
            ..check.clone()
        };
        assert!(!ready_by_check(Some(&new), Some(40)));
        assert!(!ready_by_check(Some(&new), None));
        let down = CheckInfo {
            status: CheckStatus::Down,
            successes: Some(7),
            ..check
        };
        assert!(!ready_by_check(Some(&down), Some(5)));
    }

    fn svc(current: ServiceStatus, since: &str) -> ServiceInfo {
        ServiceInfo {
            name: "s".into(),
            startup: Startup::Enabled,
            current,
            current_since: Some(since.into()),
        }
    }

    fn up(successes: u64) -> CheckInfo {
        CheckInfo {
            name: "r".into(),
            level: None,
            startup: None,
            status: CheckStatus::Up,
            successes: Some(successes),
            failures: 0,
            threshold: 3,
            change_id: None,
            prev_change_id: None,
        }
    }

    #[test]
    fn a_new_start_time_the_charm_did_not_cause_is_a_restart_by_pebble() {
        let first = observe(
            &WatchHint::default(),
            Some(&svc(ServiceStatus::Active, "t1")),
            Some(&up(4)),
        );
        assert_eq!(first.since.as_deref(), Some("t1"));
        assert_eq!((first.baseline, first.by_pebble), (None, false));
        // Same start time: nothing happened.
        assert_eq!(
            observe(
                &first,
                Some(&svc(ServiceStatus::Active, "t1")),
                Some(&up(5))
            ),
            first
        );
        // In backoff: not running yet, the start time seen stays the last running one.
        assert_eq!(
            observe(
                &first,
                Some(&svc(ServiceStatus::Backoff, "t2")),
                Some(&up(5))
            ),
            first
        );
        let restarted = observe(
            &first,
            Some(&svc(ServiceStatus::Active, "t3")),
            Some(&up(5)),
        );
        assert_eq!(restarted.since.as_deref(), Some("t3"));
        assert_eq!((restarted.baseline, restarted.by_pebble), (Some(5), true));
        assert_eq!(
            observe(
                &restarted,
                Some(&svc(ServiceStatus::Active, "t3")),
                Some(&up(5))
            ),
            restarted,
            "no success since: still restarting"
        );
        let recovered = observe(
            &restarted,
            Some(&svc(ServiceStatus::Active, "t3")),
            Some(&up(1)),
        );
        assert_eq!(
            (recovered.baseline, recovered.by_pebble),
            (None, false),
            "down and up again: Pebble counted from 1 again, after the restart"
        );
        let back = observe(
            &restarted,
            Some(&svc(ServiceStatus::Active, "t3")),
            Some(&up(6)),
        );
        assert_eq!((back.baseline, back.by_pebble), (None, false));
        // After the charm's own restart (start time forgotten), nothing to report.
        let charm = WatchHint {
            baseline: Some(6),
            since: None,
            by_pebble: false,
        };
        let seen = observe(
            &charm,
            Some(&svc(ServiceStatus::Active, "t4")),
            Some(&up(6)),
        );
        assert_eq!((seen.baseline, seen.by_pebble), (Some(6), false));
    }

    #[test]
    fn a_restart_before_the_first_check_passed_is_still_reported() {
        use crate::testing::FakePebble;
        let pebble = FakePebble {
            unchecked: true,
            ..FakePebble::up()
        };
        let layer: Layer = serde_saphyr::from_str(
            "services:\n  s: {override: replace, command: s, startup: enabled}\n\
             checks:\n  r: {override: replace, level: ready, http: {url: 'http://x/'}}\n",
        )
        .unwrap();
        let watched = [Watched {
            service: "s",
            ready_check: "r",
            ready_url: "http://x/",
            what: "S",
            container: "c",
            key: "c",
        }];
        let mut watches = Watches::new();
        apply_layer_tracked(
            &pebble,
            &Layer::default(),
            "l",
            &layer,
            &watched,
            &mut watches,
        )
        .unwrap();
        // Its check has not run yet, but it answers: ready (the charm started it).
        assert_eq!(
            tracked_state(&pebble, &watched, &mut watches).unwrap(),
            Progress::Ready
        );
        // Pebble restarts it before its check ever passed: a count of 0 is a count.
        pebble.pebble_restart("s");
        let Progress::Waiting(m) = tracked_state(&pebble, &watched, &mut watches).unwrap() else {
            panic!("not waiting")
        };
        assert!(m.starts_with("S was restarted by Pebble"), "{m}");
        let pebble = FakePebble {
            unchecked: false,
            ..pebble
        };
        assert_eq!(
            tracked_state(&pebble, &watched, &mut watches).unwrap(),
            Progress::Ready
        );
    }
}
