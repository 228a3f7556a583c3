//! The removal room: what `juju remove-unit`, `scale-application` (down) and
//! `remove-application` do to the model, and the hooks Juju runs for them.
//!
//! A leaving unit first leaves every relation, non-peer ones first (the units on the
//! other side, and its peers, see `relation-departed` for it; it sees
//! `relation-departed` for each of them with `JUJU_DEPARTING_UNIT` set to itself,
//! then `relation-broken`, except on peer relations, as Juju's uniter does for a
//! dying unit), then its storage detaches, then `stop` and `remove` run, then its pod
//! and its place on the cluster network go. If it was the leader, the lowest
//! remaining unit is elected.

use std::path::PathBuf;

use juju_hook::{RelationHook, StorageHook};

use super::agent::{departed_event, leaving_departed_event, relation_event};
use super::Controller;
use crate::model::app_of;
use crate::{Error, Event};

impl Controller {
    /// The Pebble binary pods run (for running commands in a workload container).
    pub fn pebble_bin(&self) -> Option<PathBuf> {
        self.runtime
            .pod_config
            .as_ref()
            .map(|c| c.pebble_bin.clone())
    }

    /// Whether `unit` runs in a pod that is up.
    pub fn has_pod(&self, unit: &str) -> bool {
        self.runtime.pods.contains_key(unit)
    }

    /// Removes one unit of a deployed application, as `juju remove-unit` does.
    pub fn remove_unit(&mut self, unit: &str) -> Result<(), Error> {
        let app_name = app_of(unit).to_string();
        let app = self.model.app(&app_name)?;
        if !app.units.contains_key(unit) {
            return Err(Error::NotFound(format!("unit {unit:?} not found")));
        }
        let storages: Vec<String> = app.meta.storage.keys().cloned().collect();
        if let Some(u) = self.model.app_mut(&app_name)?.units.get_mut(unit) {
            u.dying = true;
        }
        self.save()?;
        // Non-peer relations first, peers last, as the uniter processes them.
        let mut rels: Vec<(bool, u64)> = self
            .model
            .relations
            .iter()
            .filter(|r| !r.dying && r.end_for(&app_name).is_some())
            .map(|r| (r.is_peer(), r.id))
            .collect();
        rels.sort();
        for (_, id) in rels {
            self.leave_scope(unit, id)?;
        }
        let num = unit.rsplit('/').next().unwrap_or("0").to_string();
        for name in storages {
            self.run(
                unit,
                Event::Storage {
                    hook: StorageHook::Detaching,
                    storage_id: format!("{name}/{num}"),
                    location: None,
                },
            )?;
        }
        self.run(unit, Event::Stop)?;
        self.run(unit, Event::Remove)?;
        if let Some(pod) = self.runtime.pods.remove(unit) {
            for pid in pod.containers.values() {
                crate::pod::stop(*pid);
            }
            crate::pod::stop(pod.charm_pid);
            self.cluster_detach(unit)?;
        }
        let app = self.model.app_mut(&app_name)?;
        app.units.remove(unit);
        let new_leader = if app.leader.as_deref() == Some(unit) {
            app.leader = app.units.keys().next().cloned();
            app.leader.clone()
        } else {
            None
        };
        self.model.secrets.retain(|_, s| s.owner != unit);
        self.save()?;
        if let Some(leader) = new_leader {
            self.run(&leader, Event::LeaderElected)?;
        }
        Ok(())
    }

    /// `unit` leaves relation `id`: the units on the other side (the other peers) see
    /// it depart; then it sees each of them depart (`JUJU_DEPARTING_UNIT` is itself,
    /// as for any dying unit), then, for a non-peer relation, the relation break.
    fn leave_scope(&mut self, unit: &str, id: u64) -> Result<(), Error> {
        let app_name = app_of(unit).to_string();
        let Some(rel) = self.model.relation(id).cloned() else {
            return Ok(());
        };
        let Some(end) = rel.end_for(&app_name).cloned() else {
            return Ok(());
        };
        let remote = rel.remote_app(&app_name).unwrap_or_default().to_string();
        let remote_ep = rel
            .ends
            .iter()
            .find(|e| e.app == remote)
            .map(|e| e.endpoint.clone())
            .unwrap_or_else(|| end.endpoint.clone());
        let others: Vec<String> = rel
            .joined
            .get(&remote)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u != unit)
            .collect();
        for other in &others {
            self.enqueue(other, departed_event(&remote_ep, id, &app_name, unit));
        }
        self.drain()?;
        if let Some(r) = self.model.relation_mut(id) {
            if let Some(j) = r.joined.get_mut(&app_name) {
                j.retain(|u| u != unit);
            }
        }
        for other in &others {
            self.enqueue(
                unit,
                leaving_departed_event(&end.endpoint, id, &remote, other, unit),
            );
        }
        self.drain()?;
        if !rel.is_peer() {
            self.run(
                unit,
                relation_event(RelationHook::Broken, &end.endpoint, id, remote, None),
            )?;
        }
        if let Some(r) = self.model.relation_mut(id) {
            r.unit_data.remove(unit);
        }
        Ok(())
    }

    /// Removes an application: its relations with others go first (departed, broken),
    /// then each unit leaves; its secrets and the grants to it go with it.
    pub fn remove_application(&mut self, app_name: &str) -> Result<(), Error> {
        let app = self.model.app(app_name)?;
        let units: Vec<String> = app.units.keys().cloned().collect();
        let played = app.is_played();
        let regular: Vec<u64> = self
            .model
            .relations
            .iter()
            .filter(|r| !r.is_peer() && r.end_for(app_name).is_some())
            .map(|r| r.id)
            .collect();
        for id in regular {
            self.remove_relation_id(id)?;
        }
        if played {
            super::providers::remove(self, app_name)?;
        } else {
            for u in units.iter().rev() {
                self.remove_unit(u)?;
            }
        }
        self.model
            .relations
            .retain(|r| r.end_for(app_name).is_none());
        self.model.applications.remove(app_name);
        self.model
            .secrets
            .retain(|_, s| s.owner != app_name && app_of(&s.owner) != app_name);
        for s in self.model.secrets.values_mut() {
            s.grants.retain(|g| g.app != app_name);
        }
        self.save()
    }
}
