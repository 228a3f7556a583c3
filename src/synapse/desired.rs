//! What the `synapse` container should hold (pure): the files Synapse reads, its
//! layer, and whether the plan already runs this configuration.
//!
//! Two values go into the service's environment, so that Pebble's replan restarts
//! Synapse exactly when something it reads changed: the hash of the *shape* (what the
//! charm renders, secrets and credentials replaced by placeholders) and a random
//! *content token*, renewed whenever a file as written changes (no value derived from
//! a secret is in the plan). The shape alone answers "is anything to do?" in the
//! steady state without reading a secret.

use std::collections::BTreeMap;

use pebble::Layer;

use super::config::SynapseConfig;
use super::homeserver::{self, Database, HomeserverInputs};
use super::keys::SynapseKeys;
use super::layer as synapse_layer;
use crate::juju::HookContext;
use crate::relations::database::DatabaseInfo;
use crate::relations::s3::S3Info;
use crate::relations::smtp::SmtpServer;
use crate::status::Progress;
use crate::util::hash::fnv1a_hex;

use crate::workload::layer_in_plan;

/// The model's proxy settings, for Synapse's outgoing requests.
pub fn proxy_env(ctx: &HookContext) -> BTreeMap<String, String> {
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

fn placeholder_db() -> DatabaseInfo {
    DatabaseInfo {
        host: "<host>".into(),
        port: 0,
        endpoints: vec![],
        database: "<database>".into(),
        user: "<user>".into(),
        password: "<password>".into(),
    }
}

/// The hash of what the charm renders for `config`, secrets left out; with a media
/// bucket, only that there is one (its details are in the files, whose changes renew
/// the content token). `mail`: with the smtp integration's `email` section (its values
/// as placeholders).
pub fn shape_hash(config: &SynapseConfig, postgres: bool, media: bool, mail: bool) -> String {
    let placeholder = SynapseKeys::placeholder();
    let media_placeholder = crate::relations::media::placeholder();
    let relay = SmtpServer::placeholder();
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
        media: media.then_some(&media_placeholder),
        email: mail.then_some(&relay),
        appservices: &[],
    });
    fnv1a_hex([
        shape.as_bytes(),
        homeserver::log_config().as_bytes(),
        homeserver::signing_key_path(&config.server_name).as_bytes(),
    ])
}

/// Whether Synapse's plan runs it with a media bucket.
pub fn media_in_plan(plan: &Layer) -> bool {
    let (key, _) = crate::relations::media::env()[0];
    plan.services
        .get(synapse_layer::SERVICE)
        .is_some_and(|s| s.environment.contains_key(key))
}

