//! Test harness: the real charm binary deployed under JujuLocal, with real pods
//! (real Pebble, real Synapse from the venv, real NGINX), each pod in its own network
//! namespace so tests run in parallel without port clashes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use jujulocal::controller::PodConfig;
use jujulocal::Controller;

pub const UNIT: &str = "synapse/0";

/// Where scripts/setup.sh installs the tools.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("SYNAPSE_CHARM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/synapse-charm"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} not found at {}: run scripts/setup.sh first",
        path.display()
    );
}

/// The charm as Juju would unpack it: metadata files plus the binary as `dispatch`.
pub fn charm_dir(into: &Path) -> PathBuf {
    let dir = into.join("charm");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["metadata.yaml", "config.yaml", "actions.yaml"] {
        std::fs::copy(repo().join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(
        env!("CARGO_BIN_EXE_synapse-k8s-charm"),
        dir.join("dispatch"),
    )
    .unwrap();
    dir
}

fn jujulocal_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("JUJULOCAL_BIN") {
        return PathBuf::from(p);
    }
    // Built by `cargo build --workspace` next to the charm binary.
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_synapse-k8s-charm"));
    let bin = exe.with_file_name("jujulocal");
    require(&bin, "the jujulocal binary (cargo build --workspace)");
    bin
}

/// The stats exporter built next to the charm (by `cargo build --workspace`).
pub fn exporter_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_synapse-k8s-charm"))
        .with_file_name("synapse-stats-exporter");
    require(
        &bin,
        "the synapse-stats-exporter binary (cargo build --workspace)",
    );
    bin
}

pub struct TestModel {
    pub dir: tempfile::TempDir,
    pub c: Controller,
}

impl Drop for TestModel {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What a failing test needs to be understood from CI's output alone.
            let tail = |s: String, n: usize| {
                s.lines()
                    .rev()
                    .take(n)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            eprintln!(
                "--- charm log (last 40 lines)\n{}",
                tail(self.c.debug_log(), 40)
            );
            for c in ["synapse", "synapse-nginx"] {
                eprintln!(
                    "--- {c} container log (last 40 lines)\n{}",
                    tail(self.container_log(c), 40)
                );
            }
        }
        self.c.stop_pods();
    }
}

impl TestModel {
    /// A model with pods: each unit gets real Pebbles and its own network namespace.
    pub fn with_pods() -> Self {
        Self::new(true)
    }

    fn new(netns: bool) -> Self {
        let tools = tools_dir();
        require(&tools.join("bin/pebble"), "Pebble");
        require(&tools.join("synapse-venv/bin/python"), "the Synapse venv");
        require(Path::new("/usr/sbin/nginx"), "NGINX");
        std::env::set_var("JUJULOCAL_BIN", jujulocal_bin());
        let dir = tempfile::Builder::new()
            .prefix("synapse-charm-test")
            .tempdir()
            .unwrap();
        let mut c = Controller::bootstrap(&dir.path().join("model"), "test").unwrap();
        let nginx_etc = repo().join("nginx_rock/etc/nginx");
        c.set_pod_config(PodConfig {
            pebble_bin: tools.join("bin/pebble"),
            container_mounts: BTreeMap::from([
                (
                    "synapse".to_string(),
                    vec![
                        (
                            "/opt/synapse".to_string(),
                            tools.join("synapse-venv").display().to_string(),
                        ),
                        (
                            "/usr/local/bin/synapse-stats-exporter".to_string(),
                            exporter_bin().display().to_string(),
                        ),
                    ],
                ),
                (
                    "synapse-nginx".to_string(),
                    vec![
                        ("/etc/nginx".to_string(), nginx_etc.display().to_string()),
                        ("/var/lib/nginx".to_string(), "tmpfs".to_string()),
                        ("/var/log/nginx".to_string(), "tmpfs".to_string()),
                    ],
                ),
            ]),
            netns,
        });
        Self { dir, c }
    }

    pub fn deploy(&mut self, config: &[(&str, &str)]) {
        let charm = charm_dir(self.dir.path());
        let cfg: BTreeMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.c.deploy(&charm, None, 1, &cfg, true).unwrap();
    }

    pub fn config(&mut self, set: &[(&str, &str)]) {
        let cfg: BTreeMap<String, String> = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.c.config("synapse", &cfg, &[]).unwrap();
    }

    pub fn status(&self) -> (String, String) {
        let u = &self.c.model.applications["synapse"].units[UNIT];
        let s = u.status.clone().unwrap();
        (s.status, s.message)
    }

    /// Runs a program inside the pod's network namespace.
    pub fn in_pod(&self, program: &str, args: &[&str]) -> Output {
        self.c
            .pod_command(UNIT, program)
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    }

    /// HTTP status of a GET inside the pod (0 when nothing answers).
    pub fn http_status(&self, url: &str) -> u16 {
        let out = self.in_pod(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                url,
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    pub fn http_get(&self, url: &str) -> String {
        let out = self.in_pod("curl", &["-s", "--max-time", "5", url]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until Synapse answers through NGINX, then lets update-status report it.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.http_status("http://localhost:8080/_matrix/client/versions") != 200 {
            assert!(
                Instant::now() < deadline,
                "Synapse did not answer through NGINX in time; log:\n{}",
                self.container_log("synapse")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        // Pebble's ready checks run every 10 s: give them one round.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.c.update_status().unwrap();
            if self.status().0 == "active" || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn container_log(&self, container: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("model/pods/synapse-0")
                .join(format!("{container}.log")),
        )
        .unwrap_or_default()
    }

    /// How often Pebble has started a service (from the container's Pebble log).
    pub fn starts(&self, container: &str, service: &str) -> usize {
        self.container_log(container)
            .matches(&format!("Service \"{service}\" starting"))
            .count()
    }

    /// The data volume as the host sees it.
    pub fn data(&self, file: &str) -> PathBuf {
        self.dir
            .path()
            .join("model/pods/synapse-0/storage/data")
            .join(file)
    }

    /// Runs the Matrix client script (matrix-nio) inside the pod against NGINX.
    pub fn matrix(&self, args: &[&str]) -> serde_json::Value {
        let py = tools_dir().join("test-venv/bin/python");
        require(&py, "the test venv");
        let script = repo().join("tests/e2e/matrix_client.py");
        let mut full = vec![script.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = self.in_pod(py.to_str().unwrap(), &full);
        assert!(
            out.status.success(),
            "matrix client {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad client output {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The registration shared secret, as the charm stored it in its application secret.
    pub fn registration_secret(&self) -> String {
        self.c
            .model
            .secrets
            .values()
            .find(|s| s.label.as_deref() == Some("synapse-keys"))
            .unwrap()
            .latest()
            .unwrap()
            .content["registration-shared-secret"]
            .clone()
    }
}
