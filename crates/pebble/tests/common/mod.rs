//! Runs a real Pebble daemon in a temporary directory for one test.
//!
//! The binary is found via `PEBBLE_BIN`, else
//! `/opt/synapse-charm/bin/pebble` (installed by scripts/setup.sh),
//! else `pebble` on `PATH`. A missing binary fails the test: these tests are
//! never skipped silently.

#![allow(dead_code)]

use std::env;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pebble::Client;
use pebble::{Error, GoDuration, Layer, Service, Startup};
use tempfile::TempDir;

/// Locates the Pebble binary or panics with instructions.
pub fn pebble_bin() -> PathBuf {
    if let Some(bin) = env::var_os("PEBBLE_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "PEBBLE_BIN={} does not exist or is not a file",
            bin.display()
        );
        return bin;
    }
    let tools = env::var_os("SYNAPSE_CHARM_TOOLS").unwrap_or_else(|| "/opt/synapse-charm".into());
    let bin = Path::new(&tools).join("bin/pebble");
    if bin.is_file() {
        return bin;
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let bin = dir.join("pebble");
            if bin.is_file() {
                return bin;
            }
        }
    }
    panic!(
        "Pebble binary not found: set PEBBLE_BIN, or run scripts/setup.sh (installs \
         Pebble v1.32.1 at /opt/synapse-charm/bin/pebble), or put `pebble` on PATH"
    );
}

/// A running `pebble run --create-dirs --hold`, killed on drop.
pub struct Pebble {
    child: Child,
    socket: PathBuf,
    root: TempDir,
}

impl Pebble {
    pub fn start() -> Pebble {
        let root = tempfile::Builder::new()
            .prefix("pebble-test-")
            .tempdir()
            .expect("create temp dir");
        let state = root.path().join("pebble");
        let socket = root.path().join("pebble.socket");
        let log = File::create(root.path().join("pebble.log")).expect("create log file");
        let child = Command::new(pebble_bin())
            .args(["run", "--create-dirs", "--hold", "--verbose"])
            .env("PEBBLE", &state)
            .env("PEBBLE_SOCKET", &socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn pebble");
        let mut pebble = Pebble {
            child,
            socket,
            root,
        };
        pebble.wait_ready();
        pebble
    }

    fn wait_ready(&mut self) {
        let client = self.client().with_timeout(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match client.system_info() {
                Ok(_) => return,
                Err(e) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "pebble exited with {status} before answering:\n{}",
                            self.log()
                        );
                    }
                    if Instant::now() > deadline {
                        panic!("pebble did not answer within 15s ({e}):\n{}", self.log());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Scratch directory for the test's own files (outside Pebble's state).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The daemon's output so far (service output too, `--verbose`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        // SIGTERM lets Pebble stop its services; SIGKILL if it lingers.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ----- helpers shared by the test files ---------------------------------------

pub const WAIT: Duration = Duration::from_secs(30);

pub fn layer_with(name: &str, service: Service) -> Layer {
    let mut layer = Layer::default();
    layer.services.insert(name.into(), service);
    layer
}

/// A long-running service that stops promptly.
pub fn sleeper() -> Service {
    let mut s = Service::new("/bin/sleep 1000");
    s.kill_delay = Some(GoDuration::from_secs(1));
    s
}

/// A service that appends a line to `counter` each time it starts, then
/// sleeps; `extra` runs first (e.g. reading a config file).
pub fn counting_service(counter: &Path, extra: &str) -> Service {
    let mut s = Service::new(format!(
        "/bin/sh -c '{extra} echo start >> {}; exec sleep 1000'",
        counter.display()
    ));
    s.startup = Some(Startup::Enabled);
    s.kill_delay = Some(GoDuration::from_secs(1));
    s
}

pub fn starts(counter: &Path) -> usize {
    fs::read_to_string(counter)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

pub fn api_error(e: Error) -> (u16, Option<String>, String) {
    match e {
        Error::Api {
            status,
            kind,
            message,
            ..
        } => (status, kind, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn path_error(e: Error) -> (String, String) {
    match e {
        Error::Path { kind, message, .. } => (kind, message),
        other => panic!("expected a path error, got {other:?}"),
    }
}
