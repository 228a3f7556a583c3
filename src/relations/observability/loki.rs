//! `logging` (`loki_push_api` v1, requirer side) through Pebble log forwarding: each
//! workload container gets one `loki` log target per Loki unit, pushing the console
//! output of every service (Synapse logs to the console).
//!
//! Pebble cannot delete a log target, so the target of a Loki unit that is gone is
//! re-added with `services: ["-all"]`, which disables it.

use std::collections::BTreeMap;

use pebble::{Layer, LogTarget, LogTargetType, Override};
use serde_json::Value;

use super::topology::Topology;
use crate::juju::Databag;

pub const ENDPOINT: &str = "logging";
/// Pebble layer label in both workload containers.
pub const LAYER_LABEL: &str = "synapse-logging";
/// Loki's unit databag key: `{"url": "http://…/loki/api/v1/push"}`.
pub const ENDPOINT_KEY: &str = "endpoint";
/// Our application databag key (the topology).
pub const METADATA: &str = "metadata";

/// The push URL a Loki unit publishes, if any.
pub fn endpoint_url(bag: &Databag) -> Option<String> {
    let v: Value = serde_json::from_str(bag.get(ENDPOINT_KEY)?).ok()?;
    let url = v.get("url")?.as_str()?.trim();
    (url.starts_with("http://") || url.starts_with("https://")).then(|| url.to_string())
}

/// The labels of every forwarded line.
pub fn labels(topology: &Topology) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("product".to_string(), "Juju".to_string()),
        ("charm".to_string(), topology.charm_name.clone()),
        ("juju_model".to_string(), topology.model.clone()),
        ("juju_model_uuid".to_string(), topology.model_uuid.clone()),
        ("juju_application".to_string(), topology.application.clone()),
        ("juju_unit".to_string(), topology.unit.clone()),
    ])
}

fn target(location: &str, enabled: bool, labels: &BTreeMap<String, String>) -> LogTarget {
    LogTarget {
        override_: Override::Replace,
        target_type: Some(LogTargetType::Loki),
        location: Some(location.to_string()),
        services: vec![if enabled { "all" } else { "-all" }.to_string()],
        labels: labels.clone(),
    }
}

/// The layer for one container: an enabled target per Loki unit (`(unit name, push
/// URL)`), and every Loki target of the plan (`known`) whose unit is gone, disabled.
pub fn log_targets(
    topology: &Topology,
    loki_units: &[(String, String)],
    known: &BTreeMap<String, LogTarget>,
) -> Layer {
    let labels = labels(topology);
    let mut log_targets: BTreeMap<String, LogTarget> = loki_units
        .iter()
        .map(|(unit, url)| (unit.clone(), target(url, true, &labels)))
        .collect();
    for (name, t) in known {
        if log_targets.contains_key(name) || t.target_type != Some(LogTargetType::Loki) {
            continue;
        }
        // A target without a location is not one Pebble would have accepted; leave it.
        if let Some(location) = &t.location {
            log_targets.insert(name.clone(), target(location, false, &labels));
        }
    }
    Layer {
        summary: Some("Synapse log forwarding".into()),
        description: Some("Loki log targets managed by the Synapse charm".into()),
        log_targets,
        ..Layer::default()
    }
}