/// The service environment besides Synapse's own: the proxy settings and, with a
/// media bucket, where boto3 finds its configuration.
pub fn service_env(proxy: &BTreeMap<String, String>, media: bool) -> BTreeMap<String, String> {
    let mut env = proxy.clone();
    if media {
        env.extend(
            crate::relations::media::env()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
    env
}

/// Whether the plan already runs this configuration's shape on this backend, so that
/// nothing (no secret, no database answer, no file) needs reading. Whether Synapse
/// uses a media bucket comes from the plan: it changes only with the media relation's
/// events, which never take this path.
pub fn steady(
    plan: &Layer,
    config: &SynapseConfig,
    proxy: &BTreeMap<String, String>,
    postgres: bool,
    mail: bool,
) -> bool {
    let media = media_in_plan(plan);
    let running_env = |k: &str| {
        plan.services
            .get(synapse_layer::SERVICE)
            .and_then(|s| s.environment.get(k))
            .cloned()
            .unwrap_or_default()
    };
    let exporter_plan = plan.services.get(synapse_layer::EXPORTER);
    let mut same = synapse_layer::layer(
        config,
        &shape_hash(config, postgres, media, mail),
        &running_env(synapse_layer::CONTENT_ENV),
        None,
        &service_env(proxy, media),
    );
    if let Some(e) = exporter_plan.filter(|_| postgres) {
        same.services
            .insert(synapse_layer::EXPORTER.into(), e.clone());
    }
    layer_in_plan(plan, &same)
        && (config.runs_federation_sender() || sender_held_off(plan))
        && (postgres || exporter_plan.is_none_or(|e| e.startup != Some(pebble::Startup::Enabled)))
}

/// Whether the plan has no federation sender that could run.
fn sender_held_off(plan: &Layer) -> bool {
    let off = synapse_layer::sender_off(plan);
    off.services.is_empty() && off.checks.is_empty()
}

/// Everything the `synapse` container should hold.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Path and content of each file, all private to Synapse's user.
    pub files: Vec<(String, String)>,
    pub layer: Layer,
    /// The PostgreSQL details when Synapse is to run on PostgreSQL (the exporter runs).
    pub postgres: Option<DatabaseInfo>,
    /// The media bucket Synapse is to use.
    pub media: Option<S3Info>,
}

/// The files Synapse (and, on PostgreSQL, the exporter) reads: path and content.
/// `appservices` are the registration files of the `matrix-auth` relations.
pub fn files(
    config: &SynapseConfig,
    keys: &SynapseKeys,
    database: &Database,
    media: Option<&S3Info>,
    email: Option<&SmtpServer>,
    appservices: &[(String, String)],
) -> Vec<(String, String)> {
    let paths: Vec<String> = appservices.iter().map(|(p, _)| p.clone()).collect();
    let mut files = vec![
        (
            homeserver::CONFIG_PATH.to_string(),
            homeserver::render(&HomeserverInputs {
                config,
                keys,
                database: database.clone(),
                ingress_url: None,
                media,
                email,
                appservices: &paths,
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
    if let Some(worker) = config.cluster.as_ref().and_then(|c| c.worker_yaml()) {
        files.push((crate::topology::WORKER_CONFIG_PATH.to_string(), worker));
    }
    if let Some(sender) = config
        .cluster
        .as_ref()
        .and_then(|c| c.federation_sender_yaml(&config.workers_ignore_list))
    {
        files.push((
            crate::topology::FEDERATION_SENDER_CONFIG_PATH.to_string(),
            sender,
        ));
    }
    if let Some(info) = media {
        files.extend(crate::relations::media::files(info));
    }
    files.extend(appservices.iter().cloned());
    if let Database::Postgres(db) = database {
        files.push((
            synapse_layer::EXPORTER_PASSWORD_PATH.to_string(),
            db.password.clone(),
        ));
    }
    files
}

/// The tokens that make Pebble restart what reads a changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub content: String,
    pub password: String,
}

/// Keeps the plan's tokens while the files are unchanged, and takes a `fresh` one for
/// what changed (pure, given `fresh`).
pub fn tokens(
    plan: &Layer,
    synapse_files_same: bool,
    password_same: bool,
    fresh: &mut dyn FnMut() -> String,
) -> Tokens {
    let current = |service: &str, key: &str| {
        plan.services
            .get(service)
            .and_then(|s| s.environment.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let content = current(synapse_layer::SERVICE, synapse_layer::CONTENT_ENV)
        .filter(|_| synapse_files_same)
        .unwrap_or_else(&mut *fresh);
    let password = current(synapse_layer::EXPORTER, synapse_layer::PASSWORD_ENV)
        .filter(|_| password_same)
        .unwrap_or_else(fresh);
    Tokens { content, password }
}

/// Renders the files and the layer. `plan` is the current plan: an exporter service
/// that PostgreSQL no longer backs is replaced by its disabled form (Pebble cannot
/// delete a service).
#[allow(clippy::too_many_arguments)]
pub fn desired(
    config: &SynapseConfig,
    keys: &SynapseKeys,
    database: Database,
    media: Option<S3Info>,
    email: Option<&SmtpServer>,
    appservices: &[(String, String)],
    proxy: &BTreeMap<String, String>,
    plan: &Layer,
    tokens: &Tokens,
) -> Desired {
    let files = files(config, keys, &database, media.as_ref(), email, appservices);
    let postgres = match database {
        Database::Postgres(info) => Some(info),
        Database::Sqlite => None,
    };
    let shape = shape_hash(config, postgres.is_some(), media.is_some(), email.is_some());
    let exporter =
        postgres
            .as_ref()
            .filter(|_| !config.is_worker())
            .map(|db| synapse_layer::Exporter {
                db,
                password_token: &tokens.password,
            });
    let env = service_env(proxy, media.is_some());
    let mut layer = synapse_layer::layer(config, &shape, &tokens.content, exporter.as_ref(), &env);
    if exporter.is_none() && plan.services.contains_key(synapse_layer::EXPORTER) {
        layer.services.insert(
            synapse_layer::EXPORTER.into(),
            synapse_layer::exporter_service(None),
        );
    }
    if !config.runs_federation_sender() {
        let off = synapse_layer::sender_off(plan);
        layer.services.extend(off.services);
        layer.checks.extend(off.checks);
    }
    Desired {
        files,
        layer,
        postgres,
        media,
    }
}

/// Whether the `database` section of the live homeserver.yaml differs from the
/// candidate's (another database, host, user or password; or none live) (pure).
pub fn database_changed(live: Option<&[u8]>, candidate: &str) -> bool {
    let section = |text: &str| {
        serde_saphyr::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("database").cloned())
    };
    let new = section(candidate);
    let old = live.and_then(|b| section(&String::from_utf8_lossy(b)));
    old.is_none() || old != new
}

/// What the stats exporter's metrics say about PostgreSQL (pure): `Some(false)` when
/// its last poll failed, `Some(true)` when it succeeded, `None` before its first poll
/// or when the text cannot be read. Synapse's ready check does not touch the
/// database; the exporter queries it every few seconds with the same credentials.
pub fn database_answers(metrics: &str) -> Option<bool> {
    let value = |name: &str| {
        metrics.lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
    };
    if value("synapse_stats_exporter_last_poll_timestamp_seconds").unwrap_or(0.0) <= 0.0 {
        return None;
    }
    value("synapse_stats_exporter_last_poll_success").map(|v| v == 1.0)
}

/// Synapse's database is bound to its server name: a change is refused, with the way back.
pub fn server_name_guard(
    existing_config: Option<&[u8]>,
    config: &SynapseConfig,
    app: &str,
) -> Option<Progress> {
    let old = existing_config
        .and_then(|b| homeserver::existing_server_name(&String::from_utf8_lossy(b)))?;
    (old != config.server_name).then(|| {
        Progress::Blocked(format!(
            "server_name cannot change from {old:?} to {:?}: Synapse's database is bound to it; restore it with `juju config {app} server_name={old}`",
            config.server_name
        ))
    })
}

/// The layer that holds Synapse (and the exporter) back: not started by a replan, not
/// restarted by checks. Empty when the plan already holds them.
pub fn held(plan: &Layer) -> Layer {
    let mut held = Layer::default();
    for name in [
        synapse_layer::SERVICE,
        synapse_layer::EXPORTER,
        synapse_layer::SENDER,
    ] {
        if let Some(svc) = plan.services.get(name) {
            let h = synapse_layer::held_service(svc.clone());
            if Some(&h) != plan.services.get(name) {
                held.services.insert(name.to_string(), h);
            }
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_tells_whether_postgresql_answers() {
        let m = |ok: u8, ts: &str| {
            format!("# HELP x\nsynapse_stats_exporter_last_poll_success {ok}\nsynapse_stats_exporter_last_poll_timestamp_seconds {ts}\n")
        };
        assert_eq!(database_answers(&m(1, "1700000000")), Some(true));
        assert_eq!(database_answers(&m(0, "1700000000")), Some(false));
        assert_eq!(database_answers(&m(0, "0")), None, "not polled yet");
        assert_eq!(database_answers("garbage"), None);
    }

    #[test]
    fn database_changes_are_seen_in_the_database_section_only() {
        let a = "server_name: x\ndatabase:\n  name: psycopg2\n  args: {host: h, user: u1}\n";
        let b = "server_name: y\ndatabase:\n  name: psycopg2\n  args: {host: h, user: u1}\n";
        let c = "server_name: x\ndatabase:\n  name: psycopg2\n  args: {host: h, user: u2}\n";
        assert!(!database_changed(Some(a.as_bytes()), b));
        assert!(database_changed(Some(a.as_bytes()), c));
        assert!(database_changed(None, a));
        assert!(database_changed(Some(b"not yaml: [".as_slice()), a));
    }

    fn plan_with(content: &str, password: &str) -> Layer {
        let mut plan = Layer::default();
        for (svc, key, v) in [
            (synapse_layer::SERVICE, synapse_layer::CONTENT_ENV, content),
            (
                synapse_layer::EXPORTER,
                synapse_layer::PASSWORD_ENV,
                password,
            ),
        ] {
            let mut s = pebble::Service::default();
            s.environment.insert(key.into(), v.into());
            plan.services.insert(svc.into(), s);
        }
        plan
    }

    #[test]
    fn tokens_change_only_with_the_files_and_never_come_from_them() {
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("new{n}")
        };
        let plan = plan_with("c1", "p1");
        assert_eq!(
            tokens(&plan, true, true, &mut fresh),
            Tokens {
                content: "c1".into(),
                password: "p1".into()
            }
        );
        assert_eq!(
            tokens(&plan, false, true, &mut fresh),
            Tokens {
                content: "new1".into(),
                password: "p1".into()
            }
        );
        assert_eq!(
            tokens(&plan, true, false, &mut fresh),
            Tokens {
                content: "c1".into(),
                password: "new2".into()
            }
        );
        // Nothing in the plan yet: fresh tokens.
        assert_eq!(
            tokens(&Layer::default(), true, true, &mut fresh).content,
            "new3"
        );
    }
}
