//! The backup actions: `create-backup`, `list-backups`, `restore-backup` and
//! `delete-backup`, on the bucket of the `backup` relation
//! ([`crate::relations::backup`]).
//!
//! - A backup is made in the synapse container: `tar` of what lives only on the data
//!   volume ([`content`]) piped to `gpg --symmetric`, whose output Pebble streams to
//!   the charm, which streams it to the bucket in 8 MiB parts (a multipart upload,
//!   aborted if anything fails). Neither the archive nor the encrypted stream is ever
//!   whole in memory or on the volume.
//! - A restore checks the passphrase and that the object exists, streams the object
//!   back (ranged reads) into `gpg --decrypt | tar -x` into a staging directory on
//!   the volume, then stops Synapse, swaps the unpacked entries in ([`swap`], undone
//!   if a step fails) and starts Synapse once.
//! - The passphrase goes to gpg as the first line of the command's standard input:
//!   never in an argument, an environment variable, a file, the plan or a log.

pub mod content;
pub mod swap;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pebble::ExecOptions;
use serde_json::Value;

use super::Failure;
use crate::juju::{HookContext, HookTools, ToolError};
use crate::relations::backup::connection;
use crate::relations::s3::client::{Bucket, ClientError, Object};
use crate::relations::s3::S3Info;
use crate::synapse::homeserver::DATA_DIR;
use crate::synapse::layer as synapse_layer;
use crate::workload::Workloads;

use content::{Listed, MEDIA_DIRS, STAGING};

pub const ACTIONS: &[&str] = &[
    "create-backup",
    "list-backups",
    "restore-backup",
    "delete-backup",
];

/// Pebble ends a backup or restore command that runs longer than this.
const EXEC_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

type ActionResult = Result<BTreeMap<String, String>, Failure>;

/// Runs one backup action and reports its results or failure.
pub fn run(
    name: &str,
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
) -> Result<(), ToolError> {
    let outcome = match name {
        "create-backup" => create(ctx, tools, workloads),
        "list-backups" => list(ctx, tools),
        "restore-backup" => restore(ctx, tools, workloads),
        "delete-backup" => delete(ctx, tools),
        other => Err(Failure(format!("unknown action {other:?}"))),
    };
    match outcome {
        Ok(results) => tools.action_set(&results),
        Err(Failure(msg)) => {
            tracing::warn!(action = name, "failed: {msg}");
            tools.action_fail(&msg)
        }
    }
}

/// Backups are made from and restored to the volume of the unit that runs Synapse.
fn on_main_unit(ctx: &HookContext, tools: &dyn HookTools, action: &str) -> Result<(), Failure> {
    let peers = crate::peers::Peers::read(tools, &ctx.app_name, None)?;
    match peers.main_unit().filter(|m| *m != ctx.unit_name) {
        Some(main) => Err(Failure(format!(
            "Synapse runs on {main}, not on this unit: run the action there (`juju run {main} {action} ...`)"
        ))),
        None => Ok(()),
    }
}

fn passphrase(tools: &dyn HookTools, app: &str) -> Result<String, Failure> {
    let config = tools.config_get()?;
    match config.get("backup_passphrase").and_then(Value::as_str) {
        Some(p) if !p.is_empty() && !p.contains('\n') && !p.contains('\r') => Ok(p.to_string()),
        Some(p) if !p.is_empty() => Err(Failure(
            "backup_passphrase holds a line break: gpg reads one line; set it again without one"
                .into(),
        )),
        _ => Err(Failure(format!(
            "backup_passphrase is not set: set it first (`juju config {app} backup_passphrase=...`)"
        ))),
    }
}

/// The connection info of the backup relation.
fn relation(ctx: &HookContext, tools: &dyn HookTools) -> Result<S3Info, Failure> {
    connection(tools, &ctx.app_name)?.map_err(Failure)
}

/// The bucket of the backup relation, checked reachable.
fn bucket(info: S3Info) -> Result<(S3Info, Bucket), Failure> {
    let bucket = Bucket::new(&info)?;
    bucket.check().map_err(|e| unusable(&info, &e))?;
    Ok((info, bucket))
}

fn unusable(info: &S3Info, e: &ClientError) -> Failure {
    Failure(format!(
        "backup bucket {:?} does not exist or cannot be accessed: {e}",
        info.bucket
    ))
}

