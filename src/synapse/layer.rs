//! The `synapse` container's Pebble layer: the Synapse service and its checks.

use std::collections::BTreeMap;

use pebble::{Check, CheckLevel, GoDuration, Layer, Override, Service, ServiceAction, Startup};

use super::config::SynapseConfig;
use super::homeserver::{CLIENT_PORT, CONFIG_PATH};

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
    let mut services = BTreeMap::from([(SERVICE.to_string(), service)]);
    // The stats exporter runs on the main unit only.
    if let Some(e) = exporter.filter(|_| !config.is_worker()) {
        services.insert(EXPORTER.to_string(), exporter_service(Some(e)));
    }
    Layer {
        summary: Some("Synapse".into()),
        description: Some("Synapse homeserver, managed by the Synapse charm".into()),
        services,
        checks: BTreeMap::from([
            (READY_CHECK.to_string(), ready),
            (ALIVE_CHECK.to_string(), alive_check),
        ]),
        log_targets: BTreeMap::new(),
    }
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
}
