//! Stand-in providers: charms from Charmhub that `juju deploy NAME` (a name, not a
//! local path) deploys as played applications whose answers JujuLocal computes itself,
//! backed by real servers it starts.
//!
//! | charm name       | stands in with                                      |
//! |------------------|-----------------------------------------------------|
//! | `postgresql-k8s` | [`postgresql`]: a real PostgreSQL on 127.0.0.1      |
//! | `traefik-k8s`    | [`traefik`]: a real NGINX on 127.0.0.1 ([`proxy`]), `ingress` v2 |
//! | `nginx-ingress-integrator` | [`nginx_ingress`]: a real NGINX on 127.0.0.1, `nginx-route` |
//! | `smtp-integrator` | [`smtp_integrator`]: `smtp` from its options (no server of its own) |
//! | `prometheus-k8s` | [`prometheus`]: the real Prometheus on 127.0.0.1, `prometheus_scrape` |
//! | `loki-k8s`       | [`loki`]: a recorder of pushes on 127.0.0.1, `loki_push_api` |
//! | `grafana-k8s`    | [`grafana`]: records the decoded dashboards, `grafana_dashboard` |
//! | `s3-integrator`  | [`s3_integrator`]: a real S3 server (moto) on 127.0.0.1, `s3` |
//! | `redis-k8s`      | [`redis`]: a real redis-server, in the cluster network when pods have one, `redis` |
//! | `matrix-appservice` | [`matrix_appservice`]: a bridge charm, a real mautrix appservice on 127.0.0.1, `matrix_auth` |
//!
//! Each deployed stand-in keeps its state in `<model>/providers/<app>.json`; the
//! controller calls [`react`] whenever an event reaches one of its (played) units, and
//! [`remove`] when the application is removed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use juju_hook::RelationHook;

use serde::{Deserialize, Serialize};

use super::Controller;
use crate::error::Area;
use crate::Error;

pub mod daemon;
pub mod grafana;
pub mod loki;
pub mod matrix_appservice;
pub mod nginx_ingress;
pub mod postgresql;
pub mod prometheus;
pub mod proxy;
pub mod redis;
pub mod s3_integrator;
pub mod smtp_integrator;
pub mod traefik;

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

type ConfigureFn = fn(&ProviderState, &BTreeMap<String, String>) -> Result<ProviderState, Error>;

/// `charm name → (deploy, react, remove)`.
pub const PROVIDERS: &[(&str, DeployFn, ReactFn, RemoveFn)] = &[
    (
        "postgresql-k8s",
        postgresql::deploy,
        postgresql::react,
        postgresql::remove,
    ),
    (
        traefik::CHARM,
        traefik::deploy,
        traefik::react,
        traefik::remove,
    ),
    (
        nginx_ingress::CHARM,
        nginx_ingress::deploy,
        nginx_ingress::react,
        nginx_ingress::remove,
    ),
    (
        smtp_integrator::CHARM,
        smtp_integrator::deploy,
        smtp_integrator::react,
        smtp_integrator::remove,
    ),
    (
        prometheus::CHARM,
        prometheus::deploy,
        prometheus::react,
        prometheus::remove,
    ),
    (loki::CHARM, loki::deploy, loki::react, loki::remove),
    (
        grafana::CHARM,
        grafana::deploy,
        grafana::react,
        grafana::remove,
    ),
    (
        s3_integrator::CHARM,
        s3_integrator::deploy,
        s3_integrator::react,
        s3_integrator::remove,
    ),
    (
        matrix_appservice::CHARM,
        matrix_appservice::deploy,
        matrix_appservice::react,
        matrix_appservice::remove,
    ),
    (redis::CHARM, redis::deploy, redis::react, redis::remove),
];

/// Stand-ins with options (`juju config APP key=value`): `charm name → configure`.
const CONFIGURABLE: &[(&str, ConfigureFn)] = &[
    (traefik::CHARM, traefik::configure),
    (smtp_integrator::CHARM, smtp_integrator::configure),
    (s3_integrator::CHARM, s3_integrator::configure),
    (matrix_appservice::CHARM, matrix_appservice::configure),
];

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

/// [`save`] for a stand-in's own state: `charm` and its data.
pub(crate) fn save_data<T: serde::Serialize>(
    c: &Controller,
    app: &str,
    charm: &str,
    data: &T,
) -> Result<(), Error> {
    let data = serde_json::to_value(data)
        .map_err(|e| Error::invalid(Area::Model, format!("{charm} stand-in state: {e}")))?;
    save(
        c,
        app,
        &ProviderState {
            charm: charm.into(),
            data,
        },
    )
}

/// Adds the stand-in's played application (one unit), marked as standing in for
/// `charm`, so that `juju status` shows it as that charm's application.
pub(crate) fn add_stand_in(
    c: &mut Controller,
    app: &str,
    charm: &str,
    endpoints: &[(String, String, crate::meta::Role)],
) -> Result<(), Error> {
    c.add_played(app, endpoints, 1)?;
    c.model.app_mut(app)?.stand_in = Some(crate::model::StandIn {
        charm: charm.into(),
        channel: None,
    });
    c.save()
}

