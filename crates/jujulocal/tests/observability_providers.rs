//! `juju deploy prometheus-k8s`, `loki-k8s` and `grafana-k8s` deploy JujuLocal's
//! observability stand-ins. A small Python charm publishes what the COS libraries
//! publish (from its options, so the test can change it); the stand-ins read it as the
//! real charms do: the real Prometheus scrapes a metrics endpoint this test serves and
//! loads the rules, the Loki recorder takes pushes and answers queries, the Grafana
//! stand-in decodes the dashboards.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

mod support;
use support::Juju;

/// The provider charm: publishes its options `scrape_jobs`, `alert_rules` and
/// `dashboards` as the COS libraries do, its unit address, and shows the Loki endpoint
/// it is given as its status.
fn obs_charm(dir: &Path) -> PathBuf {
    let c = dir.join("obs-charm");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("metadata.yaml"),
        "name: obs\nprovides:\n  metrics-endpoint:\n    interface: prometheus_scrape\n  \
         grafana-dashboard:\n    interface: grafana_dashboard\nrequires:\n  logging:\n    \
         interface: loki_push_api\n",
    )
    .unwrap();
    std::fs::write(
        c.join("config.yaml"),
        "options:\n  scrape_jobs:\n    type: string\n    default: ''\n  alert_rules:\n    \
         type: string\n    default: ''\n  dashboards:\n    type: string\n    default: ''\n",
    )
    .unwrap();
    let dispatch = r#"#!/usr/bin/python3
import json, os, subprocess

