//! Faults injected on purpose, so that tests can see what a charm does when a hook
//! fails half-way: a hook tool that fails for its next N calls, that kills the charm
//! (SIGKILL, as when a pod is evicted mid-hook) when it is called, or that kills a
//! workload container's Pebble while the hook runs (the container restarts under it).
//!
//! The faults live in `faults.json` in the model directory, because the hook tools
//! are processes of their own: each call of a tool with a fault left takes one (under
//! an exclusive lock). A failing tool prints `ERROR injected failure` and exits 1; the
//! unit agent then sees a failed hook and, as for any failed hook, commits none of its
//! queued writes.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Controller;
use crate::error::Area;
use crate::journal;
use crate::Error;

/// The message a tool prints on stderr when it fails on purpose.
pub const INJECTED: &str = "injected failure";

/// What a tool with a fault does when it is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Print `ERROR injected failure` and exit 1 (the charm sees a failed tool).
    Fail,
    /// The same, and SIGKILL the charm that called the tool: the hook dies mid-way.
    KillCharm,
    /// The tool works, and the named container of the unit is killed (its Pebble
    /// and workloads): from then on the charm's Pebble calls fail. The container stays
    /// down until [`Controller::restart_container`] brings a new Pebble up.
    KillContainer(String),
}

impl FaultAction {
    /// Whether the tool call itself fails.
    pub fn fails_the_call(&self) -> bool {
        matches!(self, FaultAction::Fail | FaultAction::KillCharm)
    }
}

/// A fault for one tool: what it does and for how many more calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFault {
    pub action: FaultAction,
    pub remaining: u32,
}

/// The faults left, by tool name.
pub type Faults = BTreeMap<String, InjectedFault>;

fn faults_path(home: &Path) -> PathBuf {
    home.join("faults.json")
}

/// Holds an exclusive lock on the model's faults while alive.
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    fn take(home: &Path) -> Result<Self, Error> {
        let path = home.join("faults.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(Area::Model, &path))?;
        // SAFETY: flock on a file this process opened; released when it is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Os {
                area: Area::Model,
                what: format!("locking {}", path.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Self { _file: f })
    }
}

/// The faults left in the model at `home` (none when there is no file).
pub fn load(home: &Path) -> Result<Faults, Error> {
    let path = faults_path(home);
    if !path.exists() {
        return Ok(Faults::new());
    }
    journal::read_json(&path)
}

/// Called by a hook tool before it runs: takes one call's fault for `tool`, if any.
pub fn take(home: &Path, tool: &str) -> Result<Option<FaultAction>, Error> {
    if !faults_path(home).exists() {
        return Ok(None);
    }
    let _lock = Lock::take(home)?;
    let mut faults = load(home)?;
    let Some(fault) = faults.get_mut(tool) else {
        return Ok(None);
    };
    let action = fault.action.clone();
    fault.remaining = fault.remaining.saturating_sub(1);
    if fault.remaining == 0 {
        faults.remove(tool);
    }
    journal::write_json(&faults_path(home), &faults)?;
    Ok(Some(action))
}

/// Sets (or, with `count` 0, clears) the fault of one tool.
pub fn inject(home: &Path, tool: &str, action: FaultAction, count: u32) -> Result<(), Error> {
    if !crate::tools::is_tool(tool) {
        return Err(Error::Usage(format!(
            "{tool:?} is not a hook tool; see `jujulocal help`"
        )));
    }
    let _lock = Lock::take(home)?;
    let mut faults = load(home)?;
    if count == 0 {
        faults.remove(tool);
    } else {
        faults.insert(
            tool.to_string(),
            InjectedFault {
                action,
                remaining: count,
            },
        );
    }
    journal::write_json(&faults_path(home), &faults)
}

impl Controller {
    /// Makes the next `count` calls of the hook tool `tool` fail (`ERROR injected
    /// failure`, exit 1). `count` 0 clears the fault.
    pub fn inject_tool_failure(&self, tool: &str, count: u32) -> Result<(), Error> {
        inject(&self.home, tool, FaultAction::Fail, count)
    }

    /// Makes the next `count` calls of the hook tool `tool` fail and SIGKILL the charm
    /// that called it: the hook dies mid-way, as when its pod is evicted.
    pub fn inject_charm_kill(&self, tool: &str, count: u32) -> Result<(), Error> {
        inject(&self.home, tool, FaultAction::KillCharm, count)
    }

    /// Makes the next `count` calls of the hook tool `tool` kill the unit's container
    /// `container` (the call itself works): Pebble goes away mid-hook, as when the
    /// container restarts. [`Controller::restart_container`] brings it back.
    pub fn inject_container_kill(
        &self,
        tool: &str,
        container: &str,
        count: u32,
    ) -> Result<(), Error> {
        inject(
            &self.home,
            tool,
            FaultAction::KillContainer(container.to_string()),
            count,
        )
    }

    /// The faults not yet taken, by tool.
    pub fn injected_faults(&self) -> Result<Faults, Error> {
        load(&self.home)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_taken_once_per_call_until_used_up() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        assert_eq!(take(home, "relation-set").unwrap(), None);
        inject(home, "relation-set", FaultAction::Fail, 2).unwrap();
        inject(home, "status-set", FaultAction::KillCharm, 1).unwrap();
        inject(
            home,
            "config-get",
            FaultAction::KillContainer("web".into()),
            1,
        )
        .unwrap();
        assert_eq!(
            take(home, "config-get").unwrap(),
            Some(FaultAction::KillContainer("web".into()))
        );
        assert_eq!(take(home, "relation-get").unwrap(), None);
        assert_eq!(take(home, "relation-set").unwrap(), Some(FaultAction::Fail));
        assert_eq!(load(home).unwrap()["relation-set"].remaining, 1);
        assert_eq!(take(home, "relation-set").unwrap(), Some(FaultAction::Fail));
        assert_eq!(take(home, "relation-set").unwrap(), None);
        assert_eq!(
            take(home, "status-set").unwrap(),
            Some(FaultAction::KillCharm)
        );
        assert!(load(home).unwrap().is_empty());
    }

    #[test]
    fn only_hook_tools_take_faults_and_zero_clears() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        assert!(matches!(
            inject(home, "rm", FaultAction::Fail, 1),
            Err(Error::Usage(_))
        ));
        inject(home, "secret-add", FaultAction::Fail, 3).unwrap();
        inject(home, "secret-add", FaultAction::Fail, 0).unwrap();
        assert!(load(home).unwrap().is_empty());
    }
}
