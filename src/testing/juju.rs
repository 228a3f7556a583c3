//! The in-memory model of Juju that every unit test uses: JujuLocal's own model (app
//! and unit databags on both sides, leaders, secrets with owners, grants and
//! revisions) and JujuLocal's own hook tools, run in-process through the same
//! command lines the charm gives real Juju. A hook's writes are committed only when
//! it succeeds, as the unit agent does. So a unit test cannot pass on behaviour that
//! JujuLocal (and Juju) would refuse.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use jujulocal::journal::{self, Call, HookCtx, Op};
use jujulocal::meta::{CharmMeta, EndpointMeta, Role};
use jujulocal::model::{Application, Grant, Model, Relation, RelationEnd, Secret, Unit};
use jujulocal::tools::Session;
use serde_json::Value;

use crate::juju::process::{ProcessTools, ToolRunner};
use crate::juju::tools::{Databag, ToolError, ToolResult};
use crate::juju::{CachedTools, Event, HookContext, RelationId, Status, StatusKind};
use crate::workload::Workloads;

pub const APP: &str = "synapse";
pub const UNIT: &str = "synapse/0";
pub const MODEL_NAME: &str = "chat";
pub const MODEL_UUID: &str = "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab";
/// The address `network-get` gives the charm's units (no traffic is sent to it).
pub const UNIT_ADDRESS: &str = "10.1.1.7";

/// Runs JujuLocal's hook tools in this process for one hook.
pub struct InMemory {
    session: RefCell<Session>,
}

impl ToolRunner for InMemory {
    fn run(&self, tool: &'static str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match self.session.borrow_mut().call(tool, &args, stdin) {
            Ok(out) => Ok(out.into_bytes()),
            // The executable prints `ERROR <message>`; the charm classifies that text.
            Err(e) => Err(ToolError::from_stderr(tool, &format!("ERROR {e}"))),
        }
    }
}

/// The hook tools one hook of a unit test sees.
pub type TestTools = CachedTools<ProcessTools<InMemory>>;

/// A Juju model holding the `synapse` application (metadata from this repository).
pub struct Juju {
    pub model: Model,
    /// Where units keep their hints between dispatches.
    charm_dir: tempfile::TempDir,
    calls: Vec<Call>,
    sets: Vec<(RelationId, bool, Databag)>,
}

impl Default for Juju {
    fn default() -> Self {
        Self::new()
    }
}

impl Juju {
    /// `synapse` with one unit, `synapse/0`, which leads; the peer relation exists.
    pub fn new() -> Self {
        let meta = CharmMeta::load(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("the charm's metadata: {e}"));
        let mut model = Model::new(MODEL_NAME).unwrap_or_else(|e| panic!("a model: {e}"));
        model.uuid = MODEL_UUID.into();
        model.applications.insert(
            APP.into(),
            Application {
                charm_dir: Some(env!("CARGO_MANIFEST_DIR").into()),
                meta,
                config: BTreeMap::new(),
                leader: None,
                units: BTreeMap::new(),
                status: None,
                status_history: vec![],
                next_unit: 0,
                pods: false,
                stand_in: None,
            },
        );
        let mut juju = Self {
            model,
            charm_dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            calls: vec![],
            sets: vec![],
        };
        juju.add_unit();
        juju.model.relations.push(Relation {
            id: 0,
            interface: "synapse-peers".into(),
            ends: vec![RelationEnd {
                app: APP.into(),
                endpoint: crate::peers::ENDPOINT.into(),
            }],
            app_data: BTreeMap::new(),
            unit_data: BTreeMap::new(),
            joined: BTreeMap::from([(APP.to_string(), vec![UNIT.to_string()])]),
            dying: false,
        });
        juju.model.next_relation_id = 1;
        juju
    }

    /// A model without the peer relation (it comes with the first unit in Juju, but
    /// some tests look at one concern alone).
    pub fn without_peers() -> Self {
        let mut juju = Self::new();
        juju.model.relations.clear();
        juju
    }