def run(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout

hook = os.environ['JUJU_DISPATCH_PATH'].split('/')[-1]
if hook.endswith('-relation-broken') or hook.endswith('-relation-departed'):
    raise SystemExit(0)
cfg = json.loads(run('config-get', '--format=json'))
leader = json.loads(run('is-leader', '--format=json'))
unit = os.environ['JUJU_UNIT_NAME']
meta = {'model': os.environ['JUJU_MODEL_NAME'], 'model_uuid': os.environ['JUJU_MODEL_UUID'],
        'application': 'obs', 'unit': unit, 'charm_name': 'obs'}

def rels(ep):
    return json.loads(run('relation-ids', ep, '--format=json'))

for rid in rels('metrics-endpoint'):
    run('relation-set', '-r', rid, 'prometheus_scrape_unit_address=127.0.0.1',
        'prometheus_scrape_unit_name=' + unit)
    if leader:
        run('relation-set', '-r', rid, '--app', 'scrape_metadata=' + json.dumps(meta),
            'scrape_jobs=' + cfg.get('scrape_jobs', ''), 'alert_rules=' + cfg.get('alert_rules', ''))
for rid in rels('grafana-dashboard'):
    if leader:
        run('relation-set', '-r', rid, '--app', 'dashboards=' + cfg.get('dashboards', ''))
if hook == 'logging-relation-changed':
    ep = run('relation-get', '-r', os.environ['JUJU_RELATION_ID'], 'endpoint',
             os.environ['JUJU_REMOTE_UNIT']).strip()
    run('status-set', 'active', ep)
"#;
    std::fs::write(c.join("dispatch"), dispatch).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.join("dispatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    c
}

/// A metrics endpoint: every request gets one gauge in Prometheus' text format.
fn metrics_backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf);
            let body = "# TYPE demo_gauge gauge\ndemo_gauge 42\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn http(method: &str, url: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(authority).unwrap();
    let mut head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn api(base: &str, path: &str) -> Value {
    let (code, body) = http("GET", &format!("{base}/api/v1/{path}"), &[], b"");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["data"].clone()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rules(expr: &str) -> String {
    json!({"groups": [{"name": "m1_obs_demo", "rules": [{
        "alert": "DemoDown", "expr": expr, "for": "0m",
        "labels": {"severity": "critical", "juju_application": "obs"},
        "annotations": {"summary": "demo"},
    }]}]})
    .to_string()
}

fn have_prometheus() -> bool {
    Path::new("/usr/bin/prometheus").is_file() || std::env::var_os("JUJULOCAL_PROMETHEUS").is_some()
}

#[test]
fn prometheus_k8s_stand_in_scrapes_the_expanded_jobs_and_loads_the_rules() {
    assert!(
        have_prometheus(),
        "/usr/bin/prometheus is missing: install Debian's prometheus (scripts/setup.sh)"
    );
    let j = Juju::with_model("jujuobs");
    let port = metrics_backend();
    let jobs = json!([{"job_name": "demo", "metrics_path": "/metrics",
                       "static_configs": [{"targets": [format!("*:{port}")]}],
                       "not_a_job_key": true}])
    .to_string();
    let charm = obs_charm(j.home());
    j.ok(&[
        "deploy",
        &charm.display().to_string(),
        "obs",
        "--config",
        &format!("scrape_jobs={jobs}"),
        "--config",
        &format!("alert_rules={}", rules("demo_gauge < 1")),
    ]);
    j.ok(&[
        "deploy",
        "prometheus-k8s",
        "--channel",
        "1/stable",
        "--trust",
    ]);

    // It shows as the charm's application, from Charmhub, with where it listens.
    let status = j.status_json();
    let app = &status["applications"]["prometheus-k8s"];
    assert_eq!(app["charm-name"], "prometheus-k8s");
    assert_eq!(app["charm-origin"], "charmhub");
    assert_eq!(app["charm-channel"], "1/stable");
    assert!(status.get("application-endpoints").is_none(), "{status}");
    let message = app["units"]["prometheus-k8s/0"]["workload-status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let base = message.strip_prefix("Prometheus at ").unwrap().to_string();
    assert_eq!(app_status(&j, "prometheus-k8s").0, "active");

    j.ok(&["integrate", "obs", "prometheus-k8s"]);
    let uuid = model_uuid(&j);
    let job = format!("juju_m1_{}_obs_prometheus_scrape_demo-0", &uuid[..8]);
    let target = wait_for("the expanded job scraped", || {
        let t = api(&base, "targets")["activeTargets"].as_array()?.clone();
        t.into_iter()
            .find(|t| t["labels"]["job"] == job.as_str() && t["health"] == "up")
    });
    assert_eq!(target["labels"]["juju_unit"], "obs/0");
    assert_eq!(target["labels"]["juju_model_uuid"], uuid.as_str());
    assert_eq!(
        target["labels"]["instance"],
        format!("m1_{uuid}_obs_obs/0").as_str()
    );
    assert_eq!(
        target["scrapeUrl"],
        format!("http://127.0.0.1:{port}/metrics").as_str()
    );
    let groups = api(&base, "rules")["groups"].clone();
    assert_eq!(groups[0]["name"], "m1_obs_demo", "{groups}");
    assert_eq!(groups[0]["rules"][0]["name"], "DemoDown");

    // Rules promtool refuses: left out, blocked with the reason; good ones again: back.
    j.ok(&[
        "config",
        "obs",
        &format!("alert_rules={}", rules("demo_gauge <")),
    ]);
    let (st, msg) = app_status(&j, "prometheus-k8s");
    assert_eq!(st, "blocked", "{msg}");
    assert!(msg.contains("alert rules of obs (relation"), "{msg}");
    assert!(
        msg.contains("refused: obs-") && msg.contains("parse error"),
        "promtool's reason, without the stand-in's directory: {msg}"
    );
    assert!(msg.ends_with(&format!("Prometheus at {base}")), "{msg}");
    assert_eq!(api(&base, "rules")["groups"], json!([]));
    j.ok(&[
        "config",
        "obs",
        &format!("alert_rules={}", rules("demo_gauge < 2")),
    ]);
    assert_eq!(app_status(&j, "prometheus-k8s").0, "active");
    assert_eq!(
        api(&base, "rules")["groups"][0]["rules"][0]["query"],
        "demo_gauge < 2"
    );

    // The relation removed: its jobs and rules go.
    j.ok(&["remove-relation", "obs", "prometheus-k8s"]);
    wait_for("the job gone", || {
        let t = api(&base, "targets")["activeTargets"].as_array()?.clone();
        t.is_empty().then_some(())
    });
    assert_eq!(api(&base, "rules")["groups"], json!([]));

    let dir = PathBuf::from(j.stand_in("prometheus-k8s")["dir"].as_str().unwrap());
    j.ok(&["remove-application", "prometheus-k8s"]);
    assert!(!dir.exists(), "its directory is gone");
    assert!(TcpStream::connect(base.trim_start_matches("http://")).is_err());
}

#[test]
fn loki_k8s_stand_in_publishes_its_endpoint_and_records_pushes() {
    let j = Juju::with_model("jujuobs");
    let charm = obs_charm(j.home());
    j.ok(&["deploy", &charm.display().to_string(), "obs"]);
    j.ok(&["deploy", "loki-k8s", "--channel", "latest/stable"]);
    let (st, msg) = app_status(&j, "loki-k8s");
    assert_eq!(st, "active");
    let again = j.cmd(&["deploy", "loki-k8s"]);
    assert!(!again.status.success(), "a second loki-k8s is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("application already exists"));
    assert_eq!(
        app_status(&j, "loki-k8s"),
        (st.clone(), msg.clone()),
        "the first one untouched"
    );
    let base = msg.strip_prefix("Loki at ").unwrap().to_string();
    j.ok(&["integrate", "obs:logging", "loki-k8s"]);

    // The requirer got relation-changed with the unit's endpoint, as from the charm.
    let endpoint: Value = serde_json::from_str(&unit_message(&j, "obs/0")).unwrap();
    let push = format!("{base}/loki/api/v1/push");
    assert_eq!(endpoint["url"], push.as_str());

    let lines = |svc: &str, line: &str| {
        json!({"streams": [{"stream": {"pebble_service": svc, "juju_unit": "obs/0"},
                            "values": [["1700000000000000000", line]]}]})
        .to_string()
    };
    for (svc, line) in [("a", "first"), ("b", "other"), ("a", "second")] {
        let (code, body) = http(
            "POST",
            &push,
            &["Content-Type: application/json"],
            lines(svc, line).as_bytes(),
        );
        assert_eq!(code, 204, "{body}");
    }
    let (code, _) = http("POST", &push, &["Content-Encoding: gzip"], b"\x1f\x8b");
    assert_eq!(code, 400, "a push it cannot read is refused");

    let q = "%7Bpebble_service%3D%22a%22%7D";
    let (code, body) = http(
        "GET",
        &format!("{base}/loki/api/v1/query_range?query={q}"),
        &[],
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    let got: Vec<&str> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[1].as_str().unwrap())
        .collect();
    assert_eq!(got, ["first", "second"]);

    let data = j.stand_in("loki-k8s");
    let recorded =
        std::fs::read_to_string(Path::new(data["dir"].as_str().unwrap()).join("pushes.jsonl"))
            .unwrap();
    assert_eq!(recorded.lines().count(), 4, "{recorded}");
    assert!(recorded.lines().last().unwrap().contains("unreadable"));

    j.ok(&["remove-application", "loki-k8s"]);
    assert!(TcpStream::connect(base.trim_start_matches("http://")).is_err());
}

fn xz_base64(text: &str) -> String {
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(3)).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap())
}

#[test]
fn grafana_k8s_stand_in_decodes_and_records_the_dashboards() {
    let j = Juju::with_model("jujuobs");
    let charm = obs_charm(j.home());
    let dashboard = json!({"title": "Demo", "uid": "demo", "panels": []});
    let sent = |content: &str| {
        json!({"templates": {"file:demo": {"charm": "obs", "content": content,
               "juju_topology": {"model": "m1", "application": "obs"}, "inject_dropdowns": true}},
               "uuid": "4f3c0a4e-0000-4000-8000-000000000000"})
        .to_string()
    };
    j.ok(&[
        "deploy",
        &charm.display().to_string(),
        "obs",
        "--config",
        &format!("dashboards={}", sent(&xz_base64(&dashboard.to_string()))),
    ]);
    j.ok(&["deploy", "grafana-k8s"]);
    assert_eq!(
        app_status(&j, "grafana-k8s"),
        ("active".into(), "0 dashboards".into())
    );
    let out = j.ok(&["integrate", "obs", "grafana-k8s"]);
    let _ = out;
    let file =
        PathBuf::from(j.stand_in("grafana-k8s")["dir"].as_str().unwrap()).join("dashboards.json");
    let read =
        || -> Value { serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap() };
    let recorded = read();
    let (key, per_relation) = recorded.as_object().unwrap().iter().next().unwrap();
    assert!(key.starts_with("obs:"), "{key}");
    assert_eq!(per_relation["file:demo"], dashboard);
    assert_eq!(
        app_status(&j, "grafana-k8s"),
        ("active".into(), "1 dashboard".into())
    );

    // Data it cannot decode: blocked, naming the relation and the template.
    j.ok(&["config", "obs", &format!("dashboards={}", sent("bm90IHh6"))]);
    let (st, msg) = app_status(&j, "grafana-k8s");
    assert_eq!(st, "blocked");
    assert!(
        msg.starts_with("obs (relation ") && msg.contains("file:demo cannot be decoded: not xz"),
        "{msg}"
    );

    j.ok(&["remove-relation", "obs", "grafana-k8s"]);
    assert_eq!(read(), json!({}));
    assert_eq!(
        app_status(&j, "grafana-k8s"),
        ("active".into(), "0 dashboards".into())
    );
}

/// An application's status and message, from `juju status --format json`.
fn app_status(j: &Juju, app: &str) -> (String, String) {
    let s = &j.status_json()["applications"][app]["application-status"];
    (
        s["current"].as_str().unwrap_or("").into(),
        s["message"].as_str().unwrap_or("").into(),
    )
}

fn unit_message(j: &Juju, unit: &str) -> String {
    let app = unit.split('/').next().unwrap();
    j.status_json()["applications"][app]["units"][unit]["workload-status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn model_uuid(j: &Juju) -> String {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(j.model_dir().join("model.json")).unwrap())
            .unwrap();
    v["uuid"].as_str().unwrap().to_string()
}
