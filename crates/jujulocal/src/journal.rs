//! One running hook: its context (who, which event) and its journal of hook-tool calls.
//!
//! Hook tools append operations here. When the charm exits, the controller applies
//! the immediate ones (status, logs, action output) always, and the queued ones
//! (databags, state, secrets, ports) only if the charm exited 0, as Juju does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Area;
use crate::model::{app_of, Bag, Consumer, Grant, Model, Secret, SecretRevision, StatusEntry};
use crate::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookCtx {
    pub home: PathBuf,
    pub unit: String,
    pub dispatch_path: String,
    pub leader: bool,
    pub relation_id: Option<u64>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    pub action_id: Option<u64>,
}

impl HookCtx {
    pub fn app(&self) -> &str {
        app_of(&self.unit)
    }

    /// The unit-agent view of an event: what the hook tools need to know about it.
    pub fn for_event(home: &Path, unit: &str, leader: bool, event: &juju_hook::Event) -> Self {
        use juju_hook::Event;
        let (relation_id, remote_unit, remote_app, departing_unit) = match event {
            Event::Relation {
                relation,
                remote_app,
                remote_unit,
                departing_unit,
                ..
            } => (
                Some(relation.id),
                remote_unit.clone(),
                remote_app.clone(),
                departing_unit.clone(),
            ),
            _ => (None, None, None, None),
        };
        let action_id = match event {
            Event::Action { id: Some(id), .. } => id.parse().ok(),
            _ => None,
        };
        HookCtx {
            home: home.to_path_buf(),
            unit: unit.to_string(),
            dispatch_path: event.dispatch_path(),
            leader,
            relation_id,
            remote_unit,
            remote_app,
            departing_unit,
            action_id,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    // Applied immediately (kept even if the hook fails).
    StatusSet {
        application: bool,
        status: String,
        message: String,
    },
    Log {
        level: String,
        message: String,
    },
    ActionLog {
        message: String,
    },
    ActionSet {
        results: BTreeMap<String, serde_json::Value>,
    },
    ActionFail {
        message: String,
    },
    AppVersion {
        version: String,
    },
    // Queued: committed only when the hook exits 0.
    RelationSet {
        relation_id: u64,
        application: bool,
        data: Bag,
    },
    StateSet {
        data: Bag,
    },
    StateDelete {
        key: String,
    },
    OpenPort {
        port: String,
    },
    ClosePort {
        port: String,
    },
    SecretAdd {
        secret: Secret,
    },
    SecretSet {
        id: String,
        content: Option<Bag>,
        label: Option<String>,
        description: Option<String>,
    },
    SecretTrack {
        id: String,
        unit: String,
        label: Option<String>,
        revision: u64,
    },
    SecretGrant {
        id: String,
        grant: Grant,
    },
    SecretRevoke {
        id: String,
        relation_id: Option<u64>,
        app: Option<String>,
        unit: Option<String>,
    },
    SecretRemove {
        id: String,
        revision: Option<u64>,
    },
}

impl Op {
    pub fn is_immediate(&self) -> bool {
        matches!(
            self,
            Op::StatusSet { .. }
                | Op::Log { .. }
                | Op::ActionLog { .. }
                | Op::ActionSet { .. }
                | Op::ActionFail { .. }
                | Op::AppVersion { .. }
        )
    }
}

/// One hook-tool invocation, recorded for `jujulocal calls` and the tests
/// (which count calls and check that no secret ever appears in argv).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub exit: i32,
    /// Time the tool itself took (not counting process start-up), in milliseconds.
    #[serde(default)]
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Journal {
    pub ops: Vec<Op>,
    pub calls: Vec<Call>,
    /// Secret revisions that became visible to consumers (to fire secret-changed).
    #[serde(default)]
    pub new_revisions: Vec<String>,
}

pub fn ctx_path(dir: &Path) -> PathBuf {
    dir.join("context.json")
}
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal.json")
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(Area::Model, path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        area: Area::Model,
        path: path.to_path_buf(),
        source,
    })
}

pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), Error> {
    let text = serde_json::to_string(v).map_err(|source| Error::JsonEncode {
        area: Area::Model,
        source,
    })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(Error::io(Area::Model, &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(Area::Model, path))
}

/// Applies a finished hook's journal to the model as the unit agent does: immediate
/// operations always, queued ones only when the hook exited 0.
pub fn commit(model: &mut Model, ctx: &HookCtx, journal: &Journal, succeeded: bool) {
    for op in journal.ops.iter().filter(|o| o.is_immediate() || succeeded) {
        apply(model, ctx, op);
    }
}

fn status_entry(status: &str, message: &str) -> StatusEntry {
    StatusEntry::new(status, message)
}

/// Applies one operation to the model, as the unit in `ctx`.
pub fn apply(model: &mut Model, ctx: &HookCtx, op: &Op) {
    let app = ctx.app().to_string();
    match op {
        Op::StatusSet {
            application,
            status,
            message,
        } => {
            let entry = status_entry(status, message);
            if let Ok(a) = model.app_mut(&app) {
                if *application {
                    a.status = Some(entry.clone());
                    a.status_history.push(entry);
                } else if let Some(u) = a.units.get_mut(&ctx.unit) {
                    u.status = Some(entry.clone());
                    u.status_history.push(entry);
                }
            }
        }
        Op::Log { .. } => {}
        Op::ActionLog { message } => {
            if let Some(a) = action_mut(model, ctx) {
                a.log.push(message.clone());
            }
        }
        Op::ActionSet { results } => {
            if let Some(a) = action_mut(model, ctx) {
                for (k, v) in results {
                    merge_dotted(&mut a.results, k, v.clone());
                }
            }
        }
        Op::ActionFail { message } => {
            if let Some(a) = action_mut(model, ctx) {
                a.status = "failed".into();
                a.message = Some(message.clone());
            }
        }
        Op::AppVersion { version } => {
            if let Some(u) = model
                .applications
                .get_mut(&app)
                .and_then(|a| a.units.get_mut(&ctx.unit))
            {
                u.workload_version = version.clone();
            }
        }
        Op::RelationSet {
            relation_id,
            application,
            data,
        } => {
            if let Some(rel) = model.relation_mut(*relation_id) {
                let bag = if *application {
                    rel.app_data.entry(app.clone()).or_default()
                } else {
                    rel.unit_data.entry(ctx.unit.clone()).or_default()
                };
                merge_bag(bag, data);
            }
        }
        Op::StateSet { data } => {
            if let Some(u) = unit_mut(model, ctx) {
                merge_bag(&mut u.state, data);
            }
        }
        Op::StateDelete { key } => {
            if let Some(u) = unit_mut(model, ctx) {
                u.state.remove(key);
            }
        }
        Op::OpenPort { port } => {
            if let Some(u) = unit_mut(model, ctx) {
                if !u.opened_ports.contains(port) {
                    u.opened_ports.push(port.clone());
                }
            }
        }
        Op::ClosePort { port } => {
            if let Some(u) = unit_mut(model, ctx) {
                u.opened_ports.retain(|p| p != port);
            }
        }
        Op::SecretAdd { secret } => {
            model.secrets.insert(secret.id.clone(), secret.clone());
        }
        Op::SecretSet {
            id,
            content,
            label,
            description,
        } => {
            if let Some(s) = model.secrets.get_mut(id) {
                if let Some(c) = content {
                    let rev = s.latest().map(|r| r.revision + 1).unwrap_or(1);
                    s.revisions.push(SecretRevision {
                        revision: rev,
                        content: c.clone(),
                    });
                }
                if label.is_some() {
                    s.label = label.clone();
                }
                if description.is_some() {
                    s.description = description.clone();
                }
            }
        }
        Op::SecretTrack {
            id,
            unit,
            label,
            revision,
        } => {
            if let Some(s) = model.secrets.get_mut(id) {
                if s.owner == *unit || s.owner == app_of(unit) {
                    s.owner_tracking.insert(unit.clone(), *revision);
                } else {
                    let c = s
                        .consumers
                        .entry(unit.clone())
                        .or_insert_with(Consumer::default);
                    c.revision = *revision;
                    if label.is_some() {
                        c.label = label.clone();
                    }
                }
            }
        }
        Op::SecretGrant { id, grant } => {
            if let Some(s) = model.secrets.get_mut(id) {
                s.grants.retain(|g| {
                    !(g.relation_id == grant.relation_id
                        && g.app == grant.app
                        && g.unit == grant.unit)
                });
                s.grants.push(grant.clone());
            }
        }
        Op::SecretRevoke {
            id,
            relation_id,
            app,
            unit,
        } => {
            if let Some(s) = model.secrets.get_mut(id) {
                s.grants.retain(|g| {
                    !(relation_id.is_none_or(|r| g.relation_id == r)
                        && app.as_ref().is_none_or(|a| &g.app == a)
                        && unit.as_ref().is_none_or(|u| g.unit.as_ref() == Some(u)))
                });
            }
        }
        Op::SecretRemove { id, revision } => match revision {
            None => {
                model.secrets.remove(id);
            }
            Some(rev) => {
                if let Some(s) = model.secrets.get_mut(id) {
                    s.revisions.retain(|r| r.revision != *rev);
                }
            }
        },
    }
}

fn merge_bag(bag: &mut Bag, data: &Bag) {
    for (k, v) in data {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}

fn merge_dotted(map: &mut BTreeMap<String, serde_json::Value>, key: &str, v: serde_json::Value) {
    match key.split_once('.') {
        None => {
            map.insert(key.to_string(), v);
        }
        Some((head, rest)) => {
            let entry = map
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(obj) = entry {
                let mut inner: BTreeMap<String, serde_json::Value> =
                    obj.clone().into_iter().collect();
                merge_dotted(&mut inner, rest, v);
                *obj = inner.into_iter().collect();
            }
        }
    }
}

fn unit_mut<'a>(model: &'a mut Model, ctx: &HookCtx) -> Option<&'a mut crate::model::Unit> {
    model
        .applications
        .get_mut(ctx.app())
        .and_then(|a| a.units.get_mut(&ctx.unit))
}

fn action_mut<'a>(model: &'a mut Model, ctx: &HookCtx) -> Option<&'a mut crate::model::Action> {
    let id = ctx.action_id?;
    model.actions.iter_mut().find(|a| a.id == id)
}
