//! The Synapse concern's shell: reads the plan (and, only when the configuration's
//! shape or the database may have changed, the keys and the database answer), lets
//! [`super::desired`] decide, and applies the differences to the `synapse` container.

use std::collections::BTreeMap;
use std::time::Duration;

use pebble::{ExecOptions, Layer, PushOptions};

use super::check::{self, Verdict};
use super::config::SynapseConfig;
use super::desired::{self, Desired};
use super::homeserver::{self, Database};
use super::layer as synapse_layer;
use crate::error::{pebble_err, CharmError, CharmResult};
use crate::juju::hints::{RejectedConfig, UnitHints};
use crate::juju::{HookContext, HookTools};
use crate::peers::Peers;
use crate::relations::database::{self, Db, Provided};
use crate::relations::matrix_auth::{self, MatrixAuth};
use crate::relations::media::{self, Media, Storage};
use crate::relations::smtp;
use crate::status::Progress;
use crate::workload::{apply_layer_tracked, tracked_state, unreachable, Workload, Workloads};

/// What the Synapse step is given.
pub struct Inputs<'a> {
    pub ctx: &'a HookContext,
    pub tools: &'a dyn HookTools,
    pub workloads: &'a dyn Workloads,
    pub config: &'a SynapseConfig,
    pub db: &'a Db,
    pub peers: &'a Peers,
    /// Where a previous charm's data would be (adopted when the keys are created).
    pub origin: &'a crate::switch::Origin<'a>,
    pub database_work: &'a database::Work,
    pub media: &'a Media,
    pub media_work: &'a media::Work,
    /// The `smtp` relation; its data is read only on the full path.
    pub mail: &'a smtp::Mail,
    /// The `matrix-auth` relations (appservice registrations).
    pub bridges: &'a MatrixAuth,
}

/// How long Synapse may take to check a configuration.
const CHECK_TIMEOUT: Duration = Duration::from_secs(90);

pub fn reconcile(inp: &Inputs, w: &dyn Workload, hints: &mut UnitHints) -> CharmResult<Progress> {
    let progress = crate::error::unreachable_is_waiting(step(inp, w, hints))?;
    if progress == Progress::Ready {
        super::version::update(inp.tools, w, hints)?;
    }
    Ok(progress)
}

