//! The prometheus-k8s stand-in: a played application with a `metrics-endpoint`
//! endpoint (interface `prometheus_scrape`, requires) backed by the real Prometheus
//! (Debian's `/usr/bin/prometheus`, or `$JUJULOCAL_PROMETHEUS`).
//!
//! - Deploy: Prometheus on the host's 127.0.0.1, on a free port, with its own data
//!   directory `/tmp/jlprom-<model uuid prefix>-<app>` and no job; its status says
//!   `Prometheus at http://127.0.0.1:<port>`.
//! - React (any event reaching its unit), for every live `metrics-endpoint` relation,
//!   as the Prometheus charm does with the `prometheus_scrape` library: read the
//!   provider's `scrape_metadata`, `scrape_jobs` and `alert_rules` and every joined
//!   unit's `prometheus_scrape_unit_*` keys; expand each `*:port` target into one job
//!   per unit (named `juju_<model>_<uuid prefix>_<app>_prometheus_scrape_<job>-<n>`,
//!   labelled with the topology and `juju_unit`); write each relation's rules to a file
//!   (`promtool check rules` first: refused rules are left out and the stand-in is
//!   `blocked` with the reason); `promtool check config`, then reload
//!   (`POST /-/reload`), only when the configuration changed.
//! - Not done: the topology matchers the charm injects into rule expressions (it
//!   uses cos-tool), remote-write, federation, its own alertmanager.
//! - Remove: Prometheus stops and its directory goes.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{daemon, ProviderState};
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "prometheus-k8s";
pub const ENDPOINT: &str = "metrics-endpoint";
/// How often the stand-in scrapes and evaluates rules (the charm's default: 1 m).
pub const INTERVAL: &str = "5s";

/// The job keys the Prometheus charm keeps from a provider's job.
const ALLOWED_JOB_KEYS: [&str; 17] = [
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub dir: PathBuf,
    pub port: u16,
    pub pid: u32,
    pub bin: PathBuf,
}

impl State {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self) -> PathBuf {
        self.dir.join("prometheus.yml")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("prometheus.log")
    }

    fn marker(&self) -> String {
        self.dir.display().to_string()
    }

    fn promtool(&self) -> PathBuf {
        self.bin.with_file_name("promtool")
    }
}

/// The topology a provider sends in `scrape_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Topology {
    pub model: String,
    pub model_uuid: String,
    pub application: String,
    #[serde(default)]
    pub charm_name: String,
}

/// One joined provider unit, from its databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub unit: String,
    pub address: String,
    pub path: String,
}

/// What one provider application sent over one relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    pub topology: Option<Topology>,
    pub jobs: Vec<Map<String, Value>>,
    /// `alert_rules` when it has groups.
    pub rules: Option<Value>,
    pub hosts: Vec<Host>,
}

