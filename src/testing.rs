//! In-process fakes for unit tests: hook tools backed by a small in-memory model, and
//! workloads backed by an in-memory Pebble. Real-component tests live in `tests/`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use pebble::{CheckInfo, CheckStatus, Layer, PushOptions, ServiceInfo, ServiceStatus, Startup};
use serde_json::{Map, Value};

use crate::juju::tools::*;
use crate::juju::RelationId;
use crate::reconcile::Workloads;
use crate::workload::{PebbleResult, Workload};

#[derive(Default)]
pub struct FakeTools {
    pub config: Map<String, Value>,
    pub leader: bool,
    pub relations: BTreeMap<RelationId, BTreeMap<String, Databag>>,
    pub secrets: RefCell<BTreeMap<String, (String, Databag)>>,
    pub status: RefCell<Option<Status>>,
    pub calls: RefCell<Vec<String>>,
    pub sets: RefCell<Vec<(RelationId, bool, Databag)>>,
}

impl FakeTools {
    fn call(&self, name: &str) {
        self.calls.borrow_mut().push(name.to_string());
    }
}

impl HookTools for FakeTools {
    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("config-get");
        Ok(self.config.clone())
    }
    fn is_leader(&self) -> ToolResult<bool> {
        self.call("is-leader");
        Ok(self.leader)
    }
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        self.call("relation-ids");
        Ok(self
            .relations
            .keys()
            .filter(|r| r.endpoint == endpoint)
            .cloned()
            .collect())
    }
    fn relation_list(&self, _: &RelationId) -> ToolResult<Vec<String>> {
        self.call("relation-list");
        Ok(vec![])
    }
    fn relation_remote_app(&self, _: &RelationId) -> ToolResult<Option<String>> {
        self.call("relation-list");
        Ok(None)
    }
    fn relation_get(&self, r: &RelationId, target: &str, _app: bool) -> ToolResult<Databag> {
        self.call("relation-get");
        let mut bag = self
            .relations
            .get(r)
            .and_then(|b| b.get(target))
            .cloned()
            .unwrap_or_default();
        for (rel, _, data) in self.sets.borrow().iter().filter(|(rel, _, _)| rel == r) {
            let _ = rel;
            bag.extend(data.clone());
        }
        Ok(bag)
    }
    fn relation_set(&self, r: &RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.call("relation-set");
        self.sets.borrow_mut().push((r.clone(), app, data.clone()));
        Ok(())
    }
    fn status_set(&self, status: &Status, _: bool) -> ToolResult<()> {
        self.call("status-set");
        *self.status.borrow_mut() = Some(status.clone());
        Ok(())
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn state_get(&self) -> ToolResult<Databag> {
        Ok(Databag::new())
    }
    fn state_set(&self, _: &Databag) -> ToolResult<()> {
        Ok(())
    }
    fn state_delete(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        _: SecretRead,
    ) -> ToolResult<Databag> {
        self.call("secret-get");
        let secrets = self.secrets.borrow();
        secrets
            .iter()
            .find(|(uri, (l, _))| Some(uri.as_str()) == id || Some(l.as_str()) == label)
            .map(|(_, (_, c))| c.clone())
            .ok_or_else(|| {
                ToolError::new("secret-get", ToolErrorKind::NotFound, "secret not found")
            })
    }
    fn secret_info_by_label(&self, label: &str) -> ToolResult<Option<SecretInfo>> {
        self.call("secret-info-get");
        Ok(self
            .secrets
            .borrow()
            .iter()
            .find(|(_, (l, _))| l == label)
            .map(|(id, _)| SecretInfo {
                id: id.clone(),
                label: Some(label.into()),
                revision: 1,
            }))
    }
    fn secret_add(
        &self,
        content: &Databag,
        label: &str,
        _: &str,
        _: SecretOwner,
    ) -> ToolResult<String> {
        self.call("secret-add");
        let uri = format!("secret:fake{}", self.secrets.borrow().len());
        self.secrets
            .borrow_mut()
            .insert(uri.clone(), (label.to_string(), content.clone()));
        Ok(uri)
    }
    fn secret_set(&self, _: &str, _: &Databag) -> ToolResult<()> {
        Ok(())
    }
    fn network_get(&self, _: &str) -> ToolResult<NetworkInfo> {
        Ok(NetworkInfo {
            bind_address: Some("10.1.1.1".into()),
            ingress_addresses: vec![],
        })
    }
    fn open_port(&self, _: u16) -> ToolResult<()> {
        Ok(())
    }
    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        Ok(vec![])
    }
    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        Ok(Map::new())
    }
    fn action_set(&self, _: &Databag) -> ToolResult<()> {
        Ok(())
    }
    fn action_fail(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn action_log(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
}

/// An in-memory Pebble: plan, files, services; counts what the charm did.
#[derive(Default)]
pub struct FakePebble {
    pub reachable: bool,
    pub plan: RefCell<Layer>,
    pub files: RefCell<BTreeMap<String, Vec<u8>>>,
    pub running: RefCell<BTreeMap<String, bool>>,
    pub ready: bool,
    pub pushes: RefCell<Vec<String>>,
    pub layers_added: RefCell<u32>,
    /// Services (re)started by replan because their spec changed.
    pub restarts: RefCell<u32>,
    started_specs: RefCell<BTreeMap<String, pebble::Service>>,
}

impl FakePebble {
    pub fn up() -> Self {
        Self {
            reachable: true,
            ready: true,
            ..Default::default()
        }
    }
    fn check(&self) -> PebbleResult<()> {
        if self.reachable {
            Ok(())
        } else {
            Err(pebble::Error::Connect {
                socket: "/fake".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    }
}

impl Workload for FakePebble {
    fn name(&self) -> &str {
        "fake"
    }
    fn plan(&self) -> PebbleResult<Layer> {
        self.check()?;
        Ok(self.plan.borrow().clone())
    }
    fn add_layer(&self, _: &str, layer: &Layer) -> PebbleResult<()> {
        self.check()?;
        *self.layers_added.borrow_mut() += 1;
        let mut plan = self.plan.borrow_mut();
        plan.services.extend(layer.services.clone());
        plan.checks.extend(layer.checks.clone());
        Ok(())
    }
    fn replan(&self) -> PebbleResult<()> {
        self.check()?;
        for (name, svc) in self.plan.borrow().services.iter() {
            let changed = self.started_specs.borrow().get(name) != Some(svc);
            let running = *self.running.borrow().get(name).unwrap_or(&false);
            if (changed || !running) && svc.startup == Some(Startup::Enabled) {
                *self.restarts.borrow_mut() += 1;
                self.running.borrow_mut().insert(name.clone(), true);
                self.started_specs
                    .borrow_mut()
                    .insert(name.clone(), svc.clone());
            }
        }
        Ok(())
    }
    fn stop(&self, services: &[&str]) -> PebbleResult<()> {
        for s in services {
            self.running.borrow_mut().insert(s.to_string(), false);
        }
        Ok(())
    }
    fn pull(&self, path: &str) -> PebbleResult<Option<Vec<u8>>> {
        self.check()?;
        Ok(self.files.borrow().get(path).cloned())
    }
    fn push(&self, path: &str, content: &[u8], _: &PushOptions) -> PebbleResult<()> {
        self.check()?;
        self.pushes.borrow_mut().push(path.to_string());
        self.files
            .borrow_mut()
            .insert(path.to_string(), content.to_vec());
        Ok(())
    }
    fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
        self.check()?;
        Ok(self
            .plan
            .borrow()
            .services
            .keys()
            .map(|n| ServiceInfo {
                name: n.clone(),
                startup: Startup::Enabled,
                current: if *self.running.borrow().get(n).unwrap_or(&false) {
                    ServiceStatus::Active
                } else {
                    ServiceStatus::Inactive
                },
                current_since: None,
            })
            .collect())
    }
    fn probe(&self, _: &str) -> bool {
        self.ready
    }
    fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
        self.check()?;
        Ok(self
            .plan
            .borrow()
            .checks
            .keys()
            .map(|n| CheckInfo {
                name: n.clone(),
                level: None,
                startup: None,
                status: CheckStatus::Up,
                successes: u64::from(self.ready),
                failures: 0,
                threshold: 3,
                change_id: None,
                prev_change_id: None,
            })
            .collect())
    }
}

pub struct FakePod {
    pub synapse: FakePebble,
    pub nginx: FakePebble,
    /// The data volume as the charm container sees it.
    pub data: tempfile::TempDir,
}

impl Workloads for FakePod {
    fn container(&self, name: &str) -> Box<dyn Workload + '_> {
        struct Ref<'a>(&'a FakePebble);
        impl Workload for Ref<'_> {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn plan(&self) -> PebbleResult<Layer> {
                self.0.plan()
            }
            fn add_layer(&self, l: &str, layer: &Layer) -> PebbleResult<()> {
                self.0.add_layer(l, layer)
            }
            fn replan(&self) -> PebbleResult<()> {
                self.0.replan()
            }
            fn stop(&self, s: &[&str]) -> PebbleResult<()> {
                self.0.stop(s)
            }
            fn pull(&self, p: &str) -> PebbleResult<Option<Vec<u8>>> {
                self.0.pull(p)
            }
            fn push(&self, p: &str, c: &[u8], o: &PushOptions) -> PebbleResult<()> {
                self.0.push(p, c, o)
            }
            fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
                self.0.services()
            }
            fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
                self.0.checks()
            }
            fn probe(&self, u: &str) -> bool {
                self.0.probe(u)
            }
        }
        Box::new(Ref(if name == crate::nginx::CONTAINER {
            &self.nginx
        } else {
            &self.synapse
        }))
    }
    fn own_data_dir(&self, _: u32) -> std::io::Result<()> {
        Ok(())
    }
    fn data_dir(&self) -> std::path::PathBuf {
        self.data.path().to_path_buf()
    }
}