fn step(inp: &Inputs, w: &dyn Workload, hints: &mut UnitHints) -> CharmResult<Progress> {
    let err = pebble_err(synapse_layer::CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(unreachable(synapse_layer::CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    let data_dir = inp.workloads.data_dir();
    let ran_on_postgres = database::ran_on_postgres(&data_dir);
    let relation = match inp.db {
        Db::None if ran_on_postgres => {
            // Never start Synapse on an empty SQLite database after it ran on PostgreSQL.
            hold(w, &plan).map_err(&err)?;
            // The exporter's credentials go with the relation.
            w.remove(synapse_layer::EXPORTER_PASSWORD_PATH)
                .map_err(&err)?;
            return Ok(Progress::Blocked(format!(
                "the database integration was removed; Synapse's data is in PostgreSQL, so Synapse is stopped: restore it with `juju integrate {} postgresql-k8s`",
                inp.ctx.app_name
            )));
        }
        Db::None => None,
        Db::Related { relation } => Some(relation),
    };
    let proxy = desired::proxy_env(inp.ctx);
    // Related but not yet on PostgreSQL is a transition, never a steady state: keep
    // trying (and reporting why not) on every dispatch.
    let moving = relation.is_some() && !ran_on_postgres;
    let postgres_shape = relation.is_some() && ran_on_postgres;
    if !moving
        && !inp.database_work.answer_may_change
        && !inp.media_work.answer_may_change
        && !inp.mail.must_read
        && inp.bridges.decision.is_none()
        && desired::steady(
            &plan,
            inp.config,
            &proxy,
            postgres_shape,
            smtp::mail_on(hints),
        )
    {
        let progress = finish(w, &plan, None, hints).map_err(&err)?;
        return Ok(database_health(w, progress, postgres_shape, hints));
    }
    // The full path decides again whether the provided database can be used.
    hints.database_waiting = None;

    // Full path: read what the files are made of.
    let leader = inp.tools.is_leader()?;
    let source = crate::keys::source(leader, inp.peers);
    let Some(keys) = crate::keys::read(inp.tools, inp.peers, &source, Some(inp.origin))? else {
        return Ok(Progress::Waiting(
            "Waiting for the leader to create Synapse's keys".into(),
        ));
    };
    let database = match relation {
        None => Database::Sqlite,
        Some(rel) => match database::read_provided(inp.ctx, inp.tools, rel)? {
            Provided::Pending(what) => {
                let msg = format!("Waiting for PostgreSQL to provide the database ({what})");
                if !ran_on_postgres && plan.services.contains_key(synapse_layer::SERVICE) {
                    // Keep serving from SQLite meanwhile.
                    return Ok(match finish(w, &plan, None, hints).map_err(&err)? {
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
                    if let Some(p) = database::check_switch_to_postgres(&data_dir, &info) {
                        return Ok(p);
                    }
                }
                Database::Postgres(info)
            }
        },
    };
    let media = match media_storage(inp, &data_dir)? {
        Storage::Keep => return finish(w, &plan, None, hints).map_err(&err),
        Storage::Local => None,
        Storage::S3(info) => Some(*info),
    };
    let email = smtp::read(inp.ctx, inp.tools, inp.mail, hints)?;
    let appservices = match &inp.bridges.decision {
        Some(d) => d.clone(),
        None => matrix_auth::read_registrations(inp.tools, &inp.bridges.relations, hints)?,
    };
    // What the container holds now, to compare with what it should hold.
    let files = desired::files(
        inp.config,
        &keys,
        &database,
        media.as_ref(),
        email.as_ref(),
        &appservices.files,
    );
    let mut existing: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for (path, _) in &files {
        existing.insert(path.clone(), w.pull(path).map_err(&err)?);
    }
    if let Some(p) = foreign_key(inp, &keys, &existing) {
        // Never overwrite a signing key the charm's keys do not hold.
        return Ok(p);
    }
    let previously = matrix_auth::listed(
        existing
            .get(homeserver::CONFIG_PATH)
            .and_then(|c| c.as_deref()),
    );
    let same = |path: &str| {
        files.iter().find(|(p, _)| p == path).is_none_or(|(_, c)| {
            existing.get(path).and_then(|e| e.as_deref()) == Some(c.as_bytes())
        })
    };
    let synapse_files_same = files
        .iter()
        .filter(|(p, _)| p != synapse_layer::EXPORTER_PASSWORD_PATH)
        .all(|(p, _)| same(p));
    let mut fresh = || crate::util::random::token().unwrap_or_default();
    let tokens = desired::tokens(
        &plan,
        synapse_files_same,
        same(synapse_layer::EXPORTER_PASSWORD_PATH),
        &mut fresh,
    );
    let want = desired::desired(
        inp.config,
        &keys,
        database,
        media,
        email.as_ref(),
        &appservices.files,
        &proxy,
        &plan,
        &tokens,
    );
    let changed = want
        .layer
        .services
        .iter()
        .any(|(n, svc)| plan.services.get(n) != Some(svc));
    if changed {
        // Something Synapse reads will change: first make sure the server name is not.
        let live = existing.get(homeserver::CONFIG_PATH).cloned().flatten();
        if let (true, Some(info), Some((_, candidate))) = (
            ran_on_postgres,
            &want.postgres,
            want.files
                .iter()
                .find(|(p, _)| p == homeserver::CONFIG_PATH),
        ) {
            // Back on PostgreSQL after it ran there, but pointed at another database
            // (re-integrated, rotated): it must hold Synapse's data, in the C locale.
            if desired::database_changed(live.as_deref(), candidate) {
                if let Some(p) = database::check_return_to_postgres(info) {
                    if let Progress::Waiting(why) = &p {
                        hints.database_waiting = Some(why.clone());
                    }
                    return Ok(p);
                }
            }
        }
        if let Some(p) = desired::server_name_guard(live.as_deref(), inp.config, &inp.ctx.app_name)
        {
            return Ok(p);
        }
        inp.workloads
            .own_data_dir(synapse_layer::UID)
            .map_err(CharmError::Data)?;
        if !same(homeserver::CONFIG_PATH) {
            // A new homeserver.yaml: Synapse checks it before the running one sees it.
            let shape = desired::shape_hash(
                inp.config,
                want.postgres.is_some(),
                want.media.is_some(),
                email.is_some(),
            );
            if let Some(r) = hints.rejected_config.as_ref().filter(|r| r.shape == shape) {
                return Ok(Progress::Blocked(r.status.clone()));
            }
            match check_candidate(w, &want, &mut existing).map_err(&err)? {
                Verdict::Accepted => hints.rejected_config = None,
                Verdict::Rejected { options, message } => {
                    let status = check::rejected_message(&options, &message);
                    tracing::warn!("{status}");
                    hints.rejected_config = Some(RejectedConfig {
                        shape,
                        status: status.clone(),
                    });
                    return Ok(Progress::Blocked(status));
                }
                Verdict::Failed(why) => {
                    return Ok(Progress::Blocked(format!(
                        "cannot check the new configuration with Synapse ({why}); Synapse keeps its last good configuration"
                    )))
                }
            }
        }
        write_files(w, &want.files, &mut existing).map_err(&err)?;
    }
    let progress = finish(w, &plan, Some(&want.layer), hints).map_err(&err)?;
    let progress = database_health(
        w,
        progress,
        want.postgres.is_some() && ran_on_postgres,
        hints,
    );
    if want.postgres.is_some()
        && !ran_on_postgres
        && matches!(progress, Progress::Ready | Progress::Waiting(_))
    {
        database::mark_postgres(&data_dir).map_err(CharmError::Data)?;
        tracing::info!("Synapse now runs on PostgreSQL");
    }
    after_media(w, &want, &progress, &data_dir).map_err(&err)?;
    // A removed (or now refused) registration's file goes once Synapse no longer lists it.
    for path in matrix_auth::stale_files(&data_dir, &previously, &appservices.paths()) {
        tracing::info!(path, "removing a registration Synapse no longer loads");
        w.remove(&path).map_err(&err)?;
    }
    if want.postgres.is_none() {
        // No database credentials stay behind without the relation.
        w.remove(synapse_layer::EXPORTER_PASSWORD_PATH)
            .map_err(&err)?;
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

/// The media storage Synapse is to use, from the relation (read now if this dispatch
/// has not read it yet) and the marker on the data volume.
fn media_storage(inp: &Inputs, data_dir: &std::path::Path) -> CharmResult<Storage> {
    let info = match (&inp.media.relation, &inp.media.info) {
        (Some(rel), None) => Some(media::read_info(inp.tools, rel)?),
        (_, info) => info.clone(),
    };
    let marker = media::read_marker(data_dir);
    let (storage, _) = media::decide(
        inp.media.relation.is_some(),
        info.as_ref(),
        marker.as_ref(),
        &inp.ctx.app_name,
    );
    Ok(storage)
}

/// Once Synapse runs with a bucket, the volume records it; without one, the bucket's
/// files go.
fn after_media(
    w: &dyn Workload,
    want: &Desired,
    progress: &Progress,
    data_dir: &std::path::Path,
) -> pebble::Result<()> {
    if let (Some(info), Progress::Ready | Progress::Waiting(_)) = (&want.media, progress) {
        if let Err(e) = media::write_marker(data_dir, info) {
            tracing::warn!("cannot record the media bucket on the data volume: {e}");
        }
    }
    for path in [media::AWS_CONFIG_PATH, media::CA_PATH] {
        if !want.files.iter().any(|(p, _)| p == path) {
            w.remove(path)?;
        }
    }
    Ok(())
}

fn private() -> PushOptions {
    PushOptions {
        permissions: Some(0o600),
        user: Some(synapse_layer::USER.into()),
        group: Some(synapse_layer::USER.into()),
        make_dirs: true,
        ..Default::default()
    }
}

/// Writes the candidate beside the live homeserver.yaml (and the other files it
/// references, which the running Synapse does not read again) and has Synapse load it.
fn check_candidate(
    w: &dyn Workload,
    want: &Desired,
    existing: &mut Existing,
) -> pebble::Result<Verdict> {
    let others: Vec<(String, String)> = want
        .files
        .iter()
        .filter(|(p, _)| p != homeserver::CONFIG_PATH)
        .cloned()
        .collect();
    write_files(w, &others, existing)?;
    let Some((_, candidate)) = want
        .files
        .iter()
        .find(|(p, _)| p == homeserver::CONFIG_PATH)
    else {
        return Ok(Verdict::Accepted);
    };
    w.push(check::CANDIDATE_PATH, candidate.as_bytes(), &private())?;
    let ran = w.exec(&ExecOptions {
        command: check::command(),
        working_dir: Some(check::working_dir().into()),
        user: Some(synapse_layer::USER.into()),
        group: Some(synapse_layer::USER.into()),
        timeout: CHECK_TIMEOUT,
        ..Default::default()
    });
    // The candidate holds secrets: it does not stay behind, whatever the outcome.
    w.remove(check::CANDIDATE_PATH)?;
    let out = match ran {
        Ok(out) => out,
        Err(e @ pebble::Error::Change { .. }) => {
            return Ok(Verdict::Failed(check::bounded(&e.to_string())))
        }
        Err(e) => return Err(e),
    };
    let verdict = check::verdict(out.exit_code, &out.stdout, &out.stderr);
    tracing::info!(?verdict, "Synapse checked the new configuration");
    Ok(verdict)
}

/// What the container held when the step began, per path.
type Existing = BTreeMap<String, Option<Vec<u8>>>;

/// A ready Synapse on PostgreSQL whose database does not answer is not ready: Synapse
/// keeps answering its ready check while every request that needs the database fails.
fn database_health(
    w: &dyn Workload,
    progress: Progress,
    postgres: bool,
    hints: &UnitHints,
) -> Progress {
    if !postgres || progress != Progress::Ready {
        return progress;
    }
    // Serving, but with credentials the provider no longer gives: never `active`.
    if let Some(why) = &hints.database_waiting {
        return Progress::Waiting(why.clone());
    }
    let answers = w
        .fetch(synapse_layer::EXPORTER_METRICS_URL)
        .and_then(|b| desired::database_answers(&String::from_utf8_lossy(&b)));
    if answers != Some(false) {
        return progress;
    }
    let why = w
        .logs(synapse_layer::EXPORTER, 10)
        .ok()
        .and_then(|l| {
            crate::workload::last_error_line(&l.into_iter().map(|e| e.message).collect::<Vec<_>>())
        })
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    Progress::Waiting(format!(
        "PostgreSQL is not answering Synapse's queries (the stats exporter's last poll failed{why})"
    ))
}

/// Pushes the files whose content differs from what the container held.
fn write_files(
    w: &dyn Workload,
    files: &[(String, String)],
    existing: &mut Existing,
) -> pebble::Result<()> {
    let private = private();
    for (path, content) in files {
        let current = existing.get(path).and_then(|c| c.as_deref());
        if current != Some(content.as_bytes()) {
            existing.insert(path.clone(), Some(content.as_bytes().to_vec()));
            tracing::info!(path, "writing");
            w.push(path, content.as_bytes(), &private)?;
        }
    }
    Ok(())
}

/// A worker unit that cannot run its worker: Synapse is stopped and not started again
/// (nothing to do while Pebble is not up).
pub fn hold_service(w: &dyn Workload) -> CharmResult<()> {
    let err = pebble_err(synapse_layer::CONTAINER);
    match w.plan() {
        Ok(plan) => hold(w, &plan).map_err(err),
        Err(e) if e.is_connect() => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Stops Synapse (and the exporter) and keeps them from being started again.
/// A signing key on the volume that is not the charm's (a previous charm's data put
/// under an existing deployment): `blocked`, the file left untouched.
fn foreign_key(
    inp: &Inputs,
    keys: &super::keys::SynapseKeys,
    existing: &BTreeMap<String, Option<Vec<u8>>>,
) -> Option<Progress> {
    let path = homeserver::signing_key_path(&inp.config.server_name);
    let on_volume = existing.get(&path)?.as_deref()?;
    let on_volume = String::from_utf8_lossy(on_volume);
    if on_volume.trim() == keys.signing_key.trim() {
        return None;
    }
    Some(Progress::Blocked(format!(
        "{path} holds signing key {:?}, not the charm's {}: it is left untouched and Synapse \
         is not reconfigured; see docs/how-to/switch-from-canonical-charm.md (keep the \
         volume's identity, or move the file aside with \
         `juju ssh --container synapse {} mv {path} {path}.old` to take the charm's)",
        crate::switch::key_id(&on_volume),
        keys.key_id(),
        inp.ctx.unit_name,
    )))
}

fn hold(w: &dyn Workload, plan: &Layer) -> pebble::Result<()> {
    let held = desired::held(plan);
    if !held.services.is_empty() {
        w.add_layer(synapse_layer::LAYER_LABEL, &held)?;
    }
    let to_stop: Vec<String> = w
        .services()?
        .into_iter()
        .filter(|s| s.is_running())
        .map(|s| s.name)
        .filter(|n| {
            [
                synapse_layer::SERVICE,
                synapse_layer::EXPORTER,
                synapse_layer::SENDER,
            ]
            .contains(&n.as_str())
        })
        .collect();
    if !to_stop.is_empty() {
        let names: Vec<&str> = to_stop.iter().map(String::as_str).collect();
        w.stop(&names)?;
    }
    Ok(())
}

/// Applies the desired layer (if any) and reports the service state.
fn finish(
    w: &dyn Workload,
    plan: &Layer,
    desired: Option<&Layer>,
    hints: &mut UnitHints,
) -> pebble::Result<Progress> {
    let watched = synapse_layer::watched(desired.unwrap_or(plan));
    if let Some(desired) = desired {
        match apply_layer_tracked(
            w,
            plan,
            synapse_layer::LAYER_LABEL,
            desired,
            &watched,
            &mut hints.watches,
        ) {
            Ok(true) => {
                tracing::info!("Synapse's layer changed: replanned");
                super::version::forget(hints);
                if synapse_layer::turns_sender_off(plan, desired) {
                    synapse_layer::stop_sender(w)?;
                }
            }
            Ok(false) => {}
            Err(e) => return start_failure(e),
        }
    }
    match tracked_state(w, &watched, &mut hints.watches) {
        Err(e @ pebble::Error::Change { .. }) => start_failure(e),
        other => other,
    }
}

/// A failed start is the workload's problem (bad configuration, crash at start):
/// report it; anything else is unexpected.
fn start_failure(e: pebble::Error) -> pebble::Result<Progress> {
    match e {
        pebble::Error::Change {
            err: msg,
            task_logs,
            ..
        } => {
            let names = |svc: &str| msg.contains(&format!("service \"{svc}\""));
            let what = if names(synapse_layer::SERVICE) {
                "Synapse"
            } else if names(synapse_layer::SENDER) {
                "the federation sender (synapse-federation-sender)"
            } else if names(synapse_layer::EXPORTER) {
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