/// Reads a provider's databags (pure). Keys that are not there yet give no jobs or
/// rules; keys that are there but unreadable are an error naming them.
pub fn parse(
    app: &BTreeMap<String, String>,
    units: &[(String, BTreeMap<String, String>)],
) -> Result<Scrape, String> {
    let json_key = |key: &str| -> Result<Option<Value>, String> {
        app.get(key)
            .filter(|v| !v.is_empty())
            .map(|raw| {
                serde_json::from_str(raw).map_err(|e| format!("{key} is not valid JSON: {e}"))
            })
            .transpose()
    };
    let topology = json_key("scrape_metadata")?
        .map(|v| {
            serde_json::from_value::<Topology>(v)
                .map_err(|e| format!("scrape_metadata is not a topology: {e}"))
        })
        .transpose()?;
    let jobs = match json_key("scrape_jobs")? {
        None => vec![],
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|j| match j {
                Value::Object(m) => Ok(m
                    .into_iter()
                    .filter(|(k, _)| ALLOWED_JOB_KEYS.contains(&k.as_str()))
                    .collect()),
                other => Err(format!("scrape_jobs holds a non-object: {other}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("scrape_jobs is not a list: {other}")),
    };
    let rules = json_key("alert_rules")?.filter(|r| {
        r.get("groups")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
    });
    let hosts = units
        .iter()
        .filter_map(|(unit, bag)| {
            let address = bag.get("prometheus_scrape_unit_address")?.clone();
            let name = bag
                .get("prometheus_scrape_unit_name")
                .cloned()
                .unwrap_or_else(|| unit.clone());
            (!address.is_empty()).then(|| Host {
                unit: name,
                address,
                path: bag
                    .get("prometheus_scrape_unit_path")
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect();
    Ok(Scrape {
        topology,
        jobs,
        rules,
        hosts,
    })
}

fn topology_labels(t: &Topology) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("juju_model".into(), json!(t.model));
    m.insert("juju_model_uuid".into(), json!(t.model_uuid));
    m.insert("juju_application".into(), json!(t.application));
    m.insert("juju_charm".into(), json!(t.charm_name));
    m
}

fn targets(job: &Map<String, Value>) -> Vec<(String, Map<String, Value>)> {
    job.get("static_configs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|sc| {
            let labels = sc
                .get("labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            sc.get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |t| (t.to_string(), labels.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The scrape configuration for one provider (pure), as the charm's library builds it:
/// wildcard targets become one job per unit; other targets stay in one job labelled
/// with the topology. Without `scrape_metadata` wildcard targets are dropped.
pub fn expand(s: &Scrape) -> Vec<Value> {
    let mut out = vec![];
    for job in &s.jobs {
        let name = job.get("job_name").and_then(Value::as_str).unwrap_or("");
        let all = targets(job);
        let (wild, fixed): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(t, _)| t == "*" || t.starts_with("*:"));
        let Some(topo) = &s.topology else {
            if !fixed.is_empty() {
                let mut j = job.clone();
                j.insert("static_configs".into(), static_configs(&fixed, None));
                out.push(Value::Object(j));
            }
            continue;
        };
        let prefix = format!(
            "juju_{}_{}_{}_prometheus_scrape",
            topo.model,
            topo.model_uuid.get(..8).unwrap_or(&topo.model_uuid),
            topo.application
        );
        let base = if name.is_empty() {
            prefix
        } else {
            format!("{prefix}_{name}")
        };
        let metrics_path = job
            .get("metrics_path")
            .and_then(Value::as_str)
            .unwrap_or("/metrics");
        for host in &s.hosts {
            if wild.is_empty() {
                break;
            }
            let n = host.unit.rsplit('/').next().unwrap_or("0");
            let mut labels = topology_labels(topo);
            labels.insert("juju_unit".into(), json!(host.unit));
            let expanded: Vec<(String, Map<String, Value>)> = wild
                .iter()
                .map(|(t, extra)| {
                    let mut l = extra.clone();
                    l.extend(labels.clone());
                    (t.replacen('*', &host.address, 1), l)
                })
                .collect();
            let mut j = job.clone();
            j.insert("job_name".into(), json!(format!("{base}-{n}")));
            j.insert(
                "metrics_path".into(),
                json!(format!("{}{metrics_path}", host.path.trim_end_matches('/'))),
            );
            j.insert("static_configs".into(), static_configs(&expanded, None));
            let mut relabel = vec![json!({
                "source_labels": ["juju_model", "juju_model_uuid", "juju_application", "juju_unit"],
                "separator": "_",
                "target_label": "instance",
                "regex": "(.*)",
            })];
            if let Some(Value::Array(own)) = job.get("relabel_configs") {
                relabel.extend(own.iter().cloned());
            }
            j.insert("relabel_configs".into(), Value::Array(relabel));
            out.push(Value::Object(j));
        }
        if !fixed.is_empty() {
            let mut j = job.clone();
            j.insert("job_name".into(), json!(base));
            j.insert(
                "static_configs".into(),
                static_configs(&fixed, Some(topology_labels(topo))),
            );
            out.push(Value::Object(j));
        }
    }
    out
}

fn static_configs(
    targets: &[(String, Map<String, Value>)],
    extra: Option<Map<String, Value>>,
) -> Value {
    Value::Array(
        targets
            .iter()
            .map(|(t, labels)| {
                let mut l = labels.clone();
                if let Some(e) = &extra {
                    l.extend(e.clone());
                }
                json!({"targets": [t], "labels": l})
            })
            .collect(),
    )
}

/// `prometheus.yml` (pure; JSON is YAML).
pub fn render(jobs: &[Value], rule_files: &[PathBuf]) -> String {
    let doc = json!({
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": rule_files,
        "scrape_configs": jobs,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

fn prometheus_bin() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("JUJULOCAL_PROMETHEUS") {
        return Ok(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/bin/prometheus");
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::NotFound(format!(
            "{CHARM} stand-in: no {} (install Debian's prometheus, or set JUJULOCAL_PROMETHEUS)",
            p.display()
        )))
    }
}

fn start(dir: &Path, bin: &Path) -> Result<State, Error> {
    let mut last = None;
    for _ in 0..3 {
        let port = super::proxy::free_port()?;
        let st = State {
            dir: dir.to_path_buf(),
            port,
            pid: 0,
            bin: bin.to_path_buf(),
        };
        let args = vec![
            format!("--config.file={}", st.config().display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-lifecycle".to_string(),
            "--storage.tsdb.retention.time=1d".to_string(),
        ];
        let pid = daemon::spawn(bin, &args, &st.log())?;
        let st = State { pid, ..st };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match daemon::wait_ready(addr, "/-/ready", pid, &st.marker(), &st.log()) {
            Ok(()) => return Ok(st),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::invalid(Area::Model, "Prometheus did not start")))
}

/// `juju deploy prometheus-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    let bin = prometheus_bin()?;
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlprom-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).map_err(Error::io(Area::Model, &dir))?;
    std::fs::write(dir.join("prometheus.yml"), render(&[], &[]))
        .map_err(Error::io(Area::Model, &dir))?;
    let st = start(&dir, &bin)?;
    super::save_data(c, app, CHARM, &st)?;
    let endpoints = [(ENDPOINT.into(), "prometheus_scrape".into(), Role::Requires)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "active", &format!("Prometheus at {}", st.url()))
}

/// Runs promtool; the error is its output's first meaningful line.
fn promtool(st: &State, args: &[&str]) -> Result<(), String> {
    let out = Command::new(st.promtool())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", st.promtool().display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let meaningful: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Checking")
                && !l.starts_with("SUCCESS")
                && *l != "FAILED:"
        })
        .collect();
    let mut reason = if meaningful.is_empty() {
        "promtool failed".to_string()
    } else {
        meaningful.join(" ")
    };
    // The file is ours: its directory says nothing to the reader.
    reason = reason.replace(&format!("{}/", st.dir.join("rules").display()), "");
    reason = reason.replace(&format!("{}/", st.dir.display()), "");
    Err(reason)
}

fn reload(st: &State) -> Result<(), Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, st.port));
    let r = http1::tcp_round_trip(
        addr,
        &http1::Request::new("POST", "/-/reload"),
        Duration::from_secs(30),
    )
    .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in: reload: {e}")))?;
    if r.status == 200 {
        return Ok(());
    }
    Err(Error::invalid(
        Area::Model,
        format!(
            "{CHARM} stand-in: reload answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body).trim()
        ),
    ))
}

/// Writes the jobs and rules of every relation; reloads Prometheus when they changed.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let rules_dir = st.dir.join("rules");
    let mut jobs = vec![];
    let mut rule_files = vec![];
    let mut problems = vec![];
    let mut keep = vec![];
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let app_bag = rel.app_data.get(&remote).cloned().unwrap_or_default();
        let units: Vec<_> = rel
            .joined
            .get(&remote)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                let bag = rel.unit_data.get(&u).cloned().unwrap_or_default();
                (u, bag)
            })
            .collect();
        let scrape = match parse(&app_bag, &units) {
            Ok(s) => s,
            Err(why) => {
                problems.push(format!("{remote} (relation {}): {why}", rel.id));
                continue;
            }
        };
        jobs.extend(expand(&scrape));
        if let Some(rules) = &scrape.rules {
            let file = rules_dir.join(format!("{remote}-{}.rules", rel.id));
            keep.push(file.clone());
            let text = serde_json::to_string_pretty(rules).unwrap_or_default();
            // A file that is there passed promtool (refused ones are deleted).
            if std::fs::read_to_string(&file).ok().as_deref() == Some(text.as_str()) {
                rule_files.push(file);
                continue;
            }
            std::fs::write(&file, text).map_err(Error::io(Area::Model, &file))?;
            let path = file.display().to_string();
            match promtool(&st, &["check", "rules", &path]) {
                Ok(()) => rule_files.push(file),
                Err(why) => {
                    problems.push(format!(
                        "alert rules of {remote} (relation {}) refused: {why}",
                        rel.id
                    ));
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
    }
    // Rule files of relations that are gone.
    if let Ok(entries) = std::fs::read_dir(&rules_dir) {
        for e in entries.flatten() {
            if !keep.contains(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let text = render(&jobs, &rule_files);
    let current = std::fs::read_to_string(st.config()).unwrap_or_default();
    if text != current {
        let candidate = st.dir.join("prometheus.yml.new");
        std::fs::write(&candidate, &text).map_err(Error::io(Area::Model, &candidate))?;
        let path = candidate.display().to_string();
        match promtool(&st, &["check", "config", &path]) {
            Ok(()) => {
                std::fs::rename(&candidate, st.config())
                    .map_err(Error::io(Area::Model, st.config()))?;
                reload(&st)?;
            }
            Err(why) => problems.push(format!("configuration refused: {why}")),
        }
    }
    let here = format!("Prometheus at {}", st.url());
    if problems.is_empty() {
        super::set_unit_status(c, app, "active", &here)
    } else {
        eprintln!("jujulocal: {CHARM} stand-in: {}", problems.join("; "));
        super::set_unit_status(
            c,
            app,
            "blocked",
            &format!("{}; {here}", problems.join("; ")),
        )
    }
}

/// Stops Prometheus and removes its directory.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    if let Ok(st) = state(pst) {
        daemon::stop_and_remove(st.pid, &st.marker(), &st.dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn wildcards_become_one_job_per_unit_with_the_topology() {
        let app = bag(&[
            (
                "scrape_metadata",
                r#"{"model":"m","model_uuid":"0123456789ab","application":"synapse","unit":"synapse/0","charm_name":"synapse"}"#,
            ),
            (
                "scrape_jobs",
                r#"[{"job_name":"synapse_application","metrics_path":"/metrics","static_configs":[{"targets":["*:9000"]}],"junk":1}]"#,
            ),
            ("alert_rules", r#"{"groups":[]}"#),
        ]);
        let units = vec![
            (
                "synapse/0".to_string(),
                bag(&[
                    ("prometheus_scrape_unit_address", "10.0.0.1"),
                    ("prometheus_scrape_unit_name", "synapse/0"),
                ]),
            ),
            ("synapse/1".to_string(), bag(&[])),
        ];
        let s = parse(&app, &units).unwrap();
        assert!(s.rules.is_none(), "empty groups are skipped");
        assert_eq!(s.hosts.len(), 1, "a unit without an address is skipped");
        let jobs = expand(&s);
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert_eq!(
            j["job_name"],
            "juju_m_01234567_synapse_prometheus_scrape_synapse_application-0"
        );
        assert!(j.get("junk").is_none());
        assert_eq!(j["static_configs"][0]["targets"][0], "10.0.0.1:9000");
        assert_eq!(j["static_configs"][0]["labels"]["juju_unit"], "synapse/0");
        assert_eq!(j["static_configs"][0]["labels"]["juju_charm"], "synapse");
    }

    #[test]
    fn without_metadata_wildcards_are_dropped_and_bad_json_is_named() {
        let app = bag(&[(
            "scrape_jobs",
            r#"[{"static_configs":[{"targets":["*:9000","10.1.1.1:80"]}]}]"#,
        )]);
        let jobs = expand(&parse(&app, &[]).unwrap());
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0]["static_configs"],
            json!([{"targets": ["10.1.1.1:80"], "labels": {}}])
        );
        let err = parse(&bag(&[("scrape_jobs", "[")]), &[]).unwrap_err();
        assert!(err.contains("scrape_jobs"), "{err}");
    }
}
