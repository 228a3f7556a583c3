//! Objects returned by the API, and option structs for file calls.
//!
//! All reply types ignore fields they do not know, and status enums carry an
//! `Unknown` variant so that a newer Pebble does not break parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::layer::{CheckLevel, Startup};

/// `GET /v1/system-info`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SystemInfo {
    /// Random per daemon start; Juju fires pebble-ready when it changes.
    pub boot_id: String,
    pub version: String,
    #[serde(default)]
    pub http_address: Option<String>,
    #[serde(default)]
    pub https_address: Option<String>,
}

/// Current state of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceStatus {
    /// Starting or running.
    Active,
    /// Waiting to be restarted after exiting.
    Backoff,
    /// Exited and not going to be restarted.
    Error,
    /// Never started, or stopped.
    Inactive,
    #[serde(other)]
    Unknown,
}

/// One entry of `GET /v1/services`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceInfo {
    pub name: String,
    pub startup: Startup,
    pub current: ServiceStatus,
    /// RFC 3339 time of the last state change.
    #[serde(default)]
    pub current_since: Option<String>,
}

impl ServiceInfo {
    pub fn is_running(&self) -> bool {
        self.current == ServiceStatus::Active
    }
}

/// Status of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Up,
    Down,
    Inactive,
    #[serde(other)]
    Unknown,
}

/// One entry of `GET /v1/checks`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckInfo {
    pub name: String,
    #[serde(default)]
    pub level: Option<CheckLevel>,
    #[serde(default)]
    pub startup: Option<Startup>,
    pub status: CheckStatus,
    /// Successes since the check started or last recovered; `None` from a Pebble that
    /// does not count them (older than the field; 1.32 always sends it).
    #[serde(default)]
    pub successes: Option<u64>,
    #[serde(default)]
    pub failures: u64,
    #[serde(default)]
    pub threshold: u64,
    #[serde(default)]
    pub change_id: Option<String>,
    #[serde(default)]
    pub prev_change_id: Option<String>,
}

/// Status of a change or task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Status {
    Default,
    Do,
    Doing,
    Done,
    Abort,
    Undo,
    Undoing,
    Undone,
    Hold,
    Error,
    Wait,
    #[serde(other)]
    Unknown,
}

/// `GET /v1/changes/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub summary: String,
    pub status: Status,
    #[serde(default)]
    pub tasks: Vec<Task>,
    pub ready: bool,
    /// Set only when the change is in `Error`.
    #[serde(default)]
    pub err: Option<String>,
    #[serde(default)]
    pub spawn_time: String,
    #[serde(default)]
    pub ready_time: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl Change {
    /// Log lines of the tasks that failed (all `ERROR` lines if no task is
    /// marked failed).
    pub fn failed_task_logs(&self) -> Vec<String> {
        let failed: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.status == Status::Error)
            .flat_map(|t| t.log.iter().cloned())
            .collect();
        if !failed.is_empty() {
            return failed;
        }
        self.tasks
            .iter()
            .flat_map(|t| t.log.iter())
            .filter(|line| line.contains(" ERROR "))
            .cloned()
            .collect()
    }
}

/// A task within a [`Change`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Task {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub summary: String,
    pub status: Status,
    /// Lines like `2024-01-01T00:00:00Z ERROR <message>`.
    #[serde(default)]
    pub log: Vec<String>,
    #[serde(default)]
    pub progress: TaskProgress,
    #[serde(default)]
    pub spawn_time: String,
    #[serde(default)]
    pub ready_time: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TaskProgress {
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub total: u64,
}

/// Type of a file system entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileType {
    File,
    Directory,
    Symlink,
    Socket,
    NamedPipe,
    Device,
    #[serde(other)]
    Unknown,
}

/// One entry of a file listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileInfo {
    pub path: String,
    pub name: String,
    #[serde(rename = "type")]
    pub file_type: FileType,
    /// Regular files only.
    #[serde(default)]
    pub size: Option<u64>,
    /// Permission bits (`0o644`), parsed from Pebble's octal string.
    #[serde(deserialize_with = "octal")]
    pub permissions: u32,
    #[serde(default)]
    pub last_modified: String,
    #[serde(default)]
    pub user_id: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group_id: Option<u32>,
    #[serde(default)]
    pub group: Option<String>,
}

