//! The grafana-k8s stand-in: a played application with a `grafana-dashboard` endpoint
//! (interface `grafana_dashboard`, requires) that decodes and records the dashboards it
//! is sent; no Grafana runs.
//!
//! - Deploy: a directory `/tmp/jlgrafana-<model uuid prefix>-<app>`.
//! - React (any event reaching its unit), for every live `grafana-dashboard` relation,
//!   as the Grafana charm reads the `grafana_dashboard` library's data: the provider's
//!   app databag `dashboards` is JSON `{"templates": {"<key>": {"content": ...,
//!   "charm", "juju_topology", "inject_dropdowns", ...}}, "uuid": ...}`, each `content`
//!   being `base64(xz(dashboard JSON))` (Python's `lzma.compress`). Every decodable
//!   dashboard is written to `DIR/dashboards.json`:
//!   `{"<app>:<relation id>": {"<key>": <dashboard>}}`; a relation that is gone takes
//!   its dashboards with it.
//! - Status: `active` with the count, or `blocked` naming the relation and template
//!   whose data cannot be decoded (the others are still recorded).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ProviderState;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "grafana-k8s";
pub const ENDPOINT: &str = "grafana-dashboard";
/// The most a dashboard may decompress to.
const MAX_DASHBOARD: u64 = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub dir: PathBuf,
}

impl State {
    /// Where the decoded dashboards are recorded.
    pub fn dashboards(&self) -> PathBuf {
        self.dir.join("dashboards.json")
    }
}

/// One template's `content`: base64, then xz, then JSON (pure).
pub fn decode_content(content: &str) -> Result<Value, String> {
    let xz = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let mut text = Vec::new();
    lzma_rust2::XzReader::new(xz.as_slice(), true)
        .take(MAX_DASHBOARD)
        .read_to_end(&mut text)
        .map_err(|e| format!("not xz: {e}"))?;
    serde_json::from_slice(&text).map_err(|e| format!("not a JSON dashboard: {e}"))
}

/// The dashboards of one relation's `dashboards` value (pure): the decodable ones, and
/// a reason for each template that is not.
pub fn decode(raw: &str) -> (Map<String, Value>, Vec<String>) {
    let mut good = Map::new();
    let mut bad = vec![];
    let doc: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => return (good, vec![format!("dashboards is not valid JSON: {e}")]),
    };
    let Some(templates) = doc.get("templates").and_then(Value::as_object) else {
        return (good, vec!["dashboards has no templates".into()]);
    };
    for (key, t) in templates {
        match t.get("content").and_then(Value::as_str) {
            None => bad.push(format!("{key} has no content")),
            Some(c) => match decode_content(c) {
                Ok(d) => {
                    good.insert(key.clone(), d);
                }
                Err(why) => bad.push(format!("{key} cannot be decoded: {why}")),
            },
        }
    }
    (good, bad)
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

/// `juju deploy grafana-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlgrafana-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    let st = State { dir };
    std::fs::write(st.dashboards(), "{}\n").map_err(Error::io(Area::Model, &st.dir))?;
    super::save_data(c, app, CHARM, &st)?;
    let endpoints = [(ENDPOINT.into(), "grafana_dashboard".into(), Role::Requires)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "active", "0 dashboards")
}

/// Records the dashboards of every live relation.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let mut all = BTreeMap::new();
    let mut problems = vec![];
    let mut count = 0;
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let Some(raw) = rel
            .app_data
            .get(&remote)
            .and_then(|b| b.get("dashboards"))
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let (good, bad) = decode(raw);
        problems.extend(
            bad.into_iter()
                .map(|b| format!("{remote} (relation {}): {b}", rel.id)),
        );
        count += good.len();
        all.insert(format!("{remote}:{}", rel.id), Value::Object(good));
    }
    let text = serde_json::to_string_pretty(&all).unwrap_or_default() + "\n";
    let path = st.dashboards();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        let tmp = st.dir.join("dashboards.json.tmp");
        std::fs::write(&tmp, &text).map_err(Error::io(Area::Model, &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(Area::Model, &path))?;
    }
    let counted = format!("{count} dashboard{}", if count == 1 { "" } else { "s" });
    if problems.is_empty() {
        super::set_unit_status(c, app, "active", &counted)
    } else {
        eprintln!("jujulocal: {CHARM} stand-in: {}", problems.join("; "));
        super::set_unit_status(c, app, "blocked", &problems.join("; "))
    }
}

/// Removes the recorded dashboards.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    if let Ok(st) = state(pst) {
        let _ = std::fs::remove_dir_all(&st.dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_templates_are_named_and_the_others_kept() {
        let (good, bad) = decode(r#"{"templates": {"file:a": {"content": "!!"}, "file:b": {}}}"#);
        assert!(good.is_empty());
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("file:a cannot be decoded: not base64"),
            "{bad:?}"
        );
        let (_, bad) = decode("{");
        assert!(bad[0].contains("not valid JSON"));
        // base64 of bytes that are no xz stream.
        let err = decode_content("aGVsbG8=").unwrap_err();
        assert!(err.starts_with("not xz"), "{err}");
    }
}
