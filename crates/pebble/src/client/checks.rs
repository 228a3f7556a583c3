//! Health checks and notices.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::{list, target, Client};
use crate::error::Result;
use crate::layer::CheckLevel;
use crate::types::{CheckInfo, Notice};

impl Client {
    /// `GET /v1/checks` (the level filter is exact here).
    pub fn checks(&self, level: Option<CheckLevel>, names: &[&str]) -> Result<Vec<CheckInfo>> {
        let checks: Option<Vec<CheckInfo>> = self.get(target(
            "/v1/checks",
            &[
                (
                    "level",
                    level.map(|l| l.as_str().to_string()).unwrap_or_default(),
                ),
                ("names", list(names)),
            ],
        ))?;
        Ok(checks.unwrap_or_default())
    }

    fn check_action(&self, action: &str, names: &[&str]) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Changed {
            #[serde(default)]
            changed: Option<Vec<String>>,
        }
        let changed: Changed =
            self.post("/v1/checks", &json!({"action": action, "checks": names}))?;
        Ok(changed.changed.unwrap_or_default())
    }

    /// Starts checks; returns the ones that were not already running.
    pub fn start_checks(&self, names: &[&str]) -> Result<Vec<String>> {
        self.check_action("start", names)
    }

    /// Stops checks; returns the ones that were running.
    pub fn stop_checks(&self, names: &[&str]) -> Result<Vec<String>> {
        self.check_action("stop", names)
    }

    // ----- notices ----------------------------------------------------------

    /// Records a custom notice (key like `example.com/thing`); returns its id.
    pub fn notify(&self, key: &str, data: &BTreeMap<String, String>) -> Result<String> {
        #[derive(Deserialize)]
        struct Added {
            id: String,
        }
        let mut body = json!({"action": "add", "type": "custom", "key": key});
        if !data.is_empty() {
            body["data"] = json!(data);
        }
        let added: Added = self.post("/v1/notices", &body)?;
        Ok(added.id)
    }

    /// Lists notices, optionally filtered by types and keys.
    pub fn notices(&self, types: &[&str], keys: &[&str]) -> Result<Vec<Notice>> {
        let notices: Option<Vec<Notice>> = self.get(target(
            "/v1/notices",
            &[("types", list(types)), ("keys", list(keys))],
        ))?;
        Ok(notices.unwrap_or_default())
    }
}
