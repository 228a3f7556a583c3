//! Switching from Canonical's Python charm (`juju refresh --switch`) without losing the
//! server's identity or its data.
//!
//! The reference charm leaves, on the `data` volume: Synapse's signing key in
//! `/data/<server_name>.signing.key`, its `homeserver.yaml` (server name, registration
//! shared secret, macaroon key, media path) and local media under `/data/media`; in the
//! peer application databag: `main_unit_id` and `secret-signing-id` (the URI of an
//! application secret whose `secret-signing-key` holds the signing key).
//!
//! All of it is read once, by the leader, only while this charm's own keys secret does
//! not exist yet ([`crate::keys::read`]): a steady dispatch never pays for it. The
//! decision is pure ([`decide`]); unsafe cases become a `blocked` status naming the
//! exact fix, and the existing key file is never overwritten or deleted.

use std::path::Path;

use crate::error::{CharmError, CharmResult};
use crate::juju::tools::SecretRead;
use crate::juju::{HookTools, ToolErrorKind};
use crate::peers::Peers;
use crate::synapse::keys::SynapseKeys;

/// Peer application databag key of the reference charm: the signing key's secret URI.
pub const REFERENCE_SIGNING_ID: &str = "secret-signing-id";
/// The content key of that secret.
pub const REFERENCE_SIGNING_FIELD: &str = "secret-signing-key";
/// Where the reference's Synapse image keeps local media.
pub const REFERENCE_MEDIA: &str = "/data/media";
/// Marker on the volume recording, once, where this unit's local media live.
pub const MEDIA_MARKER: &str = ".charm-media-path";

/// Where and for which server the leader looks for a previous charm's data.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The data volume as the charm container sees it.
    pub data_dir: &'a Path,
    pub server_name: &'a str,
    pub app: &'a str,
    pub unit: &'a str,
}

/// What a previous charm left in the volume's `homeserver.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousConfig {
    pub server_name: Option<String>,
    pub registration_shared_secret: Option<String>,
    pub macaroon_secret_key: Option<String>,
    pub form_secret: Option<String>,
}

/// What is on the data volume (read once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    /// The content of `/data/<server_name>.signing.key`.
    pub signing_key: Option<String>,
    /// The server names of other `*.signing.key` files on the volume.
    pub other_servers: Vec<String>,
    pub config: Option<PreviousConfig>,
    /// The secrets the reference's image keeps in files next to the key.
    pub registration_file: Option<String>,
    pub macaroon_file: Option<String>,
}

fn read_opt(path: &Path) -> CharmResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CharmError::Data(e)),
    }
}

fn parse_config(text: &str) -> PreviousConfig {
    let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap_or_default();
    let get = |k: &str| {
        doc.get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    PreviousConfig {
        server_name: get("server_name"),
        registration_shared_secret: get("registration_shared_secret"),
        macaroon_secret_key: get("macaroon_secret_key"),
        form_secret: get("form_secret"),
    }
}

impl Volume {
    /// Reads the volume through the charm container's mount (no Pebble call).
    pub fn read(data_dir: &Path, server_name: &str) -> CharmResult<Self> {
        let mut other_servers = vec![];
        if let Ok(entries) = std::fs::read_dir(data_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(server) = name.strip_suffix(".signing.key") {
                    if server != server_name {
                        other_servers.push(server.to_string());
                    }
                }
            }
        }
        other_servers.sort();
        let file = |suffix: &str| read_opt(&data_dir.join(format!("{server_name}.{suffix}")));
        Ok(Self {
            signing_key: file("signing.key")?,
            other_servers,
            config: read_opt(&data_dir.join("homeserver.yaml"))?.map(|t| parse_config(&t)),
            registration_file: file("registration.key")?,
            macaroon_file: file("macaroon.key")?,
        })
    }
}

