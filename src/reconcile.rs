//! The reconcile: gather the Juju state once, compute what Synapse and NGINX should
//! look like (pure code in `synapse::*` and `nginx`), apply only what differs, and
//! return the status to report.

use std::collections::BTreeMap;

use pebble::{CheckStatus, Layer, PushOptions};

use crate::database::postgres::{DbError, Locale};
use crate::database::relation::ENDPOINT as DB_ENDPOINT;
use crate::database::{DatabaseInfo, Provided};
use crate::juju::hints::UnitHints;
use crate::juju::tools::{SecretOwner, SecretRead};
use crate::juju::{Databag, HookContext, HookTools, RelationId, Status, ToolErrorKind};
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
/// Peer application databag key naming the unit that runs Synapse.
pub const MAIN_UNIT_KEY: &str = "main-unit";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error("Pebble in the {container} container: {source}")]
    Pebble {
        container: String,
        #[source]
        source: Box<pebble::Error>,
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
    /// Where the charm container sees the data volume (`/data` in production).
    fn data_dir(&self) -> std::path::PathBuf;
}

/// A file on the data volume recording that Synapse has run on PostgreSQL: from then
/// on it never falls back to SQLite. It lives with the data it protects.
pub const BACKEND_MARKER: &str = ".charm-database-backend";

/// The outcome for one container.
enum Progress {
    Ready,
    Waiting(String),
    Blocked(String),
}

fn pebble_err(container: &str) -> impl Fn(pebble::Error) -> ReconcileError + '_ {
    move |source| ReconcileError::Pebble {
        container: container.to_string(),
        source: Box::new(source),
    }
}

/// What the peer relation tells this unit (read once per dispatch).
pub struct Peers {
    pub relation: Option<RelationId>,
    pub app_data: Databag,
}

