//! The model JujuLocal keeps on disk (`<home>/model.json`): applications, units,
//! relations and their databags, secrets, statuses with history, actions.
//!
//! Only the controller process writes it; hook tools read it and queue their
//! writes in the running hook's journal (see `journal.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Area;
use crate::meta::CharmMeta;
use crate::Error;

pub type Bag = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusEntry {
    pub status: String,
    pub message: String,
    pub since: String,
}

impl StatusEntry {
    pub fn new(status: &str, message: &str) -> Self {
        Self {
            status: status.into(),
            message: message.into(),
            since: crate::util::now_rfc3339(),
        }
    }
}

/// A Pebble check as the unit agent last saw it. Inactive checks are not remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckHealth {
    Up,
    Down,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Unit {
    pub status: Option<StatusEntry>,
    #[serde(default)]
    pub status_history: Vec<StatusEntry>,
    #[serde(default)]
    pub workload_version: String,
    #[serde(default)]
    pub state: Bag,
    #[serde(default)]
    pub opened_ports: Vec<String>,
    /// Last Pebble boot-id seen per container (pebble-ready fires when it changes).
    #[serde(default)]
    pub boot_ids: BTreeMap<String, String>,
    /// Last Pebble check status seen per container and check (pebble-check-failed and
    /// -recovered fire on its transitions).
    #[serde(default)]
    pub checks: BTreeMap<String, BTreeMap<String, CheckHealth>>,
    /// Hook that failed last (the unit is in error until it is retried successfully).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub address: String,
    /// Being removed: `goal-state` says `dying` for it (a scale-down marks every unit
    /// it removes at once, before the first one leaves).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dying: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    /// Charm directory for a deployed charm; `None` for an application this model only plays
    /// (the remote side of a relation, e.g. postgresql-k8s), whose databags are written by the CLI.
    pub charm_dir: Option<PathBuf>,
    pub meta: CharmMeta,
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    pub leader: Option<String>,
    pub units: BTreeMap<String, Unit>,
    pub status: Option<StatusEntry>,
    #[serde(default)]
    pub status_history: Vec<StatusEntry>,
    #[serde(default)]
    pub next_unit: u32,
    /// Run units in pods (real Pebble per container).
    #[serde(default)]
    pub pods: bool,
    /// Set when the application is a stand-in for a Charmhub charm (`juju deploy NAME`):
    /// played by JujuLocal, but shown in `juju status` as that charm's application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<StandIn>,
}

/// The Charmhub charm a played application stands in for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StandIn {
    /// The charm's name on Charmhub, e.g. `prometheus-k8s`.
    pub charm: String,
    /// The `--channel` it was deployed with (`latest/stable` without one).
    #[serde(default)]
    pub channel: Option<String>,
}

