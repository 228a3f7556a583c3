//! The pods room: each unit's pod (a charm container and one Pebble per workload
//! container), started, polled and restarted as the controller drives them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::checks::check_events;
use super::Controller;
use crate::error::Area;
use crate::meta::CharmMeta;
use crate::model::app_of;
use crate::pod::{self, ContainerSpec, Mount};
use crate::{Error, Event};

/// Where a unit's pod lives and what runs in it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PodState {
    pub dir: PathBuf,
    pub charm_pid: u32,
    pub containers: BTreeMap<String, u32>,
}

/// Options for pods: where the real Pebble is, and how each workload container's file
/// system view is made up (rock paths mapped to local directories).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PodConfig {
    pub pebble_bin: PathBuf,
    /// Per container name: extra mounts `target -> source` (`tmpfs` for a fresh tmpfs).
    pub container_mounts: BTreeMap<String, Vec<(String, String)>>,
    /// Give each pod its own network namespace (only loopback) instead of the host's.
    pub netns: bool,
}

impl Controller {
    // ----- pods -------------------------------------------------------------------

    pub(super) fn pod_dir(&self, unit: &str) -> PathBuf {
        self.home.join("pods").join(unit.replace('/', "-"))
    }

    pub(super) fn start_pod(&mut self, unit: &str) -> Result<(), Error> {
        let cfg = self
            .runtime
            .pod_config
            .clone()
            .ok_or_else(|| Error::invalid(Area::Pod, "no pod configuration"))?;
        let dir = self.pod_dir(unit);
        let mk = |p: &Path| std::fs::create_dir_all(p).map_err(Error::io(Area::Pod, p));
        mk(&dir.join("containers"))?;
        let meta = self.model.app(app_of(unit))?.meta.clone();
        for c in &meta.containers {
            mk(&dir.join("containers").join(&c.name))?;
        }
        for s in meta.storage.keys() {
            mk(&dir.join("storage").join(s))?;
        }
        let mut mounts = vec![Mount::bind("/charm/containers", dir.join("containers"))];
        for (s, loc) in &meta.storage {
            if !loc.is_empty() {
                mounts.push(Mount::bind(loc, dir.join("storage").join(s)));
            }
        }
        let hosts = self.cluster_prepare(unit)?;
        if let Some(h) = &hosts {
            mounts.push(Mount::bind("/etc/hosts", h));
        }
        let charm_pid = pod::start(&ContainerSpec {
            root: dir.join("roots").join("charm"),
            mounts,
            netns_of: None,
            new_netns: cfg.netns,
            new_pidns: false,
            command: vec![],
            env: vec![],
            log: dir.join("charm.log"),
        })?;
        let mut state = PodState {
            dir: dir.clone(),
            charm_pid,
            containers: BTreeMap::new(),
        };
        // Wait for the namespace to be in place before workloads join its network.
        wait_for(Duration::from_secs(10), || root_ready(charm_pid)).map_err(|_| {
            Error::invalid(
                Area::Pod,
                format!(
                    "charm container of {unit} did not start; see {}",
                    dir.join("charm.log").display()
                ),
            )
        })?;
        self.runtime.pods.insert(unit.to_string(), state.clone());
        if hosts.is_some() {
            self.cluster_attach(unit, charm_pid)?;
        }
        for c in &meta.containers {
            let pid = self.start_container(unit, &c.name, &cfg, &meta)?;
            state.containers.insert(c.name.clone(), pid);
        }
        self.runtime.pods.insert(unit.to_string(), state);
        self.save()
    }

