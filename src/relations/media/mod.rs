//! The `media` integration (`s3` requirer): Synapse keeps its media in an S3 bucket
//! through the S3 storage provider module the Synapse rock ships
//! (`s3_storage_provider.S3StorageProviderBackend`).
//!
//! - The local media store stays Synapse's primary store and cache
//!   (`store_local: true`): every upload is written there first, then to the bucket
//!   before the upload returns (`store_synchronous: true`); a download is served from
//!   the local store, else fetched from the bucket. Media uploaded before the
//!   integration stay in the local store and keep being served from there.
//! - The connection info comes from the provider ([`crate::relations::s3`]); the
//!   credentials go into `homeserver.yaml` only (mode 600, owned by `synapse`), the
//!   addressing style and CA chain into an AWS configuration file that boto3 reads
//!   (`AWS_CONFIG_FILE`, a path, is the only thing in the plan).
//! - Once Synapse has run with a bucket, a marker on the data volume records it. When
//!   the integration goes, Synapse stops using the bucket (its credentials go with the
//!   relation) and the unit is `blocked`, naming the bucket, until the relation is back
//!   or the operator removes the marker (media kept only in the bucket are no longer
//!   served: that must not happen silently).
//! - While the provider's data is incomplete or invalid after a bucket was in use, the
//!   charm leaves Synapse as it runs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::{HookContext, HookTools, RelationId};
use crate::relations::s3::{self, BucketRequest, S3Error, S3Info, UriStyle};
use crate::status::Progress;

pub const ENDPOINT: &str = "media";
/// The bucket the charm asks for (the provider's own `bucket` option wins).
pub const BUCKET_REQUEST: &str = "synapse-media";
/// The AWS configuration file boto3 reads: addressing style and CA bundle, no secret.
pub const AWS_CONFIG_PATH: &str = "/data/media-s3.aws-config";
pub const CA_PATH: &str = "/data/media-s3-ca.pem";
/// On the data volume: the bucket Synapse last stored media in.
pub const MARKER: &str = ".charm-media-s3";
pub const MODULE: &str = "s3_storage_provider.S3StorageProviderBackend";
/// The storage classes the module accepts.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
];

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Look the relation id up again: the relation may have appeared or gone.
    pub lookup: bool,
    /// Leader: make sure the bucket request is in the application databag.
    pub request: bool,
    /// The provider's answer may differ from what Synapse runs with.
    pub answer_may_change: bool,
}

/// The media relation in this dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub relation: Option<RelationId>,
    /// The provider's info, when it was read in this dispatch.
    pub info: Option<Result<S3Info, S3Error>>,
    /// This concern's part of the unit status.
    pub progress: Progress,
}

/// The last known state of the relation, so that steady hooks read nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaHint {
    /// The relation id; empty when there is none.
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// The bucket Synapse last stored media in, as the marker records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub bucket: String,
    #[serde(default)]
    pub endpoint: String,
}

pub fn read_marker(data_dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(data_dir.join(MARKER)).ok()?;
    // An unreadable marker still says a bucket was in use.
    Some(serde_json::from_str(&text).unwrap_or(Marker {
        bucket: "?".into(),
        endpoint: String::new(),
    }))
}

/// Records the bucket in use (only when it changed).
pub fn write_marker(data_dir: &Path, info: &S3Info) -> std::io::Result<()> {
    let marker = Marker {
        bucket: info.bucket.clone(),
        endpoint: info.endpoint.clone().unwrap_or_default(),
    };
    if read_marker(data_dir).as_ref() == Some(&marker) {
        return Ok(());
    }
    tracing::info!(bucket = %marker.bucket, "Synapse stores media in S3");
    let text = serde_json::to_string(&marker).unwrap_or_default();
    std::fs::write(data_dir.join(MARKER), format!("{text}\n"))
}

/// What Synapse's media storage should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// The local store only.
    Local,
    /// The local store and this bucket.
    S3(Box<S3Info>),
    /// Leave Synapse as it runs.
    Keep,
}

/// Decides the storage and this concern's status (pure).
pub fn decide(
    related: bool,
    info: Option<&Result<S3Info, S3Error>>,
    marker: Option<&Marker>,
    app: &str,
) -> (Storage, Progress) {
    // Without a bucket in use, Synapse needs nothing from the provider to run.
    let fallback = if marker.is_some() {
        Storage::Keep
    } else {
        Storage::Local
    };
    match (related, info) {
        (false, _) => match marker {
            None => (Storage::Local, Progress::Ready),
            Some(m) => (
                Storage::Local,
                Progress::Blocked(format!(
                    "media: the S3 integration was removed; media kept only in bucket {:?} are no longer served: integrate it again (`juju integrate {app}:media s3-integrator`), or copy them into the local store and remove /data/{MARKER} (see docs/how-to/media.md)",
                    m.bucket
                )),
            ),
        },
        (true, None) => (
            fallback,
            Progress::Waiting("media: waiting for the S3 provider's data".into()),
        ),
        (true, Some(Err(e))) if e.is_pending() => (
            fallback,
            Progress::Waiting(format!("media: waiting for the S3 provider's credentials ({e})")),
        ),
        (true, Some(Err(e))) => (
            fallback,
            Progress::Blocked(format!("media: the S3 integration sent invalid data: {e}")),
        ),
        (true, Some(Ok(info))) => match info.storage_class.as_deref() {
            Some(class) if !STORAGE_CLASSES.contains(&class) => (
                fallback,
                Progress::Blocked(format!(
                    "media: storage-class {class:?} is not one the S3 storage provider supports ({})",
                    STORAGE_CLASSES.join(", ")
                )),
            ),
            _ => (Storage::S3(Box::new(info.clone())), Progress::Ready),
        },
    }
}

