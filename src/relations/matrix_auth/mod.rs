//! The `matrix-auth` integration (provider): bridges and bots get Synapse's address and
//! shared secret, and give back an appservice registration that Synapse loads.
//!
//! - The leader publishes, in each relation's application databag, `homeserver` (the
//!   public base URL) and the URIs of two application secrets it creates once and
//!   reuses: `shared-secret` (Synapse's registration shared secret) and
//!   `encryption-key-secret` (a Fernet key). Each is granted to the relation when its
//!   URI is first published there, and revoked when the relation is broken.
//! - The requirer's leader puts its registration, Fernet-encrypted with that key, in
//!   `registration_secret`. The main unit decrypts and checks each one
//!   ([`registration`]); a valid one becomes `/data/appservices/<app>.yaml` (0600,
//!   owned by `synapse`) and is listed in `app_service_config_files`. An invalid one is
//!   left out and blocks, naming the relation and the field; the others keep working.
//! - A registration added, changed or removed changes `homeserver.yaml` or a file it
//!   lists, so Synapse restarts exactly once (the content token); a removed relation's
//!   file is deleted.

pub mod fernet;
pub mod pyre;
pub mod registration;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::tools::{SecretOwner, SecretRead};
use crate::juju::{Databag, HookContext, HookTools, RelationId, ToolErrorKind};
use crate::relations::{Leaving, Publish};
use crate::status::Progress;

use fernet::Key;
use registration::{FieldError, Registration};

pub const ENDPOINT: &str = "matrix-auth";
/// Where the registrations live on the data volume (one file per related application).
pub const DIR: &str = "/data/appservices";
pub const SHARED_SECRET_LABEL: &str = "shared-secret";
pub const SHARED_SECRET_CONTENT: &str = "shared-secret-content";
pub const KEY_LABEL: &str = "encryption-key-secret";
pub const KEY_CONTENT: &str = "encryption-key-content";
/// The requirer's key holding the encrypted registration.
pub const REGISTRATION_KEY: &str = "registration_secret";

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Look the relation ids up again: a relation may have appeared or gone.
    pub lookup: bool,
    /// Leader: make sure each relation has the homeserver URL and the secrets.
    pub publish: bool,
    /// A registration may have changed: read and check them all again.
    pub answer_may_change: bool,
    /// Leader: the relation being broken, whose grants go.
    pub revoke: Option<RelationId>,
}

/// What the leader publishes in each relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderData {
    pub homeserver: String,
    pub shared_secret_id: String,
    pub encryption_key_secret_id: String,
}

impl Publish for ProviderData {
    const KEYS: &'static [&'static str] =
        &["homeserver", "shared_secret_id", "encryption_key_secret_id"];

    fn to_databag(&self) -> Databag {
        Databag::from([
            ("homeserver".to_string(), self.homeserver.clone()),
            (
                "shared_secret_id".to_string(),
                self.shared_secret_id.clone(),
            ),
            (
                "encryption_key_secret_id".to_string(),
                self.encryption_key_secret_id.clone(),
            ),
        ])
    }
}

/// The relations and their status part, remembered so that steady hooks read nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixAuthHint {
    #[serde(default)]
    pub relations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// One related application's registration as read from its databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub relation: RelationId,
    pub app: String,
    /// The decrypted registration, or why it could not be decrypted; `None` while the
    /// requirer has not sent one.
    pub plain: Option<Result<String, FieldError>>,
}

/// The registration files Synapse is to load, and this concern's status part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// `(path, content)` of each accepted registration, ordered by path.
    pub files: Vec<(String, String)>,
    /// One line per registration left out.
    pub problems: Vec<String>,
}

impl Decision {
    pub fn progress(&self) -> Progress {
        match self.problems.as_slice() {
            [] => Progress::Ready,
            [one] => Progress::Blocked(one.clone()),
            [first, rest @ ..] => Progress::Blocked(format!(
                "{first} (and {} more: see `juju debug-log`)",
                rest.len()
            )),
        }
    }

    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// The path of an application's registration file.
pub fn path_for(app: &str) -> String {
    format!("{DIR}/{app}.yaml")
}

/// Checks every registration and the clashes between them (pure). Relations are taken
/// in id order: on a clash, the later relation is left out and the earlier keeps
/// working.
pub fn decide(mut submitted: Vec<Submitted>) -> Decision {
    submitted.sort_by_key(|s| s.relation.id);
    let mut accepted: Vec<(&Submitted, Registration)> = vec![];
    let mut problems = vec![];
    for s in &submitted {
        let checked = match &s.plain {
            None => continue,
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(text)) => Registration::parse(text).and_then(|r| {
                match accepted
                    .iter()
                    .find_map(|(o, reg)| r.clash(reg).map(|e| (o, e)))
                {
                    Some((other, e)) => Err(FieldError {
                        field: e.field,
                        reason: format!("{} by {} ({})", e.reason, other.app, other.relation),
                    }),
                    None => Ok(r),
                }
            }),
        };
        match checked {
            Ok(r) => accepted.push((s, r)),
            Err(e) => problems.push(format!(
                "{} ({}): registration left out: {e}",
                s.relation, s.app
            )),
        }
    }
    let mut files: Vec<(String, String)> = accepted
        .into_iter()
        .map(|(s, r)| (path_for(&s.app), r.text))
        .collect();
    files.sort();
    Decision { files, problems }
}

