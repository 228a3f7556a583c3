//! The controller: what `juju` and the controller do, in one room per concern.
//!
//! - [`model_ops`]: model operations from the CLI (deploy, add-unit, config, integrate,
//!   remove-relation, run an action, update-status, set the leader);
//! - [`agent`]: the unit agent: the hook environment, dispatching the charm, committing
//!   its journal and the queue of events its changes cause;
//! - [`pods`]: the pods of units that run in containers, as the controller drives them;
//! - [`checks`]: Pebble check transitions, as the unit agent turns them into events;
//! - [`cluster`]: the cluster network pods in their own network namespace share;
//! - [`faults`]: hook-tool failures injected on purpose, for tests of failed hooks;
//! - [`played`]: applications JujuLocal plays from the CLI (databags, secrets);
//! - [`providers`]: stand-ins for Charmhub charms (postgresql-k8s), backed by real servers;
//! - [`removal`]: removing units and applications (`remove-unit`, `remove-application`);
//! - [`scaling`]: a unit joining (`add-unit`, deploy) and `scale-application`;
//! - [`logs`]: the debug log and the record of every dispatch.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Area;
use crate::journal;
use crate::model::Model;
use crate::Error;
use crate::Event;

pub mod agent;
pub mod checks;
pub mod cluster;
pub mod faults;
pub mod logs;
pub mod model_ops;
pub mod played;
pub mod pods;
pub mod providers;
pub mod removal;
pub mod scaling;

pub use crate::exe::jujulocal_bin;
pub use logs::{append_log, HookRecord};
pub use pods::{PodConfig, PodState};

pub const JUJU_VERSION: &str = "3.6.8";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Runtime {
    pods: BTreeMap<String, PodState>,
    pod_config: Option<PodConfig>,
    #[serde(default)]
    cluster: Option<cluster::ClusterState>,
}

pub struct Controller {
    pub home: PathBuf,
    pub model: Model,
    runtime: Runtime,
    queue: VecDeque<(String, Event)>,
    pub records: Vec<HookRecord>,
}

fn runtime_path(home: &Path) -> PathBuf {
    home.join("runtime.json")
}

impl Controller {
    /// Creates a new, empty model in `home`.
    pub fn bootstrap(home: &Path, name: &str) -> Result<Self, Error> {
        std::fs::create_dir_all(home).map_err(Error::io(Area::Model, home))?;
        let home = home.canonicalize().map_err(Error::io(Area::Model, home))?;
        if Model::path(&home).exists() {
            return Err(Error::Usage(format!(
                "a model already exists in {}",
                home.display()
            )));
        }
        let model = Model::new(name)?;
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
        let home = home.canonicalize().map_err(Error::io(Area::Model, home))?;
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
        std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
        let exe = crate::exe::jujulocal_bin()?;
        for t in crate::tools::names() {
            let link = dir.join(t);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&exe, &link).map_err(Error::io(Area::Model, &link))?;
        }
        Ok(())
    }

    pub fn set_pod_config(&mut self, cfg: PodConfig) {
        self.runtime.pod_config = Some(cfg);
    }
}

/// The pid of a unit's container as the controller started it (for the hook tools,
/// which see the controller only through the model directory).
pub(crate) fn container_pid(home: &Path, unit: &str, container: &str) -> Option<u32> {
    let runtime: Runtime = journal::read_json(&runtime_path(home)).ok()?;
    runtime.pods.get(unit)?.containers.get(container).copied()
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
