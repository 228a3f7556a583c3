//! The reconcile: gather the Juju state once, compute what Synapse and NGINX should
//! look like (pure code in `synapse::*` and `nginx`), apply only what differs, and
//! return the status to report.

use std::collections::BTreeMap;

use pebble::{CheckStatus, Layer, PushOptions};

use crate::juju::tools::{SecretOwner, SecretRead};
use crate::juju::{HookContext, HookTools, RelationId, Status, ToolErrorKind};
use crate::nginx;
use crate::synapse::config::SynapseConfig;
use crate::synapse::homeserver::{self, Database, HomeserverInputs};
use crate::synapse::keys::{self, SynapseKeys};
use crate::synapse::layer as synapse_layer;
use crate::util::hash::fnv1a_hex;
use crate::workload::Workload;

pub const PEER_ENDPOINT: &str = "synapse-peers";
/// Peer application databag key holding the URI of the keys secret.
pub const KEYS_SECRET_KEY: &str = "keys-secret-id";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error("Pebble in the {container} container: {source}")]
    Pebble {
        container: String,
        #[source]
        source: pebble::Error,
    },
    #[error("Synapse keys: {0}")]
    Keys(#[from] keys::KeysError),
    #[error("preparing /data: {0}")]
    Data(std::io::Error),
}

/// Access to the workload containers and the shared `/data` volume.
pub trait Workloads {
    fn container(&self, name: &str) -> Box<dyn Workload + '_>;
    /// Makes the data volume (mounted in the charm container too) owned by Synapse's user.
    fn own_data_dir(&self, uid: u32) -> std::io::Result<()>;
}

/// The outcome for one container.
enum Progress {
    Ready,
    Waiting(String),
    Blocked(String),
}

fn pebble_err(container: &str) -> impl Fn(pebble::Error) -> ReconcileError + '_ {
    move |source| ReconcileError::Pebble { container: container.to_string(), source }
}

/// Gets the keys: the leader creates them once; every unit reads them from the secret.
fn synapse_keys(tools: &dyn HookTools, leader: bool, peer: Option<&RelationId>, app: &str) -> Result<Option<SynapseKeys>, ReconcileError> {
    if leader {
        match tools.secret_get(None, Some(keys::SECRET_LABEL), SecretRead::Pinned) {
            Ok(content) => {
                let keys = SynapseKeys::from_content(&content)?;
                if let Some(rel) = peer {
                    let bag = tools.relation_get(rel, app, true)?;
                    if !bag.contains_key(KEYS_SECRET_KEY) {
                        if let Some(info) = tools.secret_info_by_label(keys::SECRET_LABEL)? {
                            let uri = if info.id.starts_with("secret:") { info.id } else { format!("secret:{}", info.id) };
                            tools.relation_set(rel, true, &BTreeMap::from([(KEYS_SECRET_KEY.to_string(), uri)]))?;
                        }
                    }
                }
                Ok(Some(keys))
            }
            Err(e) if e.kind == ToolErrorKind::NotFound => {
                let keys = SynapseKeys::generate()?;
                let uri = tools.secret_add(&keys.to_content(), keys::SECRET_LABEL, "Synapse signing key and shared secrets", SecretOwner::Application)?;
                tracing::info!("generated Synapse's keys and stored them in {uri}");
                if let Some(rel) = peer {
                    tools.relation_set(rel, true, &BTreeMap::from([(KEYS_SECRET_KEY.to_string(), uri)]))?;
                }
                Ok(Some(keys))
            }
            Err(e) => Err(e.into()),
        }
    } else {
        let Some(rel) = peer else { return Ok(None) };
        let bag = tools.relation_get(rel, app, true)?;
        let Some(uri) = bag.get(KEYS_SECRET_KEY) else { return Ok(None) };
        let content = tools.secret_get(Some(uri), None, SecretRead::Pinned)?;
        Ok(Some(SynapseKeys::from_content(&content)?))
    }
}

fn proxy_env(ctx: &HookContext) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (names, value) in [
        (["HTTP_PROXY", "http_proxy"], &ctx.http_proxy),
        (["HTTPS_PROXY", "https_proxy"], &ctx.https_proxy),
        (["NO_PROXY", "no_proxy"], &ctx.no_proxy),
    ] {
        if let Some(v) = value {
            for n in names {
                env.insert(n.to_string(), v.clone());
            }
        }
    }
    env
}

/// Adds the layer and replans if the plan differs from it. Returns whether anything changed.
fn apply_layer(w: &dyn Workload, plan: &Layer, label: &str, desired: &Layer) -> Result<bool, pebble::Error> {
    let same = desired.services.iter().all(|(n, s)| plan.services.get(n) == Some(s))
        && desired.checks.iter().all(|(n, c)| plan.checks.get(n) == Some(c));
    if same {
        return Ok(false);
    }
    w.add_layer(label, desired)?;
    w.replan()?;
    Ok(true)
}

fn service_state(w: &dyn Workload, service: &str, ready_check: &str, what: &str) -> Result<Progress, pebble::Error> {
    let running = w.services()?.iter().any(|s| s.name == service && s.is_running());
    if !running {
        return Ok(Progress::Waiting(format!("Waiting for {what} to start")));
    }
    let ready = w
        .checks()?
        .iter()
        .any(|c| c.name == ready_check && c.status == CheckStatus::Up && c.successes > 0);
    if !ready {
        return Ok(Progress::Waiting(format!("{what} is starting (waiting for its ready check)")));
    }
    Ok(Progress::Ready)
}

