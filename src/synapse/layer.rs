//! The `synapse` container's Pebble layer: the Synapse service and its checks.

use std::collections::BTreeMap;

use pebble::{Check, CheckLevel, GoDuration, Layer, Override, Service, ServiceAction, Startup};

use super::config::SynapseConfig;
use super::homeserver::{CLIENT_PORT, CONFIG_PATH};
use crate::workload::Watched;

pub const CONTAINER: &str = "synapse";
pub const LAYER_LABEL: &str = "synapse";
pub const SERVICE: &str = "synapse";
pub const READY_CHECK: &str = "synapse-ready";
pub const ALIVE_CHECK: &str = "synapse-alive";
/// Service environment entry with the hash of the files as written (secrets included);
/// `SYNAPSE_CONFIG_HASH` holds the hash of their shape (secrets left out).
/// (The name says "hash" for compatibility with earlier plans; the value is a random
/// token, renewed when a file changes: nothing derived from secrets is in the plan.)
pub const CONTENT_ENV: &str = "SYNAPSE_CONTENT_HASH";
/// The exporter's token for its password file (same compatibility note).
pub const PASSWORD_ENV: &str = "EXPORTER_PASSWORD_HASH";
pub const SHAPE_ENV: &str = "SYNAPSE_CONFIG_HASH";
pub const EXPORTER: &str = "stats-exporter";
pub const EXPORTER_PORT: u16 = 9877;
/// The exporter's metrics, read in the pod to tell whether PostgreSQL answers.
pub const EXPORTER_METRICS_URL: &str = "http://localhost:9877/metrics";
pub const EXPORTER_PASSWORD_PATH: &str = "/data/stats-exporter.password";
pub const READY_URL: &str = "http://localhost:8008/health";
/// The federation sender, next to Synapse main on the main unit of a scaled-out
/// application (a generic worker named `federationsender1`).
pub const SENDER: &str = "synapse-federation-sender";
pub const SENDER_READY_CHECK: &str = "synapse-federation-sender-ready";
pub const SENDER_ALIVE_CHECK: &str = "synapse-federation-sender-alive";
/// The sender's replication listener answers `/health` like any Synapse HTTP listener.
pub const SENDER_READY_URL: &str = "http://localhost:8034/health";
pub const USER: &str = "synapse";
/// The rock's `synapse` user and group id.
pub const UID: u32 = 584792;

/// The stats exporter, when Synapse is on PostgreSQL: connection details in its
/// environment, the password in a file (never in the plan).
pub struct Exporter<'a> {
    pub db: &'a crate::relations::database::DatabaseInfo,
    /// Random token renewed when the password file changes (restarts the exporter).
    pub password_token: &'a str,
}

