//! The model operations room: what `juju deploy`, `config`, `integrate`,
//! `remove-relation`, `run` (actions), update-status and leadership changes do to the
//! model, and the hook sequences Juju runs for them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use juju_hook::RelationHook;

use super::agent::{departed_event, relation_event};
use super::{copy_dir, Controller};
use crate::error::Area;
use crate::meta::{CharmMeta, Role};
use crate::model::{app_of, Action, Application, Relation, RelationEnd};
use crate::{Error, Event};

impl Controller {
    // ----- deploy ---------------------------------------------------------------

    /// `juju deploy`: adds the application and its units and runs the deploy sequence.
    pub fn deploy(
        &mut self,
        charm_dir: &Path,
        name: Option<&str>,
        units: u32,
        config: &BTreeMap<String, String>,
        pods: bool,
    ) -> Result<(), Error> {
        let charm_dir = charm_dir
            .canonicalize()
            .map_err(Error::io(Area::Charm, charm_dir))?;
        let meta = CharmMeta::load(&charm_dir)?;
        let dispatch = charm_dir.join("dispatch");
        if !dispatch.exists() {
            return Err(Error::invalid(
                Area::Charm,
                format!("{} has no dispatch", charm_dir.display()),
            ));
        }
        let name = name.unwrap_or(&meta.name).to_string();
        if self.model.applications.contains_key(&name) {
            return Err(Error::Usage(format!(
                "cannot add application {name:?}: application already exists"
            )));
        }
        let mut cfg = BTreeMap::new();
        for (k, v) in config {
            cfg.insert(k.clone(), meta.parse_option(k, v)?);
        }
        if pods && self.runtime.pod_config.is_none() {
            return Err(Error::Usage(
                "pods need a pod configuration (pebble binary); see `jujulocal deploy --help`"
                    .into(),
            ));
        }
        self.model.applications.insert(
            name.clone(),
            Application {
                charm_dir: Some(charm_dir),
                meta,
                config: cfg,
                leader: None,
                units: BTreeMap::new(),
                status: None,
                status_history: vec![],
                next_unit: 0,
                pods,
            },
        );
        for _ in 0..units {
            self.add_unit(&name)?;
        }
        self.save()
    }

    /// Each unit's own copy of the charm, as Juju's unit agent unpacks it (the charm may
    /// keep files there between hooks).
    pub fn unit_charm_dir(&self, unit: &str) -> PathBuf {
        self.home
            .join("agents")
            .join(format!("unit-{}", unit.replace('/', "-")))
            .join("charm")
    }

    pub(super) fn unpack_charm(&self, unit: &str) -> Result<(), Error> {
        let src = self
            .model
            .app(app_of(unit))?
            .charm_dir
            .clone()
            .ok_or_else(|| Error::invalid(Area::Charm, "no charm"))?;
        let dest = self.unit_charm_dir(unit);
        copy_dir(&src, &dest).map_err(Error::os(
            Area::Charm,
            format!("unpacking {} into {}", src.display(), dest.display()),
        ))
    }

    // ----- model operations ---------------------------------------------------------------

    /// `juju config app key=value ...` (and `--reset key`): fires config-changed if anything changed.
    pub fn config(
        &mut self,
        app_name: &str,
        set: &BTreeMap<String, String>,
        reset: &[String],
    ) -> Result<(), Error> {
        let app = self.model.app(app_name)?;
        if app.is_played() {
            return Err(Error::Usage(format!(
                "{app_name} is played by jujulocal and has no configuration"
            )));
        }
        let mut config = app.config.clone();
        for (k, v) in set {
            config.insert(k.clone(), app.meta.parse_option(k, v)?);
        }
        for k in reset {
            if !app.meta.options.contains_key(k) {
                return Err(Error::Usage(format!("unknown option {k:?}")));
            }
            config.remove(k);
        }
        if config == app.config {
            return Ok(());
        }
        let units: Vec<String> = app.units.keys().cloned().collect();
        self.model.app_mut(app_name)?.config = config;
        self.save()?;
        for u in units {
            self.run(&u, Event::ConfigChanged)?;
        }
        Ok(())
    }

    pub(super) fn new_relation(&mut self, interface: String, ends: Vec<RelationEnd>) -> u64 {
        let id = self.model.next_relation_id;
        self.model.next_relation_id += 1;
        self.model.relations.push(Relation {
            id,
            interface,
            ends,
            app_data: BTreeMap::new(),
            unit_data: BTreeMap::new(),
            joined: BTreeMap::new(),
            dying: false,
        });
        id
    }

