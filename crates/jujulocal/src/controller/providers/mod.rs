//! Stand-in providers: charms from Charmhub that `juju deploy NAME` (a name, not a
//! local path) deploys as played applications whose answers JujuLocal computes itself,
//! backed by real servers it starts.
//!
//! | charm name       | stands in with                                      |
//! |------------------|-----------------------------------------------------|
//! | `postgresql-k8s` | [`postgresql`]: a real PostgreSQL on 127.0.0.1      |
//!
//! Each deployed stand-in keeps its state in `<model>/providers/<app>.json`; the
//! controller calls [`react`] whenever an event reaches one of its (played) units, and
//! [`remove`] when the application is removed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Controller;
use crate::error::Area;
use crate::Error;

pub mod postgresql;

/// What a stand-in keeps between CLI invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderState {
    /// The charm it stands in for (a key of [`PROVIDERS`]).
    pub charm: String,
    /// Kind-specific state (e.g. the PostgreSQL cluster's directory and port).
    pub data: serde_json::Value,
}

type DeployFn = fn(&mut Controller, &str) -> Result<(), Error>;
type ReactFn = fn(&mut Controller, &str, &ProviderState) -> Result<(), Error>;
type RemoveFn = fn(&Controller, &str, &ProviderState) -> Result<(), Error>;

/// `charm name → (deploy, react, remove)`.
pub const PROVIDERS: &[(&str, DeployFn, ReactFn, RemoveFn)] = &[(
    "postgresql-k8s",
    postgresql::deploy,
    postgresql::react,
    postgresql::remove,
)];

/// Whether JujuLocal has a stand-in for this charm name.
pub fn known(charm: &str) -> bool {
    PROVIDERS.iter().any(|p| p.0 == charm)
}

fn state_path(c: &Controller, app: &str) -> PathBuf {
    c.home.join("providers").join(format!("{app}.json"))
}

pub(crate) fn load(c: &Controller, app: &str) -> Option<ProviderState> {
    crate::journal::read_json(&state_path(c, app)).ok()
}

pub(crate) fn save(c: &Controller, app: &str, st: &ProviderState) -> Result<(), Error> {
    let path = state_path(c, app);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(Area::Model, dir))?;
    }
    crate::journal::write_json(&path, st)
}

impl Controller {
    /// Stops every stand-in's server (the model is being destroyed).
    pub fn stop_providers(&self) {
        let apps: Vec<String> = self.model.applications.keys().cloned().collect();
        for app in apps {
            if let Err(e) = remove(self, &app) {
                eprintln!("jujulocal: stopping the stand-in {app}: {e}");
            }
        }
    }

    /// `juju deploy CHARM [APP]` for a charm JujuLocal stands in for.
    pub fn deploy_provider(&mut self, charm: &str, app: Option<&str>) -> Result<(), Error> {
        let Some(p) = PROVIDERS.iter().find(|p| p.0 == charm) else {
            return Err(Error::NotFound(format!("no stand-in for charm {charm:?}")));
        };
        (p.1)(self, app.unwrap_or(charm))
    }
}

/// An event reached a unit of played application `app`: a stand-in answers what the
/// other side asked for (no-op for applications that are not stand-ins).
pub(crate) fn react(c: &mut Controller, app: &str) -> Result<(), Error> {
    let Some(st) = load(c, app) else {
        return Ok(());
    };
    match PROVIDERS.iter().find(|p| p.0 == st.charm) {
        Some(p) => (p.2)(c, app, &st),
        None => Ok(()),
    }
}

/// Application `app` is being removed: its stand-in stops its server.
pub(crate) fn remove(c: &Controller, app: &str) -> Result<(), Error> {
    let Some(st) = load(c, app) else {
        return Ok(());
    };
    if let Some(p) = PROVIDERS.iter().find(|p| p.0 == st.charm) {
        (p.3)(c, app, &st)?;
    }
    let path = state_path(c, app);
    std::fs::remove_file(&path).map_err(Error::io(Area::Model, &path))
}