/// The stand-ins' servers listen on the host's 127.0.0.1: pods in their own network
/// namespace cannot reach them, nor they the pods.
pub(crate) fn warn_netns(c: &Controller, charm: &str) {
    if c.runtime.pod_config.as_ref().is_some_and(|p| p.netns) {
        eprintln!(
            "jujulocal: {charm} works on the host's 127.0.0.1: pods with their own \
             network namespace (netns: true) cannot be reached"
        );
    }
}

/// Sets the workload status of a stand-in's (only) unit.
pub(crate) fn set_unit_status(
    c: &mut Controller,
    app: &str,
    status: &str,
    message: &str,
) -> Result<(), Error> {
    let entry = crate::model::StatusEntry::new(status, message);
    if let Ok(a) = c.model.app_mut(app) {
        // Played applications show as remote applications in `juju status`: their
        // application status carries the message.
        if a.status.as_ref().map(|s| (&s.status, &s.message))
            != Some((&entry.status, &entry.message))
        {
            a.status = Some(entry.clone());
        }
        for u in a.units.values_mut() {
            if u.status.as_ref().map(|s| (&s.status, &s.message))
                != Some((&entry.status, &entry.message))
            {
                u.status = Some(entry.clone());
            }
        }
    }
    c.save()
}

/// The relations of `app`'s `endpoint` that are not being removed.
pub(crate) fn live_relations(
    c: &Controller,
    app: &str,
    endpoint: &str,
) -> Vec<crate::model::Relation> {
    c.model
        .relations
        .iter()
        .filter(|r| !r.dying && r.end_for(app).is_some_and(|e| e.endpoint == endpoint))
        .cloned()
        .collect()
}

/// Writes `bag` into `app`'s application databag of relation `id` (an empty value
/// deletes the key) and, when that changed it, tells the remote units.
pub(crate) fn answer(
    c: &mut Controller,
    app: &str,
    id: u64,
    remote: &str,
    bag: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let Some(rel) = c.model.relation_mut(id) else {
        return Ok(());
    };
    let own = rel.app_data.entry(app.to_string()).or_default();
    let before = own.clone();
    for (k, v) in bag {
        if v.is_empty() {
            own.remove(k);
        } else {
            own.insert(k.clone(), v.clone());
        }
    }
    if *own == before {
        return Ok(());
    }
    let remote_ep = rel
        .end_for(remote)
        .map(|e| e.endpoint.clone())
        .unwrap_or_default();
    let targets = rel.joined.get(remote).cloned().unwrap_or_default();
    for t in targets {
        c.enqueue(
            &t,
            super::agent::relation_event(RelationHook::Changed, &remote_ep, id, app, None),
        );
    }
    Ok(())
}

/// Writes `bag` into the databag of `unit` (a unit of the stand-in) in relation `id`
/// (an empty value deletes the key) and, when that changed it, tells the remote units
/// (`relation-changed` with that remote unit).
/// [`answer_unit`] on every live relation of `endpoint`, then saves the model.
pub(crate) fn answer_unit_everywhere(
    c: &mut Controller,
    app: &str,
    endpoint: &str,
    unit: &str,
    bag: &BTreeMap<String, String>,
) -> Result<(), Error> {
    for rel in live_relations(c, app, endpoint) {
        if let Some(remote) = rel.remote_app(app).map(str::to_string) {
            answer_unit(c, unit, rel.id, &remote, bag)?;
        }
    }
    c.save()
}

pub(crate) fn answer_unit(
    c: &mut Controller,
    unit: &str,
    id: u64,
    remote: &str,
    bag: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let app = crate::model::app_of(unit).to_string();
    let Some(rel) = c.model.relation_mut(id) else {
        return Ok(());
    };
    let own = rel.unit_data.entry(unit.to_string()).or_default();
    let before = own.clone();
    for (k, v) in bag {
        if v.is_empty() {
            own.remove(k);
        } else {
            own.insert(k.clone(), v.clone());
        }
    }
    if *own == before {
        return Ok(());
    }
    let remote_ep = rel
        .end_for(remote)
        .map(|e| e.endpoint.clone())
        .unwrap_or_default();
    let targets = rel.joined.get(remote).cloned().unwrap_or_default();
    for t in targets {
        c.enqueue(
            &t,
            super::agent::relation_event(
                RelationHook::Changed,
                &remote_ep,
                id,
                &app,
                Some(unit.to_string()),
            ),
        );
    }
    Ok(())
}

impl Controller {
    /// `juju config APP key=value ...` for a stand-in with options; it reacts at once.
    pub fn configure_provider(
        &mut self,
        app: &str,
        sets: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let st = load(self, app)
            .ok_or_else(|| Error::Refused(format!("application {app:?} has no configuration")))?;
        let Some(f) = CONFIGURABLE.iter().find(|p| p.0 == st.charm) else {
            return Err(Error::Refused(format!(
                "application {app:?} (stand-in for {}) has no configuration",
                st.charm
            )));
        };
        let new = (f.1)(&st, sets)?;
        save(self, app, &new)?;
        react(self, app)?;
        self.drain()
    }

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
        let app = app.unwrap_or(charm);
        // Before anything starts: a stand-in's deploy writes its state and directory.
        if self.model.applications.contains_key(app) {
            return Err(Error::Usage(format!(
                "cannot add application {app:?}: application already exists"
            )));
        }
        (p.1)(self, app)
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
