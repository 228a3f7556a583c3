//! The cluster network room: pods in their own network namespace (`netns: true`)
//! reach each other as Kubernetes pods do.
//!
//! Each model with such pods gets a subnet `10.244.<n>.0/24` of its own and a bridge
//! in a network namespace of its own (see [`crate::cluster_net`]); each pod gets an
//! address on it (its `eth0`), which is the unit's address (`juju status`,
//! `network-get`), and a `/etc/hosts` naming every pod of the model
//! `<app>-<n>.<app>-endpoints[.<model>.svc.cluster.local]`, rewritten as units come
//! and go. The network starts with the model's first pod and goes with its last.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Controller;
use crate::cluster_net::{self, HostEntry, Subnet};
use crate::error::Area;
use crate::model::app_of;
use crate::Error;

/// A model's cluster network: the holder of its namespace and its subnet.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ClusterState {
    pub holder: u32,
    pub subnet: u8,
}

impl ClusterState {
    fn subnet(self) -> Subnet {
        Subnet(self.subnet)
    }
    fn alive(self) -> bool {
        cluster_net::holder_alive(self.holder, &self.subnet().cidr())
    }
}

impl Controller {
    fn on_cluster(&self) -> bool {
        self.runtime.pod_config.as_ref().is_some_and(|c| c.netns)
    }

    /// The model's cluster network, if it has one now.
    pub fn cluster(&self) -> Option<ClusterState> {
        self.runtime.cluster
    }

    pub(super) fn hosts_path(&self, unit: &str) -> PathBuf {
        self.pod_dir(unit).join("hosts")
    }

    fn ensure_cluster(&mut self) -> Result<ClusterState, Error> {
        if let Some(st) = self.runtime.cluster {
            if st.alive() {
                return Ok(st);
            }
            if !self.runtime.pods.is_empty() {
                return Err(Error::invalid(
                    Area::Pod,
                    format!(
                        "the cluster network of model {:?} is gone (process {} ended) while pods are up",
                        self.model.name, st.holder
                    ),
                ));
            }
        }
        let (subnet, holder) = cluster_net::allocate(&self.home.join("cluster.log"))?;
        let st = ClusterState {
            holder,
            subnet: subnet.0,
        };
        self.runtime.cluster = Some(st);
        self.save()?;
        Ok(st)
    }

    /// For stand-ins' servers that pods on the cluster network must reach: the
    /// holder of the network namespace and the gateway address (`.1`, on the bridge),
    /// which the servers bind to from inside that namespace (`nsenter --net`). `None`
    /// when pods use the host network.
    pub(crate) fn cluster_gateway(&mut self) -> Result<Option<(u32, String)>, Error> {
        if !self.on_cluster() {
            return Ok(None);
        }
        let st = self.ensure_cluster()?;
        let gateway = st.subnet().host(1);
        cluster_net::ip_batch(
            st.holder,
            &[
                format!("addr replace {gateway}/24 dev {}", cluster_net::BRIDGE),
                format!("link set {} up", cluster_net::BRIDGE),
            ],
        )?;
        Ok(Some((st.holder, gateway)))
    }

    /// Before a unit's pod starts: an address on the cluster network (the unit's
    /// address) and its hosts file, which its containers mount at `/etc/hosts`. `None`
    /// for pods on the host network.
    pub(super) fn cluster_prepare(&mut self, unit: &str) -> Result<Option<PathBuf>, Error> {
        if !self.on_cluster() {
            return Ok(None);
        }
        let subnet = self.ensure_cluster()?.subnet();
        let taken: Vec<u8> = self
            .model
            .applications
            .values()
            .flat_map(|a| a.units.iter())
            .filter(|(u, _)| *u != unit)
            .filter_map(|(_, x)| subnet.host_of(&x.address))
            .collect();
        let host = cluster_net::free_host(&taken).ok_or_else(|| {
            Error::Refused(format!(
                "the cluster subnet {} is full: 253 pods",
                subnet.cidr()
            ))
        })?;
        if let Some(u) = self.model.app_mut(app_of(unit))?.units.get_mut(unit) {
            u.address = subnet.host(host);
        }
        self.save()?;
        self.write_hosts(unit)?;
        Ok(Some(self.hosts_path(unit)))
    }