impl Peers {
    /// Reads the peer application databag. `known` is the peer relation id remembered
    /// from an earlier dispatch: it saves the `relation-ids` call while it is valid.
    pub fn gather(
        tools: &dyn HookTools,
        app: &str,
        known: Option<&RelationId>,
    ) -> Result<Self, ReconcileError> {
        if let Some(rel) = known {
            match tools.relation_get(rel, app, true) {
                Ok(app_data) => {
                    return Ok(Self {
                        relation: Some(rel.clone()),
                        app_data,
                    })
                }
                Err(e) if e.kind == ToolErrorKind::RelationNotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let relation = tools.relation_ids(PEER_ENDPOINT)?.into_iter().next();
        let app_data = match &relation {
            Some(rel) => tools.relation_get(rel, app, true)?,
            None => Databag::new(),
        };
        Ok(Self { relation, app_data })
    }

    /// Leader only: publishes keys in the peer application databag if they differ.
    fn publish(&self, tools: &dyn HookTools, updates: Databag) -> Result<(), ReconcileError> {
        let changed: Databag = updates
            .into_iter()
            .filter(|(k, v)| self.app_data.get(k) != Some(v))
            .collect();
        if let (Some(rel), false) = (&self.relation, changed.is_empty()) {
            tools.relation_set(rel, true, &changed)?;
        }
        Ok(())
    }
}

fn secret_uri(id: String) -> String {
    if id.starts_with("secret:") {
        id
    } else {
        format!("secret:{id}")
    }
}

/// Gets the keys: the leader creates them once; every unit reads them from the secret,
/// whose URI the leader publishes in the peer relation's application databag.
fn synapse_keys(
    tools: &dyn HookTools,
    leader: bool,
    peers: &Peers,
) -> Result<Option<SynapseKeys>, ReconcileError> {
    if !leader {
        let Some(uri) = peers.app_data.get(KEYS_SECRET_KEY) else {
            return Ok(None);
        };
        let content = tools.secret_get(Some(uri), None, SecretRead::Pinned)?;
        return Ok(Some(SynapseKeys::from_content(&content)?));
    }
    match tools.secret_get(None, Some(keys::SECRET_LABEL), SecretRead::Pinned) {
        Ok(content) => {
            let keys = SynapseKeys::from_content(&content)?;
            // Leadership may have come before the peer relation existed: make sure the
            // other units can find the secret.
            if peers.relation.is_some() && !peers.app_data.contains_key(KEYS_SECRET_KEY) {
                if let Some(info) = tools.secret_info_by_label(keys::SECRET_LABEL)? {
                    peers.publish(
                        tools,
                        Databag::from([(KEYS_SECRET_KEY.to_string(), secret_uri(info.id))]),
                    )?;
                }
            }
            Ok(Some(keys))
        }
        Err(e) if e.kind == ToolErrorKind::NotFound => {
            let keys = SynapseKeys::generate()?;
            let uri = tools.secret_add(
                &keys.to_content(),
                keys::SECRET_LABEL,
                "Synapse signing key and shared secrets",
                SecretOwner::Application,
            )?;
            tracing::info!("generated Synapse's keys and stored them in {uri}");
            peers.publish(
                tools,
                Databag::from([(KEYS_SECRET_KEY.to_string(), secret_uri(uri))]),
            )?;
            Ok(Some(keys))
        }
        Err(e) => Err(e.into()),
    }
}

/// Which unit runs Synapse. Synapse keeps its data on the unit's own volume, so exactly
/// one unit (the "main" unit, chosen once by the leader) runs it; a leadership change
/// does not move it while the main unit is alive.
fn is_main_unit(
    ctx: &HookContext,
    tools: &dyn HookTools,
    leader: &dyn Fn() -> Result<bool, ReconcileError>,
    peers: &Peers,
) -> Result<Option<bool>, ReconcileError> {
    let take_over = || -> Result<Option<bool>, ReconcileError> {
        peers.publish(
            tools,
            Databag::from([(MAIN_UNIT_KEY.to_string(), ctx.unit_name.clone())]),
        )?;
        Ok(Some(true))
    };
    match peers.app_data.get(MAIN_UNIT_KEY) {
        Some(m) if *m == ctx.unit_name => Ok(Some(true)),
        Some(m) => {
            if !leader()? {
                return Ok(Some(false));
            }
            // The leader reassigns only if the main unit is gone.
            let alive = match &peers.relation {
                Some(rel) => tools.relation_list(rel)?.contains(m),
                None => false,
            };
            if alive {
                Ok(Some(false))
            } else {
                tracing::warn!(old = %m, "the main unit is gone: this unit takes over");
                take_over()
            }
        }
        None if leader()? => take_over(),
        None => Ok(None),
    }
}

/// Synapse's keys as this unit can see them now (`None` while the leader has not made them).
pub fn current_keys(
    ctx: &HookContext,
    tools: &dyn HookTools,
) -> Result<Option<SynapseKeys>, ReconcileError> {
    let peers = Peers::gather(tools, &ctx.app_name, None)?;
    synapse_keys(tools, tools.is_leader()?, &peers)
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
fn apply_layer(
    w: &dyn Workload,
    plan: &Layer,
    label: &str,
    desired: &Layer,
) -> Result<bool, pebble::Error> {
    let same = desired
        .services
        .iter()
        .all(|(n, s)| plan.services.get(n) == Some(s))
        && desired
            .checks
            .iter()
            .all(|(n, c)| plan.checks.get(n) == Some(c));
    if same {
        return Ok(false);
    }
    w.add_layer(label, desired)?;
    w.replan()?;
    Ok(true)
}

/// Reports a container's service state, starting enabled services that are not running
/// (stopped by hand, or given up on). A ready check that is up and has passed answers
/// for the service, so the steady state costs a single call.
fn service_state(
    w: &dyn Workload,
    service: &str,
    ready_check: &str,
    ready_url: &str,
    what: &str,
) -> Result<Progress, pebble::Error> {
    let checks = w.checks()?;
    let check = checks.iter().find(|c| c.name == ready_check);
    if check.is_some_and(|c| c.status == CheckStatus::Up && c.successes > 0) {
        return Ok(Progress::Ready);
    }
    let mut services = w.services()?;
    if services
        .iter()
        .any(|s| s.startup == pebble::Startup::Enabled && !s.is_running())
    {
        w.replan()?;
        services = w.services()?;
    }
    if !services.iter().any(|s| s.name == service && s.is_running()) {
        return Ok(Progress::Waiting(format!("Waiting for {what} to start")));
    }
    let ready = match check {
        Some(c) if c.status == CheckStatus::Down => false,
        // Not run yet, or a Pebble too old to count successes: ask the service itself.
        _ => w.probe(ready_url),
    };
    if !ready {
        return Ok(Progress::Waiting(format!(
            "{what} is starting (waiting for its ready check)"
        )));
    }
    Ok(Progress::Ready)
}

fn not_reachable(container: &str) -> Progress {
    Progress::Waiting(format!("Waiting for Pebble in the {container} container"))
}

/// What the `database` relation says, read only when needed.
enum Db {
    /// No relation: SQLite.
    None,
    /// Related; details are read lazily (they change only with relation or secret events).
    Related { relation: RelationId },
}

/// Reads the provider's answer: endpoints, database and credentials.
fn read_provided(
    ctx: &HookContext,
    tools: &dyn HookTools,
    rel: &RelationId,
) -> Result<Provided, ReconcileError> {
    let Some(remote) = tools.relation_remote_app(rel)? else {
        return Ok(Provided::Pending("the provider"));
    };
    let bag = tools.relation_get(rel, &remote, true)?;
    let secret = match bag.get("secret-user") {
        Some(uri) => {
            // Follow the provider's rotations when it tells us (secret-changed).
            let refresh = matches!(&ctx.event, crate::juju::Event::Secret { id, .. } if crate::util::same_secret(id, uri));
            let mode = if refresh {
                SecretRead::Refresh
            } else {
                SecretRead::Pinned
            };
            Some(tools.secret_get(Some(uri), None, mode)?)
        }
        None => None,
    };
    Ok(crate::database::relation::provided(&bag, secret.as_ref()))
}

fn placeholder_db() -> DatabaseInfo {
    DatabaseInfo {
        host: "<host>".into(),
        port: 0,
        database: "<database>".into(),
        user: "<user>".into(),
        password: "<password>".into(),
    }
}

fn shape_hash(config: &SynapseConfig, postgres: bool) -> String {
    let placeholder = SynapseKeys::placeholder();
    let database = if postgres {
        Database::Postgres(placeholder_db())
    } else {
        Database::Sqlite
    };
    let shape = homeserver::render(&HomeserverInputs {
        config,
        keys: &placeholder,
        database,
        ingress_url: None,
    });
    fnv1a_hex([
        shape.as_bytes(),
        homeserver::log_config().as_bytes(),
        homeserver::signing_key_path(&config.server_name).as_bytes(),
    ])
}

/// Events after which the database details may differ from what Synapse runs with.
fn database_may_have_changed(ctx: &HookContext) -> bool {
    use crate::juju::Event;
    match &ctx.event {
        Event::Relation { relation, .. } => relation.endpoint == DB_ENDPOINT,
        Event::Secret { .. } | Event::UpgradeCharm | Event::Install | Event::Start => true,
        _ => false,
    }
}

/// Stops Synapse (and the exporter) and keeps them from being started again.
fn hold_synapse(w: &dyn Workload, plan: &Layer) -> Result<(), pebble::Error> {
    let mut held = Layer::default();
    for name in [synapse_layer::SERVICE, synapse_layer::EXPORTER] {
        if let Some(svc) = plan.services.get(name) {
            let h = synapse_layer::held_service(svc.clone());
            if Some(&h) != plan.services.get(name) {
                held.services.insert(name.to_string(), h);
            }
        }
    }
    if !held.services.is_empty() {
        w.add_layer(synapse_layer::LAYER_LABEL, &held)?;
    }
    let running: Vec<String> = w
        .services()?
        .into_iter()
        .filter(|s| s.is_running())
        .map(|s| s.name)
        .collect();
    let to_stop: Vec<&str> = running
        .iter()
        .map(String::as_str)
        .filter(|n| *n == synapse_layer::SERVICE || *n == synapse_layer::EXPORTER)
        .collect();
    if !to_stop.is_empty() {
        w.stop(&to_stop)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn reconcile_synapse(
    ctx: &HookContext,
    tools: &dyn HookTools,
    w: &dyn Workload,
    workloads: &dyn Workloads,
    config: &SynapseConfig,
    db: &Db,
    keys: &dyn Fn() -> Result<Option<SynapseKeys>, ReconcileError>,
) -> Result<Progress, ReconcileError> {
    let err = pebble_err(synapse_layer::CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(not_reachable(synapse_layer::CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    let marker = workloads.data_dir().join(BACKEND_MARKER);
    let ran_on_postgres = std::fs::read_to_string(&marker)
        .map(|s| s.trim() == "postgresql")
        .unwrap_or(false);
    let relation = match db {
        Db::None if ran_on_postgres => {
            // Never start Synapse on an empty SQLite database after it ran on PostgreSQL.
            hold_synapse(w, &plan).map_err(&err)?;
            return Ok(Progress::Blocked(format!(
                "the database integration was removed; Synapse's data is in PostgreSQL, so Synapse is stopped: restore it with `juju integrate {} postgresql-k8s`",
                ctx.app_name
            )));
        }
        Db::None => None,
        Db::Related { relation } => Some(relation),
    };

    // Steady state: the plan already runs this configuration's shape (secrets and
    // database credentials left out: they change only with the events checked here).
    let postgres_shape = relation.is_some() && ran_on_postgres;
    let shape = shape_hash(config, postgres_shape);
    let running = plan.services.get(synapse_layer::SERVICE);
    let running_env = |k: &str| {
        running
            .and_then(|s| s.environment.get(k))
            .cloned()
            .unwrap_or_default()
    };
    // Related but not yet on PostgreSQL is a transition, never a steady state: keep
    // trying (and reporting why not) on every dispatch.
    let moving = relation.is_some() && !ran_on_postgres;
    let steady = !moving && !database_may_have_changed(ctx) && {
        let exporter_plan = plan.services.get(synapse_layer::EXPORTER);
        let mut same = synapse_layer::layer(
            config,
            &shape,
            &running_env(synapse_layer::CONTENT_ENV),
            None,
            &proxy_env(ctx),
        );
        if let Some(e) = exporter_plan.filter(|_| postgres_shape) {
            same.services
                .insert(synapse_layer::EXPORTER.into(), e.clone());
        }
        same.services
            .iter()
            .all(|(n, svc)| plan.services.get(n) == Some(svc))
            && same
                .checks
                .iter()
                .all(|(n, c)| plan.checks.get(n) == Some(c))
            && (postgres_shape
                || exporter_plan.is_none_or(|e| e.startup != Some(pebble::Startup::Enabled)))
    };
    if steady {
        return finish_synapse(w, &plan, None).map_err(&err);
    }

    // Full path: read what the files are made of.
    let Some(keys) = keys()? else {
        return Ok(Progress::Waiting(
            "Waiting for the leader to create Synapse's keys".into(),
        ));
    };
    let database = match relation {
        None => Database::Sqlite,
        Some(rel) => match read_provided(ctx, tools, rel)? {
            Provided::Pending(what) => {
                let msg = format!("Waiting for PostgreSQL to provide the database ({what})");
                if !ran_on_postgres && running.is_some() {
                    // Keep serving from SQLite meanwhile.
                    let p = finish_synapse(w, &plan, None).map_err(&err)?;
                    return Ok(match p {
                        Progress::Ready => Progress::Waiting(msg),
                        other => other,
                    });
                }
                return Ok(Progress::Waiting(msg));
            }
            Provided::Invalid(reason) => {
                return Ok(Progress::Blocked(format!(
                    "the database integration sent invalid data: {reason}"
                )))
            }
            Provided::Ready(info) => {
                if !ran_on_postgres {
                    if let Some(p) = check_switch_to_postgres(workloads, &info)? {
                        return Ok(p);
                    }
                }
                Database::Postgres(info)
            }
        },
    };
    let exporter_db = match &database {
        Database::Postgres(info) => Some(info.clone()),
        Database::Sqlite => None,
    };
    let shape = shape_hash(config, exporter_db.is_some());
    let mut files = vec![
        (
            homeserver::CONFIG_PATH.to_string(),
            homeserver::render(&HomeserverInputs {
                config,
                keys: &keys,
                database,
                ingress_url: None,
            }),
        ),
        (
            homeserver::LOG_CONFIG_PATH.to_string(),
            homeserver::log_config(),
        ),
        (
            homeserver::signing_key_path(&config.server_name),
            keys.signing_key.clone(),
        ),
    ];
    if let Some(db) = &exporter_db {
        files.push((
            synapse_layer::EXPORTER_PASSWORD_PATH.to_string(),
            db.password.clone(),
        ));
    }
    let content = fnv1a_hex(
        files
            .iter()
            .take(3)
            .flat_map(|(p, c)| [p.as_bytes(), c.as_bytes()]),
    );
    let password_hash = exporter_db
        .as_ref()
        .map(|d| fnv1a_hex([d.password.as_bytes()]))
        .unwrap_or_default();
    let exporter = exporter_db.as_ref().map(|db| synapse_layer::Exporter {
        db,
        password_hash: &password_hash,
    });
    let mut desired =
        synapse_layer::layer(config, &shape, &content, exporter.as_ref(), &proxy_env(ctx));
    if exporter.is_none() && plan.services.contains_key(synapse_layer::EXPORTER) {
        desired.services.insert(
            synapse_layer::EXPORTER.into(),
            synapse_layer::exporter_service(None),
        );
    }
    let changed = desired
        .services
        .iter()
        .any(|(n, svc)| plan.services.get(n) != Some(svc));
    if changed {
        // Something Synapse reads will change: first make sure the server name is not.
        let existing = w.pull(homeserver::CONFIG_PATH).map_err(&err)?;
        if let Some(old) = existing
            .as_deref()
            .and_then(|b| homeserver::existing_server_name(&String::from_utf8_lossy(b)))
        {
            if old != config.server_name {
                return Ok(Progress::Blocked(format!(
                    "server_name cannot change from {old:?} to {:?}: Synapse's database is bound to it; restore it with `juju config {} server_name={old}`",
                    config.server_name, ctx.app_name
                )));
            }
        }
        workloads
            .own_data_dir(synapse_layer::UID)
            .map_err(ReconcileError::Data)?;
        let secret_file = PushOptions {
            permissions: Some(0o600),
            user: Some(synapse_layer::USER.into()),
            group: Some(synapse_layer::USER.into()),
            make_dirs: true,
            ..Default::default()
        };
        for (path, content) in &files {
            let current = if path == homeserver::CONFIG_PATH {
                existing.clone()
            } else {
                w.pull(path).map_err(&err)?
            };
            if current.as_deref() != Some(content.as_bytes()) {
                tracing::info!(path, "writing");
                w.push(path, content.as_bytes(), &secret_file)
                    .map_err(&err)?;
            }
        }
    }
    let progress = finish_synapse(w, &plan, Some(&desired)).map_err(&err)?;
    if exporter_db.is_some()
        && !ran_on_postgres
        && matches!(progress, Progress::Ready | Progress::Waiting(_))
    {
        std::fs::write(&marker, "postgresql\n").map_err(ReconcileError::Data)?;
        tracing::info!("Synapse now runs on PostgreSQL");
    }
    if exporter_db.is_none() {
        // The exporter only makes sense with PostgreSQL: make sure it is not running.
        if w.services()
            .map_err(&err)?
            .iter()
            .any(|s| s.name == synapse_layer::EXPORTER && s.is_running())
        {
            w.stop(&[synapse_layer::EXPORTER]).map_err(&err)?;
        }
    }
    Ok(progress)
}

/// Before moving from SQLite to PostgreSQL: never leave users or rooms behind, and give
/// an empty provided database the `C` locale Synapse requires.
fn check_switch_to_postgres(
    workloads: &dyn Workloads,
    info: &DatabaseInfo,
) -> Result<Option<Progress>, ReconcileError> {
    // The locale first: an empty database gets `C` even if SQLite still holds data, so
    // that synapse_port_db can migrate into it.
    match crate::database::postgres::prepare(info) {
        Ok(Locale::Ready) => {}
        Ok(Locale::Switched { from }) => {
            tracing::info!(%from, "gave the empty database the C locale Synapse requires");
        }
        Ok(Locale::Unsafe { collate, ctype, tables }) => {
            return Ok(Some(Progress::Blocked(format!(
                "database {:?} has collation {collate:?} and ctype {ctype:?} and already holds {tables} tables; Synapse needs \"C\": recreate it with LC_COLLATE and LC_CTYPE \"C\" (see docs/how-to/postgresql.md)",
                info.database
            ))))
        }
        Err(e @ DbError::Query(_)) => return Ok(Some(Progress::Blocked(format!("preparing the database failed: {e}")))),
        Err(e) => return Ok(Some(Progress::Waiting(format!("{e}")))),
    }
    let sqlite = workloads.data_dir().join("homeserver.db");
    match crate::database::sqlite::contents(&sqlite) {
        Ok(Some(c)) if !c.is_empty() => {
            return Ok(Some(Progress::Blocked(format!(
                "the SQLite database holds {} users and {} rooms: migrate them with synapse_port_db, then move /data/homeserver.db aside (see docs/how-to/postgresql.md)",
                c.users, c.rooms
            ))))
        }
        Ok(_) => {}
        Err(e) => return Ok(Some(Progress::Blocked(format!("cannot read the SQLite database to check for data: {e}")))),
    }
    Ok(None)
}

/// Applies the desired layer (if any) and reports the service state.
fn finish_synapse(
    w: &dyn Workload,
    plan: &Layer,
    desired: Option<&Layer>,
) -> Result<Progress, pebble::Error> {
    if let Some(desired) = desired {
        match apply_layer(w, plan, synapse_layer::LAYER_LABEL, desired) {
            Ok(true) => tracing::info!("Synapse's layer changed: replanned"),
            Ok(false) => {}
            Err(e) => return synapse_start_failure(e),
        }
    }
    match service_state(
        w,
        synapse_layer::SERVICE,
        synapse_layer::READY_CHECK,
        synapse_layer::READY_URL,
        "Synapse",
    ) {
        Err(e @ pebble::Error::Change { .. }) => synapse_start_failure(e),
        other => other,
    }
}

/// A failed start is the workload's problem (bad configuration, crash at start):
/// report it; anything else is unexpected.
fn synapse_start_failure(e: pebble::Error) -> Result<Progress, pebble::Error> {
    match e {
        pebble::Error::Change {
            err: msg,
            task_logs,
            ..
        } => {
            let only_exporter = msg.contains(&format!("service \"{}\"", synapse_layer::EXPORTER))
                && !msg.contains(&format!("service \"{}\"", synapse_layer::SERVICE));
            let what = if only_exporter {
                "the stats exporter"
            } else {
                "Synapse"
            };
            tracing::error!("{what} failed to start: {msg}\n{}", task_logs.join("\n"));
            Ok(Progress::Blocked(format!(
                "{what} failed to start; see `juju debug-log` and the synapse container's Pebble logs"
            )))
        }
        e => Err(e),
    }
}

fn reconcile_nginx(w: &dyn Workload) -> Result<Progress, ReconcileError> {
    let err = pebble_err(nginx::CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(not_reachable(nginx::CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    let failed = |msg: &str| {
        tracing::error!("NGINX failed to start: {msg}");
        Progress::Blocked(
            "NGINX failed to start; see the synapse-nginx container's Pebble logs".into(),
        )
    };
    match apply_layer(w, &plan, nginx::LAYER_LABEL, &nginx::layer()) {
        Ok(_) => {}
        Err(pebble::Error::Change { err: msg, .. }) => return Ok(failed(&msg)),
        Err(e) => return Err(err(e)),
    }
    match service_state(
        w,
        nginx::SERVICE,
        nginx::READY_CHECK,
        nginx::READY_URL,
        "NGINX",
    ) {
        Err(pebble::Error::Change { err: msg, .. }) => Ok(failed(&msg)),
        other => other.map_err(&err),
    }
}

/// One full reconcile. Expected problems become a status; unexpected ones an error.
/// The `database` relation, if any. Its id is remembered between dispatches and looked
/// up again only on events that can change it; a relation being broken counts as gone.
/// The leader asks the provider for the database.
fn database_relation(
    ctx: &HookContext,
    tools: &dyn HookTools,
    leader: &dyn Fn() -> Result<bool, ReconcileError>,
    hints: &mut UnitHints,
) -> Result<Db, ReconcileError> {
    use crate::juju::{Event, RelationHook};
    let (db_event, broken) = match &ctx.event {
        Event::Relation { relation, hook, .. } if relation.endpoint == DB_ENDPOINT => {
            (true, (*hook == RelationHook::Broken).then_some(relation))
        }
        _ => (false, None),
    };
    let refresh = db_event
        || hints.database_relation.is_none()
        || matches!(
            ctx.event,
            Event::UpgradeCharm | Event::Install | Event::Start
        );
    if refresh {
        let id = tools
            .relation_ids(DB_ENDPOINT)?
            .into_iter()
            .find(|r| Some(r) != broken);
        hints.database_relation = Some(id.map(|r| r.to_string()).unwrap_or_default());
    }
    let Some(relation) = hints
        .database_relation
        .as_deref()
        .and_then(RelationId::parse)
    else {
        return Ok(Db::None);
    };
    if (db_event || matches!(ctx.event, Event::LeaderElected | Event::UpgradeCharm)) && leader()? {
        let own = tools.relation_get(&relation, &ctx.app_name, true)?;
        let request = crate::database::relation::request();
        let missing: Databag = request
            .into_iter()
            .filter(|(k, v)| own.get(k) != Some(v))
            .collect();
        if !missing.is_empty() {
            tools.relation_set(&relation, true, &missing)?;
            tracing::info!("asked the database integration for a database");
        }
    }
    Ok(Db::Related { relation })
}

pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
    hints: &mut UnitHints,
) -> Result<Status, ReconcileError> {
    let config = match SynapseConfig::from_juju(&tools.config_get()?) {
        Ok(c) => c,
        Err(e) => return Ok(Status::blocked(e.to_string())),
    };
    // Leadership is read only where it matters (the cache makes repeated asks free):
    // a steady-state dispatch of the main unit does not need it.
    let leader = || -> Result<bool, ReconcileError> { Ok(tools.is_leader()?) };
    let known = hints.peer_relation.as_deref().and_then(RelationId::parse);
    let peers = Peers::gather(tools, &ctx.app_name, known.as_ref())?;
    hints.peer_relation = peers.relation.as_ref().map(|r| r.to_string());
    // The leader makes the keys as early as it can (the other units need them).
    if !peers.app_data.contains_key(KEYS_SECRET_KEY) && leader()? {
        synapse_keys(tools, true, &peers)?;
    }
    match is_main_unit(ctx, tools, &leader, &peers)? {
        None => {
            return Ok(Status::waiting(
                "Waiting for the leader to choose the unit that runs Synapse",
            ))
        }
        Some(false) => {
            let main = peers
                .app_data
                .get(MAIN_UNIT_KEY)
                .cloned()
                .unwrap_or_default();
            return Ok(Status::blocked(format!(
                "Synapse runs on {main} only: scaling out is not supported yet; remove this unit with `juju remove-unit {}`",
                ctx.unit_name
            )));
        }
        Some(true) => {}
    }
    let keys = || synapse_keys(tools, leader()?, &peers);
    let db = database_relation(ctx, tools, &leader, hints)?;
    let synapse = workloads.container(synapse_layer::CONTAINER);
    let nginx_w = workloads.container(nginx::CONTAINER);
    let on_postgres = || {
        std::fs::read_to_string(workloads.data_dir().join(BACKEND_MARKER))
            .is_ok_and(|s| s.trim() == "postgresql")
    };
    let was_on_postgres = on_postgres();
    let results = [
        reconcile_synapse(ctx, tools, synapse.as_ref(), workloads, &config, &db, &keys)?,
        reconcile_nginx(nginx_w.as_ref())?,
    ];
    let exporter = matches!(db, Db::Related { .. }) && on_postgres();
    let exporter_changed = on_postgres() != was_on_postgres;
    let acts = crate::observability::acts_on(&ctx.event, exporter_changed);
    crate::observability::reconcile(
        ctx,
        tools,
        &crate::observability::ObservabilityInputs {
            // Leadership is asked only when the observability relations have work.
            leader: acts && leader()?,
            exporter,
            exporter_changed,
            synapse: synapse.as_ref(),
            nginx: nginx_w.as_ref(),
        },
    )?;
    for r in &results {
        if let Progress::Blocked(m) = r {
            return Ok(Status::blocked(m.clone()));
        }
    }
    let waiting: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            Progress::Waiting(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    if !waiting.is_empty() {
        return Ok(Status::waiting(waiting.join("; ")));
    }
    Ok(Status::active())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::event::Event;
    use crate::testing::{FakePebble, FakePod, FakeTools};
    use serde_json::json;

    fn ctx() -> HookContext {
        HookContext {
            unit_name: "synapse/0".into(),
            app_name: "synapse".into(),
            unit_number: 0,
            model_name: "m".into(),
            model_uuid: "u".into(),
            juju_version: None,
            event: Event::ConfigChanged,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }

    fn tools(config: serde_json::Value) -> FakeTools {
        let serde_json::Value::Object(config) = config else {
            unreachable!()
        };
        FakeTools {
            config,
            leader: true,
            relations: BTreeMap::from([(
                RelationId {
                    endpoint: PEER_ENDPOINT.into(),
                    id: 0,
                },
                BTreeMap::new(),
            )]),
            ..Default::default()
        }
    }

    fn pod() -> FakePod {
        FakePod {
            synapse: FakePebble::up(),
            nginx: FakePebble::up(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    #[test]
    fn first_reconcile_creates_keys_writes_files_and_starts_both() {
        let t = tools(json!({"server_name": "example.com"}));
        let p = pod();
        let status = reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(status, Status::active());
        assert_eq!(t.secrets.borrow().len(), 1, "keys secret created");
        assert!(
            t.sets
                .borrow()
                .iter()
                .any(|(_, app, d)| *app && d.contains_key(KEYS_SECRET_KEY)),
            "URI shared with peers"
        );
        let pushes = p.synapse.pushes.borrow().clone();
        assert_eq!(
            pushes,
            vec![
                "/data/homeserver.yaml",
                "/data/log.config",
                "/data/example.com.signing.key"
            ]
        );
        assert_eq!(*p.synapse.restarts.borrow(), 1);
        assert_eq!(*p.nginx.restarts.borrow(), 1);
    }

    #[test]
    fn unchanged_state_means_no_writes_no_layers_no_restarts() {
        let t = tools(json!({"server_name": "example.com"}));
        let p = pod();
        let mut hints = UnitHints::default();
        reconcile(&ctx(), &t, &p, &mut hints).unwrap();
        assert_eq!(hints.peer_relation.as_deref(), Some("synapse-peers:0"));
        t.calls.borrow_mut().clear();
        let update_status = HookContext {
            event: Event::UpdateStatus,
            ..ctx()
        };
        reconcile(&update_status, &t, &p, &mut hints).unwrap();
        assert_eq!(p.synapse.pushes.borrow().len(), 3, "no new pushes");
        assert_eq!(*p.synapse.layers_added.borrow(), 1);
        assert_eq!(*p.nginx.layers_added.borrow(), 1);
        assert_eq!(*p.synapse.restarts.borrow(), 1);
        // Steady state: config and the peer bag, each read once; neither leadership nor
        // the keys secret is read (the plan already carries the keys) and nothing is written.
        assert_eq!(t.calls.borrow().clone(), vec!["config-get", "relation-get"]);
    }

    #[test]
    fn a_config_change_rewrites_homeserver_yaml_and_restarts_once() {
        let mut t = tools(json!({"server_name": "example.com"}));
        let p = pod();
        reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        t.config
            .insert("enable_room_list_search".into(), json!(false));
        reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        let pushes = p.synapse.pushes.borrow().clone();
        assert_eq!(pushes.len(), 4);
        assert_eq!(pushes[3], "/data/homeserver.yaml", "only the changed file");
        assert_eq!(*p.synapse.restarts.borrow(), 2);
        assert_eq!(*p.nginx.restarts.borrow(), 1);
        assert!(
            String::from_utf8_lossy(&p.synapse.files.borrow()["/data/homeserver.yaml"])
                .contains("enable_room_list_search: false")
        );
    }

    #[test]
    fn changing_server_name_blocks_and_changes_nothing() {
        let mut t = tools(json!({"server_name": "example.com"}));
        let p = pod();
        reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        t.config.insert("server_name".into(), json!("other.org"));
        let status = reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(status.kind, crate::juju::StatusKind::Blocked);
        assert!(
            status
                .message
                .contains("server_name cannot change from \"example.com\" to \"other.org\""),
            "{}",
            status.message
        );
        assert!(status
            .message
            .contains("juju config synapse server_name=example.com"));
        assert_eq!(p.synapse.pushes.borrow().len(), 3);
        assert_eq!(*p.synapse.restarts.borrow(), 1);
    }

    #[test]
    fn unreachable_containers_wait() {
        let t = tools(json!({"server_name": "example.com"}));
        let p = FakePod {
            synapse: FakePebble::default(),
            nginx: FakePebble::up(),
            data: tempfile::tempdir().unwrap(),
        };
        let status = reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(
            status,
            Status::waiting("Waiting for Pebble in the synapse container")
        );
    }

    #[test]
    fn starting_synapse_is_reported_as_waiting() {
        let t = tools(json!({"server_name": "example.com"}));
        let mut p = pod();
        p.synapse.ready = false;
        let status = reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(
            status,
            Status::waiting("Synapse is starting (waiting for its ready check)")
        );
    }

    #[test]
    fn non_leader_waits_for_keys_then_uses_the_leaders() {
        let mut t = tools(json!({"server_name": "example.com"}));
        t.leader = false;
        let p = pod();
        let rel = RelationId {
            endpoint: PEER_ENDPOINT.into(),
            id: 0,
        };
        let run = |t: &FakeTools| reconcile(&ctx(), t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(
            run(&t),
            Status::waiting("Waiting for the leader to choose the unit that runs Synapse")
        );
        // The leader chose another unit: this one stays idle and says why.
        t.relations.insert(
            rel.clone(),
            BTreeMap::from([(
                "synapse".to_string(),
                BTreeMap::from([(MAIN_UNIT_KEY.to_string(), "synapse/1".to_string())]),
            )]),
        );
        let status = run(&t);
        assert_eq!(status.kind, crate::juju::StatusKind::Blocked);
        assert!(
            status.message.starts_with("Synapse runs on synapse/1 only"),
            "{}",
            status.message
        );
        assert!(
            p.synapse.pushes.borrow().is_empty(),
            "an idle unit writes nothing"
        );
        // This is the main unit, but the leader has not published the keys yet.
        let bag = t
            .relations
            .get_mut(&rel)
            .unwrap()
            .get_mut("synapse")
            .unwrap();
        bag.insert(MAIN_UNIT_KEY.into(), "synapse/0".into());
        assert_eq!(
            run(&t),
            Status::waiting("Waiting for the leader to create Synapse's keys")
        );
        // Then it runs Synapse with the leader's keys.
        let keys = SynapseKeys::generate().unwrap();
        t.secrets.borrow_mut().insert(
            "secret:k".into(),
            ("synapse-keys".into(), keys.to_content()),
        );
        let bag = t
            .relations
            .get_mut(&rel)
            .unwrap()
            .get_mut("synapse")
            .unwrap();
        bag.insert(KEYS_SECRET_KEY.into(), "secret:k".into());
        assert_eq!(run(&t), Status::active());
        assert_eq!(
            p.synapse.files.borrow()["/data/example.com.signing.key"],
            keys.signing_key.as_bytes()
        );
    }

    #[test]
    fn invalid_config_touches_nothing() {
        let t = tools(json!({}));
        let p = pod();
        let status = reconcile(&ctx(), &t, &p, &mut UnitHints::default()).unwrap();
        assert_eq!(status.kind, crate::juju::StatusKind::Blocked);
        assert!(p.synapse.pushes.borrow().is_empty());
        assert_eq!(*p.nginx.layers_added.borrow(), 0);
    }
}
