//! The scaling room: a unit joining its application (`juju add-unit`, deploy, scale
//! up) and the hooks Juju runs for it; scaling to a number of units with Kubernetes
//! semantics (scale-down removes the highest-numbered units; numbers are never
//! reused). Leaving units are in [`super::removal`].
//!
//! A new unit runs, as Juju's uniter orders them: `install`, `<ep>-relation-created`
//! for every relation of its application (peers included), `leader-elected` (first
//! unit) or `leader-settings-changed`, `config-changed`, `start`, `storage-attached`.
//! Then it enters each relation's scope (non-peer relations first, then peers): every
//! unit on the other side (every other peer) sees `-relation-joined` then
//! `-relation-changed` for it, and it sees the same for each of them. Its own joins
//! come after `start`, as the uniter resolves relations only once the unit is started.

use std::time::Duration;

use juju_hook::{RelationHook, StorageHook};

use super::agent::relation_event;
use super::Controller;
use crate::model::{RelationEnd, Unit};
use crate::{Error, Event};

impl Controller {
    /// Adds one unit and runs its deploy sequence. Returns its name.
    pub fn add_unit(&mut self, app_name: &str) -> Result<String, Error> {
        let unit = self.register_unit(app_name)?;
        self.deploy_unit(app_name, &unit)?;
        Ok(unit)
    }

    /// Adds `n` units at once, as `juju add-unit -n N` and `scale-application` do on
    /// Kubernetes (the StatefulSet grows by N): every new unit is planned (in the
    /// model, so `goal-state` lists it) before the first one runs its sequence.
    pub fn add_units(&mut self, app_name: &str, n: usize) -> Result<Vec<String>, Error> {
        let mut units = vec![];
        for _ in 0..n {
            units.push(self.register_unit(app_name)?);
        }
        self.save()?;
        for unit in &units {
            self.deploy_unit(app_name, unit)?;
        }
        Ok(units)
    }

    /// A new unit in the model (waiting, "agent initialising"), not started yet.
    fn register_unit(&mut self, app_name: &str) -> Result<String, Error> {
        let app = self.model.app_mut(app_name)?;
        let unit = format!("{app_name}/{}", app.next_unit);
        app.next_unit += 1;
        app.units.insert(
            unit.clone(),
            Unit {
                status: Some(crate::model::StatusEntry::new(
                    "waiting",
                    "agent initialising",
                )),
                ..Default::default()
            },
        );
        Ok(unit)
    }

    /// Runs a registered unit's deploy sequence.
    fn deploy_unit(&mut self, app_name: &str, unit: &str) -> Result<(), Error> {
        let unit = unit.to_string();
        let (pods, peers) = {
            let app = self.model.app_mut(app_name)?;
            let peers: Vec<(String, String)> = app
                .meta
                .peer_endpoints()
                .map(|(n, e)| (n.clone(), e.interface.clone()))
                .collect();
            (app.pods, peers)
        };
        self.unpack_charm(&unit)?;
        if pods {
            self.start_pod(&unit)?;
        }
        // Like Juju, the first unit already holds leadership while installing;
        // leader-elected follows once the relations exist.
        let needs_leader = self.model.app(app_name)?.leader.is_none();
        if needs_leader {
            self.model.app_mut(app_name)?.leader = Some(unit.clone());
        }
        self.run(&unit, Event::Install)?;
        // Peer relations exist from the first unit on.
        for (ep, iface) in peers {
            if self.model.relations_of(app_name, &ep).is_empty() {
                self.new_relation(
                    iface,
                    vec![RelationEnd {
                        app: app_name.into(),
                        endpoint: ep.clone(),
                    }],
                );
            }
        }
        // Every relation of the application: non-peer ones first, as the uniter
        // processes peers last.
        let mut rels: Vec<(bool, u64, String, String)> = self
            .model
            .relations
            .iter()
            .filter(|r| !r.dying)
            .filter_map(|r| {
                let end = r.end_for(app_name)?;
                let remote = r.remote_app(app_name)?.to_string();
                Some((r.is_peer(), r.id, end.endpoint.clone(), remote))
            })
            .collect();
        rels.sort();
        for (_, id, ep, remote) in &rels {
            self.run(
                &unit,
                relation_event(RelationHook::Created, ep, *id, remote.clone(), None),
            )?;
        }
        if needs_leader {
            self.run(&unit, Event::LeaderElected)?;
        } else {
            self.run(&unit, Event::LeaderSettingsChanged)?;
        }
        self.run(&unit, Event::ConfigChanged)?;
        self.run(&unit, Event::Start)?;
        let storages: Vec<(String, String)> = self
            .model
            .app(app_name)?
            .meta
            .storage
            .iter()
            .map(|(n, l)| (n.clone(), l.clone()))
            .collect();
        let num = unit.rsplit('/').next().unwrap_or("0").to_string();
        for (name, loc) in storages {
            self.run(
                &unit,
                Event::Storage {
                    hook: StorageHook::Attached,
                    storage_id: format!("{name}/{num}"),
                    location: Some(loc),
                },
            )?;
        }
        for (_, id, ep, remote) in &rels {
            self.enter_scope(&unit, *id, ep, remote)?;
        }
        if pods {
            self.poll_pebble(&unit, Duration::from_secs(30))?;
        }
        self.save()
    }