    /// Once the pod's namespace exists: its veth pair into the bridge, then every
    /// pod's hosts file names it.
    pub(super) fn cluster_attach(&mut self, unit: &str, charm_pid: u32) -> Result<(), Error> {
        let Some(st) = self.runtime.cluster else {
            return Ok(());
        };
        let host = self
            .unit_host(unit, st)
            .ok_or_else(|| Error::invalid(Area::Pod, format!("{unit} has no cluster address")))?;
        cluster_net::attach(st.holder, charm_pid, st.subnet(), host)?;
        self.refresh_hosts()
    }

    /// After a unit's pod stopped: its veth pair goes, the other pods forget its name,
    /// and the last pod takes the network with it.
    pub(super) fn cluster_detach(&mut self, unit: &str) -> Result<(), Error> {
        let Some(st) = self.runtime.cluster else {
            return Ok(());
        };
        if let Some(host) = self.unit_host(unit, st) {
            cluster_net::detach(st.holder, host);
        }
        if let Ok(app) = self.model.app_mut(app_of(unit)) {
            if let Some(u) = app.units.get_mut(unit) {
                u.address.clear();
            }
        }
        if self.runtime.pods.is_empty() {
            self.cluster_teardown();
            return self.save();
        }
        self.refresh_hosts()
    }

    /// Stops the network (bridge, namespace) and frees its subnet.
    pub(super) fn cluster_teardown(&mut self) {
        if let Some(st) = self.runtime.cluster.take() {
            cluster_net::release(st.subnet(), st.holder);
        }
        for app in self.model.applications.values_mut() {
            if app.pods {
                for u in app.units.values_mut() {
                    u.address.clear();
                }
            }
        }
    }

    fn unit_host(&self, unit: &str, st: ClusterState) -> Option<u8> {
        let app = self.model.app(app_of(unit)).ok()?;
        st.subnet().host_of(&app.units.get(unit)?.address)
    }

    /// Every pod of the model on the cluster network, by name and address.
    fn host_entries(&self) -> Vec<(String, HostEntry)> {
        let Some(st) = self.runtime.cluster else {
            return vec![];
        };
        let mut out = vec![];
        for (name, app) in &self.model.applications {
            for (unit, u) in &app.units {
                if st.subnet().host_of(&u.address).is_none() {
                    continue;
                }
                let number = unit.rsplit('/').next().unwrap_or("0").to_string();
                out.push((
                    unit.clone(),
                    HostEntry {
                        app: name.clone(),
                        number,
                        address: u.address.clone(),
                    },
                ));
            }
        }
        out
    }

    fn write_hosts(&self, unit: &str) -> Result<(), Error> {
        let entries = self.host_entries();
        let all: Vec<HostEntry> = entries.iter().map(|(_, e)| e.clone()).collect();
        let own = entries.iter().find(|(u, _)| u == unit).map(|(_, e)| e);
        let dir = self.pod_dir(unit);
        std::fs::create_dir_all(&dir).map_err(Error::io(Area::Pod, &dir))?;
        cluster_net::write_in_place(
            &self.hosts_path(unit),
            &cluster_net::hosts_file(&self.model.name, own, &all),
        )
    }

    /// Rewrites the hosts file of every pod on the cluster network.
    fn refresh_hosts(&self) -> Result<(), Error> {
        for (unit, _) in self.host_entries() {
            if self.runtime.pods.contains_key(&unit) || self.hosts_path(&unit).exists() {
                self.write_hosts(&unit)?;
            }
        }
        Ok(())
    }
}