fn octal<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let text = String::deserialize(d)?;
    u32::from_str_radix(&text, 8)
        .map_err(|_| serde::de::Error::custom(format!("bad octal permissions {text:?}")))
}

/// A notice (`GET /v1/notices`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Notice {
    pub id: String,
    /// `None` for notices visible to every user.
    #[serde(default)]
    pub user_id: Option<u32>,
    /// `custom`, `change-update`, `warning`, ...
    #[serde(rename = "type")]
    pub notice_type: String,
    pub key: String,
    #[serde(default)]
    pub first_occurred: String,
    #[serde(default)]
    pub last_occurred: String,
    #[serde(default)]
    pub last_repeated: String,
    #[serde(default)]
    pub occurrences: u64,
    #[serde(default)]
    pub last_data: BTreeMap<String, String>,
    /// Go duration text, e.g. `1h0m0s`.
    #[serde(default)]
    pub repeat_after: Option<String>,
    #[serde(default)]
    pub expire_after: Option<String>,
}

/// Options for [`Client::push`](crate::Client::push).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// Create missing parent directories (mode 0755, chowned like the file).
    pub make_dirs: bool,
    /// Permission bits (sent as three octal digits); Pebble's default is 0644.
    pub permissions: Option<u32>,
    pub user: Option<String>,
    pub user_id: Option<u32>,
    pub group: Option<String>,
    pub group_id: Option<u32>,
}

/// Options for [`Client::make_dir`](crate::Client::make_dir).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MakeDirOptions {
    /// Create parents too, and do not fail if the directory exists.
    pub make_parents: bool,
    /// Permission bits (sent as three octal digits); Pebble's default is 0755.
    pub permissions: Option<u32>,
    pub user: Option<String>,
    pub user_id: Option<u32>,
    pub group: Option<String>,
    pub group_id: Option<u32>,
}

/// Ownership and mode fields shared by push and make-dirs requests.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct FileMeta<'a> {
    pub path: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub make_dirs: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub make_parents: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
}

/// Formats permission bits as Pebble wants them: exactly three octal digits.
pub(crate) fn permissions_text(mode: u32) -> String {
    format!("{mode:03o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_with_failed_task() {
        let json = r#"{"id":"3","kind":"start","summary":"Start service \"x\"","status":"Error",
            "tasks":[{"id":"3","kind":"start","summary":"s","status":"Error",
              "log":["2024-01-01T00:00:00Z ERROR boom","2024-01-01T00:00:00Z INFO out"],
              "progress":{"label":"","done":1,"total":1},"spawn-time":"t"}],
            "ready":true,"err":"cannot perform the following tasks:\n- s (boom)",
            "spawn-time":"t","ready-time":"t","future":1}"#;
        let c: Change = serde_json::from_str(json).unwrap();
        assert_eq!(c.status, Status::Error);
        assert_eq!(c.failed_task_logs().len(), 2);
    }

    #[test]
    fn unknown_status_values_parse() {
        let s: ServiceInfo =
            serde_json::from_str(r#"{"name":"a","startup":"enabled","current":"zombie"}"#).unwrap();
        assert_eq!(s.current, ServiceStatus::Unknown);
        let c: Status = serde_json::from_str(r#""Paused""#).unwrap();
        assert_eq!(c, Status::Unknown);
    }

    #[test]
    fn file_info_permissions_are_octal() {
        let f: FileInfo = serde_json::from_str(
            r#"{"path":"/a","name":"a","type":"file","size":3,"permissions":"640",
                "last-modified":"t","user-id":65534,"user":"nobody","group-id":65534,"group":"nogroup"}"#,
        )
        .unwrap();
        assert_eq!(f.permissions, 0o640);
        assert_eq!(f.file_type, FileType::File);
    }

    #[test]
    fn permissions_are_three_digits() {
        assert_eq!(permissions_text(0o644), "644");
        assert_eq!(permissions_text(0o7), "007");
        assert_eq!(permissions_text(0), "000");
    }
}
