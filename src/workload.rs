//! The Pebble side: what the reconcile needs from a workload container, as a trait,
//! with the real implementation over Pebble's unix socket.

use std::path::PathBuf;
use std::time::Duration;

use pebble::{
    CheckInfo, Client, ExecOptions, ExecOutput, Layer, LogEntry, PushOptions, ServiceInfo,
};

/// Where Juju exposes each workload container's Pebble socket to the charm container.
pub const SOCKETS_DIR: &str = "/charm/containers";

pub type PebbleResult<T> = Result<T, pebble::Error>;

pub trait Workload {
    fn name(&self) -> &str;
    fn plan(&self) -> PebbleResult<Layer>;
    fn add_layer(&self, label: &str, layer: &Layer) -> PebbleResult<()>;
    fn replan(&self) -> PebbleResult<()>;
    fn stop(&self, services: &[&str]) -> PebbleResult<()>;
    /// Stops checks (a replan restarts a changed check even when its startup is
    /// disabled).
    fn stop_checks(&self, checks: &[&str]) -> PebbleResult<()>;
    fn start(&self, services: &[&str]) -> PebbleResult<()>;
    /// File content, or `None` when the file does not exist.
    fn pull(&self, path: &str) -> PebbleResult<Option<Vec<u8>>>;
    fn push(&self, path: &str, content: &[u8], opts: &PushOptions) -> PebbleResult<()>;
    fn services(&self) -> PebbleResult<Vec<ServiceInfo>>;
    fn checks(&self) -> PebbleResult<Vec<CheckInfo>>;
    /// Whether an HTTP GET of `url` (in the pod's network) answers 2xx within a second.
    fn probe(&self, url: &str) -> bool;
    /// Runs a command in the container and waits for it.
    fn exec(&self, opts: &ExecOptions) -> PebbleResult<ExecOutput>;
    /// Runs a command with streamed input and output (see
    /// [`pebble::Client::exec_streaming`]).
    fn exec_streaming(
        &self,
        opts: &ExecOptions,
        stdin: &mut dyn std::io::Read,
        stdout: &mut (dyn std::io::Write + Send),
    ) -> PebbleResult<pebble::StreamedOutput>;
    /// The last `n` log lines of a service.
    fn logs(&self, service: &str, n: usize) -> PebbleResult<Vec<LogEntry>>;
    /// Removes a file; a file that is not there is not an error.
    fn remove(&self, path: &str) -> PebbleResult<()>;
    /// The body of an HTTP GET of `url` in the pod's network (2xx within a second).
    fn fetch(&self, url: &str) -> Option<Vec<u8>>;
    /// Sends a signal (e.g. `SIGHUP`) to the services' main processes.
    fn signal(&self, services: &[&str], signal: &str) -> PebbleResult<()>;
}

/// A container reached through its Pebble socket.
pub struct PebbleWorkload {
    name: String,
    client: Client,
}

const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

impl PebbleWorkload {
    pub fn new(name: &str) -> Self {
        let socket = PathBuf::from(SOCKETS_DIR).join(name).join("pebble.socket");
        Self {
            name: name.to_string(),
            client: Client::new(socket),
        }
    }
}

impl Workload for PebbleWorkload {
    fn name(&self) -> &str {
        &self.name
    }
    fn plan(&self) -> PebbleResult<Layer> {
        self.client.plan()
    }
    fn add_layer(&self, label: &str, layer: &Layer) -> PebbleResult<()> {
        self.client.add_layer(label, layer, true)
    }
    fn replan(&self) -> PebbleResult<()> {
        self.client.replan(CHANGE_TIMEOUT).map(drop)
    }
    fn stop(&self, services: &[&str]) -> PebbleResult<()> {
        self.client.stop(services, CHANGE_TIMEOUT).map(drop)
    }
    fn stop_checks(&self, checks: &[&str]) -> PebbleResult<()> {
        self.client.stop_checks(checks).map(drop)
    }
    fn start(&self, services: &[&str]) -> PebbleResult<()> {
        self.client.start(services, CHANGE_TIMEOUT).map(drop)
    }
    fn pull(&self, path: &str) -> PebbleResult<Option<Vec<u8>>> {
        match self.client.pull(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn push(&self, path: &str, content: &[u8], opts: &PushOptions) -> PebbleResult<()> {
        self.client.push(path, content, opts)
    }
    fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
        self.client.services(&[])
    }
    fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
        self.client.checks(None, &[])
    }
    fn probe(&self, url: &str) -> bool {
        http_ok(url, Duration::from_secs(1))
    }
    fn exec(&self, opts: &ExecOptions) -> PebbleResult<ExecOutput> {
        self.client.exec(opts)
    }
    fn exec_streaming(
        &self,
        opts: &ExecOptions,
        stdin: &mut dyn std::io::Read,
        stdout: &mut (dyn std::io::Write + Send),
    ) -> PebbleResult<pebble::StreamedOutput> {
        self.client.exec_streaming(opts, stdin, stdout)
    }
    fn logs(&self, service: &str, n: usize) -> PebbleResult<Vec<LogEntry>> {
        self.client.logs(&[service], n)
    }
    fn fetch(&self, url: &str) -> Option<Vec<u8>> {
        match http1::get(url, Duration::from_secs(1)) {
            Ok(r) if (200..300).contains(&r.status) => Some(r.body),
            _ => None,
        }
    }
    fn signal(&self, services: &[&str], signal: &str) -> PebbleResult<()> {
        self.client.send_signal(signal, services)
    }
    fn remove(&self, path: &str) -> PebbleResult<()> {
        match self.client.remove_path(path, false) {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

/// A plain HTTP GET of `http://host:port/path`; true on a 2xx answer.
pub fn http_ok(url: &str, timeout: Duration) -> bool {
    matches!(http1::get(url, timeout), Ok(r) if (200..300).contains(&r.status))
}

mod service;
pub use service::{
    apply_layer, apply_layer_tracked, last_error_line, layer_in_plan, tracked_state, unreachable,
    WatchHint, Watched, Watches,
};

/// Access to the workload containers and the shared `/data` volume.
pub trait Workloads {
    fn container(&self, name: &str) -> Box<dyn Workload + '_>;
    /// Makes the data volume (mounted in the charm container too) owned by Synapse's user.
    fn own_data_dir(&self, uid: u32) -> std::io::Result<()>;
    /// Where the charm container sees the data volume (`/data` in production).
    fn data_dir(&self) -> PathBuf;
}

/// The production workloads: Pebble sockets under /charm/containers and the `data`
/// storage mounted in the charm container at /data.
pub struct PodWorkloads {
    pub data_dir: PathBuf,
}

impl Default for PodWorkloads {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/data"),
        }
    }
}

impl Workloads for PodWorkloads {
    fn container(&self, name: &str) -> Box<dyn Workload + '_> {
        Box::new(PebbleWorkload::new(name))
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    fn own_data_dir(&self, uid: u32) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.data_dir)?;
        if meta.uid() != uid || meta.gid() != uid {
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(uid))?;
        }
        Ok(())
    }
}
