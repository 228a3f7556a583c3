//! Typed Pebble layer (and plan) model.
//!
//! Serialisation emits only the fields Pebble knows and leaves out empty or
//! unset ones, because Pebble rejects unknown fields in a layer.
//! Deserialisation ignores fields it does not know, so a plan printed by a
//! newer Pebble still parses. Durations use [`GoDuration`], so a layer read
//! back from `GET /v1/plan` (which prints `2m0s`) compares equal to the layer
//! that was added with `2m`.
//!
//! Note that Pebble fills in a check's `threshold` (3) in the combined plan
//! when no layer sets it; set it explicitly if the desired layer is to compare
//! equal to the plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::error::{Error, Result};

/// How a layer entry combines with the same entry in lower layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// Fields are merged into the existing entry.
    Merge,
    /// The entry replaces the existing one entirely (the default here).
    #[default]
    Replace,
}

/// Whether a service or check starts automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Startup {
    Enabled,
    Disabled,
}

/// Check level, used by `/v1/health` (and Kubernetes probes in Juju).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckLevel {
    Alive,
    Ready,
}

impl CheckLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckLevel::Alive => "alive",
            CheckLevel::Ready => "ready",
        }
    }
}

/// What Pebble does when a service exits or one of its checks fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceAction {
    Restart,
    Shutdown,
    FailureShutdown,
    SuccessShutdown,
    Ignore,
}

/// Kind of a log forwarding target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogTargetType {
    Loki,
    Opentelemetry,
    Syslog,
}

/// A layer: the unit added with `POST /v1/layers`, and also the shape of
/// the combined plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Layer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Check>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_targets: BTreeMap<String, LogTarget>,
}

impl Layer {
    /// YAML text as sent to Pebble.
    pub fn to_yaml(&self) -> Result<String> {
        serde_saphyr::to_string(self).map_err(|e| Error::Yaml(e.to_string()))
    }

    /// Parses a layer or a plan; unknown fields are ignored.
    pub fn from_yaml(text: &str) -> Result<Layer> {
        if text.trim().is_empty() || text.trim() == "{}" {
            return Ok(Layer::default());
        }
        serde_saphyr::from_str(text).map_err(|e| Error::Yaml(e.to_string()))
    }
}

/// A service entry (`services.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Service {
    #[serde(rename = "override", default)]
    pub override_: Override,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Startup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<ServiceAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<ServiceAction>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on_check_failure: BTreeMap<String, ServiceAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_delay: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_delay: Option<GoDuration>,
}

impl Service {
    /// A `replace` service running `command` (not shell-interpreted).
    pub fn new(command: impl Into<String>) -> Self {
        Service {
            command: Some(command.into()),
            ..Service::default()
        }
    }
}

/// A health check entry (`checks.<name>`): exactly one of `http`, `tcp`,
/// `exec` must be set in the combined plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Check {
    #[serde(rename = "override", default)]
    pub override_: Override,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<CheckLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Startup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
}

impl Check {
    /// A `replace` check that GETs `url` (success = 2xx).
    pub fn http(url: impl Into<String>) -> Self {
        Check {
            http: Some(HttpCheck {
                url: url.into(),
                headers: BTreeMap::new(),
            }),
            ..Check::default()
        }
    }

    /// A `replace` check that connects to `port` (host defaults to localhost).
    pub fn tcp(port: u16) -> Self {
        Check {
            tcp: Some(TcpCheck { port, host: None }),
            ..Check::default()
        }
    }

