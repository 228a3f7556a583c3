//! The hook-tool interface: everything the charm asks of Juju goes through this trait,
//! so the same charm code runs against real Juju, the local stand-in and unit-test fakes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::event::RelationId;

pub type Databag = BTreeMap<String, String>;

/// Applies a `relation-set` to a bag the way Juju does: keys are merged and an empty
/// value deletes the key.
pub fn merge_databag(bag: &mut Databag, data: &Databag) {
    for (k, v) in data {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusKind {
    Maintenance,
    Blocked,
    Waiting,
    Active,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Maintenance => "maintenance",
            StatusKind::Blocked => "blocked",
            StatusKind::Waiting => "waiting",
            StatusKind::Active => "active",
        }
    }
}

/// A workload status as shown by `juju status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub message: String,
}

impl Status {
    pub fn active() -> Self {
        Self::new(StatusKind::Active, "")
    }
    pub fn blocked(msg: impl Into<String>) -> Self {
        Self::new(StatusKind::Blocked, msg)
    }
    pub fn waiting(msg: impl Into<String>) -> Self {
        Self::new(StatusKind::Waiting, msg)
    }
    pub fn maintenance(msg: impl Into<String>) -> Self {
        Self::new(StatusKind::Maintenance, msg)
    }
    pub fn new(kind: StatusKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            message: msg.into(),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}: {}", self.kind.as_str(), self.message)
        }
    }
}

/// Who owns a secret the charm creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOwner {
    Application,
    Unit,
}

/// How to read a secret: pinned revision, track latest (`--refresh`), or look once (`--peek`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretRead {
    Pinned,
    Refresh,
    Peek,
}

/// `secret-info-get` output for one secret this charm owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: String,
    pub label: Option<String>,
    pub revision: u64,
}

/// What a failed hook tool means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// The tool is not on PATH or could not be started.
    Spawn,
    /// `relation not found` (the relation is gone).
    RelationNotFound,
    /// A secret (or other entity) does not exist.
    NotFound,
    /// Leadership or permission missing.
    PermissionDenied,
    /// The tool's output could not be understood.
    BadOutput,
    /// Any other non-zero exit.
    Failed,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("hook tool {tool} failed: {message}")]
pub struct ToolError {
    pub tool: &'static str,
    pub kind: ToolErrorKind,
    pub message: String,
}

impl ToolError {
    pub fn new(tool: &'static str, kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            tool,
            kind,
            message: message.into(),
        }
    }

    /// Classifies a tool's stderr the way ops does.
    pub fn from_stderr(tool: &'static str, stderr: &str) -> Self {
        let msg = stderr.trim();
        let msg = msg.strip_prefix("ERROR ").unwrap_or(msg);
        let kind = if msg.contains("relation not found") {
            ToolErrorKind::RelationNotFound
        } else if msg.contains("permission denied")
            || msg.contains("not the leader")
            || msg.contains("cannot write relation settings")
            || msg.contains("access denied")
        {
            ToolErrorKind::PermissionDenied
        } else if msg.contains("not found") {
            ToolErrorKind::NotFound
        } else {
            ToolErrorKind::Failed
        };
        Self::new(tool, kind, msg)
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

/// An address of this unit as `network-get` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub bind_address: Option<String>,
    pub ingress_addresses: Vec<String>,
}

/// The Juju hook tools the charm uses. Reads take `&self` and may be cached by
/// [`super::cache::CachedTools`]; writes are queued by Juju and committed on exit 0.
pub trait HookTools {
    fn config_get(&self) -> ToolResult<serde_json::Map<String, Value>>;
    fn is_leader(&self) -> ToolResult<bool>;
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>>;
    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<String>>;
    /// The units of this application Juju plans to run (`goal-state`: every unit not
    /// `dying`), including units not started or not in the peer relation yet.
    fn planned_units(&self) -> ToolResult<Vec<String>>;
    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<String>>;
    /// Reads a whole databag; `target` is a unit name, or an app name with `app = true`.
    fn relation_get(&self, relation: &RelationId, target: &str, app: bool) -> ToolResult<Databag>;
    /// Merges keys into this unit's (or, with `app`, this application's) databag; "" deletes.
    fn relation_set(&self, relation: &RelationId, app: bool, data: &Databag) -> ToolResult<()>;
    fn status_set(&self, status: &Status, application: bool) -> ToolResult<()>;
    fn application_version_set(&self, version: &str) -> ToolResult<()>;
    fn state_get(&self) -> ToolResult<Databag>;
    fn state_set(&self, data: &Databag) -> ToolResult<()>;
    fn state_delete(&self, key: &str) -> ToolResult<()>;
    /// Reads a secret by URI or label.
    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        mode: SecretRead,
    ) -> ToolResult<Databag>;
    /// Info about an owned secret by label; `Ok(None)` when it does not exist.
    fn secret_info_by_label(&self, label: &str) -> ToolResult<Option<SecretInfo>>;
    /// Creates a secret; content goes through files, never argv. Returns the URI.
    fn secret_add(
        &self,
        content: &Databag,
        label: &str,
        description: &str,
        owner: SecretOwner,
    ) -> ToolResult<String>;
    fn secret_set(&self, id: &str, content: &Databag) -> ToolResult<()>;
    /// Grants the remote application of `relation` read access to an owned secret.
    fn secret_grant(&self, id: &str, relation: &RelationId) -> ToolResult<()>;
    /// Revokes the access granted through `relation`.
    fn secret_revoke(&self, id: &str, relation: &RelationId) -> ToolResult<()>;
    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo>;
    fn open_port(&self, port: u16) -> ToolResult<()>;
    fn opened_ports(&self) -> ToolResult<Vec<String>>;
    fn action_get(&self) -> ToolResult<serde_json::Map<String, Value>>;
    fn action_set(&self, results: &Databag) -> ToolResult<()>;
    fn action_fail(&self, message: &str) -> ToolResult<()>;
    fn action_log(&self, message: &str) -> ToolResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_stderr_like_ops() {
        let e = ToolError::from_stderr("relation-get", "ERROR relation not found\n");
        assert_eq!(e.kind, ToolErrorKind::RelationNotFound);
        assert_eq!(e.message, "relation not found");
        let e = ToolError::from_stderr("secret-get", "ERROR secret \"x\" not found");
        assert_eq!(e.kind, ToolErrorKind::NotFound);
        let e = ToolError::from_stderr("relation-set", "ERROR cannot write relation settings");
        assert_eq!(e.kind, ToolErrorKind::PermissionDenied);
        let e = ToolError::from_stderr("status-set", "ERROR this unit is not the leader");
        assert_eq!(e.kind, ToolErrorKind::PermissionDenied);
        let e = ToolError::from_stderr("x", "boom");
        assert_eq!(e.kind, ToolErrorKind::Failed);
    }

    #[test]
    fn status_display() {
        assert_eq!(Status::active().to_string(), "active");
        assert_eq!(Status::blocked("x").to_string(), "blocked: x");
    }
}
