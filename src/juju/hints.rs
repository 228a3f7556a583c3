//! Facts a unit remembers between dispatches in its charm directory, only to avoid
//! hook-tool calls whose answer cannot have changed: the peer relation's id (peer
//! relations live as long as the application) and the status last set (status-set is
//! skipped when the status is the same). Losing the file (pod churn, upgrade) only
//! costs those calls once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitHints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_relation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The `database` relation id; `Some("")` when known to be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_relation: Option<String>,
    /// The `ingress` relation id (empty when there is none) and the provider's raw
    /// `ingress` value, read again on the events that can change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressHint>,
    /// The `nginx-route` relation id; `Some("")` when known to be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_route_relation: Option<String>,
    /// The `smtp` relation id (empty when there is none) and what was wrong with its
    /// data when last read, read again on the events that can change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpHint>,
    /// The `media` relation id (empty when there is none) and its status part, read
    /// again on the events that can change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::relations::media::MediaHint>,
    /// The `backup` relation id (empty when there is none) and its status part, read
    /// and checked again on the events that can change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<crate::relations::backup::BackupHint>,
    /// The `matrix-auth` relation ids and the registrations' blocked message, read
    /// again on the events that can change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix_auth: Option<crate::relations::matrix_auth::MatrixAuthHint>,
    /// Why the database the provider now names cannot be used (PostgreSQL refused the
    /// new credentials, or does not answer) while Synapse keeps serving with the ones
    /// it runs with: steady hooks keep saying so until the provider's answer changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_waiting: Option<String>,
    /// The configuration Synapse last rejected, so that it is not checked again on
    /// every hook while it stays the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_config: Option<RejectedConfig>,
    /// Per container: its ready check's success count when its service last
    /// restarted ("ready" needs a success after that), the service's start time as
    /// last seen, and whether Pebble (not the charm) restarted it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watches: crate::workload::Watches,
    /// Hash of the NGINX site files last pushed (`nginx::site::Site::hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_site: Option<String>,
    /// Synapse's version as last set with `application-version-set`; cleared when the
    /// charm (re)starts Synapse, so it is read again once Synapse is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_version: Option<String>,
    /// The peer units and the `redis` relation, read again on the events that can
    /// change them (`crate::topology::must_read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<crate::topology::TopologyHint>,
}

/// The `ingress` relation as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressHint {
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// The `smtp` relation as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpHint {
    pub relation: String,
    /// Why its data cannot be used (the status message); `None` when it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A configuration Synapse rejected: its shape hash (no secrets) and the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedConfig {
    pub shape: String,
    pub status: String,
}

impl UnitHints {
    /// The hints file of a unit, in the charm directory (the working directory of a hook).
    pub fn path(charm_dir: &Path, unit: &str) -> PathBuf {
        charm_dir.join(format!(".hints-{}.json", unit.replace('/', "-")))
    }

    /// Missing or unreadable hints are simply empty.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) {
        let tmp = path.with_extension("tmp");
        let ok = serde_json::to_vec(self)
            .ok()
            .is_some_and(|b| std::fs::write(&tmp, b).is_ok())
            && std::fs::rename(&tmp, path).is_ok();
        if !ok {
            tracing::debug!(path = %path.display(), "cannot save unit hints");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = UnitHints::path(dir.path(), "synapse/0");
        assert_eq!(UnitHints::load(&p), UnitHints::default());
        let h = UnitHints {
            database_relation: Some(String::new()),
            database_waiting: Some("cannot reach PostgreSQL at 10.0.0.1:5432: refused".into()),
            peer_relation: Some("synapse-peers:0".into()),
            status: Some("active: ".into()),
            rejected_config: Some(RejectedConfig {
                shape: "abc".into(),
                status: "blocked".into(),
            }),
            watches: [(
                "synapse".to_string(),
                crate::workload::WatchHint {
                    baseline: Some(3),
                    since: Some("2026-11-29T09:00:00Z".into()),
                    by_pebble: true,
                },
            )]
            .into(),
            ingress: Some(IngressHint {
                relation: "ingress:5".into(),
                answer: Some(r#"{"url": "http://h/"}"#.into()),
            }),
            nginx_route_relation: Some(String::new()),
            smtp: Some(SmtpHint {
                relation: "smtp:9".into(),
                problem: Some("smtp: auth_type \"x\" is not supported".into()),
            }),
            nginx_site: Some("0123456789abcdef".into()),
            workload_version: Some("1.140.0".into()),
            topology: Some(crate::topology::TopologyHint {
                units: vec!["synapse/0".into(), "synapse/1".into()],
                redis: Some(crate::relations::redis::Redis::Pending),
            }),
            backup: Some(crate::relations::backup::BackupHint {
                relation: "backup:9".into(),
                waiting: None,
                blocked: Some("backup: bucket".into()),
            }),
            media: Some(crate::relations::media::MediaHint {
                relation: "media:7".into(),
                waiting: Some("media: waiting".into()),
                blocked: None,
            }),
            matrix_auth: Some(crate::relations::matrix_auth::MatrixAuthHint {
                relations: vec!["matrix-auth:9".into()],
                blocked: Some("matrix-auth:9 (irc): registration left out: id: missing".into()),
            }),
        };
        h.save(&p);
        assert_eq!(UnitHints::load(&p), h);
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(UnitHints::load(&p), UnitHints::default());
    }
}