    fn start_container(
        &self,
        unit: &str,
        container: &str,
        cfg: &PodConfig,
        meta: &CharmMeta,
    ) -> Result<u32, Error> {
        let pod = self
            .runtime
            .pods
            .get(unit)
            .ok_or_else(|| Error::invalid(Area::Pod, format!("{unit} has no pod")))?;
        let dir = &pod.dir;
        let cdir = dir.join("containers").join(container);
        let _ = std::fs::remove_file(cdir.join("pebble.socket"));
        let mut mounts = vec![
            Mount::bind("/charm/bin/pebble", &cfg.pebble_bin),
            Mount::bind("/charm/container", &cdir),
            Mount::tmpfs("/tmp"),
            Mount::tmpfs("/run"),
        ];
        if self.runtime.cluster.is_some() && cfg.netns {
            mounts.push(Mount::bind("/etc/hosts", self.hosts_path(unit)));
        }
        if let Some(c) = meta.containers.iter().find(|c| c.name == container) {
            for (storage, loc) in &c.mounts {
                mounts.push(Mount::bind(loc, dir.join("storage").join(storage)));
            }
        }
        for (target, source) in cfg
            .container_mounts
            .get(container)
            .cloned()
            .unwrap_or_default()
        {
            mounts.push(if source == "tmpfs" {
                Mount::tmpfs(&target)
            } else {
                Mount::bind(&target, source)
            });
        }
        pod::start(&ContainerSpec {
            root: dir.join("roots").join(container),
            mounts,
            netns_of: Some(pod.charm_pid),
            new_netns: false,
            new_pidns: true,
            command: vec![
                "/charm/bin/pebble".into(),
                "run".into(),
                "--create-dirs".into(),
                "--hold".into(),
                "--verbose".into(),
            ],
            env: vec![
                ("JUJU_CONTAINER_NAME".into(), container.into()),
                ("PEBBLE".into(), "/charm/container/pebble".into()),
                (
                    "PEBBLE_SOCKET".into(),
                    "/charm/container/pebble.socket".into(),
                ),
            ],
            log: dir.join(format!("{container}.log")),
        })
    }

    /// A unit's pod, while it is up.
    pub fn pod(&self, unit: &str) -> Option<&PodState> {
        self.runtime.pods.get(unit)
    }

    /// Host path of a container's Pebble socket.
    pub fn pebble_socket(&self, unit: &str, container: &str) -> PathBuf {
        self.pod_dir(unit)
            .join("containers")
            .join(container)
            .join("pebble.socket")
    }