    /// With this configuration (JSON object of option → value).
    pub fn with_config(mut self, config: Value) -> Self {
        let Value::Object(map) = config else {
            panic!("config must be a JSON object")
        };
        self.app_mut().config = map.into_iter().collect();
        self
    }

    pub fn set_config(&mut self, key: &str, value: Value) {
        self.app_mut().config.insert(key.into(), value);
    }

    fn app_mut(&mut self) -> &mut Application {
        self.model
            .applications
            .get_mut(APP)
            .unwrap_or_else(|| panic!("no {APP} application"))
    }

    /// Adds a unit of `synapse` (the first one leads) and returns its name.
    pub fn add_unit(&mut self) -> String {
        let app = self.app_mut();
        let unit = format!("{APP}/{}", app.next_unit);
        app.next_unit += 1;
        app.units.insert(
            unit.clone(),
            Unit {
                address: UNIT_ADDRESS.into(),
                ..Default::default()
            },
        );
        if app.leader.is_none() {
            app.leader = Some(unit.clone());
        }
        for rel in self.model.relations.iter_mut().filter(|r| r.is_peer()) {
            rel.joined.entry(APP.into()).or_default().push(unit.clone());
        }
        unit
    }

    /// Removes `unit` from the application (and its peer relation), as scaling down does.
    pub fn remove_unit(&mut self, unit: &str) {
        self.app_mut().units.remove(unit);
        for rel in self.model.relations.iter_mut().filter(|r| r.is_peer()) {
            if let Some(joined) = rel.joined.get_mut(APP) {
                joined.retain(|u| u != unit);
            }
        }
    }

    /// Makes `unit` the leader (`None`: no unit leads).
    pub fn set_leader(&mut self, unit: Option<&str>) {
        self.app_mut().leader = unit.map(str::to_string);
    }

    /// Relates `synapse` (endpoint `rel.endpoint`) to an application this model plays,
    /// whose units are `remote_units` (`app/n`); the remote application is named after
    /// the units (or `remote_app` when there are none).
    pub fn relate(&mut self, rel: &RelationId, remote_app: &str, remote_units: &[&str]) {
        let ours = self
            .model
            .applications
            .get(APP)
            .and_then(|a| a.meta.endpoint(&rel.endpoint))
            .cloned()
            .unwrap_or_else(|| panic!("synapse has no endpoint {:?}", rel.endpoint));
        let role = match ours.role {
            Role::Requires => Role::Provides,
            _ => Role::Requires,
        };
        let remote = self
            .model
            .applications
            .entry(remote_app.into())
            .or_insert_with(|| Application {
                charm_dir: None,
                meta: CharmMeta {
                    name: remote_app.into(),
                    ..Default::default()
                },
                config: BTreeMap::new(),
                leader: None,
                units: BTreeMap::new(),
                status: None,
                status_history: vec![],
                next_unit: 0,
                pods: false,
                stand_in: None,
            });
        remote.meta.endpoints.insert(
            rel.endpoint.clone(),
            EndpointMeta {
                role,
                interface: ours.interface.clone(),
                limit: None,
            },
        );
        for u in remote_units {
            remote.units.entry(u.to_string()).or_default();
        }
        if remote.leader.is_none() {
            remote.leader = remote_units.first().map(|u| u.to_string());
        }
        let units: Vec<String> = self
            .model
            .applications
            .get(APP)
            .map(|a| a.units.keys().cloned().collect())
            .unwrap_or_default();
        self.model.relations.retain(|r| r.id != rel.id);
        self.model.relations.push(Relation {
            id: rel.id,
            interface: ours.interface,
            ends: vec![
                RelationEnd {
                    app: APP.into(),
                    endpoint: rel.endpoint.clone(),
                },
                RelationEnd {
                    app: remote_app.into(),
                    endpoint: rel.endpoint.clone(),
                },
            ],
            app_data: BTreeMap::new(),
            unit_data: BTreeMap::new(),
            joined: BTreeMap::from([
                (APP.to_string(), units),
                (
                    remote_app.to_string(),
                    remote_units.iter().map(|u| u.to_string()).collect(),
                ),
            ]),
            dying: false,
        });
        self.model.next_relation_id = self.model.next_relation_id.max(rel.id + 1);
    }

