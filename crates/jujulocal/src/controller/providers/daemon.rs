//! Long-running servers the stand-ins start (Prometheus, the Loki recorder): detached
//! from the JujuLocal command that starts them (they outlive it, as a charm's workload
//! outlives a hook), found again by PID, stopped by PID.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::Area;
use crate::Error;

/// Starts `program args...` in its own process group, stdin from /dev/null, stdout and
/// stderr appended to `log`; returns its PID. A shell starts it in the background and
/// exits, so the server is nobody's child here (no zombie when it stops).
pub fn spawn(program: &Path, args: &[String], log: &Path) -> Result<u32, Error> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("set -m; \"$@\" </dev/null >>\"$DAEMON_LOG\" 2>&1 & echo $!")
        .arg("sh")
        .arg(program)
        .args(args)
        .env("DAEMON_LOG", log)
        .output()
        .map_err(Error::os(Area::Model, "starting a stand-in's server"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            Error::invalid(
                Area::Model,
                format!(
                    "starting {}: no PID ({})",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
        })
}

/// Whether `pid` is a live process (not exited, not a zombie), whatever it runs: for
/// a server just spawned, whose command line reads empty while it execs (`nsenter`,
/// then the server) and changes when the server renames itself.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Whether `pid` is a live process whose command line mentions `marker` (so that a
/// recycled PID is never taken for the server).
pub fn alive(pid: u32, marker: &str) -> bool {
    running(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
}

/// Stops the server (as [`stop`]) and removes its directory: a stand-in going away.
pub fn stop_and_remove(pid: u32, marker: &str, dir: &Path) {
    stop(pid, marker);
    let _ = std::fs::remove_dir_all(dir);
}

/// Stops the server: SIGTERM, then SIGKILL after 10 s; returns once it is gone.
pub fn stop(pid: u32, marker: &str) {
    if !alive(pid, marker) {
        return;
    }
    let Ok(raw) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) on a PID checked to be the stand-in's server just above.
    unsafe { libc::kill(raw, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid, marker) {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(raw, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `GET http://addr{path}` answers 200 while the server runs; the error
/// carries the end of its log.
pub fn wait_ready(
    addr: SocketAddr,
    path: &str,
    pid: u32,
    marker: &str,
    log: &Path,
) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = http1::get(&format!("http://{addr}{path}"), Duration::from_secs(2))
            .map(|r| r.status == 200)
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if !alive(pid, marker) || Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            stop(pid, marker);
            return Err(Error::invalid(
                Area::Model,
                format!(
                    "the stand-in's server did not answer on {addr}{path}: {}",
                    tail.join(" | ")
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