/// `shape_hash` covers what the charm renders (secrets left out) and `content_hash` is
/// the token of the files as written, so a changed file changes the service's spec and Pebble's replan
/// restarts Synapse exactly once.
pub fn layer(
    config: &SynapseConfig,
    shape_hash: &str,
    content_hash: &str,
    exporter: Option<&Exporter>,
    proxy: &BTreeMap<String, String>,
) -> Layer {
    let mut env = BTreeMap::from([
        ("SYNAPSE_CONFIG_PATH".to_string(), CONFIG_PATH.to_string()),
        (SHAPE_ENV.to_string(), shape_hash.to_string()),
        (CONTENT_ENV.to_string(), content_hash.to_string()),
    ]);
    env.extend(proxy.iter().map(|(k, v)| (k.clone(), v.clone())));
    let service = Service {
        override_: Override::Replace,
        summary: Some("Synapse Matrix homeserver".into()),
        startup: Some(Startup::Enabled),
        command: Some(command(config)),
        environment: env,
        user: Some(USER.into()),
        group: Some(USER.into()),
        working_dir: Some("/data".into()),
        // Restart when the liveness check fails; its thresholds leave a slow first start
        // (schema creation) many minutes before that happens.
        on_check_failure: BTreeMap::from([(ALIVE_CHECK.to_string(), ServiceAction::Restart)]),
        ..Service::default()
    };
    let alive = &config.experimental_alive_check;
    let ready = Check {
        override_: Override::Replace,
        level: Some(CheckLevel::Ready),
        period: Some(GoDuration::from_secs(10)),
        timeout: Some(GoDuration::from_secs(5)),
        threshold: Some(3),
        ..Check::http(READY_URL)
    };
    // No `level: alive`: that would drive the Kubernetes liveness probe, and a failure
    // would restart the whole container (losing Pebble's layers) instead of Synapse.
    let alive_check = Check {
        override_: Override::Replace,
        period: Some(alive.period),
        timeout: Some(alive.timeout),
        threshold: Some(alive.threshold),
        ..Check::tcp(CLIENT_PORT)
    };
    let mut checks = BTreeMap::from([
        (READY_CHECK.to_string(), ready.clone()),
        (ALIVE_CHECK.to_string(), alive_check.clone()),
    ]);
    let mut services = BTreeMap::new();
    // The federation sender reads the same files and environment as main, so a change
    // of them restarts both in the same replan. Its ready check has no level: a sender
    // that is down must not take the pod out of the Kubernetes service.
    if config.runs_federation_sender() {
        let sender = Service {
            summary: Some("Synapse federation sender (generic worker federationsender1)".into()),
            command: Some(format!(
                "/opt/synapse/bin/python -m synapse.app.generic_worker --config-path {CONFIG_PATH} --config-path {}",
                crate::topology::FEDERATION_SENDER_CONFIG_PATH
            )),
            on_check_failure: BTreeMap::from([(
                SENDER_ALIVE_CHECK.to_string(),
                ServiceAction::Restart,
            )]),
            ..service.clone()
        };
        services.insert(SENDER.to_string(), sender);
        checks.insert(
            SENDER_READY_CHECK.to_string(),
            Check::http(SENDER_READY_URL).with_timing(&ready),
        );
        checks.insert(
            SENDER_ALIVE_CHECK.to_string(),
            Check::tcp(crate::topology::WORKER_REPLICATION_PORT).with_timing(&alive_check),
        );
    }
    services.insert(SERVICE.to_string(), service);
    // The stats exporter runs on the main unit only.
    if let Some(e) = exporter.filter(|_| !config.is_worker()) {
        services.insert(EXPORTER.to_string(), exporter_service(Some(e)));
    }
    Layer {
        summary: Some("Synapse".into()),
        description: Some("Synapse homeserver, managed by the Synapse charm".into()),
        services,
        checks,
        log_targets: BTreeMap::new(),
    }
}

/// Period, timeout and threshold of `timing`, kept by a check of another target.
trait WithTiming {
    fn with_timing(self, timing: &Check) -> Check;
}

impl WithTiming for Check {
    fn with_timing(self, timing: &Check) -> Check {
        Check {
            override_: Override::Replace,
            period: timing.period,
            timeout: timing.timeout,
            threshold: timing.threshold,
            ..self
        }
    }
}

/// Whether applying `desired` over `plan` turns the federation sender off. Pebble's
/// replan (re)starts a service that ran before and whose spec changed, even when its
/// startup is disabled, and a changed check likewise: the shell stops them after
/// that replan ([`stop_sender`]).
pub fn turns_sender_off(plan: &Layer, desired: &Layer) -> bool {
    desired
        .services
        .get(SENDER)
        .is_some_and(|s| s.startup == Some(Startup::Disabled))
        && plan.services.get(SENDER) != desired.services.get(SENDER)
}

/// Stops the federation sender and its checks, after the replan that turned them off.
pub fn stop_sender(w: &dyn crate::workload::Workload) -> pebble::Result<()> {
    w.stop(&[SENDER])?;
    w.stop_checks(&[SENDER_READY_CHECK, SENDER_ALIVE_CHECK])
}