    /// Runs a command inside a unit's pod (e.g. a test client): in its charm
    /// container's network and mount namespaces (so it sees the pod's `/etc/hosts`),
    /// in the working directory the caller gives the command.
    pub fn pod_command(&self, unit: &str, program: &str) -> Result<Command, Error> {
        let mut cmd = Command::new(program);
        if let Some(pod) = self.runtime.pods.get(unit) {
            if self.runtime.pod_config.as_ref().is_some_and(|c| c.netns) {
                let open = |ns: &str| {
                    let path = format!("/proc/{}/ns/{ns}", pod.charm_pid);
                    std::fs::File::open(&path).map_err(Error::io(Area::Pod, &path))
                };
                let (net, mnt) = (open("net")?, open("mnt")?);
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                // SAFETY: only async-signal-safe calls (getcwd into a stack buffer, setns,
                // chdir); the files stay open until the spawn through the closure.
                unsafe {
                    cmd.pre_exec(move || {
                        let mut buf = [0 as libc::c_char; 4096];
                        let cwd = libc::getcwd(buf.as_mut_ptr(), buf.len());
                        if libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) != 0
                            || libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        // Entering a mount namespace moves to its root: back to the cwd.
                        if !cwd.is_null() && libc::chdir(buf.as_ptr()) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        Ok(cmd)
    }

    /// Polls each container's Pebble like the unit agent: fires `<c>-pebble-ready` for
    /// every new boot-id, then `<c>-pebble-check-failed` / `-recovered` for every check
    /// whose status went down / up since the last poll ([`check_events`]). Waits up to
    /// `timeout` for Pebbles that do not answer yet.
    pub fn poll_pebble(&mut self, unit: &str, timeout: Duration) -> Result<(), Error> {
        let containers: Vec<String> = self
            .model
            .app(app_of(unit))?
            .meta
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect();
        for c in containers {
            let sock = self.pebble_socket(unit, &c);
            let client = pebble::Client::new(&sock).with_timeout(Duration::from_secs(2));
            let deadline = Instant::now() + timeout;
            let boot_id = loop {
                match client.system_info() {
                    Ok(info) => break Some(info.boot_id),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(_) => break None,
                }
            };
            let Some(boot_id) = boot_id else { continue };
            let seen = self
                .model
                .app(app_of(unit))?
                .units
                .get(unit)
                .and_then(|u| u.boot_ids.get(&c).cloned());
            if seen.as_deref() != Some(boot_id.as_str()) {
                if let Some(u) = self.model.app_mut(app_of(unit))?.units.get_mut(unit) {
                    u.boot_ids.insert(c.clone(), boot_id);
                    // A new Pebble starts its checks afresh: nothing is down any more.
                    u.checks.remove(&c);
                }
                self.run(
                    unit,
                    Event::PebbleReady {
                        container: c.clone(),
                    },
                )?;
            }
            self.poll_checks(unit, &c, &client)?;
        }
        self.save()
    }

    /// Fires the check events of one container since the last poll.
    fn poll_checks(
        &mut self,
        unit: &str,
        container: &str,
        client: &pebble::Client,
    ) -> Result<(), Error> {
        // A Pebble that does not answer now is polled again next time.
        let Ok(checks) = client.checks(None, &[]) else {
            return Ok(());
        };
        let now: Vec<(String, pebble::CheckStatus)> =
            checks.into_iter().map(|c| (c.name, c.status)).collect();
        let Some(u) = self.model.app_mut(app_of(unit))?.units.get_mut(unit) else {
            return Ok(());
        };
        let seen = u.checks.get(container).cloned().unwrap_or_default();
        let (remember, events) = check_events(container, &seen, &now);
        u.checks.insert(container.to_string(), remember);
        for event in events {
            self.run(unit, event)?;
        }
        Ok(())
    }

    /// Polls the Pebbles of every unit that has a pod, once, as the unit agent does
    /// every few seconds (JujuLocal polls only when asked: here, on update-status and
    /// after a container restart).
    pub fn poll_pods(&mut self) -> Result<(), Error> {
        let units: Vec<String> = self
            .model
            .applications
            .values()
            .filter(|a| !a.is_played() && a.pods)
            .flat_map(|a| a.units.keys().cloned())
            .collect();
        for u in units {
            if self.runtime.pods.contains_key(&u) {
                self.poll_pebble(&u, Duration::from_secs(0))?;
            }
        }
        Ok(())
    }

    /// Pod churn: restarts one container's Pebble (its API layers are lost), then lets
    /// the agent notice the new boot-id and fire pebble-ready.
    pub fn restart_container(&mut self, unit: &str, container: &str) -> Result<(), Error> {
        let cfg = self
            .runtime
            .pod_config
            .clone()
            .ok_or_else(|| Error::invalid(Area::Pod, "no pods"))?;
        let pid = *self
            .runtime
            .pods
            .get(unit)
            .and_then(|p| p.containers.get(container))
            .ok_or_else(|| Error::NotFound(format!("{unit} has no container {container:?}")))?;
        pod::stop(pid);
        let meta = self.model.app(app_of(unit))?.meta.clone();
        let new_pid = self.start_container(unit, container, &cfg, &meta)?;
        if let Some(p) = self.runtime.pods.get_mut(unit) {
            p.containers.insert(container.to_string(), new_pid);
        }
        self.save()?;
        self.poll_pebble(unit, Duration::from_secs(30))
    }

    /// Stops every pod, and the cluster network (the model stays on disk).
    pub fn stop_pods(&mut self) {
        for (_, pod) in std::mem::take(&mut self.runtime.pods) {
            for (_, pid) in pod.containers {
                pod::stop(pid);
            }
            pod::stop(pod.charm_pid);
        }
        self.cluster_teardown();
        let _ = self.save();
    }
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(())
}

/// A container's init has pivoted once its root no longer looks like ours.
fn root_ready(pid: u32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let entered = theirs.is_some() && ours != theirs;
    entered && std::fs::read_dir(format!("/proc/{pid}/root/charm")).is_ok()
}