/// Decrypts a registration (pure).
pub fn decrypt(key: Option<&Key>, token: &str) -> Result<String, FieldError> {
    let bad = |reason: String| FieldError {
        field: REGISTRATION_KEY.into(),
        reason,
    };
    let key = key.ok_or_else(|| bad("Synapse's encryption key is missing".into()))?;
    let plain = key
        .decrypt(token)
        .map_err(|e| bad(format!("cannot decrypt: {e}")))?;
    String::from_utf8(plain).map_err(|_| bad("the decrypted registration is not UTF-8".into()))
}

/// The known relations of the endpoint (remembered, looked up again when `work` says
/// so), without the one being broken.
pub fn relations(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    hints: &mut UnitHints,
) -> CharmResult<Vec<RelationId>> {
    let leaving = Leaving::of(&ctx.event);
    let known = hints.matrix_auth.clone().filter(|_| !work.lookup);
    let relations: Vec<RelationId> = match &known {
        Some(h) => h
            .relations
            .iter()
            .filter_map(|r| RelationId::parse(r))
            .collect(),
        None => tools.relation_ids(ENDPOINT)?,
    };
    let relations: Vec<RelationId> = relations
        .into_iter()
        .filter(|r| Some(r) != leaving.broken)
        .collect();
    let hint = hints.matrix_auth.get_or_insert_with(Default::default);
    hint.relations = relations.iter().map(|r| r.to_string()).collect();
    if relations.is_empty() {
        hint.blocked = None;
    }
    Ok(relations)
}

/// Leader: revokes the broken relation's grants, and gives every relation the
/// homeserver URL and the two secrets (created once). `shared_secret` is Synapse's
/// registration shared secret.
pub fn publish(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    relations: &[RelationId],
    homeserver: &str,
    shared_secret: &dyn Fn() -> CharmResult<Option<String>>,
) -> CharmResult<()> {
    if work.revoke.is_none() && (!work.publish || relations.is_empty()) {
        return Ok(());
    }
    if !tools.is_leader()? {
        return Ok(());
    }
    if let Some(broken) = &work.revoke {
        for label in [SHARED_SECRET_LABEL, KEY_LABEL] {
            if let Some(info) = tools.secret_info_by_label(label)? {
                tools.secret_revoke(&info.id, broken)?;
                tracing::info!(relation = %broken, label, "revoked the secret's grant");
            }
        }
    }
    if !work.publish || relations.is_empty() {
        return Ok(());
    }
    let owns = relations
        .iter()
        .map(|r| Ok((r, tools.relation_get(r, &ctx.app_name, true)?)))
        .collect::<CharmResult<Vec<_>>>()?;
    // The secrets never change once made: when every relation has both URIs, only the
    // homeserver URL can need publishing (no secret is looked up).
    let ids = |bag: &Databag| {
        let get = |k: &str| bag.get(k).filter(|v| !v.is_empty()).cloned();
        Some((get("shared_secret_id")?, get("encryption_key_secret_id")?))
    };
    let published = owns.iter().map(|(_, b)| ids(b)).collect::<Option<Vec<_>>>();
    let (shared_id, key_id) = match published.as_deref() {
        Some([first, ..]) if published.iter().flatten().all(|i| i == first) => first.clone(),
        _ => {
            let Some(secret) = shared_secret()? else {
                return Ok(());
            };
            let shared_id = ensure_secret(
                tools,
                SHARED_SECRET_LABEL,
                SHARED_SECRET_CONTENT,
                "Synapse's registration shared secret, for bridges",
                &|| Ok(secret.clone()),
            )?;
            let key_id = ensure_secret(
                tools,
                KEY_LABEL,
                KEY_CONTENT,
                "the key bridges encrypt their appservice registration with",
                &|| Ok(Key::generate()?.encode()),
            )?;
            (shared_id, key_id)
        }
    };
    for (relation, own) in &owns {
        let data = ProviderData {
            homeserver: homeserver.to_string(),
            shared_secret_id: shared_id.clone(),
            encryption_key_secret_id: key_id.clone(),
        };
        // A URI is granted on the relation when it is first published there.
        for (key, id) in [
            ("shared_secret_id", &shared_id),
            ("encryption_key_secret_id", &key_id),
        ] {
            if own.get(key) != Some(id) {
                tools.secret_grant(id, relation)?;
                tracing::info!(%relation, key, "granted the secret to the relation");
            }
        }
        crate::relations::publish_value(tools, relation, true, own, &data)?;
    }
    Ok(())
}