    /// Another unit joins (or, with `joined = false`, leaves) a relation.
    pub fn set_joined(&mut self, rel: &RelationId, unit: &str, joined: bool) {
        let r = self.relation_mut(rel);
        let units = r.joined.entry(app_of(unit).into()).or_default();
        units.retain(|u| u != unit);
        if joined {
            units.push(unit.into());
        }
    }

    /// Removes a relation from the model (after its broken hook).
    pub fn remove_relation(&mut self, rel: &RelationId) {
        self.model.relations.retain(|r| r.id != rel.id);
    }

    fn relation_mut(&mut self, rel: &RelationId) -> &mut Relation {
        self.model
            .relation_mut(rel.id)
            .unwrap_or_else(|| panic!("no relation {rel}"))
    }

    fn relation(&self, rel: &RelationId) -> &Relation {
        self.model
            .relation(rel.id)
            .unwrap_or_else(|| panic!("no relation {rel}"))
    }

    /// Sets an application's databag (what a remote charm or the leader wrote).
    pub fn set_app_data(&mut self, rel: &RelationId, app: &str, data: &[(&str, &str)]) {
        let bag = self
            .relation_mut(rel)
            .app_data
            .entry(app.into())
            .or_default();
        for (k, v) in data {
            bag.insert(k.to_string(), v.to_string());
        }
    }

    /// Sets a unit's databag.
    pub fn set_unit_data(&mut self, rel: &RelationId, unit: &str, data: &[(&str, &str)]) {
        let bag = self
            .relation_mut(rel)
            .unit_data
            .entry(unit.into())
            .or_default();
        for (k, v) in data {
            bag.insert(k.to_string(), v.to_string());
        }
    }

    pub fn app_data(&self, rel: &RelationId, app: &str) -> Databag {
        self.relation(rel)
            .app_data
            .get(app)
            .cloned()
            .unwrap_or_default()
    }