/// The form of the federation sender's service and checks that replaces them when
/// the unit no longer runs it (Pebble cannot delete them from its plan): startup
/// disabled and no restart on check failure, so that no later replan or container
/// restart starts them; the replan that applies it still restarts them, hence
/// [`stop_sender`]. Empty when the plan has no sender or holds it off already.
pub fn sender_off(plan: &Layer) -> Layer {
    let mut off = Layer::default();
    if let Some(svc) = plan.services.get(SENDER) {
        let h = held_service(svc.clone());
        if &h != svc {
            off.services.insert(SENDER.to_string(), h);
        }
    }
    for name in [SENDER_READY_CHECK, SENDER_ALIVE_CHECK] {
        if let Some(c) = plan.checks.get(name) {
            if c.startup != Some(Startup::Disabled) {
                off.checks.insert(
                    name.to_string(),
                    Check {
                        override_: Override::Replace,
                        startup: Some(Startup::Disabled),
                        ..c.clone()
                    },
                );
            }
        }
    }
    off
}

pub const WATCHED: Watched<'static> = Watched {
    service: SERVICE,
    ready_check: READY_CHECK,
    ready_url: READY_URL,
    what: "Synapse",
    container: CONTAINER,
    key: CONTAINER,
};

pub const SENDER_WATCHED: Watched<'static> = Watched {
    service: SENDER,
    ready_check: SENDER_READY_CHECK,
    ready_url: SENDER_READY_URL,
    what: "the federation sender (synapse-federation-sender)",
    container: CONTAINER,
    key: SENDER,
};

/// The services whose state the status reports: Synapse, and the federation sender
/// where the layer runs it.
pub fn watched(layer: &Layer) -> Vec<Watched<'static>> {
    let sender = layer
        .services
        .get(SENDER)
        .is_some_and(|s| s.startup == Some(Startup::Enabled));
    let mut watched = vec![WATCHED];
    if sender {
        watched.push(SENDER_WATCHED);
    }
    watched
}

/// The exporter's service; `None` gives the disabled form that replaces it when
/// PostgreSQL goes away (Pebble cannot delete a service from its plan).
/// Synapse main, or on a worker unit the generic worker (homeserver.yaml, then its
/// worker.yaml).
fn command(config: &SynapseConfig) -> String {
    if config.is_worker() {
        format!(
            "/opt/synapse/bin/python -m synapse.app.generic_worker --config-path {CONFIG_PATH} --config-path {}",
            crate::topology::WORKER_CONFIG_PATH
        )
    } else {
        format!("/opt/synapse/bin/python -m synapse.app.homeserver --config-path {CONFIG_PATH}")
    }
}

pub fn exporter_service(e: Option<&Exporter>) -> Service {
    let mut svc = Service {
        override_: Override::Replace,
        summary: Some("Synapse Stats Exporter (rooms and users, for Prometheus)".into()),
        command: Some("/usr/local/bin/synapse-stats-exporter".into()),
        user: Some(USER.into()),
        group: Some(USER.into()),
        ..Service::default()
    };
    match e {
        Some(e) => {
            svc.startup = Some(Startup::Enabled);
            svc.environment = BTreeMap::from([
                ("PROM_SYNAPSE_HOST".to_string(), e.db.host.clone()),
                ("PROM_SYNAPSE_PORT".to_string(), e.db.port.to_string()),
                ("PROM_SYNAPSE_DATABASE".to_string(), e.db.database.clone()),
                ("PROM_SYNAPSE_USER".to_string(), e.db.user.clone()),
                (
                    "PROM_SYNAPSE_PASSWORD_FILE".to_string(),
                    EXPORTER_PASSWORD_PATH.to_string(),
                ),
                ("EXPORTER_PORT".to_string(), EXPORTER_PORT.to_string()),
                // Fresh enough for dashboards; each poll is two COUNT(*) queries.
                ("POLLING_INTERVAL_SECONDS".to_string(), "15".to_string()),
                (PASSWORD_ENV.to_string(), e.password_token.to_string()),
            ]);
        }
        None => svc.startup = Some(Startup::Disabled),
    }
    svc
}

