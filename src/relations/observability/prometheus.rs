//! `metrics-endpoint` (`prometheus_scrape` v0, provider side): what the databags say.
//!
//! The leader writes `scrape_metadata`, `scrape_jobs` and `alert_rules` in the
//! application databag; every unit writes its address and name in its unit databag.
//! Prometheus expands the wildcard targets (`*:9000`) to one job per unit, from the unit
//! databags, and labels the series with the topology.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::topology::Topology;
use crate::juju::Databag;

pub const ENDPOINT: &str = "metrics-endpoint";
/// Synapse's metrics listener (port 9000).
pub const SYNAPSE_JOB: &str = "synapse_application";
/// The stats exporter (port 9877), only where it runs (PostgreSQL).
pub const EXPORTER_JOB: &str = "synapse_stats_exporter";

/// The job keys the Prometheus charm accepts; anything else is dropped.
pub const ALLOWED_JOB_KEYS: [&str; 17] = [
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "proxy_url",
    "relabel_configs",
    "metric_relabel_configs",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "scheme",
    "basic_auth",
    "tls_config",
    "authorization",
    "params",
];

/// The rule files of `observability/prometheus_alert_rules/` (not its `tests/`), part of
/// the binary. A unit test checks this list against the directory.
pub const RULE_FILES: [(&str, &str); 2] = [
    (
        "stats_exporter.rules.yaml",
        include_str!("../../../observability/prometheus_alert_rules/stats_exporter.rules.yaml"),
    ),
    (
        "synapse.rules.yaml",
        include_str!("../../../observability/prometheus_alert_rules/synapse.rules.yaml"),
    ),
];

/// App databag key names.
pub const SCRAPE_METADATA: &str = "scrape_metadata";
pub const SCRAPE_JOBS: &str = "scrape_jobs";
pub const ALERT_RULES: &str = "alert_rules";
/// Unit databag key names.
pub const UNIT_ADDRESS: &str = "prometheus_scrape_unit_address";
pub const UNIT_NAME: &str = "prometheus_scrape_unit_name";
pub const UNIT_FQDN: &str = "prometheus_scrape_unit_fqdn";

/// `scrape_metadata`: the topology; without it Prometheus does not expand `*` targets.
pub fn scrape_metadata(topology: &Topology) -> String {
    topology.to_json()
}

/// Keeps only the keys Prometheus accepts in a job.
pub fn sanitize_job(job: &Map<String, Value>) -> Map<String, Value> {
    job.iter()
        .filter(|(k, _)| ALLOWED_JOB_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn wildcard_job(name: &str, port: u16) -> Map<String, Value> {
    let job = json!({
        "job_name": name,
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [format!("*:{port}")]}],
    });
    match job {
        Value::Object(m) => sanitize_job(&m),
        _ => Map::new(),
    }
}

/// `scrape_jobs`: Synapse always; the stats exporter only while it runs.
pub fn scrape_jobs(exporter: bool) -> String {
    let mut jobs = vec![Value::Object(wildcard_job(
        SYNAPSE_JOB,
        crate::synapse::homeserver::METRICS_PORT,
    ))];
    if exporter {
        jobs.push(Value::Object(wildcard_job(
            EXPORTER_JOB,
            crate::synapse::layer::EXPORTER_PORT,
        )));
    }
    Value::Array(jobs).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule file {file}: {message}")]
    Parse { file: &'static str, message: String },
    #[error("rule file {file}: {message}")]
    Shape { file: &'static str, message: String },
}

/// `alert_rules`: the groups of every rule file (alerting and recording rules), each
/// rule labelled with the topology and each group name prefixed with it.
pub fn alert_rules(topology: &Topology) -> Result<String, RulesError> {
    let prefix = topology.identifier();
    let mut groups = Vec::new();
    for (file, text) in RULE_FILES {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| RulesError::Parse {
            file,
            message: e.to_string(),
        })?;
        let shape = |message: &str| RulesError::Shape {
            file,
            message: message.to_string(),
        };
        let Some(file_groups) = doc.get("groups").and_then(Value::as_array) else {
            return Err(shape("no `groups` list"));
        };
        for group in file_groups {
            let mut group = group
                .as_object()
                .cloned()
                .ok_or_else(|| shape("a group is not a mapping"))?;
            let name = group
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| shape("a group has no name"))?;
            let name = format!("{prefix}_{name}");
            group.insert("name".into(), Value::String(name));
            let rules = group
                .get_mut("rules")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| shape("a group has no `rules` list"))?;
            for rule in rules.iter_mut() {
                let rule = rule
                    .as_object_mut()
                    .ok_or_else(|| shape("a rule is not a mapping"))?;
                let labels = rule
                    .entry("labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                if labels.is_null() {
                    *labels = Value::Object(Map::new());
                }
                let labels = labels
                    .as_object_mut()
                    .ok_or_else(|| shape("a rule's labels are not a mapping"))?;
                for (k, v) in topology.rule_labels() {
                    labels.insert(k.to_string(), Value::String(v.to_string()));
                }
            }
            groups.push(Value::Object(group));
        }
    }
    Ok(json!({ "groups": groups }).to_string())
}

