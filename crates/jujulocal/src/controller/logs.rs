//! The logs room: the model's debug log and the record of every dispatch.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::Controller;
use crate::journal;

pub use crate::logfile::append_log;

/// What one dispatch did, for the CLI, tests and benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRecord {
    pub seq: u64,
    pub unit: String,
    pub hook: String,
    pub exit: i32,
    pub wall_ms: f64,
    pub max_rss_kib: i64,
    pub calls: Vec<journal::Call>,
    /// The requests the charm sent to its containers' Pebbles (recorded only with
    /// `JUJULOCAL_COUNT_PEBBLE=1`, see [`crate::pebble_count`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pebble: Option<Vec<crate::pebble_count::PebbleCall>>,
}

impl Controller {
    /// The recorded dispatches, oldest first (from `hooks.jsonl`).
    pub fn history(&self) -> Vec<HookRecord> {
        std::fs::read_to_string(self.home.join("hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.home.join("debug.log")).unwrap_or_default()
    }
}

/// Appends one dispatch's record to `hooks.jsonl` (read back by [`Controller::history`]).
pub(super) fn record(home: &std::path::Path, record: &HookRecord) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("hooks.jsonl"))
    {
        let _ = writeln!(f, "{}", serde_json::to_string(record).unwrap_or_default());
    }
}