/// Synapse held back (its database is gone): not started by a replan, not restarted by checks.
pub fn held_service(mut svc: Service) -> Service {
    svc.startup = Some(Startup::Disabled);
    svc.on_check_failure.clear();
    svc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_shape() {
        let m = serde_json::json!({"server_name": "example.com", "experimental_alive_check": "1m,4,10s"});
        let serde_json::Value::Object(m) = m else {
            unreachable!()
        };
        let c = SynapseConfig::from_juju(&m).unwrap();
        let l = layer(&c, "abc", "def", None, &BTreeMap::new());
        let svc = &l.services["synapse"];
        assert_eq!(svc.startup, Some(Startup::Enabled));
        assert_eq!(svc.user.as_deref(), Some("synapse"));
        assert_eq!(svc.environment["SYNAPSE_CONFIG_HASH"], "abc");
        assert_eq!(svc.environment["SYNAPSE_CONTENT_HASH"], "def");
        assert!(!l.services.contains_key("stats-exporter"));
        assert!(svc
            .command
            .as_deref()
            .unwrap()
            .ends_with("--config-path /data/homeserver.yaml"));
        let alive = &l.checks["synapse-alive"];
        assert_eq!(alive.level, None);
        assert_eq!(alive.period.unwrap().to_string(), "1m0s");
        assert_eq!(alive.threshold, Some(4));
        assert_eq!(l.checks["synapse-ready"].level, Some(CheckLevel::Ready));
        // Only fields Pebble knows, no empty ones.
        let yaml = l.to_yaml().unwrap();
        assert!(!yaml.contains("after") && !yaml.contains("null"), "{yaml}");
    }

    fn config_on(me: &str, units: &[&str], ignore: &str) -> SynapseConfig {
        let m = serde_json::json!({"server_name": "example.com", "workers_ignore_list": ignore});
        let serde_json::Value::Object(m) = m else {
            unreachable!()
        };
        let c = SynapseConfig::from_juju(&m).unwrap();
        let cluster = (units.len() > 1).then(|| crate::topology::Cluster {
            app: "synapse".into(),
            me: me.into(),
            main: "synapse/0".into(),
            workers: units[1..].iter().map(|u| u.to_string()).collect(),
            redis: crate::relations::redis::RedisInfo {
                host: "redis".into(),
                port: 6379,
            },
        });
        c.with_cluster(cluster)
    }

    #[test]
    fn the_main_unit_of_a_cluster_runs_the_federation_sender() {
        let proxy = BTreeMap::from([("HTTP_PROXY".to_string(), "http://p:3128".to_string())]);
        let c = config_on("synapse/0", &["synapse/0", "synapse/1"], "");
        let l = layer(&c, "abc", "def", None, &proxy);
        let main = &l.services[SERVICE];
        let sender = &l.services[SENDER];
        assert_eq!(
            sender.command.as_deref(),
            Some("/opt/synapse/bin/python -m synapse.app.generic_worker --config-path /data/homeserver.yaml --config-path /data/federation_sender.yaml")
        );
        // The same files and tokens as main: a changed file restarts both in one replan.
        assert_eq!(sender.environment, main.environment);
        assert_eq!(sender.startup, Some(Startup::Enabled));
        assert_eq!(sender.user.as_deref(), Some("synapse"));
        assert_eq!(
            sender.on_check_failure,
            BTreeMap::from([(SENDER_ALIVE_CHECK.to_string(), ServiceAction::Restart)])
        );
        let ready = &l.checks[SENDER_READY_CHECK];
        assert_eq!(
            ready.level, None,
            "a down sender must not make the pod unready"
        );
        assert_eq!(ready.http.as_ref().unwrap().url, SENDER_READY_URL);
        assert_eq!(
            l.checks[SENDER_ALIVE_CHECK].tcp.as_ref().unwrap().port,
            8034
        );
        assert!(main
            .command
            .as_deref()
            .unwrap()
            .contains("synapse.app.homeserver"));
    }

    #[test]
    fn one_unit_a_worker_unit_or_an_ignored_sender_has_no_sender() {
        for c in [
            config_on("synapse/0", &["synapse/0"], ""),
            config_on("synapse/1", &["synapse/0", "synapse/1"], ""),
            config_on(
                "synapse/0",
                &["synapse/0", "synapse/1"],
                "federationsender1",
            ),
        ] {
            let l = layer(&c, "abc", "def", None, &BTreeMap::new());
            assert!(!l.services.contains_key(SENDER), "{c:?}");
            assert!(!l.checks.contains_key(SENDER_READY_CHECK), "{c:?}");
        }
    }

    #[test]
    fn a_sender_no_longer_run_is_held_off_once() {
        let c = config_on("synapse/0", &["synapse/0", "synapse/1"], "");
        let plan = layer(&c, "abc", "def", None, &BTreeMap::new());
        let off = sender_off(&plan);
        assert_eq!(off.services[SENDER].startup, Some(Startup::Disabled));
        assert!(off.services[SENDER].on_check_failure.is_empty());
        assert_eq!(
            off.checks[SENDER_READY_CHECK].startup,
            Some(Startup::Disabled)
        );
        assert_eq!(
            off.checks[SENDER_ALIVE_CHECK].startup,
            Some(Startup::Disabled)
        );
        // Applied: nothing more to do.
        let mut held = plan.clone();
        held.services.extend(off.services);
        held.checks.extend(off.checks);
        // The replan that applies it restarts the sender (Pebble does so for a changed
        // spec, disabled or not): the shell must stop it then, and only then.
        assert!(turns_sender_off(&plan, &held));
        assert!(!turns_sender_off(&held, &held));
        assert!(!turns_sender_off(&plan, &plan));
        let again = sender_off(&held);
        assert!(again.services.is_empty() && again.checks.is_empty());
        assert!(sender_off(&Layer::default()).services.is_empty());
    }

    #[test]
    fn the_status_covers_the_sender_with_no_extra_request_when_all_is_well() {
        use crate::testing::FakePebble;
        use crate::workload::{apply_layer_tracked, tracked_state, Watches, Workload};
        let pebble = FakePebble::up();
        let mut baselines = Watches::new();
        let one = layer(
            &config_on("synapse/0", &["synapse/0"], ""),
            "a",
            "b",
            None,
            &BTreeMap::new(),
        );
        apply_layer_tracked(
            &pebble,
            &Layer::default(),
            "synapse",
            &one,
            &watched(&one),
            &mut baselines,
        )
        .unwrap();
        // Scaling out: Synapse main is restarted once, in the replan that starts the sender.
        let three = layer(
            &config_on("synapse/0", &["synapse/0", "synapse/1", "synapse/2"], ""),
            "a2",
            "b2",
            None,
            &BTreeMap::new(),
        );
        *pebble.restarts.borrow_mut() = 0;
        pebble.take_calls();
        let plan = pebble.plan().unwrap();
        assert!(apply_layer_tracked(
            &pebble,
            &plan,
            "synapse",
            &three,
            &watched(&three),
            &mut baselines
        )
        .unwrap());
        assert_eq!(
            *pebble.restarts.borrow(),
            2,
            "main once, the sender's start"
        );
        assert_eq!(
            pebble
                .take_calls()
                .iter()
                .filter(|c| *c == "replan")
                .count(),
            1
        );
        assert!(baselines.contains_key(SENDER));

        // All well: the checks and the services read once, as with Synapse alone.
        let mut baselines = Watches::new();
        assert_eq!(
            tracked_state(&pebble, &watched(&three), &mut baselines).unwrap(),
            crate::status::Progress::Ready
        );
        assert_eq!(pebble.take_calls(), vec!["checks", "services"]);
        assert_eq!(
            tracked_state(&pebble, &[WATCHED], &mut baselines).unwrap(),
            crate::status::Progress::Ready
        );
        assert_eq!(pebble.take_calls(), vec!["checks", "services"]);

        // The sender keeps exiting: blocked, naming it and its last words.
        pebble.backoff.borrow_mut().push(SENDER.into());
        pebble
            .down_checks
            .borrow_mut()
            .push(SENDER_READY_CHECK.into());
        pebble
            .log_lines
            .borrow_mut()
            .push("ValueError: no federation today".into());
        let crate::status::Progress::Blocked(m) =
            tracked_state(&pebble, &watched(&three), &mut baselines).unwrap()
        else {
            panic!("not blocked")
        };
        assert!(
            m.starts_with("the federation sender (synapse-federation-sender) keeps exiting")
                && m.ends_with("last log line: ValueError: no federation today"),
            "{m}"
        );

        // Back to one unit: the sender's off form is applied, and the replan (which
        // restarts it, as Pebble does) is followed by stopping it and its checks.
        pebble.backoff.borrow_mut().clear();
        let plan = pebble.plan().unwrap();
        let mut back = one.clone();
        let off = sender_off(&plan);
        back.services.extend(off.services);
        back.checks.extend(off.checks);
        assert!(turns_sender_off(&plan, &back));
        pebble.take_calls();
        apply_layer_tracked(
            &pebble,
            &plan,
            "synapse",
            &back,
            &watched(&back),
            &mut baselines,
        )
        .unwrap();
        stop_sender(&pebble).unwrap();
        assert_eq!(
            pebble.take_calls()[1..],
            [
                "add-layer synapse",
                "replan",
                "stop",
                "stop-checks synapse-federation-sender-ready,synapse-federation-sender-alive"
            ]
        );
        assert!(!pebble.running.borrow()[SENDER]);
        assert_eq!(watched(&back).len(), 1, "a stopped sender is not reported");
    }

    #[test]
    fn a_sender_restarted_by_pebble_is_reported_until_its_check_passes_again() {
        use crate::status::Progress;
        use crate::testing::FakePebble;
        use crate::workload::{apply_layer_tracked, tracked_state, Watches};
        let pebble = FakePebble::up();
        let mut watches = Watches::new();
        let three = layer(
            &config_on("synapse/0", &["synapse/0", "synapse/1", "synapse/2"], ""),
            "a",
            "b",
            None,
            &BTreeMap::new(),
        );
        let all = watched(&three);
        apply_layer_tracked(
            &pebble,
            &Layer::default(),
            "synapse",
            &three,
            &all,
            &mut watches,
        )
        .unwrap();
        *pebble.later_successes.borrow_mut() += 1;
        assert_eq!(
            tracked_state(&pebble, &all, &mut watches).unwrap(),
            Progress::Ready
        );
        assert_eq!(
            tracked_state(&pebble, &all, &mut watches).unwrap(),
            Progress::Ready
        );

        pebble.pebble_restart(SENDER);
        let Progress::Waiting(m) = tracked_state(&pebble, &all, &mut watches).unwrap() else {
            panic!("not waiting")
        };
        assert!(
            m.starts_with(
                "the federation sender (synapse-federation-sender) was restarted by Pebble"
            ),
            "{m}"
        );
        assert!(watches[SENDER].by_pebble && !watches[CONTAINER].by_pebble);
        // Still so on the next hook, until its ready check passes again.
        assert!(matches!(
            tracked_state(&pebble, &all, &mut watches).unwrap(),
            Progress::Waiting(_)
        ));
        *pebble.later_successes.borrow_mut() += 1;
        assert_eq!(
            tracked_state(&pebble, &all, &mut watches).unwrap(),
            Progress::Ready
        );
        assert!(!watches[SENDER].by_pebble);
        assert_eq!(*pebble.restarts.borrow(), 2, "the charm restarted nothing");
    }
}