impl Application {
    pub fn is_played(&self) -> bool {
        self.charm_dir.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelationEnd {
    pub app: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relation {
    pub id: u64,
    pub interface: String,
    /// One end for a peer relation, two otherwise.
    pub ends: Vec<RelationEnd>,
    #[serde(default)]
    pub app_data: BTreeMap<String, Bag>,
    #[serde(default)]
    pub unit_data: BTreeMap<String, Bag>,
    /// Units that have joined (seen by the other side), per application.
    #[serde(default)]
    pub joined: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub dying: bool,
}

impl Relation {
    pub fn is_peer(&self) -> bool {
        self.ends.len() == 1
    }
    pub fn end_for(&self, app: &str) -> Option<&RelationEnd> {
        self.ends.iter().find(|e| e.app == app)
    }
    /// The application on the other side (itself for a peer relation).
    pub fn remote_app(&self, app: &str) -> Option<&str> {
        if self.is_peer() {
            return self.ends.first().map(|e| e.app.as_str());
        }
        self.ends
            .iter()
            .find(|e| e.app != app)
            .map(|e| e.app.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRevision {
    pub revision: u64,
    pub content: Bag,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Consumer {
    pub label: Option<String>,
    pub revision: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub relation_id: u64,
    /// Granted to this application (all its units), or to one unit.
    pub app: String,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    /// The bare ID (a URI is `secret:<id>`).
    pub id: String,
    /// An application name or a unit name.
    pub owner: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub rotate: Option<String>,
    pub expire: Option<String>,
    pub revisions: Vec<SecretRevision>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Per consuming unit: its label and tracked revision.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    /// Owner units' tracked revision (owners track too since Juju 3.1).
    #[serde(default)]
    pub owner_tracking: BTreeMap<String, u64>,
}

impl Secret {
    /// A new secret with one revision, no grants and no consumers.
    pub fn new(id: &str, owner: &str, label: Option<&str>, content: Bag) -> Self {
        Secret {
            id: id.into(),
            owner: owner.into(),
            label: label.map(str::to_string),
            description: None,
            rotate: None,
            expire: None,
            revisions: vec![SecretRevision {
                revision: 1,
                content,
            }],
            grants: vec![],
            consumers: BTreeMap::new(),
            owner_tracking: BTreeMap::new(),
        }
    }

    pub fn latest(&self) -> Option<&SecretRevision> {
        self.revisions.last()
    }
    pub fn revision(&self, rev: u64) -> Option<&SecretRevision> {
        self.revisions.iter().find(|r| r.revision == rev)
    }
    pub fn uri(&self) -> String {
        format!("secret:{}", self.id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub id: u64,
    pub unit: String,
    pub name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub status: String,
    pub message: Option<String>,
    #[serde(default)]
    pub results: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub uuid: String,
    #[serde(default)]
    pub applications: BTreeMap<String, Application>,
    #[serde(default)]
    pub relations: Vec<Relation>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub next_relation_id: u64,
    #[serde(default)]
    pub next_action_id: u64,
    #[serde(default)]
    pub next_hook: u64,
}

impl Model {
    pub fn new(name: &str) -> Result<Self, Error> {
        Ok(Self {
            name: name.into(),
            uuid: crate::util::uuid4()?,
            applications: BTreeMap::new(),
            relations: vec![],
            secrets: BTreeMap::new(),
            actions: vec![],
            next_relation_id: 0,
            next_action_id: 1,
            next_hook: 1,
        })
    }

    pub fn path(home: &Path) -> PathBuf {
        home.join("model.json")
    }

    pub fn load(home: &Path) -> Result<Self, Error> {
        let path = Self::path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(Error::NoModel { path, source }),
        };
        serde_json::from_str(&text).map_err(|source| Error::CorruptModel { path, source })
    }

    pub fn save(&self, home: &Path) -> Result<(), Error> {
        let path = Self::path(home);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::JsonEncode {
            area: Area::Model,
            source,
        })?;
        std::fs::write(&tmp, text).map_err(Error::io(Area::Model, &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(Area::Model, &path))
    }

    pub fn app(&self, name: &str) -> Result<&Application, Error> {
        self.applications
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("application {name:?} not found")))
    }

    pub fn app_mut(&mut self, name: &str) -> Result<&mut Application, Error> {
        self.applications
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(format!("application {name:?} not found")))
    }

    pub fn relation(&self, id: u64) -> Option<&Relation> {
        self.relations.iter().find(|r| r.id == id)
    }

    pub fn relation_mut(&mut self, id: u64) -> Option<&mut Relation> {
        self.relations.iter_mut().find(|r| r.id == id)
    }

    /// Live relations of `app` on `endpoint`.
    pub fn relations_of(&self, app: &str, endpoint: &str) -> Vec<&Relation> {
        self.relations
            .iter()
            .filter(|r| {
                r.ends
                    .iter()
                    .any(|e| e.app == app && e.endpoint == endpoint)
            })
            .collect()
    }

    pub fn secret_by_uri(&self, uri: &str) -> Option<&Secret> {
        self.secrets.get(crate::util::secret_id(uri))
    }
}

pub fn app_of(unit: &str) -> &str {
    unit.split('/').next().unwrap_or(unit)
}
