//! The `backup` integration (`s3` requirer): the bucket the backup actions
//! ([`crate::actions::backup`]) write to, and this concern's part of the unit status.
//!
//! - The provider's data is validated, and the bucket's reachability checked, only
//!   when the relation's data can have changed (its own events, `install`, `start`,
//!   `upgrade-charm`); other hooks reuse the verdict remembered in the hints file, so a
//!   steady `update-status` costs no call and no network request.
//! - The status part is computed once per dispatch, from the whole state, and the
//!   unit status aggregates it with the other concerns: a healthy backup bucket never
//!   hides another concern's `blocked` (the reference charm's handlers set `active`
//!   directly).
//! - Without a `backup_passphrase` the relation is usable but `create-backup` fails:
//!   an active unit says so in its message; with a passphrase but no relation, too.

use serde::{Deserialize, Serialize};

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::{HookContext, HookTools, RelationId};
use crate::relations::s3::client::Bucket;
use crate::relations::s3::{self, BucketRequest, S3Error, S3Info};
use crate::status::Progress;

pub const ENDPOINT: &str = "backup";
/// The bucket the charm asks for (the provider's own `bucket` option wins).
pub const BUCKET_REQUEST: &str = "synapse-backup";

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Read the relation and the provider's data again, and check the bucket.
    pub check: bool,
    /// Leader: make sure the bucket request is in the application databag.
    pub request: bool,
}

/// The relation as last checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHint {
    /// The relation id; empty when there is none.
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// This concern in one dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub progress: Progress,
    /// A note for an active unit.
    pub note: Option<String>,
}

/// What the bucket check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Ok,
    /// Why the bucket cannot be used (no credentials in it).
    Failed(String),
}

/// The status part from the provider's data and the bucket check (pure).
pub fn decide(info: &Result<S3Info, S3Error>, reach: Option<&Reach>) -> Progress {
    match (info, reach) {
        (Err(e), _) if e.is_pending() => Progress::Waiting(format!(
            "backup: waiting for the S3 provider's credentials ({e})"
        )),
        (Err(e), _) => {
            Progress::Blocked(format!("backup: the S3 integration sent invalid data: {e}"))
        }
        (Ok(info), Some(Reach::Failed(why))) => Progress::Blocked(format!(
            "backup: bucket {:?} does not exist or cannot be accessed: {why}",
            info.bucket
        )),
        (Ok(_), _) => Progress::Ready,
    }
}

/// The note for an active unit: the passphrase and the relation go together (pure).
pub fn note(related: bool, passphrase: bool, app: &str) -> Option<String> {
    match (related, passphrase) {
        (true, false) => Some(
            "backup: set backup_passphrase to make backups (`juju config <app> backup_passphrase=...`)"
                .replace("<app>", app),
        ),
        (false, true) => Some(
            "backup_passphrase has no effect without a backup integration".to_string(),
        ),
        _ => None,
    }
}

/// Whether the bucket answers with these credentials (network; a hook waits at most
/// 10 s for each step).
pub fn reach(info: &S3Info) -> Reach {
    let timeout = std::time::Duration::from_secs(10);
    match Bucket::new(info).and_then(|b| b.with_timeout(timeout).check()) {
        Ok(()) => Reach::Ok,
        Err(e) => Reach::Failed(e.to_string()),
    }
}

/// Reads the relation when `work` says it may have changed (else the hints), has the
/// leader ask for the bucket, and reports this concern's status part.
pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    passphrase: bool,
    hints: &mut UnitHints,
) -> CharmResult<Backup> {
    let known = hints.backup.clone().filter(|_| !work.check);
    let (related, progress) = match known {
        Some(h) => {
            let progress = match (h.blocked, h.waiting) {
                (Some(b), _) => Progress::Blocked(b),
                (None, Some(w)) => Progress::Waiting(w),
                (None, None) => Progress::Ready,
            };
            if work.request && !h.relation.is_empty() {
                if let Some(rel) = RelationId::parse(&h.relation) {
                    request(ctx, tools, &rel)?;
                }
            }
            (!h.relation.is_empty(), progress)
        }
        None => {
            let leaving = crate::relations::Leaving::of(&ctx.event);
            let leader = work.request && tools.is_leader()?;
            let req = BucketRequest {
                bucket: BUCKET_REQUEST.into(),
            };
            let found = s3::read(
                tools,
                ENDPOINT,
                &ctx.app_name,
                &leaving,
                leader.then_some(&req),
            )?;
            let (relation, progress) = match found {
                None => (String::new(), Progress::Ready),
                Some(r) => {
                    let reach = r.info.as_ref().ok().map(reach);
                    let progress = decide(&r.info, reach.as_ref());
                    if let Progress::Blocked(m) = &progress {
                        tracing::warn!("{m}");
                    }
                    (r.relation.to_string(), progress)
                }
            };
            hints.backup = Some(BackupHint {
                relation: relation.clone(),
                waiting: match &progress {
                    Progress::Waiting(w) => Some(w.clone()),
                    _ => None,
                },
                blocked: match &progress {
                    Progress::Blocked(b) => Some(b.clone()),
                    _ => None,
                },
            });
            (!relation.is_empty(), progress)
        }
    };
    Ok(Backup {
        progress,
        note: note(related, passphrase, &ctx.app_name),
    })
}

fn request(ctx: &HookContext, tools: &dyn HookTools, rel: &RelationId) -> CharmResult<()> {
    if tools.is_leader()? {
        let own = tools.relation_get(rel, &ctx.app_name, true)?;
        let req = BucketRequest {
            bucket: BUCKET_REQUEST.into(),
        };
        if crate::relations::publish_value(tools, rel, true, &own, &req)? {
            tracing::info!(
                bucket = BUCKET_REQUEST,
                "asked the S3 provider for a backup bucket"
            );
        }
    }
    Ok(())
}

/// The backup relation's connection info, for the actions: `Err` with the reason the
/// operator must fix.
pub fn connection(tools: &dyn HookTools, app: &str) -> CharmResult<Result<S3Info, String>> {
    let leaving = crate::relations::Leaving {
        broken: None,
        departing: None,
    };
    Ok(match s3::read(tools, ENDPOINT, app, &leaving, None)? {
        None => Err(format!(
            "no backup integration: integrate an S3 provider first (`juju integrate {app}:backup s3-integrator`)"
        )),
        Some(r) => match r.info {
            Ok(info) => Ok(info),
            Err(e) if e.is_pending() => Err(format!(
                "the backup integration has no S3 credentials yet ({e}); configure the S3 provider"
            )),
            Err(e) => Err(format!("the backup integration sent invalid data: {e}")),
        },
    })
}

#[cfg(test)]
mod tests;