/// The application databag the leader wants. A rule-file problem (a build defect the
/// unit tests catch) leaves `alert_rules` out rather than failing the hook.
pub fn app_bag(topology: &Topology, exporter: bool) -> Databag {
    let mut bag = Databag::from([
        (SCRAPE_METADATA.to_string(), scrape_metadata(topology)),
        (SCRAPE_JOBS.to_string(), scrape_jobs(exporter)),
    ]);
    match alert_rules(topology) {
        Ok(rules) => {
            bag.insert(ALERT_RULES.to_string(), rules);
        }
        Err(e) => tracing::error!("not sending alert rules: {e}"),
    }
    bag
}

/// The unit databag: the bind address from `network-get` if it is an IP address, else
/// the unit's FQDN; its name; its FQDN.
pub fn unit_bag(topology: &Topology, bind_address: Option<&str>) -> Databag {
    let fqdn = topology.fqdn();
    let address = bind_address
        .map(str::trim)
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| fqdn.clone());
    Databag::from([
        (UNIT_ADDRESS.to_string(), address),
        (UNIT_NAME.to_string(), topology.unit.clone()),
        (UNIT_FQDN.to_string(), fqdn),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::observability::topology::tests::topology;

    fn jobs(exporter: bool) -> Vec<Value> {
        serde_json::from_str::<Value>(&scrape_jobs(exporter))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn synapse_job_always_exporter_job_only_when_it_runs() {
        let on = jobs(true);
        assert_eq!(
            on,
            vec![
                json!({"job_name": "synapse_application", "metrics_path": "/metrics",
                       "static_configs": [{"targets": ["*:9000"]}]}),
                json!({"job_name": "synapse_stats_exporter", "metrics_path": "/metrics",
                       "static_configs": [{"targets": ["*:9877"]}]}),
            ]
        );
        let off = jobs(false);
        assert_eq!(off, on[..1].to_vec());
        for job in on {
            for k in job.as_object().unwrap().keys() {
                assert!(ALLOWED_JOB_KEYS.contains(&k.as_str()), "{k}");
            }
        }
    }

    #[test]
    fn sanitize_drops_unknown_keys() {
        let job = json!({"job_name": "x", "honor_labels": true, "scheme": "https", "foo": 1});
        let clean = sanitize_job(job.as_object().unwrap());
        assert_eq!(
            Value::Object(clean),
            json!({"job_name": "x", "scheme": "https"})
        );
    }

    #[test]
    fn metadata_is_the_topology() {
        let v: Value = serde_json::from_str(&scrape_metadata(&topology())).unwrap();
        assert_eq!(v["model_uuid"], "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab");
        assert_eq!(v["charm_name"], "synapse");
        assert_eq!(v["unit"], "synapse/0");
    }

    fn source_groups() -> Vec<Value> {
        RULE_FILES
            .iter()
            .flat_map(|(_, text)| {
                let v: Value = serde_saphyr::from_str(text).unwrap();
                v["groups"].as_array().unwrap().clone()
            })
            .collect()
    }

    #[test]
    fn rules_get_topology_labels_and_prefixed_groups() {
        let t = topology();
        let rules: Value = serde_json::from_str(&alert_rules(&t).unwrap()).unwrap();
        let groups = rules["groups"].as_array().unwrap();
        let source = source_groups();
        assert_eq!(groups.len(), source.len());
        let (mut alerts, mut records) = (0, 0);
        for (g, s) in groups.iter().zip(&source) {
            assert_eq!(
                g["name"].as_str().unwrap(),
                format!("{}_{}", t.identifier(), s["name"].as_str().unwrap())
            );
            let rules = g["rules"].as_array().unwrap();
            assert_eq!(rules.len(), s["rules"].as_array().unwrap().len());
            for (r, sr) in rules.iter().zip(s["rules"].as_array().unwrap()) {
                assert_eq!(r["expr"], sr["expr"], "expressions unchanged");
                assert_eq!(r["labels"]["juju_model"], "chat");
                assert_eq!(
                    r["labels"]["juju_model_uuid"],
                    "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab"
                );
                assert_eq!(r["labels"]["juju_application"], "synapse");
                assert_eq!(r["labels"]["juju_charm"], "synapse");
                if let Some(sev) = sr["labels"].get("severity") {
                    assert_eq!(&r["labels"]["severity"], sev, "own labels kept");
                }
                if r.get("alert").is_some() {
                    alerts += 1;
                } else {
                    assert!(r.get("record").is_some());
                    records += 1;
                }
            }
        }
        assert!(alerts >= 10, "{alerts} alerts");
        assert!(records >= 17, "recording rules are passed too: {records}");
        assert!(groups.iter().any(|g| g["name"]
            .as_str()
            .unwrap()
            .ends_with("_synapse_stats_exporter_alerts")));
    }

    #[test]
    fn two_applications_never_share_a_group_name() {
        let a = topology();
        let b = Topology {
            application: "synapse-b".into(),
            unit: "synapse-b/0".into(),
            ..topology()
        };
        let names = |t: &Topology| -> Vec<String> {
            let v: Value = serde_json::from_str(&alert_rules(t).unwrap()).unwrap();
            v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (na, nb) = (names(&a), names(&b));
        let mut all: Vec<&String> = na.iter().chain(&nb).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            n,
            "group names are unique within and across apps"
        );
    }

    #[test]
    fn rule_file_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("observability/prometheus_alert_rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rules.yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = RULE_FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded, "embed every top-level rule file");
        for (name, text) in RULE_FILES {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), text);
        }
    }

    /// The rules as shipped (topology labels included) pass `promtool check rules`.
    #[test]
    fn promtool_accepts_the_shipped_rules() {
        let promtool = std::path::Path::new("/usr/bin/promtool");
        assert!(
            promtool.exists(),
            "promtool is missing: install the Debian package prometheus (scripts/setup.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alert_rules.json");
        std::fs::write(&file, alert_rules(&topology()).unwrap()).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("SUCCESS"), "{text}");
    }

    #[test]
    fn unit_bag_uses_an_ip_or_else_the_fqdn() {
        let t = topology();
        let bag = unit_bag(&t, Some("10.1.2.3"));
        assert_eq!(bag[UNIT_ADDRESS], "10.1.2.3");
        assert_eq!(bag[UNIT_NAME], "synapse/0");
        assert_eq!(
            bag[UNIT_FQDN],
            "synapse-0.synapse-endpoints.chat.svc.cluster.local"
        );
        assert_eq!(unit_bag(&t, Some("fd00::1"))[UNIT_ADDRESS], "fd00::1");
        for bad in [None, Some(""), Some("not an address")] {
            assert_eq!(unit_bag(&t, bad)[UNIT_ADDRESS], t.fqdn(), "{bad:?}");
        }
    }

    #[test]
    fn app_bag_has_the_three_keys() {
        let bag = app_bag(&topology(), false);
        assert_eq!(
            bag.keys().collect::<Vec<_>>(),
            vec![ALERT_RULES, SCRAPE_JOBS, SCRAPE_METADATA]
        );
    }
}