    fn resolve_end(&self, spec: &str, other: &str) -> Result<(String, String), Error> {
        let (app, ep) = match spec.split_once(':') {
            Some((a, e)) => (a.to_string(), Some(e.to_string())),
            None => (spec.to_string(), None),
        };
        let meta = &self.model.app(&app)?.meta;
        if let Some(ep) = ep {
            if meta.endpoint(&ep).is_none() {
                return Err(Error::NotFound(format!(
                    "application {app:?} has no {ep:?} relation"
                )));
            }
            return Ok((app, ep));
        }
        // Pick the endpoint whose interface the other side also has.
        let (other_app, other_ep) = other
            .split_once(':')
            .map(|(a, e)| (a, Some(e)))
            .unwrap_or((other, None));
        let other_meta = &self.model.app(other_app)?.meta;
        let candidates: Vec<&String> = meta
            .endpoints
            .iter()
            .filter(|(_, e)| e.role != Role::Peers)
            .filter(|(_, e)| {
                other_meta.endpoints.iter().any(|(n, o)| {
                    o.interface == e.interface
                        && o.role != e.role
                        && o.role != Role::Peers
                        && other_ep.is_none_or(|x| x == n)
                })
            })
            .map(|(n, _)| n)
            .collect();
        match candidates.as_slice() {
            [one] => Ok((app, (*one).clone())),
            [] => Err(Error::Usage(format!("no relations found between {spec:?} and {other:?}"))),
            _ => Err(Error::Usage(format!("ambiguous relation: {spec:?} {other:?} could refer to several endpoints; specify app:endpoint"))),
        }
    }

    /// `juju integrate a[:ep] b[:ep]`. Returns the relation id.
    pub fn integrate(&mut self, a: &str, b: &str) -> Result<u64, Error> {
        let (app_a, ep_a) = self.resolve_end(a, b)?;
        let (app_b, ep_b) = self.resolve_end(b, a)?;
        let ma = self
            .model
            .app(&app_a)?
            .meta
            .endpoint(&ep_a)
            .cloned()
            .ok_or_else(|| Error::NotFound(ep_a.clone()))?;
        let mb = self
            .model
            .app(&app_b)?
            .meta
            .endpoint(&ep_b)
            .cloned()
            .ok_or_else(|| Error::NotFound(ep_b.clone()))?;
        if ma.interface != mb.interface
            || ma.role == mb.role
            || ma.role == Role::Peers
            || mb.role == Role::Peers
        {
            return Err(Error::Usage(format!(
                "cannot integrate {app_a}:{ep_a} ({} {:?}) with {app_b}:{ep_b} ({} {:?})",
                ma.interface, ma.role, mb.interface, mb.role
            )));
        }
        for (app, ep, m) in [(&app_a, &ep_a, &ma), (&app_b, &ep_b, &mb)] {
            if self.model.relations.iter().any(|r| {
                r.end_for(&app_a).is_some_and(|e| e.endpoint == ep_a)
                    && r.end_for(&app_b).is_some_and(|e| e.endpoint == ep_b)
            }) {
                return Err(Error::Usage(format!(
                    "relation {app_a}:{ep_a} {app_b}:{ep_b} already exists"
                )));
            }
            if let Some(limit) = m.limit {
                if self.model.relations_of(app, ep).len() as u32 >= limit {
                    return Err(Error::Usage(format!("establishing a new relation for {app}:{ep} would exceed its maximum relation limit of {limit}")));
                }
            }
        }
        let id = self.new_relation(
            ma.interface.clone(),
            vec![
                RelationEnd {
                    app: app_a.clone(),
                    endpoint: ep_a.clone(),
                },
                RelationEnd {
                    app: app_b.clone(),
                    endpoint: ep_b.clone(),
                },
            ],
        );
        self.save()?;
        let units_a: Vec<String> = self.model.app(&app_a)?.units.keys().cloned().collect();
        let units_b: Vec<String> = self.model.app(&app_b)?.units.keys().cloned().collect();
        for (units, ep, remote) in [(&units_a, &ep_a, &app_b), (&units_b, &ep_b, &app_a)] {
            for u in units {
                self.enqueue(
                    u,
                    relation_event(RelationHook::Created, ep, id, remote.clone(), None),
                );
            }
        }
        self.drain()?;
        // Played applications join at once; charm units join as their hooks run.
        for (app, units) in [(&app_a, &units_a), (&app_b, &units_b)] {
            if let Some(r) = self.model.relation_mut(id) {
                r.joined.insert(app.clone(), units.clone());
            }
        }
        for (units, ep, remote_units, remote) in [
            (&units_a, &ep_a, &units_b, &app_b),
            (&units_b, &ep_b, &units_a, &app_a),
        ] {
            for u in units {
                for ru in remote_units {
                    self.enqueue(
                        u,
                        relation_event(
                            RelationHook::Joined,
                            ep,
                            id,
                            remote.clone(),
                            Some(ru.clone()),
                        ),
                    );
                    self.enqueue(
                        u,
                        relation_event(
                            RelationHook::Changed,
                            ep,
                            id,
                            remote.clone(),
                            Some(ru.clone()),
                        ),
                    );
                }
            }
        }
        self.drain()?;
        Ok(id)
    }

