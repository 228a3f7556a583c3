//! The controller: model operations (deploy, config, integrate, actions, ...) and the
//! unit agent's job of running the charm for each event, committing its changes and
//! delivering the events those changes cause (relation-changed, secret-changed).

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::{self, HookCtx, Journal};
use crate::meta::{CharmMeta, EndpointMeta, Role};
use crate::model::{
    app_of, Action, Application, Bag, Grant, Model, Relation, RelationEnd, Secret, SecretRevision,
    Unit,
};
use crate::pod::{self, ContainerSpec, Mount};
use crate::Error;

pub const JUJU_VERSION: &str = "3.6.8";
const HOOK_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_CASCADE: usize = 500;

/// One event to deliver to one unit.
#[derive(Debug, Clone, Default)]
pub struct HookSpec {
    /// `hooks/<name>` or `actions/<name>`.
    pub path: String,
    pub relation_id: Option<u64>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    pub workload: Option<String>,
    pub check: Option<String>,
    pub secret: Option<(String, Option<String>, Option<u64>)>,
    pub storage: Option<(String, String)>,
    pub action: Option<u64>,
    pub notice: Option<(String, String, String)>,
}

impl HookSpec {
    pub fn hook(name: &str) -> Self {
        Self {
            path: format!("hooks/{name}"),
            ..Default::default()
        }
    }
    fn name(&self) -> &str {
        self.path
            .split_once('/')
            .map(|(_, n)| n)
            .unwrap_or(&self.path)
    }
}

/// What one dispatch did, for the CLI, tests and benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRecord {
    pub seq: u64,
    pub unit: String,
    pub hook: String,
    pub exit: i32,
    pub wall_ms: f64,
    pub max_rss_kib: i64,
    pub calls: Vec<journal::Call>,
}

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

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Runtime {
    pods: BTreeMap<String, PodState>,
    pod_config: Option<PodConfig>,
}

pub struct Controller {
    pub home: PathBuf,
    pub model: Model,
    runtime: Runtime,
    queue: VecDeque<(String, HookSpec)>,
    pub records: Vec<HookRecord>,
}

fn runtime_path(home: &Path) -> PathBuf {
    home.join("runtime.json")
}

pub fn append_log(home: &Path, unit: &str, level: &str, message: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("debug.log"))
    {
        for line in message.lines() {
            let _ = writeln!(
                f,
                "unit-{} {} {level} {line}",
                unit.replace('/', "-"),
                crate::util::now_rfc3339()
            );
        }
    }
}

impl Controller {
    /// Creates a new, empty model in `home`.
    pub fn bootstrap(home: &Path, name: &str) -> Result<Self, Error> {
        std::fs::create_dir_all(home)
            .map_err(|e| Error::Model(format!("{}: {e}", home.display())))?;
        let home = home
            .canonicalize()
            .map_err(|e| Error::Model(e.to_string()))?;
        if Model::path(&home).exists() {
            return Err(Error::Usage(format!(
                "a model already exists in {}",
                home.display()
            )));
        }
        let model = Model::new(name);
        model.save(&home)?;
        let c = Self {
            home,
            model,
            runtime: Runtime::default(),
            queue: VecDeque::new(),
            records: vec![],
        };
        c.install_tools()?;
        c.save()?;
        Ok(c)
    }

    pub fn open(home: &Path) -> Result<Self, Error> {
        let home = home
            .canonicalize()
            .map_err(|e| Error::Model(format!("{}: {e}", home.display())))?;
        let model = Model::load(&home)?;
        let runtime = journal::read_json(&runtime_path(&home)).unwrap_or_default();
        Ok(Self {
            home,
            model,
            runtime,
            queue: VecDeque::new(),
            records: vec![],
        })
    }

    pub fn save(&self) -> Result<(), Error> {
        self.model.save(&self.home)?;
        journal::write_json(&runtime_path(&self.home), &self.runtime)
    }