/// Whether adding `desired` would change the plan's log targets (`override` is how a
/// layer combines, not part of the target, so it is not compared).
pub fn differs(plan: &Layer, desired: &Layer) -> bool {
    desired.log_targets.iter().any(|(name, want)| {
        plan.log_targets.get(name).is_none_or(|have| {
            have.target_type != want.target_type
                || have.location != want.location
                || have.services != want.services
                || have.labels != want.labels
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::observability::topology::tests::topology;

    const URL0: &str =
        "http://loki-k8s-0.loki-k8s-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push";
    const URL1: &str =
        "http://loki-k8s-1.loki-k8s-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push";

    #[test]
    fn endpoint_url_from_the_unit_bag() {
        let bag = |v: &str| Databag::from([(ENDPOINT_KEY.to_string(), v.to_string())]);
        assert_eq!(
            endpoint_url(&bag(&format!("{{\"url\": \"{URL0}\"}}"))).as_deref(),
            Some(URL0)
        );
        for bad in [
            "",
            "{}",
            "not json",
            "{\"url\": 3}",
            "{\"url\": \"ftp://x\"}",
        ] {
            assert_eq!(endpoint_url(&bag(bad)), None, "{bad}");
        }
        assert_eq!(endpoint_url(&Databag::new()), None);
    }

    #[test]
    fn one_enabled_target_per_loki_unit_with_topology_labels() {
        let t = topology();
        let units = vec![
            ("loki-k8s/0".to_string(), URL0.to_string()),
            ("loki-k8s/1".to_string(), URL1.to_string()),
        ];
        let layer = log_targets(&t, &units, &BTreeMap::new());
        assert!(layer.services.is_empty() && layer.checks.is_empty());
        assert_eq!(layer.log_targets.len(), 2);
        let lt = &layer.log_targets["loki-k8s/0"];
        assert_eq!(lt.override_, Override::Replace);
        assert_eq!(lt.target_type, Some(LogTargetType::Loki));
        assert_eq!(lt.location.as_deref(), Some(URL0));
        assert_eq!(lt.services, vec!["all"]);
        assert_eq!(
            lt.labels,
            BTreeMap::from([
                ("product".into(), "Juju".into()),
                ("charm".into(), "synapse".into()),
                ("juju_model".into(), "chat".into()),
                (
                    "juju_model_uuid".into(),
                    "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab".into()
                ),
                ("juju_application".into(), "synapse".into()),
                ("juju_unit".into(), "synapse/0".into()),
            ])
        );
        let yaml = layer.to_yaml().unwrap();
        assert!(
            yaml.contains("log-targets:") && yaml.contains("type: loki"),
            "{yaml}"
        );
    }

    #[test]
    fn gone_units_are_disabled_and_others_untouched() {
        let t = topology();
        let units = vec![
            ("loki-k8s/0".to_string(), URL0.to_string()),
            ("loki-k8s/1".to_string(), URL1.to_string()),
        ];
        let plan = log_targets(&t, &units, &BTreeMap::new());
        let mut known = plan.log_targets.clone();
        known.insert(
            "syslog".into(),
            LogTarget {
                target_type: Some(LogTargetType::Syslog),
                location: Some("udp://x".into()),
                ..LogTarget::default()
            },
        );
        let layer = log_targets(&t, &units[1..], &known);
        assert_eq!(layer.log_targets.len(), 2, "{:?}", layer.log_targets);
        let gone = &layer.log_targets["loki-k8s/0"];
        assert_eq!(gone.services, vec!["-all"]);
        assert_eq!(
            gone.location.as_deref(),
            Some(URL0),
            "keeps a valid location"
        );
        assert_eq!(layer.log_targets["loki-k8s/1"].services, vec!["all"]);
        // Everything gone: all disabled; a unit that comes back is enabled again.
        let none = log_targets(&t, &[], &plan.log_targets);
        assert!(none.log_targets.values().all(|lt| lt.services == ["-all"]));
        let back = log_targets(&t, &units[..1], &none.log_targets);
        assert_eq!(back.log_targets["loki-k8s/0"].services, vec!["all"]);
        assert_eq!(back.log_targets["loki-k8s/1"].services, vec!["-all"]);
        // No relation, nothing known: nothing to add.
        assert!(log_targets(&t, &[], &BTreeMap::new())
            .log_targets
            .is_empty());
    }

    #[test]
    fn differs_ignores_override_and_unrelated_targets() {
        let t = topology();
        let units = vec![("loki-k8s/0".to_string(), URL0.to_string())];
        let desired = log_targets(&t, &units, &BTreeMap::new());
        assert!(differs(&Layer::default(), &desired));
        let mut plan = desired.clone();
        assert!(!differs(&plan, &desired));
        plan.log_targets.get_mut("loki-k8s/0").unwrap().override_ = Override::Merge;
        assert!(!differs(&plan, &desired));
        plan.log_targets
            .insert("other".into(), LogTarget::default());
        assert!(!differs(&plan, &desired));
        plan.log_targets.get_mut("loki-k8s/0").unwrap().services = vec!["-all".into()];
        assert!(differs(&plan, &desired));
        assert!(!differs(&plan, &Layer::default()));
    }
}