fn not_reachable(container: &str) -> Progress {
    Progress::Waiting(format!("Waiting for Pebble in the {container} container"))
}

fn reconcile_synapse(ctx: &HookContext, w: &dyn Workload, workloads: &dyn Workloads, config: &SynapseConfig, keys: &SynapseKeys) -> Result<Progress, ReconcileError> {
    let err = pebble_err(synapse_layer::CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(not_reachable(synapse_layer::CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    let files = [
        (homeserver::CONFIG_PATH.to_string(), homeserver::render(&HomeserverInputs { config, keys, database: Database::Sqlite, ingress_url: None })),
        (homeserver::LOG_CONFIG_PATH.to_string(), homeserver::log_config()),
        (homeserver::signing_key_path(&config.server_name), keys.signing_key.clone()),
    ];
    let hash = fnv1a_hex(files.iter().flat_map(|(p, c)| [p.as_bytes(), c.as_bytes()]));
    let desired = synapse_layer::layer(config, &hash, &proxy_env(ctx));
    let current = plan.services.get(synapse_layer::SERVICE);
    if current != desired.services.get(synapse_layer::SERVICE) {
        // Something Synapse reads will change: first make sure the server name is not.
        let existing = w.pull(homeserver::CONFIG_PATH).map_err(&err)?;
        if let Some(old) = existing.as_deref().and_then(|b| homeserver::existing_server_name(&String::from_utf8_lossy(b))) {
            if old != config.server_name {
                return Ok(Progress::Blocked(format!(
                    "server_name cannot change from {old:?} to {:?}: Synapse's database is bound to it; restore it with `juju config {} server_name={old}`",
                    config.server_name, ctx.app_name
                )));
            }
        }
        workloads.own_data_dir(synapse_layer::UID).map_err(ReconcileError::Data)?;
        let secret_file = PushOptions { permissions: Some(0o600), user: Some(synapse_layer::USER.into()), group: Some(synapse_layer::USER.into()), make_dirs: true, ..Default::default() };
        for (path, content) in &files {
            let current = if path == homeserver::CONFIG_PATH { existing.clone() } else { w.pull(path).map_err(&err)? };
            if current.as_deref() != Some(content.as_bytes()) {
                tracing::info!(path, "writing");
                w.push(path, content.as_bytes(), &secret_file).map_err(&err)?;
            }
        }
    }
    match apply_layer(w, &plan, synapse_layer::LAYER_LABEL, &desired) {
        Ok(changed) => {
            if changed {
                tracing::info!("Synapse's layer changed: replanned");
            } else if !w.services().map_err(&err)?.iter().any(|s| s.name == synapse_layer::SERVICE && s.is_running()) {
                // Present but not running (stopped by hand, or failed): start it again.
                w.replan().map_err(&err)?;
            }
        }
        Err(pebble::Error::Change { err: msg, task_logs, .. }) => {
            tracing::error!("Synapse failed to start: {msg}\n{}", task_logs.join("\n"));
            return Ok(Progress::Blocked("Synapse failed to start; see `juju debug-log` and the synapse container's Pebble logs".into()));
        }
        Err(e) => return Err(err(e)),
    }
    service_state(w, synapse_layer::SERVICE, synapse_layer::READY_CHECK, "Synapse").map_err(&err)
}

fn reconcile_nginx(w: &dyn Workload) -> Result<Progress, ReconcileError> {
    let err = pebble_err(nginx::CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(not_reachable(nginx::CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    match apply_layer(w, &plan, nginx::LAYER_LABEL, &nginx::layer()) {
        Ok(_) => {}
        Err(pebble::Error::Change { err: msg, .. }) => {
            tracing::error!("NGINX failed to start: {msg}");
            return Ok(Progress::Blocked("NGINX failed to start; see the synapse-nginx container's Pebble logs".into()));
        }
        Err(e) => return Err(err(e)),
    }
    service_state(w, nginx::SERVICE, nginx::READY_CHECK, "NGINX").map_err(&err)
}

/// One full reconcile. Expected problems become a status; unexpected ones an error.
pub fn reconcile(ctx: &HookContext, tools: &dyn HookTools, workloads: &dyn Workloads) -> Result<Status, ReconcileError> {
    let config = match SynapseConfig::from_juju(&tools.config_get()?) {
        Ok(c) => c,
        Err(e) => return Ok(Status::blocked(e.to_string())),
    };
    let leader = tools.is_leader()?;
    let peer = tools.relation_ids(PEER_ENDPOINT)?.into_iter().next();
    let Some(keys) = synapse_keys(tools, leader, peer.as_ref(), &ctx.app_name)? else {
        return Ok(Status::waiting("Waiting for the leader to create Synapse's keys"));
    };
    let synapse = workloads.container(synapse_layer::CONTAINER);
    let nginx_w = workloads.container(nginx::CONTAINER);
    let results = [
        reconcile_synapse(ctx, synapse.as_ref(), workloads, &config, &keys)?,
        reconcile_nginx(nginx_w.as_ref())?,
    ];
    for r in &results {
        if let Progress::Blocked(m) = r {
            return Ok(Status::blocked(m.clone()));
        }
    }
    let waiting: Vec<&str> = results.iter().filter_map(|r| match r { Progress::Waiting(m) => Some(m.as_str()), _ => None }).collect();
    if !waiting.is_empty() {
        return Ok(Status::waiting(waiting.join("; ")));
    }
    Ok(Status::active())
}