    fn tools_dir(&self) -> PathBuf {
        self.home.join("tools")
    }

    /// Links every hook tool name to this binary.
    fn install_tools(&self) -> Result<(), Error> {
        let dir = self.tools_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::Model(e.to_string()))?;
        let exe = jujulocal_bin()?;
        for t in crate::tools::TOOLS {
            let link = dir.join(t);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&exe, &link)
                .map_err(|e| Error::Model(format!("{}: {e}", link.display())))?;
        }
        Ok(())
    }

    pub fn set_pod_config(&mut self, cfg: PodConfig) {
        self.runtime.pod_config = Some(cfg);
    }

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
            .map_err(|e| Error::Charm(format!("{}: {e}", charm_dir.display())))?;
        let meta = CharmMeta::load(&charm_dir)?;
        let dispatch = charm_dir.join("dispatch");
        if !dispatch.exists() {
            return Err(Error::Charm(format!(
                "{} has no dispatch",
                charm_dir.display()
            )));
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

    /// Adds one unit and runs its deploy sequence.
    /// Each unit's own copy of the charm, as Juju's unit agent unpacks it (the charm may
    /// keep files there between hooks).
    pub fn unit_charm_dir(&self, unit: &str) -> PathBuf {
        self.home
            .join("agents")
            .join(format!("unit-{}", unit.replace('/', "-")))
            .join("charm")
    }

    fn unpack_charm(&self, unit: &str) -> Result<(), Error> {
        let src = self
            .model
            .app(app_of(unit))?
            .charm_dir
            .clone()
            .ok_or_else(|| Error::Charm("no charm".into()))?;
        let dest = self.unit_charm_dir(unit);
        copy_dir(&src, &dest).map_err(|e| {
            Error::Charm(format!(
                "unpacking {} into {}: {e}",
                src.display(),
                dest.display()
            ))
        })
    }

    pub fn add_unit(&mut self, app_name: &str) -> Result<String, Error> {
        let (unit, pods, peers) = {
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
            let peers: Vec<(String, String)> = app
                .meta
                .peer_endpoints()
                .map(|(n, e)| (n.clone(), e.interface.clone()))
                .collect();
            (unit, app.pods, peers)
        };
        self.unpack_charm(&unit)?;
        if pods {
            self.start_pod(&unit)?;
        }
        // Like Juju, the first unit already holds leadership while installing;
        // leader-elected follows once the peer relations exist.
        let needs_leader = self.model.app(app_name)?.leader.is_none();
        if needs_leader {
            self.model.app_mut(app_name)?.leader = Some(unit.clone());
        }
        self.run(&unit, HookSpec::hook("install"))?;
        // Peer relations exist from the start.
        for (ep, iface) in peers {
            let id = match self.model.relations_of(app_name, &ep).first() {
                Some(r) => r.id,
                None => self.new_relation(
                    iface,
                    vec![RelationEnd {
                        app: app_name.into(),
                        endpoint: ep.clone(),
                    }],
                ),
            };
            self.run(
                &unit,
                HookSpec {
                    relation_id: Some(id),
                    remote_app: Some(app_name.into()),
                    ..HookSpec::hook(&format!("{ep}-relation-created"))
                },
            )?;
            // Existing peers and the new unit see each other join.
            let others: Vec<String> = self
                .model
                .relation(id)
                .and_then(|r| r.joined.get(app_name).cloned())
                .unwrap_or_default();
            if let Some(r) = self.model.relation_mut(id) {
                r.joined
                    .entry(app_name.into())
                    .or_default()
                    .push(unit.clone());
            }
            for other in others {
                for (a, b) in [(&other, &unit), (&unit, &other)] {
                    self.enqueue(
                        a,
                        HookSpec {
                            relation_id: Some(id),
                            remote_unit: Some(b.clone()),
                            remote_app: Some(app_name.into()),
                            ..HookSpec::hook(&format!("{ep}-relation-joined"))
                        },
                    );
                    self.enqueue(
                        a,
                        HookSpec {
                            relation_id: Some(id),
                            remote_unit: Some(b.clone()),
                            remote_app: Some(app_name.into()),
                            ..HookSpec::hook(&format!("{ep}-relation-changed"))
                        },
                    );
                }
            }
            self.drain()?;
        }
        if needs_leader {
            self.run(&unit, HookSpec::hook("leader-elected"))?;
        } else {
            self.run(&unit, HookSpec::hook("leader-settings-changed"))?;
        }
        self.run(&unit, HookSpec::hook("config-changed"))?;
        self.run(&unit, HookSpec::hook("start"))?;
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
                HookSpec {
                    storage: Some((format!("{name}/{num}"), loc)),
                    ..HookSpec::hook(&format!("{name}-storage-attached"))
                },
            )?;
        }
        if pods {
            self.poll_pebble(&unit, Duration::from_secs(30))?;
        }
        self.save()?;
        Ok(unit)
    }

    // ----- pods -------------------------------------------------------------------

    fn pod_dir(&self, unit: &str) -> PathBuf {
        self.home.join("pods").join(unit.replace('/', "-"))
    }

    fn start_pod(&mut self, unit: &str) -> Result<(), Error> {
        let cfg = self
            .runtime
            .pod_config
            .clone()
            .ok_or_else(|| Error::Pod("no pod configuration".into()))?;
        let dir = self.pod_dir(unit);
        let mk = |p: &Path| {
            std::fs::create_dir_all(p).map_err(|e| Error::Pod(format!("{}: {e}", p.display())))
        };
        mk(&dir.join("containers"))?;
        let meta = self.model.app(app_of(unit))?.meta.clone();
        for c in &meta.containers {
            mk(&dir.join("containers").join(&c.name))?;
        }
        for s in meta.storage.keys() {
            mk(&dir.join("storage").join(s))?;
        }
        let charm_dir = self
            .model
            .app(app_of(unit))?
            .charm_dir
            .clone()
            .unwrap_or_default();
        let mut mounts = vec![Mount::bind("/charm/containers", dir.join("containers"))];
        for (s, loc) in &meta.storage {
            if !loc.is_empty() {
                mounts.push(Mount::bind(loc, dir.join("storage").join(s)));
            }
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
        let _ = charm_dir;
        let mut state = PodState {
            dir: dir.clone(),
            charm_pid,
            containers: BTreeMap::new(),
        };
        // Wait for the namespace to be in place before workloads join its network.
        wait_for(Duration::from_secs(10), || root_ready(charm_pid)).map_err(|_| {
            Error::Pod(format!(
                "charm container of {unit} did not start; see {}",
                dir.join("charm.log").display()
            ))
        })?;
        self.runtime.pods.insert(unit.to_string(), state.clone());
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
            .ok_or_else(|| Error::Pod(format!("{unit} has no pod")))?;
        let dir = &pod.dir;
        let cdir = dir.join("containers").join(container);
        let _ = std::fs::remove_file(cdir.join("pebble.socket"));
        let mut mounts = vec![
            Mount::bind("/charm/bin/pebble", &cfg.pebble_bin),
            Mount::bind("/charm/container", &cdir),
            Mount::tmpfs("/tmp"),
            Mount::tmpfs("/run"),
        ];
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

    /// Host path of a container's Pebble socket.
    pub fn pebble_socket(&self, unit: &str, container: &str) -> PathBuf {
        self.pod_dir(unit)
            .join("containers")
            .join(container)
            .join("pebble.socket")
    }

    /// Runs a command inside a unit's pod network (e.g. a test client).
    pub fn pod_command(&self, unit: &str, program: &str) -> Result<Command, Error> {
        let mut cmd = Command::new(program);
        if let Some(pod) = self.runtime.pods.get(unit) {
            if self.runtime.pod_config.as_ref().is_some_and(|c| c.netns) {
                let f = std::fs::File::open(format!("/proc/{}/ns/net", pod.charm_pid))
                    .map_err(|e| Error::Pod(e.to_string()))?;
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                let fd = f.as_raw_fd();
                // SAFETY: setns is async-signal-safe; the file stays open until spawn via the closure.
                unsafe {
                    cmd.pre_exec(move || {
                        let _keep = &f;
                        if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        Ok(cmd)
    }

    /// Polls each container's Pebble like the unit agent and fires `<c>-pebble-ready`
    /// for every new boot-id. Waits up to `timeout` for Pebbles that do not answer yet.
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
                }
                self.run(
                    unit,
                    HookSpec {
                        workload: Some(c.clone()),
                        ..HookSpec::hook(&format!("{c}-pebble-ready"))
                    },
                )?;
            }
        }
        self.save()
    }

    /// Pod churn: restarts one container's Pebble (its API layers are lost), then lets
    /// the agent notice the new boot-id and fire pebble-ready.
    pub fn restart_container(&mut self, unit: &str, container: &str) -> Result<(), Error> {
        let cfg = self
            .runtime
            .pod_config
            .clone()
            .ok_or_else(|| Error::Pod("no pods".into()))?;
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

    /// Stops every pod (the model stays on disk).
    pub fn stop_pods(&mut self) {
        for (_, pod) in std::mem::take(&mut self.runtime.pods) {
            for (_, pid) in pod.containers {
                pod::stop(pid);
            }
            pod::stop(pod.charm_pid);
        }
        let _ = self.save();
    }

    // ----- running hooks ------------------------------------------------------------

    fn enqueue(&mut self, unit: &str, spec: HookSpec) {
        self.queue.push_back((unit.to_string(), spec));
    }

    /// Runs one event now, then everything it causes.
    pub fn run(&mut self, unit: &str, spec: HookSpec) -> Result<(), Error> {
        self.enqueue(unit, spec);
        self.drain()
    }

    fn drain(&mut self) -> Result<(), Error> {
        let mut n = 0;
        while let Some((unit, spec)) = self.queue.pop_front() {
            n += 1;
            if n > MAX_CASCADE {
                self.queue.clear();
                return Err(Error::Failed(format!("more than {MAX_CASCADE} events in one cascade: the charms keep changing relation data")));
            }
            // Units that are gone or played by the CLI get no hooks.
            let Ok(app) = self.model.app(app_of(&unit)) else {
                continue;
            };
            if app.is_played() || !app.units.contains_key(&unit) {
                continue;
            }
            if let Err(e) = self.dispatch(&unit, &spec) {
                self.queue.clear();
                self.save()?;
                return Err(e);
            }
        }
        self.save()
    }

    fn hook_env(
        &self,
        unit: &str,
        spec: &HookSpec,
        ctx_dir: &Path,
        seq: u64,
    ) -> Result<Vec<(String, String)>, Error> {
        let charm_dir = self.unit_charm_dir(unit);
        let (kind, name) = spec.path.split_once('/').unwrap_or(("hooks", &spec.path));
        let rel = spec.relation_id.and_then(|id| self.model.relation(id));
        let endpoint = rel
            .and_then(|r| r.end_for(app_of(unit)))
            .map(|e| e.endpoint.clone())
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.tools_dir().display()
                ),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            ("CHARM_DIR".into(), charm_dir.display().to_string()),
            ("JUJU_CHARM_DIR".into(), charm_dir.display().to_string()),
            ("JUJU_CONTEXT_ID".into(), format!("{unit}-{name}-{seq}")),
            (
                "JUJU_AGENT_SOCKET_ADDRESS".into(),
                ctx_dir.join("agent.socket").display().to_string(),
            ),
            ("JUJU_AGENT_SOCKET_NETWORK".into(), "unix".into()),
            ("JUJU_UNIT_NAME".into(), unit.into()),
            ("JUJU_MODEL_UUID".into(), self.model.uuid.clone()),
            ("JUJU_MODEL_NAME".into(), self.model.name.clone()),
            ("JUJU_VERSION".into(), JUJU_VERSION.into()),
            ("JUJU_API_ADDRESSES".into(), "127.0.0.1:17070".into()),
            ("JUJU_MACHINE_ID".into(), String::new()),
            ("JUJU_PRINCIPAL_UNIT".into(), String::new()),
            ("JUJU_AVAILABILITY_ZONE".into(), String::new()),
            ("CLOUD_API_VERSION".into(), "1.31.0".into()),
            ("JUJU_CHARM_HTTP_PROXY".into(), String::new()),
            ("JUJU_CHARM_HTTPS_PROXY".into(), String::new()),
            ("JUJU_CHARM_FTP_PROXY".into(), String::new()),
            ("JUJU_CHARM_NO_PROXY".into(), String::new()),
            (
                "JUJU_HOOK_NAME".into(),
                if kind == "hooks" {
                    name.into()
                } else {
                    String::new()
                },
            ),
            ("JUJU_DISPATCH_PATH".into(), spec.path.clone()),
        ];
        if spec.relation_id.is_some() {
            env.push(("JUJU_RELATION".into(), endpoint.clone()));
            env.push((
                "JUJU_RELATION_ID".into(),
                format!("{endpoint}:{}", spec.relation_id.unwrap_or(0)),
            ));
            env.push((
                "JUJU_REMOTE_APP".into(),
                spec.remote_app.clone().unwrap_or_default(),
            ));
            env.push((
                "JUJU_REMOTE_UNIT".into(),
                spec.remote_unit.clone().unwrap_or_default(),
            ));
            if let Some(d) = &spec.departing_unit {
                env.push(("JUJU_DEPARTING_UNIT".into(), d.clone()));
            }
        }
        if let Some(w) = &spec.workload {
            env.push(("JUJU_WORKLOAD_NAME".into(), w.clone()));
        }
        if let Some(c) = &spec.check {
            env.push(("JUJU_PEBBLE_CHECK_NAME".into(), c.clone()));
        }
        if let Some((id, ty, key)) = &spec.notice {
            env.push(("JUJU_NOTICE_ID".into(), id.clone()));
            env.push(("JUJU_NOTICE_TYPE".into(), ty.clone()));
            env.push(("JUJU_NOTICE_KEY".into(), key.clone()));
        }
        if let Some((id, label, rev)) = &spec.secret {
            env.push((
                "JUJU_SECRET_ID".into(),
                format!("secret:{}", crate::util::secret_id(id)),
            ));
            env.push((
                "JUJU_SECRET_LABEL".into(),
                label.clone().unwrap_or_default(),
            ));
            if let Some(r) = rev {
                env.push(("JUJU_SECRET_REVISION".into(), r.to_string()));
            }
        }
        if let Some((id, loc)) = &spec.storage {
            env.push(("JUJU_STORAGE_ID".into(), id.clone()));
            env.push(("JUJU_STORAGE_LOCATION".into(), loc.clone()));
            env.push(("JUJU_STORAGE_KIND".into(), "filesystem".into()));
        }
        if let Some(a) = spec.action {
            env.push(("JUJU_ACTION_NAME".into(), name.into()));
            env.push(("JUJU_ACTION_UUID".into(), a.to_string()));
            env.push(("JUJU_ACTION_TAG".into(), format!("action-{a}")));
        }
        // Developer knobs that real Juju would not set, passed through when present.
        for k in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.into(), v));
            }
        }
        Ok(env)
    }

    fn dispatch(&mut self, unit: &str, spec: &HookSpec) -> Result<(), Error> {
        let seq = self.model.next_hook;
        self.model.next_hook += 1;
        let app_name = app_of(unit).to_string();
        let app = self.model.app(&app_name)?;
        if app.charm_dir.is_none() {
            return Err(Error::Charm(format!("{app_name} has no charm")));
        }
        let charm_dir = self.unit_charm_dir(unit);
        let ctx_dir = self.home.join("hooks").join(seq.to_string());
        std::fs::create_dir_all(&ctx_dir).map_err(|e| Error::Model(e.to_string()))?;
        let ctx = HookCtx {
            home: self.home.clone(),
            unit: unit.to_string(),
            dispatch_path: spec.path.clone(),
            leader: app.leader.as_deref() == Some(unit),
            relation_id: spec.relation_id,
            remote_unit: spec.remote_unit.clone(),
            remote_app: spec.remote_app.clone(),
            departing_unit: spec.departing_unit.clone(),
            action_id: spec.action,
        };
        // Hook tools read the model from disk: it must be current.
        self.save()?;
        journal::write_json(&journal::ctx_path(&ctx_dir), &ctx)?;
        journal::write_json(&journal::journal_path(&ctx_dir), &Journal::default())?;
        let env = self.hook_env(unit, spec, &ctx_dir, seq)?;
        let mut cmd = Command::new(charm_dir.join("dispatch"));
        cmd.env_clear()
            .envs(env)
            .current_dir(&charm_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The namespace files must stay open until the charm has been spawned.
        let _enter = match self.runtime.pods.get(unit) {
            Some(pod) => {
                let enter = pod::Enter::open(pod.charm_pid)?;
                enter.apply(&mut cmd, &charm_dir)?;
                Some(enter)
            }
            None => None,
        };
        let before = self.model.clone();
        let started = Instant::now();
        let (code, stdout, stderr, rss) = run_with_timeout(cmd, HOOK_TIMEOUT)?;
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let journal: Journal =
            journal::read_json(&journal::journal_path(&ctx_dir)).unwrap_or_default();
        let hook_name = spec.name().to_string();
        for (level, text) in [("DEBUG", &stdout), ("WARNING", &stderr)] {
            if !text.trim().is_empty() {
                append_log(
                    &self.home,
                    unit,
                    level,
                    &format!("{hook_name}: {}", text.trim_end()),
                );
            }
        }
        let record = HookRecord {
            seq,
            unit: unit.into(),
            hook: hook_name.clone(),
            exit: code,
            wall_ms,
            max_rss_kib: rss,
            calls: journal.calls.clone(),
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("hooks.jsonl"))
        {
            let _ = writeln!(f, "{}", serde_json::to_string(&record).unwrap_or_default());
        }
        self.records.push(record);
        let _ = std::fs::remove_dir_all(&ctx_dir);
        journal::commit(&mut self.model, &ctx, &journal, code == 0);
        if let Some(a) = spec.action {
            if let Some(action) = self.model.actions.iter_mut().find(|x| x.id == a) {
                action
                    .results
                    .insert("return-code".into(), Value::from(code));
                if !stdout.is_empty() {
                    action
                        .results
                        .insert("stdout".into(), Value::String(stdout.clone()));
                }
                if !stderr.is_empty() {
                    action
                        .results
                        .insert("stderr".into(), Value::String(stderr.clone()));
                }
                if code != 0 {
                    action.status = "failed".into();
                    action
                        .message
                        .get_or_insert_with(|| format!("exit status {code}"));
                } else if action.status == "running" {
                    action.status = "completed".into();
                }
            }
            if code != 0 {
                return Ok(());
            }
        }
        if code != 0 {
            if let Some(u) = self.model.app_mut(&app_name)?.units.get_mut(unit) {
                u.error = Some(hook_name.clone());
            }
            return Err(Error::HookFailed {
                unit: unit.into(),
                hook: hook_name,
                reason: format!("exit status {code}: {}", last_line(&stderr)),
            });
        }
        if let Some(u) = self.model.app_mut(&app_name)?.units.get_mut(unit) {
            u.error = None;
        }
        self.deliver_changes(&before, unit, &journal);
        Ok(())
    }

    /// Queues relation-changed / secret-changed for what a hook (or the CLI) changed.
    fn deliver_changes(&mut self, before: &Model, writer: &str, journal: &Journal) {
        let writer_app = app_of(writer).to_string();
        for rel in self.model.relations.clone() {
            let Some(old) = before.relation(rel.id) else {
                continue;
            };
            let Some(end) = rel.end_for(&writer_app) else {
                continue;
            };
            let hook = "-relation-changed".to_string();
            let app_changed = old.app_data.get(&writer_app) != rel.app_data.get(&writer_app);
            let unit_changed = old.unit_data.get(writer) != rel.unit_data.get(writer);
            if !app_changed && !unit_changed {
                continue;
            }
            // The units on the other side (other peers for a peer relation) see the change.
            let (target_app, target_ep) = if rel.is_peer() {
                (writer_app.clone(), end.endpoint.clone())
            } else {
                match rel.ends.iter().find(|e| e.app != writer_app) {
                    Some(e) => (e.app.clone(), e.endpoint.clone()),
                    None => continue,
                }
            };
            let targets: Vec<String> = rel.joined.get(&target_app).cloned().unwrap_or_default();
            let writer_joined = rel
                .joined
                .get(&writer_app)
                .is_some_and(|u| u.iter().any(|x| x == writer))
                || writer.is_empty();
            for t in targets.iter().filter(|t| *t != writer) {
                if app_changed {
                    self.enqueue(
                        t,
                        HookSpec {
                            relation_id: Some(rel.id),
                            remote_app: Some(writer_app.clone()),
                            remote_unit: None,
                            ..HookSpec::hook(&format!("{target_ep}{hook}"))
                        },
                    );
                }
                if unit_changed && writer_joined {
                    self.enqueue(
                        t,
                        HookSpec {
                            relation_id: Some(rel.id),
                            remote_app: Some(writer_app.clone()),
                            remote_unit: Some(writer.to_string()),
                            ..HookSpec::hook(&format!("{target_ep}{hook}"))
                        },
                    );
                }
            }
        }
        for id in &journal.new_revisions {
            self.notify_secret_consumers(id);
        }
    }

    fn notify_secret_consumers(&mut self, id: &str) {
        let Some(secret) = self.model.secrets.get(crate::util::secret_id(id)).cloned() else {
            return;
        };
        let latest = secret.latest().map(|r| r.revision).unwrap_or(0);
        for (unit, c) in &secret.consumers {
            if c.revision < latest {
                self.enqueue(
                    unit,
                    HookSpec {
                        secret: Some((secret.id.clone(), c.label.clone(), None)),
                        ..HookSpec::hook("secret-changed")
                    },
                );
            }
        }
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
            self.run(&u, HookSpec::hook("config-changed"))?;
        }
        Ok(())
    }

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
            },
        );
        self.save()
    }

    fn new_relation(&mut self, interface: String, ends: Vec<RelationEnd>) -> u64 {
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
                    HookSpec {
                        relation_id: Some(id),
                        remote_app: Some(remote.clone()),
                        ..HookSpec::hook(&format!("{ep}-relation-created"))
                    },
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
                        HookSpec {
                            relation_id: Some(id),
                            remote_app: Some(remote.clone()),
                            remote_unit: Some(ru.clone()),
                            ..HookSpec::hook(&format!("{ep}-relation-joined"))
                        },
                    );
                    self.enqueue(
                        u,
                        HookSpec {
                            relation_id: Some(id),
                            remote_app: Some(remote.clone()),
                            remote_unit: Some(ru.clone()),
                            ..HookSpec::hook(&format!("{ep}-relation-changed"))
                        },
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
                    self.enqueue(
                        u,
                        HookSpec {
                            relation_id: Some(id),
                            remote_app: Some(remote.clone()),
                            remote_unit: Some(ru.clone()),
                            departing_unit: Some(ru.clone()),
                            ..HookSpec::hook(&format!("{}-relation-departed", end.endpoint))
                        },
                    );
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
                    HookSpec {
                        relation_id: Some(id),
                        remote_app: Some(remote.clone()),
                        ..HookSpec::hook(&format!("{}-relation-broken", end.endpoint))
                    },
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
            HookSpec {
                action: Some(id),
                path: format!("actions/{name}"),
                ..Default::default()
            },
        );
        let action = self
            .model
            .actions
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| Error::Model("action vanished".into()))?;
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
            self.run(&u, HookSpec::hook("update-status"))?;
        }
        Ok(())
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
                        HookSpec {
                            relation_id: Some(rel.id),
                            remote_app: Some(app.into()),
                            ..HookSpec::hook(&format!("{}-relation-changed", e.endpoint))
                        },
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
        let id = crate::util::secret_xid();
        self.model.secrets.insert(
            id.clone(),
            Secret {
                id: id.clone(),
                owner: owner.into(),
                label: label.map(str::to_string),
                description: None,
                rotate: None,
                expire: None,
                revisions: vec![SecretRevision {
                    revision: 1,
                    content: content.clone(),
                }],
                grants: vec![],
                consumers: BTreeMap::new(),
                owner_tracking: BTreeMap::new(),
            },
        );
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

    /// Makes another unit the leader: leader-elected there, leader-settings-changed elsewhere.
    pub fn set_leader(&mut self, unit: &str) -> Result<(), Error> {
        let app = app_of(unit).to_string();
        let units: Vec<String> = self.model.app(&app)?.units.keys().cloned().collect();
        if !units.contains(&unit.to_string()) {
            return Err(Error::NotFound(format!("unit {unit:?} not found")));
        }
        self.model.app_mut(&app)?.leader = Some(unit.into());
        self.run(unit, HookSpec::hook("leader-elected"))?;
        for u in units.iter().filter(|u| *u != unit) {
            self.run(u, HookSpec::hook("leader-settings-changed"))?;
        }
        Ok(())
    }

    /// The recorded dispatches, oldest first (from `hooks.jsonl`).
    pub fn history(&self) -> Vec<HookRecord> {
        std::fs::read_to_string(self.home.join("hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.home.join("debug.log")).unwrap_or_default()
    }
}

fn copy_dir(src: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dest.join(entry.file_name());
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
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

/// The `jujulocal` binary (hook tools link to it; containers start through it):
/// `$JUJULOCAL_BIN`, else this executable if it is jujulocal, else one next to it.
pub fn jujulocal_bin() -> Result<PathBuf, Error> {
    let exe = std::env::var_os("JUJULOCAL_BIN")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .ok_or_else(|| Error::Model("cannot find the jujulocal binary".into()))?;
    resolve_jujulocal(&exe)
}

/// The binary to link hook tools to: `jujulocal` itself (tests may run from another binary).
fn resolve_jujulocal(exe: &Path) -> Result<PathBuf, Error> {
    if exe.file_name().and_then(|n| n.to_str()) == Some("jujulocal") {
        return Ok(exe.to_path_buf());
    }
    let sibling = exe.parent().map(|p| p.join("jujulocal"));
    let up = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("jujulocal"));
    for c in [sibling, up].into_iter().flatten() {
        if c.exists() {
            return Ok(c);
        }
    }
    Err(Error::Model(format!(
        "cannot find the jujulocal binary next to {}; set JUJULOCAL_BIN",
        exe.display()
    )))
}

/// Runs the charm, capturing output, with a timeout; returns (exit code, stdout, stderr, max RSS KiB).
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(i32, String, String, i64), Error> {
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Charm(format!("cannot run the charm: {e}")))?;
    let pid = child.id() as i32;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let (code, rss) = loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, non-blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            break (code, usage.ru_maxrss);
        }
        if r < 0 {
            return Err(Error::Charm(format!(
                "waiting for the charm: {}",
                std::io::Error::last_os_error()
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    Ok((code, stdout, stderr, rss))
}