    /// A `replace` check that runs `command` (success = exit 0).
    pub fn exec(command: impl Into<String>) -> Self {
        Check {
            exec: Some(ExecCheck {
                command: command.into(),
                ..ExecCheck::default()
            }),
            ..Check::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpCheck {
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TcpCheck {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecCheck {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_context: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// A log forwarding target (`log-targets.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogTarget {
    #[serde(rename = "override", default)]
    pub override_: Override,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<LogTargetType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `all`, service names, `-name`, `-all`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_service_yaml_omits_empty_fields() {
        let mut layer = Layer::default();
        layer
            .services
            .insert("web".into(), Service::new("/usr/bin/web --port 8080"));
        let yaml = layer.to_yaml().unwrap();
        assert!(yaml.contains("web:"), "{yaml}");
        assert!(yaml.contains("override: replace"), "{yaml}");
        assert!(yaml.contains("command: /usr/bin/web --port 8080"), "{yaml}");
        for absent in [
            "summary",
            "description",
            "startup",
            "environment",
            "after",
            "checks",
            "log-targets",
            "user",
            "backoff",
            "null",
            "~",
            "[]",
            "{}",
        ] {
            assert!(!yaml.contains(absent), "{absent:?} in {yaml}");
        }
    }

    #[test]
    fn empty_layer_is_empty_mapping() {
        let yaml = Layer::default().to_yaml().unwrap();
        assert_eq!(Layer::from_yaml(&yaml).unwrap(), Layer::default());
        assert_eq!(Layer::from_yaml("").unwrap(), Layer::default());
        assert_eq!(Layer::from_yaml("{}\n").unwrap(), Layer::default());
    }

    fn full_layer() -> Layer {
        let mut svc = Service::new("/bin/sleep 1000");
        svc.summary = Some("a service".into());
        svc.startup = Some(Startup::Enabled);
        svc.after = vec!["db".into()];
        svc.requires = vec!["db".into()];
        svc.environment.insert("PORT".into(), "5000".into());
        svc.environment.insert("FLAG".into(), "true".into());
        svc.environment.insert("EMPTY".into(), String::new());
        svc.environment.insert("TRICKY".into(), "a: b # c".into());
        svc.user_id = Some(0);
        svc.on_failure = Some(ServiceAction::FailureShutdown);
        svc.on_check_failure
            .insert("up".into(), ServiceAction::Restart);
        svc.backoff_delay = Some(GoDuration::from_millis(300));
        svc.backoff_factor = Some(1.5);
        svc.backoff_limit = Some(GoDuration::from_secs(120));
        svc.kill_delay = Some(GoDuration::from_secs(2));

        let mut chk = Check::http("http://localhost:8080/health");
        chk.level = Some(CheckLevel::Alive);
        chk.period = Some(GoDuration::from_secs(10));
        chk.threshold = Some(3);
        chk.http
            .as_mut()
            .unwrap()
            .headers
            .insert("X-A".into(), "1".into());

        let mut exec = Check::exec("/bin/true");
        exec.override_ = Override::Merge;
        exec.exec.as_mut().unwrap().service_context = Some("web".into());

        let lt = LogTarget {
            override_: Override::Merge,
            target_type: Some(LogTargetType::Loki),
            location: Some("http://loki:3100/loki/api/v1/push".into()),
            services: vec!["all".into(), "-db".into()],
            labels: BTreeMap::from([("app".into(), "$APP".into())]),
        };

        let mut layer = Layer {
            summary: Some("s".into()),
            ..Layer::default()
        };
        layer.services.insert("web".into(), svc);
        layer.checks.insert("up".into(), chk);
        layer.checks.insert("exec".into(), exec);
        layer.checks.insert("tcp".into(), Check::tcp(5432));
        layer.log_targets.insert("loki".into(), lt);
        layer
    }

    #[test]
    fn yaml_round_trip_and_field_names() {
        let layer = full_layer();
        let yaml = layer.to_yaml().unwrap();
        for field in [
            "log-targets:",
            "on-check-failure:",
            "on-failure: failure-shutdown",
            "backoff-delay: 300ms",
            "backoff-limit: 2m0s",
            "backoff-factor: 1.5",
            "kill-delay: 2s",
            "user-id: 0",
            "service-context: web",
            "override: merge",
            "type: loki",
            "level: alive",
            "startup: enabled",
        ] {
            assert!(yaml.contains(field), "{field:?} missing in\n{yaml}");
        }
        assert_eq!(Layer::from_yaml(&yaml).unwrap(), layer, "{yaml}");
    }

    #[test]
    fn plan_with_unknown_fields_and_go_spellings_parses() {
        let plan = r#"
summary: whatever
workloads:
    w1:
        override: replace
services:
    web:
        override: replace
        command: /bin/sleep 1000
        workload: w1
        future-field: [1, 2]
        environment:
            PORT: "5000"
            NUM: 5000
        backoff-factor: 2
        backoff-limit: 2m0s
checks:
    up:
        override: replace
        threshold: 3
        period: 1m0s
        tcp:
            port: 80
        new-kind-of-thing: {a: b}
"#;
        let layer = Layer::from_yaml(plan).unwrap();
        let web = &layer.services["web"];
        assert_eq!(web.environment["PORT"], "5000");
        assert_eq!(web.environment["NUM"], "5000");
        assert_eq!(web.backoff_factor, Some(2.0));
        assert_eq!(web.backoff_limit, Some(GoDuration::from_secs(120)));
        assert_eq!(layer.checks["up"].period, Some(GoDuration::from_secs(60)));
        assert_eq!(layer.checks["up"].tcp.as_ref().unwrap().port, 80);
    }

    #[test]
    fn bad_yaml_is_a_yaml_error() {
        let e = Layer::from_yaml("services: [").unwrap_err();
        assert!(matches!(e, Error::Yaml(_)), "{e:?}");
        let e = Layer::from_yaml("services:\n  x:\n    kill-delay: soon\n").unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
    }
}