    /// `juju remove-relation`: departed per remote unit, then broken; then the relation
    /// (and the secret grants tied to it) is gone.
    pub fn remove_relation(&mut self, a: &str, b: &str) -> Result<(), Error> {
        let (app_a, ep_a) = self.resolve_end(a, b)?;
        let (app_b, ep_b) = self.resolve_end(b, a)?;
        let rel = self
            .model
            .relations
            .iter()
            .find(|r| {
                r.end_for(&app_a).is_some_and(|e| e.endpoint == ep_a)
                    && r.end_for(&app_b).is_some_and(|e| e.endpoint == ep_b)
            })
            .cloned()
            .ok_or_else(|| {
                Error::NotFound(format!("relation {app_a}:{ep_a} {app_b}:{ep_b} not found"))
            })?;
        self.remove_relation_id(rel.id)
    }

    pub fn remove_relation_id(&mut self, id: u64) -> Result<(), Error> {
        let rel = self
            .model
            .relation(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("relation {id} not found")))?;
        if let Some(r) = self.model.relation_mut(id) {
            r.dying = true;
        }
        for end in &rel.ends {
            let remote = rel.remote_app(&end.app).unwrap_or_default().to_string();
            let units: Vec<String> = rel.joined.get(&end.app).cloned().unwrap_or_default();
            let remote_units: Vec<String> = rel.joined.get(&remote).cloned().unwrap_or_default();
            // One remote unit at a time, seen by every unit on this side: membership is
            // shared, so a unit's relation-list must not still show remote units it has
            // already seen depart (nor lose ones it has not).
            for ru in &remote_units {
                for u in units.iter().filter(|u| *u != ru) {
                    self.enqueue(u, departed_event(&end.endpoint, id, &remote, ru));
                }
                self.drain()?;
                if let Some(r) = self.model.relation_mut(id) {
                    if let Some(j) = r.joined.get_mut(&remote) {
                        j.retain(|x| x != ru || rel.is_peer());
                    }
                }
            }
        }
        for end in &rel.ends {
            let remote = rel.remote_app(&end.app).unwrap_or_default().to_string();
            let units: Vec<String> = self.model.app(&end.app)?.units.keys().cloned().collect();
            for u in units {
                self.enqueue(
                    &u,
                    relation_event(
                        RelationHook::Broken,
                        &end.endpoint,
                        id,
                        remote.clone(),
                        None,
                    ),
                );
            }
        }
        self.drain()?;
        self.model.relations.retain(|r| r.id != id);
        for s in self.model.secrets.values_mut() {
            s.grants.retain(|g| g.relation_id != id);
        }
        self.save()
    }

    /// `juju run unit action key=value ...`. Returns the finished action.
    pub fn run_action(
        &mut self,
        unit: &str,
        name: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Action, Error> {
        let app = self.model.app(app_of(unit))?;
        if !app.units.contains_key(unit) {
            return Err(Error::NotFound(format!("unit {unit:?} not found")));
        }
        let params = app.meta.action_params(name, params)?;
        let id = self.model.next_action_id;
        self.model.next_action_id += 1;
        self.model.actions.push(Action {
            id,
            unit: unit.into(),
            name: name.into(),
            params,
            status: "running".into(),
            message: None,
            results: BTreeMap::new(),
            log: vec![],
        });
        self.save()?;
        let r = self.run(
            unit,
            Event::Action {
                name: name.to_string(),
                id: Some(id.to_string()),
            },
        );
        let action = self
            .model
            .actions
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| Error::invalid(Area::Model, "action vanished"))?;
        r.map(|_| action)
    }

    /// Fires update-status on every unit (and checks Pebble boot-ids like the agent).
    pub fn update_status(&mut self) -> Result<(), Error> {
        let units: Vec<(String, bool)> = self
            .model
            .applications
            .values()
            .filter(|a| !a.is_played())
            .flat_map(|a| a.units.keys().map(move |u| (u.clone(), a.pods)))
            .collect();
        for (u, pods) in units {
            if pods {
                self.poll_pebble(&u, Duration::from_secs(0))?;
            }
            self.run(&u, Event::UpdateStatus)?;
        }
        Ok(())
    }

    /// Makes another unit the leader: leader-elected there, leader-settings-changed elsewhere.
    pub fn set_leader(&mut self, unit: &str) -> Result<(), Error> {
        let app = app_of(unit).to_string();
        let units: Vec<String> = self.model.app(&app)?.units.keys().cloned().collect();
        if !units.contains(&unit.to_string()) {
            return Err(Error::NotFound(format!("unit {unit:?} not found")));
        }
        self.model.app_mut(&app)?.leader = Some(unit.into());
        self.run(unit, Event::LeaderElected)?;
        for u in units.iter().filter(|u| *u != unit) {
            self.run(u, Event::LeaderSettingsChanged)?;
        }
        Ok(())
    }
}
