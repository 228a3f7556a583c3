//! Pebble check events end to end, under JujuLocal with real Pebble, Synapse and
//! NGINX: NGINX stopped by hand makes its ready check fail; JujuLocal, polling the
//! pods like Juju's unit agent, fires `synapse-nginx-pebble-check-failed`, and
//! `-pebble-check-recovered` once it passes again. The charm reconciles on both, so the
//! unit is active again after the recovery without an update-status.

mod common;

use std::time::{Duration, Instant};

use common::{TestModel, UNIT};

const CONTAINER: &str = "synapse-nginx";

fn count(m: &TestModel, hook: &str) -> usize {
    m.c.history().iter().filter(|r| r.hook == hook).count()
}

/// Polls the pods (no other hook) until `hook` has run once more than `before`.
fn poll_until(m: &mut TestModel, hook: &str, before: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count(m, hook) <= before {
        assert!(
            Instant::now() < deadline,
            "no {hook} within {timeout:?}; hooks since: {:?}",
            m.c.history()
                .iter()
                .rev()
                .take(10)
                .map(|r| format!("{} exit={}", r.hook, r.exit))
                .collect::<Vec<_>>()
        );
        m.c.poll_pods().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn nginx_check_fails_and_recovers_through_hooks() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "chat.example.com")]);
    m.wait_ready();
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    // Steady state: once caught up (a slow start may have had a check down and up),
    // polling fires nothing.
    m.c.poll_pods().unwrap();
    let hooks = m.c.history().len();
    m.c.poll_pods().unwrap();
    assert_eq!(m.c.history().len(), hooks, "no transition, no hook");

    let failed = format!("{CONTAINER}-pebble-check-failed");
    let recovered = format!("{CONTAINER}-pebble-check-recovered");
    let updates = count(&m, "update-status");
    let (failed_before, recovered_before) = (count(&m, &failed), count(&m, &recovered));

    // NGINX stopped by hand: its ready check fails threshold (3) times, 10 s apart.
    let pebble = pebble::Client::new(m.c.pebble_socket(UNIT, CONTAINER));
    pebble.stop(&["nginx"], Duration::from_secs(30)).unwrap();
    assert_eq!(m.http_status("http://localhost:8080/health"), 0);
    poll_until(&mut m, &failed, failed_before, Duration::from_secs(120));
    let last = m.c.history().pop().unwrap();
    assert_eq!(last.exit, 0, "the charm handles {failed}");
    // The charm reconciled on the hook: it started NGINX again, and does not claim to
    // be active while the check is down.
    let (s, msg) = m.status();
    assert_ne!(s, "active", "not active while the check is down: {msg}");

    // Started again (a no-op if the charm already did): the check passes and recovers.
    let service = pebble.services(&["nginx"]).unwrap();
    if !service.iter().all(|s| s.is_running()) {
        pebble.start(&["nginx"], Duration::from_secs(30)).unwrap();
    }
    poll_until(
        &mut m,
        &recovered,
        recovered_before,
        Duration::from_secs(120),
    );
    assert_eq!(count(&m, &failed), failed_before + 1, "one failure");
    assert_eq!(
        m.status(),
        ("active".to_string(), String::new()),
        "active again after {recovered}"
    );
    assert_eq!(
        count(&m, "update-status"),
        updates,
        "the recovery alone made the unit active"
    );
    assert_eq!(m.http_status("http://localhost:8080/health"), 204);
    // Recovered is steady: polling again fires nothing.
    let hooks = m.c.history().len();
    m.c.poll_pods().unwrap();
    assert_eq!(m.c.history().len(), hooks);
}