/// Finds the relation (remembered between dispatches, looked up again when `work`
/// says so), has the leader ask for the bucket, and reads the provider's answer when
/// it may have changed (or nothing is remembered about it).
pub fn read(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    hints: &mut UnitHints,
    data_dir: &Path,
) -> CharmResult<Media> {
    let leaving = crate::relations::Leaving::of(&ctx.event);
    let known = hints.media.clone().filter(|_| !work.lookup);
    let relation = match &known {
        Some(h) => RelationId::parse(&h.relation),
        None => tools
            .relation_ids(ENDPOINT)?
            .into_iter()
            .find(|r| Some(r) != leaving.broken),
    };
    let marker = read_marker(data_dir);
    let Some(relation) = relation else {
        hints.media = Some(MediaHint::default());
        let (_, progress) = decide(false, None, marker.as_ref(), &ctx.app_name);
        return Ok(Media {
            relation: None,
            info: None,
            progress,
        });
    };
    if work.request && tools.is_leader()? {
        let own = tools.relation_get(&relation, &ctx.app_name, true)?;
        let req = BucketRequest {
            bucket: BUCKET_REQUEST.into(),
        };
        if crate::relations::publish_value(tools, &relation, true, &own, &req)? {
            tracing::info!(
                bucket = BUCKET_REQUEST,
                "asked the S3 provider for a bucket"
            );
        }
    }
    if let Some(h) = known.filter(|_| !work.answer_may_change) {
        let progress = match (h.blocked, h.waiting) {
            (Some(b), _) => Progress::Blocked(b),
            (None, Some(w)) => Progress::Waiting(w),
            (None, None) => Progress::Ready,
        };
        return Ok(Media {
            relation: Some(relation),
            info: None,
            progress,
        });
    }
    let info = read_info(tools, &relation)?;
    let (_, progress) = decide(true, Some(&info), marker.as_ref(), &ctx.app_name);
    hints.media = Some(MediaHint {
        relation: relation.to_string(),
        waiting: match &progress {
            Progress::Waiting(w) => Some(w.clone()),
            _ => None,
        },
        blocked: match &progress {
            Progress::Blocked(b) => Some(b.clone()),
            _ => None,
        },
    });
    Ok(Media {
        relation: Some(relation),
        info: Some(info),
        progress,
    })
}

/// The provider's info on `relation`.
pub fn read_info(
    tools: &dyn HookTools,
    relation: &RelationId,
) -> CharmResult<Result<S3Info, S3Error>> {
    let bag = match tools.relation_remote_app(relation)? {
        Some(remote) => tools.relation_get(relation, &remote, true)?,
        None => Default::default(),
    };
    Ok(s3::parse(&bag))
}

/// Stand-in values for the shape of the configuration (no secret, no bucket).
pub fn placeholder() -> S3Info {
    S3Info {
        access_key: "<access-key>".into(),
        secret_key: "<secret-key>".into(),
        bucket: "<bucket>".into(),
        path: String::new(),
        endpoint: None,
        region: None,
        uri_style: UriStyle::Host,
        storage_class: None,
        s3_api_version: None,
        delete_older_than_days: None,
        tls_ca_chain: vec![],
        attributes: vec![],
    }
}

/// Synapse's `media_storage_providers` for a bucket (pure).
pub fn storage_providers(info: &S3Info) -> Value {
    let mut config = Map::new();
    config.insert("bucket".into(), json!(info.bucket));
    config.insert("prefix".into(), json!(info.path));
    if let Some(e) = &info.endpoint {
        config.insert("endpoint_url".into(), json!(e));
    }
    if let Some(r) = &info.region {
        config.insert("region_name".into(), json!(r));
    }
    if let Some(c) = &info.storage_class {
        config.insert("storage_class".into(), json!(c));
    }
    config.insert("access_key_id".into(), json!(info.access_key));
    config.insert("secret_access_key".into(), json!(info.secret_key));
    json!([{
        "module": MODULE,
        "store_local": true,
        "store_remote": true,
        "store_synchronous": true,
        "config": config,
    }])
}

/// The files besides homeserver.yaml that the bucket needs: the AWS configuration
/// (addressing style, CA bundle) and the CA chain when there is one (pure).
pub fn files(info: &S3Info) -> Vec<(String, String)> {
    // `host` is S3's virtual-hosted style; boto3's `auto` uses it wherever it can (not
    // on an IP-address endpoint, where only path style works).
    let style = match info.uri_style {
        UriStyle::Host => "auto",
        UriStyle::Path => "path",
    };
    let mut aws = format!(
        "# Rendered by the Synapse charm from the media integration.\n[default]\ns3 =\n    addressing_style = {style}\n"
    );
    let mut files = vec![];
    if !info.tls_ca_chain.is_empty() {
        aws.push_str(&format!("ca_bundle = {CA_PATH}\n"));
        let mut pem = info.tls_ca_chain.join("\n");
        pem.push('\n');
        files.push((CA_PATH.to_string(), pem));
    }
    files.insert(0, (AWS_CONFIG_PATH.to_string(), aws));
    files
}

/// The service environment for Synapse with a bucket: where boto3 finds its
/// configuration. Its presence in the plan also says that Synapse runs with one.
pub fn env() -> [(&'static str, &'static str); 1] {
    [("AWS_CONFIG_FILE", AWS_CONFIG_PATH)]
}

#[cfg(test)]
mod tests;