    /// `unit` joins relation `id`: the units on the other side see it join (joined,
    /// then changed), and it sees each of them.
    fn enter_scope(&mut self, unit: &str, id: u64, ep: &str, remote: &str) -> Result<(), Error> {
        let app_name = crate::model::app_of(unit).to_string();
        let Some(rel) = self.model.relation(id).cloned() else {
            return Ok(());
        };
        let remote_ep = rel
            .ends
            .iter()
            .find(|e| e.app == remote)
            .map(|e| e.endpoint.clone())
            .unwrap_or_else(|| ep.to_string());
        let others: Vec<String> = rel
            .joined
            .get(remote)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u != unit)
            .collect();
        if let Some(r) = self.model.relation_mut(id) {
            let joined = r.joined.entry(app_name.clone()).or_default();
            if !joined.iter().any(|u| u == unit) {
                joined.push(unit.to_string());
            }
        }
        for other in &others {
            for hook in [RelationHook::Joined, RelationHook::Changed] {
                self.enqueue(
                    other,
                    relation_event(hook, &remote_ep, id, &app_name, Some(unit.to_string())),
                );
            }
        }
        for other in &others {
            for hook in [RelationHook::Joined, RelationHook::Changed] {
                self.enqueue(
                    unit,
                    relation_event(hook, ep, id, remote, Some(other.clone())),
                );
            }
        }
        self.drain()
    }

    /// Scales an application to `n` units, as `juju scale-application` does on
    /// Kubernetes: new units get the next numbers; scale-down removes the
    /// highest-numbered units first, one at a time.
    pub fn scale_application(&mut self, app_name: &str, n: usize) -> Result<(), Error> {
        self.mark_dying(app_name, n)?;
        loop {
            let units: Vec<String> = self.model.app(app_name)?.units.keys().cloned().collect();
            if units.len() == n {
                return Ok(());
            }
            if units.len() < n {
                self.add_units(app_name, n - units.len())?;
                continue;
            }
            match highest_unit(&units) {
                Some(last) => self.remove_unit(&last)?,
                None => return Ok(()),
            }
        }
    }
}

impl Controller {
    /// A scale-down to `n` units marks every unit it removes `dying` at once, as
    /// Juju's goal-state shows them, before the first one leaves: the units that stay
    /// see the final membership from the first departure on.
    pub fn mark_dying(&mut self, app_name: &str, n: usize) -> Result<(), Error> {
        let app = self.model.app_mut(app_name)?;
        let mut units: Vec<String> = app.units.keys().cloned().collect();
        if units.len() <= n {
            return Ok(());
        }
        units.sort_by_key(|u| unit_number(u));
        for u in &units[n..] {
            if let Some(unit) = app.units.get_mut(u) {
                unit.dying = true;
            }
        }
        self.save()
    }
}

fn unit_number(unit: &str) -> u64 {
    unit.rsplit('/')
        .next()
        .and_then(|x| x.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The highest-numbered of `units` (pure): Kubernetes scales a StatefulSet down from
/// the highest ordinal.
pub fn highest_unit(units: &[String]) -> Option<String> {
    units.iter().max_by_key(|u| unit_number(u)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_down_takes_the_highest_number() {
        let units: Vec<String> = ["a/2", "a/10", "a/9"].map(String::from).to_vec();
        assert_eq!(highest_unit(&units).as_deref(), Some("a/10"));
        assert_eq!(highest_unit(&[]), None);
    }
}
