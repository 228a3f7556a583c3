//! The played applications room: applications JujuLocal plays from the CLI (the
//! remote side of relations, e.g. postgresql-k8s): their databags and secrets, and the
//! events their changes cause in charm units.

use std::collections::BTreeMap;

use juju_hook::RelationHook;

use super::agent::relation_event;
use super::Controller;
use crate::journal::Journal;
use crate::meta::{CharmMeta, EndpointMeta, Role};
use crate::model::{app_of, Application, Bag, Grant, Model, Secret, SecretRevision, Unit};
use crate::Error;

impl Controller {
    /// Adds an application that jujulocal plays itself (no charm runs): the remote side of
    /// relations, e.g. postgresql-k8s. Endpoints are `name:interface:provides|requires`.
    pub fn add_played(
        &mut self,
        name: &str,
        endpoints: &[(String, String, Role)],
        units: u32,
    ) -> Result<(), Error> {
        if self.model.applications.contains_key(name) {
            return Err(Error::Usage(format!("application {name:?} already exists")));
        }
        let mut meta = CharmMeta {
            name: name.into(),
            ..Default::default()
        };
        for (ep, iface, role) in endpoints {
            meta.endpoints.insert(
                ep.clone(),
                EndpointMeta {
                    role: role.clone(),
                    interface: iface.clone(),
                    limit: None,
                },
            );
        }
        let units_map = (0..units)
            .map(|i| {
                (
                    format!("{name}/{i}"),
                    Unit {
                        status: Some(crate::model::StatusEntry::new("active", "")),
                        ..Default::default()
                    },
                )
            })
            .collect();
        self.model.applications.insert(
            name.into(),
            Application {
                charm_dir: None,
                meta,
                config: BTreeMap::new(),
                leader: Some(format!("{name}/0")),
                units: units_map,
                status: None,
                status_history: vec![],
                next_unit: units,
                pods: false,
                stand_in: None,
            },
        );
        self.save()
    }

    /// Writes a played application's (or one of its units') databag, then delivers
    /// relation-changed to the charm's units.
    pub fn played_relation_set(&mut self, id: u64, who: &str, data: &Bag) -> Result<(), Error> {
        let app = app_of(who).to_string();
        if !self.model.app(&app)?.is_played() {
            return Err(Error::Usage(format!(
                "{app} runs a charm: its databags are written by its charm, not the CLI"
            )));
        }
        let before = self.model.clone();
        let rel = self
            .model
            .relation_mut(id)
            .ok_or_else(|| Error::NotFound(format!("relation {id} not found")))?;
        if rel.end_for(&app).is_none() {
            return Err(Error::Usage(format!("{app} is not in relation {id}")));
        }
        let bag = if who.contains('/') {
            rel.unit_data.entry(who.into()).or_default()
        } else {
            rel.app_data.entry(app.clone()).or_default()
        };
        for (k, v) in data {
            if v.is_empty() {
                bag.remove(k);
            } else {
                bag.insert(k.clone(), v.clone());
            }
        }
        self.save()?;
        let writer = if who.contains('/') {
            who.to_string()
        } else {
            format!("{app}/0")
        };
        let unit_level = who.contains('/');
        // App-level writes notify with no remote unit; unit-level with the writer unit.
        let mut j = Journal::default();
        j.ops.clear();
        if unit_level {
            self.deliver_changes(&before, &writer, &j);
        } else {
            self.deliver_changes_app(&before, &app);
        }
        self.drain()
    }

    fn deliver_changes_app(&mut self, before: &Model, app: &str) {
        for rel in self.model.relations.clone() {
            let Some(old) = before.relation(rel.id) else {
                continue;
            };
            if old.app_data.get(app) == rel.app_data.get(app) {
                continue;
            }
            if let Some(e) = rel.ends.iter().find(|e| e.app != app) {
                for t in rel.joined.get(&e.app).cloned().unwrap_or_default() {
                    self.enqueue(
                        &t,
                        relation_event(RelationHook::Changed, &e.endpoint, rel.id, app, None),
                    );
                }
            }
        }
    }

    /// Adds a secret owned by a played application. Returns its URI.
    pub fn played_secret_add(
        &mut self,
        owner: &str,
        content: &Bag,
        label: Option<&str>,
    ) -> Result<String, Error> {
        if !self.model.app(owner)?.is_played() {
            return Err(Error::Usage(format!(
                "{owner} runs a charm: it creates its own secrets"
            )));
        }
        let id = crate::util::secret_xid()?;
        self.model
            .secrets
            .insert(id.clone(), Secret::new(&id, owner, label, content.clone()));
        self.save()?;
        Ok(format!("secret:{id}"))
    }

    pub fn played_secret_grant(&mut self, uri: &str, relation_id: u64) -> Result<(), Error> {
        let id = crate::util::secret_id(uri).to_string();
        let owner = self
            .model
            .secrets
            .get(&id)
            .map(|s| s.owner.clone())
            .ok_or_else(|| Error::NotFound(format!("secret {uri} not found")))?;
        let rel = self
            .model
            .relation(relation_id)
            .ok_or_else(|| Error::NotFound(format!("relation {relation_id} not found")))?;
        let app = rel
            .remote_app(&owner)
            .ok_or_else(|| Error::Usage(format!("{owner} is not in relation {relation_id}")))?
            .to_string();
        if let Some(s) = self.model.secrets.get_mut(&id) {
            s.grants.push(Grant {
                relation_id,
                app,
                unit: None,
            });
        }
        self.save()
    }

    /// New revision of a played application's secret; consumers get secret-changed.
    pub fn played_secret_set(&mut self, uri: &str, content: &Bag) -> Result<(), Error> {
        let id = crate::util::secret_id(uri).to_string();
        let owner = self
            .model
            .secrets
            .get(&id)
            .map(|s| app_of(&s.owner).to_string())
            .ok_or_else(|| Error::NotFound(format!("secret {uri} not found")))?;
        if !self.model.app(&owner)?.is_played() {
            return Err(Error::Usage(format!(
                "{owner} runs a charm: its secrets are set by its charm, not the CLI"
            )));
        }
        let s = self
            .model
            .secrets
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("secret {uri} not found")))?;
        let rev = s.latest().map(|r| r.revision + 1).unwrap_or(1);
        s.revisions.push(SecretRevision {
            revision: rev,
            content: content.clone(),
        });
        self.save()?;
        self.notify_secret_consumers(&id);
        self.drain()
    }
}