fn param_id(tools: &dyn HookTools) -> Result<String, Failure> {
    let params = tools.action_get()?;
    let id = params
        .get("backup-id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure("missing parameter \"backup-id\"".into()))?
        .trim()
        .to_string();
    content::check_id(&id).map_err(Failure)?;
    Ok(id)
}

/// The object of backup `id`, or the failure the reference charm gives.
fn find(info: &S3Info, bucket: &Bucket, id: &str) -> Result<Object, Failure> {
    let mut keys = vec![content::key(&info.path, id)];
    if info.path.is_empty() {
        // The reference charm stored keys with a leading `/` when the path was empty.
        keys.push(format!("/{id}"));
    }
    for key in keys {
        if let Some(o) = bucket.find(&key).map_err(|e| unusable(info, &e))? {
            return Ok(o);
        }
    }
    Err(Failure(format!("backup-id {id} does not exist")))
}

fn names(dir: &std::path::Path) -> Result<Vec<String>, Failure> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(Failure(format!("cannot read {}: {e}", dir.display()))),
    }
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    crate::util::bounded(
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output"),
    )
}

fn create(ctx: &HookContext, tools: &dyn HookTools, workloads: &dyn Workloads) -> ActionResult {
    on_main_unit(ctx, tools, "create-backup")?;
    let info = relation(ctx, tools)?;
    let pass = passphrase(tools, &ctx.app_name)?;
    let (info, bucket) = bucket(info)?;
    let data = workloads.data_dir();
    let mut stores = vec![];
    for dir in MEDIA_DIRS {
        stores.push((dir, names(&data.join(dir))?));
    }
    let paths = content::select_stores(
        &names(&data)?,
        &stores,
        crate::relations::database::ran_on_postgres(&data),
    );
    if !paths.iter().any(|p| p.ends_with(".key")) {
        return Err(Failure(
            "nothing to back up: the data volume holds no signing key yet (Synapse has not been configured)".into(),
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let id = content::backup_id(now.as_secs(), now.subsec_micros());
    let key = content::key(&info.path, &id);
    tracing::info!(%id, bucket = %info.bucket, paths = ?paths, "creating a backup");
    let w = workloads.container(synapse_layer::CONTAINER);
    let opts = ExecOptions {
        command: content::create_command(&paths),
        stdin: format!("{pass}\n").into_bytes(),
        timeout: EXEC_TIMEOUT,
        ..Default::default()
    };
    let mut upload = bucket.upload(&key);
    let out = w
        .exec_streaming(&opts, &mut std::io::empty(), &mut upload)
        .map_err(|e| {
            Failure(format!(
                "cannot run the backup in the synapse container: {e}"
            ))
        })?;
    if let Some(e) = upload.take_error() {
        return Err(Failure(format!(
            "uploading backup {id} to bucket {:?} failed: {e}",
            info.bucket
        )));
    }
    if out.exit_code != 0 {
        return Err(Failure(format!(
            "making backup {id} failed: {}",
            last_line(&out.stderr)
        )));
    }
    if let Some(e) = out.stdout_error {
        return Err(Failure(format!("uploading backup {id} failed: {e}")));
    }
    let size = upload
        .finish()
        .map_err(|e| Failure(format!("uploading backup {id} failed: {e}")))?;
    tracing::info!(%id, size, "backup created");
    Ok(BTreeMap::from([
        ("result".into(), "correct".into()),
        ("backup-id".into(), id),
        ("size".into(), size.to_string()),
    ]))
}

fn list(ctx: &HookContext, tools: &dyn HookTools) -> ActionResult {
    let (info, bucket) = bucket(relation(ctx, tools)?)?;
    let mut listed: Vec<Listed> = bucket
        .list(&info.path)
        .map_err(|e| unusable(&info, &e))?
        .into_iter()
        .filter_map(|o| {
            content::id_of(&info.path, &o.key).map(|id| Listed {
                id,
                last_modified: o.last_modified,
                size: o.size,
            })
        })
        .collect();
    listed.sort_by(|a, b| (&a.last_modified, &a.id).cmp(&(&b.last_modified, &b.id)));
    let mut results = BTreeMap::from([("formatted".to_string(), content::table(&listed))]);
    for b in &listed {
        // Results keys are lower-case letters, digits and '-': other ids are only in
        // the table.
        if b.id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !b.id.ends_with('-')
        {
            results.insert(
                format!("backups.{}.last-modified", b.id),
                b.last_modified.clone(),
            );
            results.insert(format!("backups.{}.size", b.id), b.size.to_string());
        }
    }
    Ok(results)
}

fn delete(ctx: &HookContext, tools: &dyn HookTools) -> ActionResult {
    let id = param_id(tools)?;
    let (info, bucket) = bucket(relation(ctx, tools)?)?;
    let object = find(&info, &bucket, &id)?;
    bucket
        .delete(&object.key)
        .map_err(|e| Failure(format!("deleting backup {id} failed: {e}")))?;
    tracing::info!(%id, "backup deleted");
    Ok(BTreeMap::from([
        ("result".into(), "correct".into()),
        ("backup-id".into(), id),
    ]))
}

fn restore(ctx: &HookContext, tools: &dyn HookTools, workloads: &dyn Workloads) -> ActionResult {
    on_main_unit(ctx, tools, "restore-backup")?;
    let id = param_id(tools)?;
    let info = relation(ctx, tools)?;
    let pass = passphrase(tools, &ctx.app_name)?;
    let (info, bucket) = bucket(info)?;
    let object = find(&info, &bucket, &id)?;
    let data = workloads.data_dir();
    let staging = data.join(STAGING);
    let clean = || {
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", staging.display());
            }
        }
    };
    tracing::info!(%id, size = object.size, "restoring a backup");
    let w = workloads.container(synapse_layer::CONTAINER);
    let opts = ExecOptions {
        command: content::restore_command(&format!("{DATA_DIR}/{STAGING}")),
        stdin: format!("{pass}\n").into_bytes(),
        timeout: EXEC_TIMEOUT,
        ..Default::default()
    };
    let mut download = bucket.download(&object.key, object.size);
    let out = w.exec_streaming(&opts, &mut download, &mut std::io::sink());
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            clean();
            return Err(Failure(format!(
                "cannot run the restore in the synapse container: {e}"
            )));
        }
    };
    if let Some(e) = download.take_error() {
        clean();
        return Err(Failure(format!("downloading backup {id} failed: {e}")));
    }
    if out.exit_code != 0 {
        clean();
        return Err(Failure(content::restore_failure(
            &id,
            &String::from_utf8_lossy(&out.stderr),
        )));
    }
    let unpacked = staging.join(DATA_DIR.trim_start_matches('/'));
    let staged = swap::entries(&unpacked).map_err(|e| Failure(e.to_string()));
    let staged = match staged {
        Ok(s) if s.iter().any(|e| e.ends_with(".key")) => s,
        Ok(_) => {
            clean();
            return Err(Failure(format!(
                "backup {id} holds no signing key: it is not a backup of Synapse's data volume"
            )));
        }
        Err(e) => {
            clean();
            return Err(e);
        }
    };
    // Synapse must not write while its files are swapped.
    let planned = w
        .plan()
        .map(|p| p.services.contains_key(synapse_layer::SERVICE))
        .and_then(|planned| {
            if planned {
                w.stop(&[synapse_layer::SERVICE])?;
            }
            Ok(planned)
        });
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            clean();
            return Err(Failure(format!(
                "cannot stop Synapse for the restore: {e}; nothing was changed"
            )));
        }
    };
    // Listed once Synapse is stopped: SQLite's journal files come and go while it runs.
    let live = match swap::entries(&data) {
        Ok(l) => l,
        Err(e) => {
            clean();
            if planned {
                let _ = w.start(&[synapse_layer::SERVICE]);
            }
            return Err(Failure(format!("cannot read {}: {e}", data.display())));
        }
    };
    let plan = swap::plan(&staged, &live);
    let swapped = swap::apply(&data, &unpacked, &plan, synapse_layer::UID, &mut |a, b| {
        std::fs::rename(a, b)
    });
    clean();
    let started = if planned {
        w.start(&[synapse_layer::SERVICE])
    } else {
        Ok(())
    };
    match (swapped, started) {
        (Err(e), started) => {
            let also = started
                .err()
                .map(|s| format!(" (and Synapse did not start again: {s})"))
                .unwrap_or_default();
            return Err(Failure(format!(
                "restoring backup {id} failed while swapping files ({e}); the previous data is in place{also}"
            )));
        }
        (Ok(()), Err(e)) => {
            return Err(Failure(format!(
                "restored backup {id}, but Synapse did not start: {e}"
            )))
        }
        (Ok(()), Ok(())) => {}
    }
    tracing::info!(%id, restored = ?plan.install, "backup restored");
    Ok(BTreeMap::from([
        ("result".into(), "correct".into()),
        ("backup-id".into(), id),
    ]))
}
