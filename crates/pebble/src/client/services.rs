//! Services (start, stop, replan, signals) and the changes they create.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{encode, list, target, Client};
use crate::duration::GoDuration;
use crate::error::{Error, Result};
use crate::types::{Change, ServiceInfo, Status};

/// How often a change is polled when the daemon has no `/wait` endpoint.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

impl Client {
    /// `GET /v1/services`: all services (empty `names`) or the named ones.
    pub fn services(&self, names: &[&str]) -> Result<Vec<ServiceInfo>> {
        self.get(target("/v1/services", &[("names", list(names))]))
    }

    fn service_action(&self, action: &str, names: &[&str], timeout: Duration) -> Result<Change> {
        let id = self.post_async(
            "/v1/services",
            &json!({"action": action, "services": names}),
        )?;
        let change = self.wait_change(&id, timeout)?;
        self.ok_change(change)
    }

    /// Starts services (and their `requires`) and waits for the change.
    pub fn start(&self, names: &[&str], timeout: Duration) -> Result<Change> {
        self.service_action("start", names, timeout)
    }

    /// Stops services (and their dependants) and waits for the change.
    pub fn stop(&self, names: &[&str], timeout: Duration) -> Result<Change> {
        self.service_action("stop", names, timeout)
    }

    /// Stops (if running) and starts services, even if nothing changed.
    pub fn restart(&self, names: &[&str], timeout: Duration) -> Result<Change> {
        self.service_action("restart", names, timeout)
    }

    /// Restarts services whose spec changed and starts enabled ones.
    pub fn replan(&self, timeout: Duration) -> Result<Change> {
        self.service_action("replan", &[], timeout)
    }

    /// Starts all `startup: enabled` services (error kind
    /// `no-default-services` if there are none).
    pub fn autostart(&self, timeout: Duration) -> Result<Change> {
        self.service_action("autostart", &[], timeout)
    }

    /// `POST /v1/signals`: signal (e.g. `SIGHUP`) the services' main processes.
    pub fn send_signal(&self, signal: &str, services: &[&str]) -> Result<()> {
        let _: Value = self.post(
            "/v1/signals",
            &json!({"signal": signal, "services": services}),
        )?;
        Ok(())
    }

    // ----- changes ----------------------------------------------------------

    /// `GET /v1/changes/{id}`.
    pub fn change(&self, id: &str) -> Result<Change> {
        self.get(format!("/v1/changes/{}", encode(id)))
    }

    /// Waits until the change is ready (Done, Error, Undone, Hold) or
    /// `timeout` passes ([`Error::WaitTimeout`]). The change is returned
    /// whatever its final status.
    ///
    /// Uses `/v1/changes/{id}/wait` in slices shorter than the per-call
    /// timeout; falls back to polling when the daemon has no such endpoint.
    pub fn wait_change(&self, id: &str, timeout: Duration) -> Result<Change> {
        let deadline = Instant::now() + timeout;
        let slice_max = self
            .timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < Duration::from_millis(1) {
                return self.last_look(id, timeout);
            }
            let slice = remaining.min(slice_max);
            let slice = GoDuration::from_millis(slice.as_millis().max(1) as u64);
            let wait_target = format!("/v1/changes/{}/wait?timeout={slice}", encode(id));
            let call_timeout = self
                .timeout
                .max(slice.as_duration() + Duration::from_secs(1));
            match self.sync::<Change>("GET", wait_target, None, call_timeout) {
                Ok(change) if change.ready => return Ok(change),
                Ok(_) => continue,
                Err(Error::Api { status: 504, .. }) => continue,
                // No /wait endpoint (very old Pebble), or an unknown id:
                // polling tells the two apart.
                Err(Error::Api { status: 404, .. }) => {
                    return self.poll_change(id, deadline, timeout)
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn poll_change(&self, id: &str, deadline: Instant, timeout: Duration) -> Result<Change> {
        loop {
            let change = self.change(id)?;
            if change.ready {
                return Ok(change);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::WaitTimeout {
                    socket: self.socket.clone(),
                    id: id.to_string(),
                    timeout,
                });
            }
            thread::sleep(remaining.min(POLL_INTERVAL));
        }
    }

    /// At the deadline: one last look, so a change that just finished is
    /// still returned.
    fn last_look(&self, id: &str, timeout: Duration) -> Result<Change> {
        let change = self.change(id)?;
        if change.ready {
            return Ok(change);
        }
        Err(Error::WaitTimeout {
            socket: self.socket.clone(),
            id: id.to_string(),
            timeout,
        })
    }

    /// Turns a waited change that ended in error into [`Error::Change`].
    fn ok_change(&self, change: Change) -> Result<Change> {
        if change.err.is_none() && change.status != Status::Error {
            return Ok(change);
        }
        Err(Error::Change {
            socket: self.socket.clone(),
            task_logs: change.failed_task_logs(),
            err: change
                .err
                .unwrap_or_else(|| format!("change {} ended in Error", change.id)),
            id: change.id,
            kind: change.kind,
        })
    }
}
