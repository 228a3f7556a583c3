//! Observability end to end, everything real: the charm under JujuLocal with real pods,
//! PostgreSQL, and the Debian Prometheus configured, like the Prometheus charm does it,
//! from nothing but the databags the charm wrote; then Loki log forwarding through the
//! real Pebble into a Loki push endpoint played by the test.

mod common;

#[path = "../crates/stats-exporter/tests/common/postgres.rs"]
mod postgres;
#[path = "common/postgresql.rs"]
mod postgresql;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestModel, UNIT};
use jujulocal::meta::Role;
use serde_json::{json, Value};

const URL: &str = "http://localhost:8080";
const PROMETHEUS: &str = "/usr/bin/prometheus";

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// GET (with curl) and parse JSON; `None` when nothing (good) answers.
fn get_json(url: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The Debian Prometheus, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    fn start(config: &Path, dir: &Path) -> Self {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: install the Debian package prometheus (scripts/setup.sh)"
        );
        let port = postgres::free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Self {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        wait_for("Prometheus to answer", Duration::from_secs(30), || {
            p.api("status/buildinfo")
        });
        p
    }

    fn api(&self, path: &str) -> Option<Value> {
        let v = get_json(&format!("http://127.0.0.1:{}/api/v1/{path}", self.port))?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    fn query(&self, expr: &str) -> Vec<Value> {
        let q: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.api(&format!("query?query={q}"))
            .and_then(|d| d["result"].as_array().cloned())
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the charm wrote in the `metrics-endpoint` relation.
struct Scrape {
    metadata: Value,
    jobs: Vec<Value>,
    rules: Value,
    /// unit name → address
    units: BTreeMap<String, String>,
}

fn scrape_data(m: &TestModel, rel: u64) -> Scrape {
    let r = m.c.model.relation(rel).expect("the metrics relation");
    let app = r.app_data.get("synapse").cloned().unwrap_or_default();
    let parse = |k: &str| -> Value {
        serde_json::from_str(app.get(k).unwrap_or_else(|| panic!("no {k} in {app:?}"))).unwrap()
    };
    let units = r
        .unit_data
        .iter()
        .filter(|(u, _)| u.starts_with("synapse/"))
        .filter_map(|(u, bag)| {
            assert_eq!(
                bag.get("prometheus_scrape_unit_name"),
                Some(u),
                "unit name in {u}'s bag"
            );
            Some((
                u.clone(),
                bag.get("prometheus_scrape_unit_address")?.clone(),
            ))
        })
        .collect();
    Scrape {
        metadata: parse("scrape_metadata"),
        jobs: parse("scrape_jobs").as_array().unwrap().clone(),
        rules: parse("alert_rules"),
        units,
    }
}

fn job_names(s: &Scrape) -> Vec<String> {
    s.jobs
        .iter()
        .map(|j| j["job_name"].as_str().unwrap().to_string())
        .collect()
}

/// prometheus.yml as the Prometheus charm builds it: each wildcard target expanded to
/// one job per unit, labelled with the topology; the rules in a rule file.
fn prometheus_config(s: &Scrape, dir: &Path) -> PathBuf {
    let md = &s.metadata;
    let (model, uuid, app) = (
        md["model"].as_str().unwrap(),
        md["model_uuid"].as_str().unwrap(),
        md["application"].as_str().unwrap(),
    );
    let mut jobs = Vec::new();
    for job in &s.jobs {
        for (unit, address) in &s.units {
            let n = unit.rsplit('/').next().unwrap();
            let mut j = job.as_object().unwrap().clone();
            j.insert(
                "job_name".into(),
                json!(format!(
                    "juju_{model}_{}_{app}_prometheus_scrape_{}-{n}",
                    &uuid[..8],
                    job["job_name"].as_str().unwrap()
                )),
            );
            let targets: Vec<String> = job["static_configs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|sc| sc["targets"].as_array().unwrap().clone())
                .map(|t| {
                    let t = t.as_str().unwrap();
                    assert!(t.starts_with("*:"), "wildcard targets only: {t}");
                    t.replacen('*', address, 1)
                })
                .collect();
            j.insert(
                "static_configs".into(),
                json!([{"targets": targets, "labels": {
                    "juju_model": model, "juju_model_uuid": uuid, "juju_application": app,
                    "juju_charm": md["charm_name"], "juju_unit": unit,
                }}]),
            );
            j.insert("scrape_interval".into(), json!("5s"));
            jobs.push(Value::Object(j));
        }
    }
    let rules = dir.join("synapse.rules.json");
    std::fs::write(&rules, s.rules.to_string()).unwrap();
    let config = dir.join("prometheus.yml");
    // JSON is YAML.
    std::fs::write(
        &config,
        json!({
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [rules],
            "scrape_configs": jobs,
        })
        .to_string(),
    )
    .unwrap();
    config
}

#[test]
fn prometheus_scrapes_synapse_and_the_exporter_from_the_databags() {
    let _lock = common::host_network_lock();
    let pg = postgres::start(postgres::PgOptions::default());
    let mut m = TestModel::with_host_network_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    let db = postgresql::integrate(&mut m);
    postgresql::provide(&mut m, &pg, db, true);
    m.wait_ready();
    assert_eq!(m.status(), ("active".into(), String::new()));

    m.c.add_played(
        "prometheus-k8s",
        &[(
            "metrics-endpoint".into(),
            "prometheus_scrape".into(),
            Role::Requires,
        )],
        1,
    )
    .unwrap();
    let rel =
        m.c.integrate(
            "synapse:metrics-endpoint",
            "prometheus-k8s:metrics-endpoint",
        )
        .unwrap();
    let scrape = scrape_data(&m, rel);
    assert_eq!(
        job_names(&scrape),
        ["synapse_application", "synapse_stats_exporter"],
        "Synapse is on PostgreSQL: the exporter runs"
    );
    assert_eq!(scrape.metadata["model"], m.c.model.name.as_str());
    assert_eq!(scrape.metadata["model_uuid"], m.c.model.uuid.as_str());
    assert_eq!(scrape.metadata["unit"], UNIT);
    assert_eq!(scrape.units.len(), 1, "{:?}", scrape.units);

    // Steady state: another relation-changed rewrites nothing, update-status does not
    // even look at the observability relations.
    m.c.played_relation_set(
        rel,
        "prometheus-k8s",
        &BTreeMap::from([("note".to_string(), "hello".to_string())]),
    )
    .unwrap();
    m.c.update_status().unwrap();
    let history = m.c.history();
    let last = |hook: &str| {
        history
            .iter()
            .rev()
            .find(|h| h.hook == hook)
            .unwrap_or_else(|| panic!("no {hook}"))
            .calls
            .clone()
    };
    let changed = last("metrics-endpoint-relation-changed");
    assert!(
        !changed.iter().any(|c| c.tool == "relation-set"),
        "{changed:?}"
    );
    let status = last("update-status");
    assert!(
        !status.iter().any(|c| c.tool == "relation-set"
            || c.tool == "network-get"
            || c.args.iter().any(|a| a.contains("metrics-endpoint"))),
        "{status:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = prometheus_config(&scrape, dir.path());
    let prom = Prometheus::start(&config, dir.path());

    // Every target is scraped.
    let targets = wait_for("every target up", Duration::from_secs(60), || {
        let t = prom.api("targets")?["activeTargets"].as_array()?.clone();
        (t.len() == 2 && t.iter().all(|t| t["health"] == "up")).then_some(t)
    });
    for t in &targets {
        assert_eq!(t["labels"]["juju_unit"], UNIT, "{t}");
        assert_eq!(t["labels"]["juju_charm"], "synapse", "{t}");
    }
    assert!(
        !prom.query("synapse_build_info").is_empty(),
        "Synapse's own metrics are scraped"
    );

    // Users registered through NGINX show up in the exporter's count.
    let secret = m.registration_secret();
    for user in ["alice", "bob"] {
        m.matrix(&["register", URL, &secret, user, "correct horse battery"]);
    }
    let users: f64 = pg
        .psql_in("synapse", "SELECT count(*) FROM users")
        .parse()
        .unwrap();
    assert_eq!(users, 2.0);
    wait_for(
        "Prometheus to see synapse_total_users",
        Duration::from_secs(90),
        || {
            let r = prom.query("synapse_total_users");
            let v: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
            assert_eq!(r[0]["metric"]["juju_application"], "synapse");
            (v == users).then_some(())
        },
    );

    // The rules are loaded, with the topology labels.
    let groups = prom.api("rules").unwrap()["groups"]
        .as_array()
        .unwrap()
        .clone();
    let shipped = scrape.rules["groups"].as_array().unwrap().len();
    assert_eq!(groups.len(), shipped, "{}", prom.log());
    assert!(shipped >= 5);
    for g in &groups {
        let name = g["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("{}_{}_synapse_", m.c.model.name, m.c.model.uuid)),
            "{name}"
        );
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
            assert_eq!(r["labels"]["juju_application"], "synapse", "{r}");
            assert_eq!(r["labels"]["juju_model_uuid"], m.c.model.uuid.as_str());
            assert_eq!(r["labels"]["juju_charm"], "synapse");
        }
    }
    assert!(groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .any(|r| r["name"] == "SynapseTargetDown" && r["type"] == "alerting"));
    drop(prom);

    // Without PostgreSQL the exporter stops: its job goes (the database events rewrite it).
    m.c.remove_relation("synapse:database", "postgresql-k8s:database")
        .unwrap();
    assert_eq!(job_names(&scrape_data(&m, rel)), ["synapse_application"]);

    // Removing the metrics relation: departed and broken handled without error.
    m.c.remove_relation(
        "synapse:metrics-endpoint",
        "prometheus-k8s:metrics-endpoint",
    )
    .unwrap();
    assert!(m.c.model.relation(rel).is_none());
    let broken =
        m.c.history()
            .into_iter()
            .filter(|h| h.hook == "metrics-endpoint-relation-broken")
            .count();
    assert_eq!(broken, 1);
    assert_eq!(
        m.c.model.applications["synapse"].units[UNIT].error, None,
        "no hook failed"
    );
}

/// A Loki push endpoint: records the JSON of every push.
struct FakeLoki {
    url: String,
    pushes: Arc<Mutex<Vec<Value>>>,
}

impl FakeLoki {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/loki/api/v1/push",
            listener.local_addr().unwrap().port()
        );
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let seen = pushes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                // One request per connection: the answer closes it.
                let mut len = 0;
                let mut encoding = None;
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = lower.strip_prefix("content-encoding:") {
                        encoding = Some(v.trim().to_string());
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let v = match (&encoding, serde_json::from_slice::<Value>(&body)) {
                    (None, Ok(v)) => v,
                    (e, _) => json!({"unreadable": format!("{e:?}")}),
                };
                seen.lock().unwrap().push(v);
                let _ = stream.write_all(
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Self { url, pushes }
    }

    /// Lines pushed for a Pebble service, with their stream labels.
    fn lines(&self, service: &str) -> Vec<(Value, String)> {
        let pushes = self.pushes.lock().unwrap();
        if let Some(bad) = pushes.iter().find(|p| p.get("unreadable").is_some()) {
            panic!("a push the test cannot read: {bad}");
        }
        pushes
            .iter()
            .flat_map(|p| p["streams"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["stream"]["pebble_service"] == service)
            .flat_map(|s| {
                let labels = s["stream"].clone();
                s["values"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |v| (labels.clone(), v[1].as_str().unwrap_or("").to_string()))
            })
            .collect()
    }
}

fn log_targets(m: &TestModel, container: &str) -> BTreeMap<String, pebble::LogTarget> {
    pebble::Client::new(m.c.pebble_socket(UNIT, container))
        .plan()
        .unwrap()
        .log_targets
}

#[test]
fn logs_are_forwarded_to_loki_through_pebble() {
    let _lock = common::host_network_lock();
    let loki = FakeLoki::start();
    let mut m = TestModel::with_host_network_pods();
    m.deploy(&[("server_name", "example.com")]);
    m.wait_ready();
    m.c.add_played(
        "loki-k8s",
        &[("logging".into(), "loki_push_api".into(), Role::Provides)],
        1,
    )
    .unwrap();
    let rel =
        m.c.integrate("synapse:logging", "loki-k8s:logging")
            .unwrap();
    let metadata: Value =
        serde_json::from_str(&m.c.model.relation(rel).unwrap().app_data["synapse"]["metadata"])
            .unwrap();
    assert_eq!(metadata["application"], "synapse");
    assert_eq!(metadata["model_uuid"], m.c.model.uuid.as_str());
    // No endpoint published yet: nothing to forward to.
    assert!(log_targets(&m, "synapse").is_empty());

    let endpoint = json!({ "url": loki.url }).to_string();
    m.c.played_relation_set(
        rel,
        "loki-k8s/0",
        &BTreeMap::from([("endpoint".to_string(), endpoint)]),
    )
    .unwrap();
    for c in ["synapse", "synapse-nginx"] {
        let targets = log_targets(&m, c);
        let t = &targets["loki-k8s/0"];
        assert_eq!(t.location.as_deref(), Some(loki.url.as_str()), "{c}");
        assert_eq!(t.services, ["all"], "{c}");
        assert_eq!(t.labels["juju_unit"], UNIT, "{c}");
    }

    // Requests make Synapse (access log at INFO) and NGINX (access log) write lines;
    // Pebble forwards them without a replan.
    let synapse_starts = m.starts("synapse", "synapse");
    for _ in 0..5 {
        m.http_get(&format!("{URL}/_matrix/client/versions"));
    }
    wait_for(
        "Synapse and NGINX lines at the Loki endpoint",
        Duration::from_secs(60),
        || {
            m.http_get(&format!("{URL}/_matrix/client/versions"));
            (!loki.lines("synapse").is_empty() && !loki.lines("nginx").is_empty()).then_some(())
        },
    );
    assert_eq!(m.starts("synapse", "synapse"), synapse_starts, "no restart");
    let (labels, _) = &loki.lines("synapse")[0];
    for (k, v) in [
        ("product", "Juju"),
        ("charm", "synapse"),
        ("juju_application", "synapse"),
        ("juju_unit", UNIT),
        ("juju_model", m.c.model.name.as_str()),
        ("juju_model_uuid", m.c.model.uuid.as_str()),
    ] {
        assert_eq!(labels[k], v, "{labels}");
    }
    assert!(
        loki.lines("nginx")
            .iter()
            .any(|(_, l)| l.contains("/_matrix/client/versions")),
        "NGINX's access log is forwarded"
    );

    // Pod churn: the container's Pebble comes back without layers; its pebble-ready
    // puts the log target back.
    m.c.restart_container(UNIT, "synapse-nginx").unwrap();
    assert_eq!(
        log_targets(&m, "synapse-nginx")["loki-k8s/0"].services,
        ["all"]
    );

    // Removing the relation disables the targets (Pebble cannot delete them).
    m.c.remove_relation("synapse:logging", "loki-k8s:logging")
        .unwrap();
    for c in ["synapse", "synapse-nginx"] {
        let targets = log_targets(&m, c);
        assert_eq!(targets["loki-k8s/0"].services, ["-all"], "{c}");
    }
    assert_eq!(m.c.model.applications["synapse"].units[UNIT].error, None);
}
