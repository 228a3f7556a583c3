//! The redis-k8s stand-in: a played application with a `redis` endpoint (`redis`,
//! provides) backed by a real `redis-server` (Debian's).
//!
//! - Deploy: on a model whose pods have their own network namespace (`netns: true`),
//!   `redis-server` runs inside the model's cluster network namespace
//!   (`nsenter --net`), bound to the cluster's gateway address (`10.244.<n>.1`, on
//!   the bridge), so pods reach it as they would a Kubernetes service; otherwise on the
//!   host's 127.0.0.1 on a free port. No persistence, no password (redis-k8s sends
//!   none either).
//! - React: the stand-in's unit publishes `hostname` and `port` in its unit databag
//!   of every `redis` relation (interfaces §7).
//! - Remove: the server stops and its directory goes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{daemon, ProviderState};
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "redis-k8s";
pub const ENDPOINT: &str = "redis";
const PORT: u16 = 6379;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    dir: PathBuf,
    host: String,
    port: u16,
    pid: u32,
}

impl State {
    /// What the server's command line holds, before (`nsenter ... redis-server ...`)
    /// and after redis-server rewrites its process title.
    fn marker(&self) -> String {
        "redis-server".to_string()
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

fn redis_server() -> Result<PathBuf, Error> {
    ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{CHARM} stand-in: no redis-server (install Debian's redis-server package)"
            ))
        })
}

/// Waits for the server's log line saying it accepts connections.
fn wait_ready(st: &State, log: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Ready to accept connections") {
            return Ok(());
        }
        // Only the PID while it starts: its command line reads empty during its execs.
        if Instant::now() > deadline || !daemon::running(st.pid) {
            daemon::stop(st.pid, &st.marker());
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Err(Error::invalid(
                Area::Model,
                format!(
                    "{CHARM} stand-in: redis-server did not start on {}: {}",
                    st.address(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `juju deploy redis-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    let server = redis_server()?;
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlredis-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    let (program, mut args, host, port) = match c.cluster_gateway()? {
        Some((holder, gateway)) => (
            PathBuf::from("nsenter"),
            vec![
                format!("--net=/proc/{holder}/ns/net"),
                "--".into(),
                server.display().to_string(),
            ],
            gateway,
            PORT,
        ),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(Error::os(Area::Model, "finding a free port"))?;
            (server, vec![], "127.0.0.1".to_string(), port)
        }
    };
    args.extend(
        [
            "--bind",
            &host,
            "--port",
            &port.to_string(),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(dir.display().to_string());
    let log = dir.join("redis.log");
    let pid = daemon::spawn(&program, &args, &log)?;
    let st = State {
        dir: dir.clone(),
        host,
        port,
        pid,
    };
    wait_ready(&st, &log)?;
    super::save_data(c, app, CHARM, &st)?;
    if let Err(e) = super::add_stand_in(
        c,
        app,
        CHARM,
        &[(ENDPOINT.into(), "redis".into(), Role::Provides)],
    ) {
        daemon::stop_and_remove(st.pid, &st.marker(), &dir);
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "active", "")
}

/// Publishes the server's address in the unit databag of every `redis` relation.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let Some(unit) = c
        .model
        .app(app)
        .ok()
        .and_then(|a| a.units.keys().next().cloned())
    else {
        return Ok(());
    };
    let bag: BTreeMap<String, String> = [
        ("hostname".to_string(), st.host.clone()),
        ("port".to_string(), st.port.to_string()),
    ]
    .into();
    super::answer_unit_everywhere(c, app, ENDPOINT, &unit, &bag)
}

/// The application goes: its server stops.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    if let Ok(st) = state(pst) {
        daemon::stop_and_remove(st.pid, &st.marker(), &st.dir);
    }
    Ok(())
}