    pub fn unit_data(&self, rel: &RelationId, unit: &str) -> Databag {
        self.relation(rel)
            .unit_data
            .get(unit)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a secret owned by `owner` (an application or unit) and returns its URI.
    /// `grant` gives it to an application over a relation, as a provider does.
    pub fn add_secret(
        &mut self,
        owner: &str,
        label: Option<&str>,
        content: &[(&str, &str)],
        grant: Option<(&RelationId, &str)>,
    ) -> String {
        let id = format!("s{:019}", self.model.secrets.len() + 1);
        let content = content
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut secret = Secret::new(&id, owner, label, content);
        secret.grants = grant
            .map(|(rel, app)| Grant {
                relation_id: rel.id,
                app: app.into(),
                unit: None,
            })
            .into_iter()
            .collect();
        let uri = secret.uri();
        self.model.secrets.insert(id, secret);
        uri
    }

    /// The secrets an application or unit owns.
    pub fn secrets_owned_by(&self, owner: &str) -> Vec<&Secret> {
        self.model
            .secrets
            .values()
            .filter(|s| s.owner == owner)
            .collect()
    }

    /// The hook context Juju gives `unit` for `event`.
    pub fn context(&self, unit: &str, event: Event) -> HookContext {
        HookContext {
            unit_name: unit.into(),
            app_name: app_of(unit).into(),
            unit_number: unit
                .rsplit_once('/')
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or(0),
            model_name: self.model.name.clone(),
            model_uuid: self.model.uuid.clone(),
            juju_version: Some("3.6.4".into()),
            event,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }

    /// Runs one hook of `unit` for `event`: `body` gets the context and the hook tools;
    /// the hook's writes are committed when it returns `Ok`, as Juju does.
    pub fn hook<T, E>(
        &mut self,
        unit: &str,
        event: Event,
        body: impl FnOnce(&HookContext, &TestTools) -> Result<T, E>,
    ) -> Result<T, E> {
        let ctx = self.context(unit, event);
        let leader = self
            .model
            .applications
            .get(APP)
            .is_some_and(|a| a.leader.as_deref() == Some(unit));
        let hook_ctx = HookCtx::for_event(std::path::Path::new(""), unit, leader, &ctx.event);
        let session = Session::new(hook_ctx.clone(), self.model.clone());
        let tools = CachedTools::new(ProcessTools::new(InMemory {
            session: RefCell::new(session),
        }));
        let result = body(&ctx, &tools);
        let session = tools.into_inner().into_runner().session.into_inner();
        let journal = session.journal().clone();
        journal::commit(&mut self.model, &hook_ctx, &journal, result.is_ok());
        for op in &journal.ops {
            if let Op::RelationSet {
                relation_id,
                application,
                data,
            } = op
            {
                let endpoint = self
                    .model
                    .relation(*relation_id)
                    .and_then(|r| r.end_for(APP))
                    .map(|e| e.endpoint.clone())
                    .unwrap_or_default();
                self.sets.push((
                    RelationId {
                        endpoint,
                        id: *relation_id,
                    },
                    *application,
                    data.clone(),
                ));
            }
        }
        self.calls.extend(journal.calls);
        result
    }

    /// Runs the charm's dispatch for `event` on `unit`, against `workloads`.
    pub fn dispatch(
        &mut self,
        unit: &str,
        event: Event,
        workloads: &dyn Workloads,
    ) -> Result<(), crate::charm::DispatchError> {
        let dir = self.charm_dir.path().to_path_buf();
        self.hook(unit, event, |ctx, tools| {
            crate::charm::dispatch(ctx, tools, workloads, &dir)
        })
    }

    /// The workload status of a unit, as `juju status` shows it.
    pub fn status(&self, unit: &str) -> Option<Status> {
        let entry = self
            .model
            .applications
            .get(app_of(unit))?
            .units
            .get(unit)?
            .status
            .clone()?;
        let kind = match entry.status.as_str() {
            "active" => StatusKind::Active,
            "blocked" => StatusKind::Blocked,
            "waiting" => StatusKind::Waiting,
            _ => StatusKind::Maintenance,
        };
        Some(Status::new(kind, entry.message))
    }

    /// The hook tools called since the last take, by name.
    pub fn take_tool_names(&mut self) -> Vec<String> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|c| c.tool)
            .collect()
    }

    /// The hook tools called since the last take, each as `tool <relation> <target>
    /// [--app]` (the format, file and stdin arguments left out).
    pub fn take_calls(&mut self) -> Vec<String> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|c| summary(&c))
            .collect()
    }

    /// The relation-set writes since the last take (committed or not).
    pub fn take_sets(&mut self) -> Vec<(RelationId, bool, Databag)> {
        std::mem::take(&mut self.sets)
    }

    /// The exit codes of the tools called since the last take that failed.
    pub fn failed_calls(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.exit != 0)
            .map(summary)
            .collect()
    }
}

fn app_of(unit: &str) -> &str {
    unit.split('/').next().unwrap_or(unit)
}

/// `relation-get --format=json -r db:1 --app - synapse` → `relation-get db:1 synapse --app`.
fn summary(call: &Call) -> String {
    let mut relation = None;
    let mut app = false;
    let mut rest = vec![];
    let mut args = call.args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-r" => relation = args.next().cloned(),
            "--app" => app = true,
            "--file" => {
                args.next();
            }
            "-" | "--" => {}
            a if a.starts_with("--format") => {}
            a => rest.push(a.to_string()),
        }
    }
    let mut out = vec![call.tool.clone()];
    out.extend(relation);
    out.extend(rest);
    if app {
        out.push("--app".into());
    }
    out.join(" ")
}
