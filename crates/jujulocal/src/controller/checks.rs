//! Pebble checks as the unit agent watches them: `<container>-pebble-check-failed`
//! when a check goes down (its failures reached the threshold) and
//! `<container>-pebble-check-recovered` when a check that was down passes again.
//!
//! Juju 3.6 learns of both from Pebble's change notices (a `perform-check` change that
//! errors, a `recover-check` change that is done). JujuLocal compares the status of
//! each check, read when it polls the pods, with the last status it saw; a check that
//! goes down and up again between two polls is missed, which Juju would report.

use std::collections::BTreeMap;

use pebble::CheckStatus;

use crate::model::CheckHealth;
use crate::Event;

/// The events for one container's checks, from the statuses seen last (`seen`) and now
/// (`now`: check name and status), and what to remember for the next poll.
///
/// - up (or not seen yet) → down: `pebble-check-failed` (Juju fires it when the check's
///   failures reach its threshold, whether or not it saw the check up before);
/// - down → up: `pebble-check-recovered`;
/// - inactive or unknown checks are forgotten and fire nothing (a stopped check neither
///   fails nor recovers).
pub fn check_events(
    container: &str,
    seen: &BTreeMap<String, CheckHealth>,
    now: &[(String, CheckStatus)],
) -> (BTreeMap<String, CheckHealth>, Vec<Event>) {
    let mut remember = BTreeMap::new();
    let mut events = vec![];
    let mut now: Vec<&(String, CheckStatus)> = now.iter().collect();
    now.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, status) in now {
        let health = match status {
            CheckStatus::Up => CheckHealth::Up,
            CheckStatus::Down => CheckHealth::Down,
            CheckStatus::Inactive | CheckStatus::Unknown => continue,
        };
        let before = seen.get(name).copied();
        match (before, health) {
            (Some(CheckHealth::Down), CheckHealth::Up) => {
                events.push(Event::PebbleCheckRecovered {
                    container: container.to_string(),
                    check: name.clone(),
                })
            }
            (Some(CheckHealth::Up) | None, CheckHealth::Down) => {
                events.push(Event::PebbleCheckFailed {
                    container: container.to_string(),
                    check: name.clone(),
                })
            }
            _ => {}
        }
        remember.insert(name.clone(), health);
    }
    (remember, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(items: &[(&str, CheckHealth)]) -> BTreeMap<String, CheckHealth> {
        items.iter().map(|(n, h)| (n.to_string(), *h)).collect()
    }
    fn now(items: &[(&str, CheckStatus)]) -> Vec<(String, CheckStatus)> {
        items.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }
    fn failed(check: &str) -> Event {
        Event::PebbleCheckFailed {
            container: "web".into(),
            check: check.into(),
        }
    }
    fn recovered(check: &str) -> Event {
        Event::PebbleCheckRecovered {
            container: "web".into(),
            check: check.into(),
        }
    }

    #[test]
    fn up_to_down_fails_and_down_to_up_recovers() {
        let (mem, ev) = check_events(
            "web",
            &seen(&[("a", CheckHealth::Up)]),
            &now(&[("a", CheckStatus::Down)]),
        );
        assert_eq!(ev, vec![failed("a")]);
        assert_eq!(mem, seen(&[("a", CheckHealth::Down)]));
        let (mem, ev) = check_events("web", &mem, &now(&[("a", CheckStatus::Up)]));
        assert_eq!(ev, vec![recovered("a")]);
        assert_eq!(mem, seen(&[("a", CheckHealth::Up)]));
    }

    #[test]
    fn steady_states_fire_nothing() {
        for (h, s) in [
            (CheckHealth::Up, CheckStatus::Up),
            (CheckHealth::Down, CheckStatus::Down),
        ] {
            let (mem, ev) = check_events("web", &seen(&[("a", h)]), &now(&[("a", s)]));
            assert!(ev.is_empty(), "{h:?} -> {s:?}");
            assert_eq!(mem, seen(&[("a", h)]));
        }
    }

    #[test]
    fn first_sight_fails_only_when_down() {
        let (mem, ev) = check_events(
            "web",
            &BTreeMap::new(),
            &now(&[("b", CheckStatus::Down), ("a", CheckStatus::Up)]),
        );
        assert_eq!(ev, vec![failed("b")]);
        assert_eq!(
            mem,
            seen(&[("a", CheckHealth::Up), ("b", CheckHealth::Down)])
        );
    }

    #[test]
    fn inactive_checks_are_forgotten_without_events() {
        let (mem, ev) = check_events(
            "web",
            &seen(&[("a", CheckHealth::Down), ("b", CheckHealth::Up)]),
            &now(&[("a", CheckStatus::Inactive), ("b", CheckStatus::Unknown)]),
        );
        assert!(ev.is_empty());
        assert!(mem.is_empty());
        // A check that comes back up after being inactive is not a recovery.
        let (_, ev) = check_events("web", &mem, &now(&[("a", CheckStatus::Up)]));
        assert!(ev.is_empty());
    }

    #[test]
    fn several_checks_fire_in_name_order() {
        let (_, ev) = check_events(
            "web",
            &seen(&[("x", CheckHealth::Down), ("y", CheckHealth::Up)]),
            &now(&[("y", CheckStatus::Down), ("x", CheckStatus::Up)]),
        );
        assert_eq!(ev, vec![recovered("x"), failed("y")]);
    }

    #[test]
    fn events_carry_the_juju_environment() {
        let env = failed("a").to_env();
        assert!(env.contains(&("JUJU_WORKLOAD_NAME".to_string(), "web".to_string())));
        assert!(env.contains(&("JUJU_PEBBLE_CHECK_NAME".to_string(), "a".to_string())));
        assert_eq!(failed("a").hook_name(), "web-pebble-check-failed");
        assert_eq!(recovered("a").hook_name(), "web-pebble-check-recovered");
    }
}