/// The key id and seed of a signing key file with exactly one key.
fn key_parts(content: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = content.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines.as_slice() else {
        return None;
    };
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["ed25519", id, seed] if id.starts_with("a_") => Some((id.to_string(), seed.to_string())),
        _ => None,
    }
}

/// The key id of a signing key file, for messages (public).
pub fn key_id(content: &str) -> String {
    key_parts(content).map(|(id, _)| id).unwrap_or_default()
}

/// Whether two signing key files hold the same key.
pub fn same_key(a: &str, b: &str) -> bool {
    key_parts(a).is_some() && key_parts(a) == key_parts(b)
}

/// What the leader does when it creates the keys secret (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Nothing to adopt: new keys.
    Fresh(SynapseKeys),
    /// Keys built around the previous charm's signing key (and secrets, where kept).
    Adopt(SynapseKeys),
    /// Adopting would lose or fork the identity: the message says what to do.
    Unsafe(String),
}

/// Decides from the volume, the reference's signing secret and `fresh` new keys.
pub fn decide(
    origin: &Origin,
    volume: &Volume,
    reference_key: Option<&str>,
    fresh: SynapseKeys,
) -> Adoption {
    let sn = origin.server_name;
    let (app, unit) = (origin.app, origin.unit);
    let path = format!("/data/{sn}.signing.key");
    let previous = volume
        .config
        .as_ref()
        .and_then(|c| c.server_name.as_deref());
    if let Some(old) = previous.filter(|old| *old != sn) {
        return Adoption::Unsafe(format!(
            "the data volume holds Synapse data for server_name {old:?} (/data/homeserver.yaml), \
             but server_name is {sn:?}: set it back with `juju config {app} server_name={old}` \
             (a server's name cannot change)"
        ));
    }
    if volume.signing_key.is_none() && reference_key.is_none() {
        if let Some(old) = volume.other_servers.first() {
            return Adoption::Unsafe(format!(
                "the data volume holds the signing key of server_name {old:?} \
                 (/data/{old}.signing.key), but server_name is {sn:?}: set it back with \
                 `juju config {app} server_name={old}`"
            ));
        }
    }
    if let Some(k) = &volume.signing_key {
        if key_parts(k).is_none() {
            return Adoption::Unsafe(format!(
                "{path} is not a single ed25519 Synapse signing key; it is left untouched: \
                 fix it, or move it aside with \
                 `juju ssh --container synapse {unit} mv {path} {path}.bad`"
            ));
        }
    }
    let signing_key = match (&volume.signing_key, reference_key) {
        (Some(file), Some(secret)) if !same_key(file, secret) => {
            return Adoption::Unsafe(format!(
                "the signing key in {path} (key id {}) differs from the one in the previous \
                 charm's secret ({REFERENCE_SIGNING_ID}, key id {}); the secret's is the one \
                 that charm served last: to keep it, move the file aside with \
                 `juju ssh --container synapse {unit} mv {path} {path}.old`",
                key_id(file),
                key_id(secret)
            ))
        }
        (Some(file), _) => file.clone(),
        (None, Some(secret)) if key_parts(secret).is_some() => secret.to_string(),
        (None, Some(_)) => {
            return Adoption::Unsafe(format!(
                "the previous charm's secret ({REFERENCE_SIGNING_ID}) does not hold an ed25519 \
                 signing key, and {path} is missing: put the server's signing key in {path}"
            ))
        }
        (None, None) => return Adoption::Fresh(fresh),
    };
    // Kept exactly as found: the file the charm writes is then the same bytes.
    let kept = |from_config: Option<&String>, file: &Option<String>, new: String| {
        from_config
            .cloned()
            .or_else(|| file.as_ref().map(|f| f.trim().to_string()))
            .filter(|s| !s.is_empty())
            .unwrap_or(new)
    };
    let config = volume.config.clone().unwrap_or_default();
    Adoption::Adopt(SynapseKeys {
        registration_shared_secret: kept(
            config.registration_shared_secret.as_ref(),
            &volume.registration_file,
            fresh.registration_shared_secret,
        ),
        macaroon_secret_key: kept(
            config.macaroon_secret_key.as_ref(),
            &volume.macaroon_file,
            fresh.macaroon_secret_key,
        ),
        form_secret: kept(config.form_secret.as_ref(), &None, fresh.form_secret),
        signing_key,
    })
}

