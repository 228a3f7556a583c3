//! What the stand-in tests share: a `juju` client (`jujulocal-juju`) on a JujuLocal
//! home of its own, the model's state as JujuLocal keeps it, and tiny shell charms.
//! Each test file uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jujulocal::Controller;
use serde_json::Value;

/// The model every test adds (`juju add-model m1`).
pub const MODEL: &str = "m1";

/// A `juju` client on a temporary JujuLocal home. Dropping it removes every stand-in
/// still deployed, so that a failed test leaves no server running.
pub struct Juju {
    home: tempfile::TempDir,
}

impl Juju {
    /// A fresh home (its directory name starts with `prefix`), with no model yet.
    pub fn new(prefix: &str) -> Self {
        Self {
            home: tempfile::Builder::new().prefix(prefix).tempdir().unwrap(),
        }
    }

    /// A fresh home with model `m1` added.
    pub fn with_model(prefix: &str) -> Self {
        let j = Self::new(prefix);
        j.ok(&["add-model", MODEL]);
        j
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_jujulocal-juju"))
            .args(args)
            .env("JUJULOCAL_HOME", self.home.path())
            .env("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"))
            .env("JUJULOCAL_UPDATE_STATUS_INTERVAL", "0")
            .env_remove("JUJU_MODEL")
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(
            o.status.success(),
            "juju {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs a command that must succeed and print JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("juju {args:?}: {e}: {out}"))
    }

    /// `juju status --format json`.
    pub fn status_json(&self) -> Value {
        self.json(&["status", "--format", "json"])
    }

    pub fn model_dir(&self) -> PathBuf {
        self.home.path().join("models").join(MODEL)
    }

    /// The model as JujuLocal keeps it.
    pub fn controller(&self) -> Controller {
        std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"));
        Controller::open(&self.model_dir()).unwrap()
    }

    /// A unit's workload status and message.
    pub fn status(&self, unit: &str) -> (String, String) {
        let c = self.controller();
        let app = unit.split('/').next().unwrap();
        let s = c.model.applications[app].units[unit]
            .status
            .clone()
            .unwrap();
        (s.status, s.message)
    }

    /// `app`'s application databag on the first relation it takes part in.
    pub fn app_databag(&self, app: &str) -> BTreeMap<String, String> {
        let c = self.controller();
        c.model
            .relations
            .iter()
            .find(|r| r.end_for(app).is_some())
            .and_then(|r| r.app_data.get(app))
            .cloned()
            .unwrap_or_default()
    }

    /// A stand-in's own state (`providers/<app>.json`), its `data`.
    pub fn stand_in(&self, app: &str) -> Value {
        let path = self.model_dir().join(format!("providers/{app}.json"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["data"].clone()
    }

    /// The stand-ins deployed in the model now.
    fn stand_ins(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.model_dir().join("providers")) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect()
    }
}

impl Drop for Juju {
    /// A failed test must not leave a stand-in's server (PostgreSQL, NGINX, moto,
    /// Prometheus, ...) running.
    fn drop(&mut self) {
        for app in self.stand_ins() {
            let _ = self.cmd(&["remove-application", &app]);
        }
    }
}

/// Writes a charm made of `metadata.yaml` and an executable shell `dispatch` into
/// `dir/<name>-charm`; returns its directory.
pub fn shell_charm(dir: &Path, name: &str, metadata: &str, dispatch: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let c = dir.join(format!("{name}-charm"));
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("metadata.yaml"), metadata).unwrap();
    std::fs::write(c.join("dispatch"), dispatch).unwrap();
    std::fs::set_permissions(c.join("dispatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    c
}

/// Pebble: `PEBBLE_BIN`, else the one `scripts/setup.sh` installs.
pub fn pebble_bin() -> PathBuf {
    let p = std::env::var_os("PEBBLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/synapse-charm/bin/pebble"));
    assert!(
        p.exists(),
        "Pebble not found at {} (run scripts/setup.sh or set PEBBLE_BIN)",
        p.display()
    );
    p
}