/// The URI of the owned secret `label`, created with `content()` when missing (an
/// existing one is reused as it is: it never changes).
fn ensure_secret(
    tools: &dyn HookTools,
    label: &str,
    content_key: &str,
    description: &str,
    content: &dyn Fn() -> std::io::Result<String>,
) -> CharmResult<String> {
    let Some(info) = tools.secret_info_by_label(label)? else {
        let bag = Databag::from([(
            content_key.to_string(),
            content().map_err(crate::error::CharmError::Random)?,
        )]);
        let uri = tools.secret_add(&bag, label, description, SecretOwner::Application)?;
        tracing::info!(label, "created the secret {uri}");
        return Ok(crate::util::secret_uri(&uri));
    };
    Ok(crate::util::secret_uri(&info.id))
}

/// Reads, decrypts and checks every relation's registration (main unit).
pub fn read_registrations(
    tools: &dyn HookTools,
    relations: &[RelationId],
    hints: &mut UnitHints,
) -> CharmResult<Decision> {
    if relations.is_empty() {
        return Ok(Decision::default());
    }
    let key = match tools.secret_get(None, Some(KEY_LABEL), SecretRead::Pinned) {
        Ok(content) => content.get(KEY_CONTENT).and_then(|k| Key::parse(k).ok()),
        Err(e) if e.kind == ToolErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut submitted = vec![];
    for relation in relations {
        let Some(app) = tools.relation_remote_app(relation)? else {
            continue;
        };
        let bag = tools.relation_get(relation, &app, true)?;
        let plain = bag
            .get(REGISTRATION_KEY)
            .filter(|t| !t.trim().is_empty())
            .map(|t| decrypt(key.as_ref(), t));
        submitted.push(Submitted {
            relation: relation.clone(),
            app,
            plain,
        });
    }
    let decision = decide(submitted);
    for p in &decision.problems {
        tracing::warn!("{p}");
    }
    if let Some(h) = hints.matrix_auth.as_mut() {
        h.blocked = match decision.progress() {
            Progress::Blocked(b) => Some(b),
            _ => None,
        };
    }
    Ok(decision)
}

/// The `matrix-auth` relations in this dispatch (main unit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatrixAuth {
    pub relations: Vec<RelationId>,
    /// The registrations, when this dispatch read them.
    pub decision: Option<Decision>,
}

/// Reads the registrations when `work` says they may have changed; otherwise Synapse's
/// step reads them only if it takes its full path.
pub fn read(
    tools: &dyn HookTools,
    work: &Work,
    relations: Vec<RelationId>,
    hints: &mut UnitHints,
) -> CharmResult<MatrixAuth> {
    let decision = if work.answer_may_change {
        Some(read_registrations(tools, &relations, hints)?)
    } else {
        None
    };
    Ok(MatrixAuth {
        relations,
        decision,
    })
}

/// This concern's status part as remembered (steady hooks).
pub fn remembered(hints: &UnitHints) -> Progress {
    match hints.matrix_auth.as_ref().and_then(|h| h.blocked.clone()) {
        Some(b) => Progress::Blocked(b),
        None => Progress::Ready,
    }
}

/// The registration files a homeserver.yaml lists (pure; none if it cannot be read).
pub fn listed(homeserver_yaml: Option<&[u8]>) -> Vec<String> {
    let Some(text) = homeserver_yaml.and_then(|b| std::str::from_utf8(b).ok()) else {
        return vec![];
    };
    let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap_or_default();
    doc.get("app_service_config_files")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str())
                .filter(|p| p.starts_with(&format!("{DIR}/")))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The registration files to delete: those the previous homeserver.yaml listed, and
/// any other in the directory on the data volume, that `keep` does not list.
pub fn stale_files(data_dir: &Path, previously: &[String], keep: &[String]) -> Vec<String> {
    let dir = data_dir.join(DIR.trim_start_matches("/data/"));
    let on_volume: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .map(|name| format!("{DIR}/{name}"))
                .collect()
        })
        .unwrap_or_default();
    let mut stale: Vec<String> = previously
        .iter()
        .cloned()
        .chain(on_volume)
        .filter(|p| !keep.contains(p))
        .collect();
    stale.sort();
    stale.dedup();
    stale
}

#[cfg(test)]
mod tests;