/// The keys the leader stores in its new keys secret: adopted from a previous charm
/// when its data is there, new otherwise. An unsafe case is a [`CharmError::Unsafe`].
pub fn keys_to_store(
    tools: &dyn HookTools,
    peers: &Peers,
    origin: &Origin,
) -> CharmResult<SynapseKeys> {
    let volume = Volume::read(origin.data_dir, origin.server_name)?;
    let reference_key = match peers.app_data.get(REFERENCE_SIGNING_ID) {
        Some(uri) => match tools.secret_get(Some(uri), None, SecretRead::Pinned) {
            Ok(content) => content
                .get(REFERENCE_SIGNING_FIELD)
                .filter(|k| !k.trim().is_empty())
                .cloned(),
            // A secret the previous charm removed: the volume alone decides.
            Err(e) if e.kind == ToolErrorKind::NotFound => {
                tracing::warn!(%uri, "the previous charm's signing-key secret is gone");
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    match decide(
        origin,
        &volume,
        reference_key.as_deref(),
        SynapseKeys::generate()?,
    ) {
        Adoption::Fresh(keys) => Ok(keys),
        Adoption::Adopt(keys) => {
            tracing::info!(
                key_id = %keys.key_id(),
                "adopting the previous charm's signing key and secrets"
            );
            private_to_synapse(
                &origin
                    .data_dir
                    .join(format!("{}.signing.key", origin.server_name)),
            )?;
            Ok(keys)
        }
        Adoption::Unsafe(msg) => Err(CharmError::Unsafe(msg)),
    }
}

/// Makes an adopted key file private to Synapse's user (mode 0600), as the files the
/// charm writes are, without rewriting it.
fn private_to_synapse(path: &Path) -> CharmResult<()> {
    use std::os::unix::fs::PermissionsExt;
    if !path.exists() {
        return Ok(());
    }
    let uid = crate::synapse::layer::UID;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::os::unix::fs::chown(path, Some(uid), Some(uid)))
        .map_err(CharmError::Data)
}

/// Where local media live (pure): the recorded choice; else the reference's directory
/// when it holds media and ours does not exist; else ours. The second value: whether
/// to record it.
pub fn decide_media(
    marker: Option<&str>,
    reference_media: bool,
    ours_exists: bool,
) -> (String, bool) {
    match marker.map(str::trim).filter(|m| m.starts_with("/data/")) {
        Some(m) => (m.to_string(), false),
        None if reference_media && !ours_exists => (REFERENCE_MEDIA.to_string(), true),
        None => (
            crate::synapse::homeserver::MEDIA_STORE_PATH.to_string(),
            true,
        ),
    }
}

fn non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
}

/// This unit's local media path, recorded on the volume the first time so it never
/// flips (one small file read per dispatch afterwards, no Pebble call).
pub fn media_store_path(data_dir: &Path) -> CharmResult<String> {
    let marker_path = data_dir.join(MEDIA_MARKER);
    let marker = read_opt(&marker_path)?;
    if let Some(m) = marker.as_deref() {
        return Ok(decide_media(Some(m), false, false).0);
    }
    let (path, record) = decide_media(
        None,
        non_empty_dir(&data_dir.join(REFERENCE_MEDIA.trim_start_matches("/data/"))),
        data_dir
            .join(crate::synapse::homeserver::MEDIA_STORE_PATH.trim_start_matches("/data/"))
            .exists(),
    );
    if record {
        if path == REFERENCE_MEDIA {
            tracing::info!("keeping the previous charm's local media in {path}");
        }
        std::fs::write(&marker_path, format!("{path}\n")).map_err(CharmError::Data)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
