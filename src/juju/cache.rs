//! A read-through cache over any [`HookTools`]: one dispatch never runs the same read
//! twice, and writes keep the cached view consistent (Juju shows a unit its own
//! uncommitted relation and state writes, so the cache does the same).

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::event::RelationId;
use super::tools::*;

#[derive(Default)]
struct Cache {
    config: Option<serde_json::Map<String, Value>>,
    leader: Option<bool>,
    relation_ids: HashMap<String, Vec<RelationId>>,
    relation_list: HashMap<RelationId, Vec<String>>,
    remote_app: HashMap<RelationId, Option<String>>,
    relation_data: HashMap<(RelationId, String, bool), Databag>,
    state: Option<Databag>,
    secrets: HashMap<(Option<String>, Option<String>, SecretRead), Databag>,
    secret_info: HashMap<String, Option<SecretInfo>>,
    network: HashMap<String, NetworkInfo>,
    opened_ports: Option<Vec<String>>,
    action: Option<serde_json::Map<String, Value>>,
}

pub struct CachedTools<T> {
    inner: T,
    cache: RefCell<Cache>,
}

impl<T: HookTools> CachedTools<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            cache: RefCell::new(Cache::default()),
        }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

macro_rules! cached {
    ($self:ident, $field:ident, $call:expr) => {{
        if let Some(v) = &$self.cache.borrow().$field {
            return Ok(v.clone());
        }
        let v = $call?;
        $self.cache.borrow_mut().$field = Some(v.clone());
        Ok(v)
    }};
}

macro_rules! cached_map {
    ($self:ident, $field:ident, $key:expr, $call:expr) => {{
        let key = $key;
        if let Some(v) = $self.cache.borrow().$field.get(&key) {
            return Ok(v.clone());
        }
        let v = $call?;
        $self.cache.borrow_mut().$field.insert(key, v.clone());
        Ok(v)
    }};
}

impl<T: HookTools> HookTools for CachedTools<T> {
    fn config_get(&self) -> ToolResult<serde_json::Map<String, Value>> {
        cached!(self, config, self.inner.config_get())
    }

    fn is_leader(&self) -> ToolResult<bool> {
        cached!(self, leader, self.inner.is_leader())
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        cached_map!(
            self,
            relation_ids,
            endpoint.to_string(),
            self.inner.relation_ids(endpoint)
        )
    }

    fn planned_units(&self) -> ToolResult<Vec<String>> {
        // Asked at most once per dispatch (the topology's shell).
        self.inner.planned_units()
    }

    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<String>> {
        cached_map!(
            self,
            relation_list,
            relation.clone(),
            self.inner.relation_list(relation)
        )
    }

    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<String>> {
        cached_map!(
            self,
            remote_app,
            relation.clone(),
            self.inner.relation_remote_app(relation)
        )
    }

    fn relation_get(&self, relation: &RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        cached_map!(
            self,
            relation_data,
            (relation.clone(), target.to_string(), app),
            self.inner.relation_get(relation, target, app)
        )
    }

    fn relation_set(&self, relation: &RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.inner.relation_set(relation, app, data)?;
        // Keep any cached view of our own bag in step with the write.
        let mut cache = self.cache.borrow_mut();
        for ((rel, _, is_app), bag) in cache.relation_data.iter_mut() {
            if rel == relation && *is_app == app {
                merge_databag(bag, data);
            }
        }
        Ok(())
    }

    fn status_set(&self, status: &Status, application: bool) -> ToolResult<()> {
        self.inner.status_set(status, application)
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.inner.application_version_set(version)
    }

    fn state_get(&self) -> ToolResult<Databag> {
        cached!(self, state, self.inner.state_get())
    }

    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.inner.state_set(data)?;
        if let Some(state) = &mut self.cache.borrow_mut().state {
            state.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(())
    }

    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.inner.state_delete(key)?;
        if let Some(state) = &mut self.cache.borrow_mut().state {
            state.remove(key);
        }
        Ok(())
    }

    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        mode: SecretRead,
    ) -> ToolResult<Databag> {
        cached_map!(
            self,
            secrets,
            (id.map(str::to_string), label.map(str::to_string), mode),
            self.inner.secret_get(id, label, mode)
        )
    }

    fn secret_info_by_label(&self, label: &str) -> ToolResult<Option<SecretInfo>> {
        cached_map!(
            self,
            secret_info,
            label.to_string(),
            self.inner.secret_info_by_label(label)
        )
    }

    fn secret_add(
        &self,
        content: &Databag,
        label: &str,
        description: &str,
        owner: SecretOwner,
    ) -> ToolResult<String> {
        let uri = self.inner.secret_add(content, label, description, owner)?;
        let mut cache = self.cache.borrow_mut();
        cache.secret_info.insert(
            label.to_string(),
            Some(SecretInfo {
                id: uri.clone(),
                label: Some(label.to_string()),
                revision: 1,
            }),
        );
        Ok(uri)
    }

    fn secret_set(&self, id: &str, content: &Databag) -> ToolResult<()> {
        self.inner.secret_set(id, content)?;
        self.cache
            .borrow_mut()
            .secrets
            .retain(|(sid, _, _), _| sid.as_deref() != Some(id));
        Ok(())
    }

    fn secret_grant(&self, id: &str, relation: &RelationId) -> ToolResult<()> {
        self.inner.secret_grant(id, relation)
    }

    fn secret_revoke(&self, id: &str, relation: &RelationId) -> ToolResult<()> {
        self.inner.secret_revoke(id, relation)
    }

    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        cached_map!(
            self,
            network,
            binding.to_string(),
            self.inner.network_get(binding)
        )
    }

    fn open_port(&self, port: u16) -> ToolResult<()> {
        self.inner.open_port(port)?;
        if let Some(ports) = &mut self.cache.borrow_mut().opened_ports {
            ports.push(format!("{port}/tcp"));
        }
        Ok(())
    }

    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        cached!(self, opened_ports, self.inner.opened_ports())
    }

    fn action_get(&self) -> ToolResult<serde_json::Map<String, Value>> {
        cached!(self, action, self.inner.action_get())
    }

    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.inner.action_set(results)
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.inner.action_fail(message)
    }

    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.inner.action_log(message)
    }
}
