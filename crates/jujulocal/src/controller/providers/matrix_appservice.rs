//! The matrix-appservice stand-in: a played bridge charm with a `matrix-auth` endpoint
//! (interface `matrix_auth`, requires), backed by a real appservice written with
//! mautrix (`matrix_appservice.py`, run by the appservice venv's Python) on the host's
//! 127.0.0.1.
//!
//! - Deploy: a directory `/tmp/jlas-<model uuid prefix>-<app>/` with the Python side,
//!   a free port and fresh `as_token`/`hs_token`; status `waiting` until related.
//! - React (any event reaching its unit, and after `juju config`), for every live
//!   `matrix-auth` relation whose provider published `homeserver` and
//!   `encryption_key_secret_id`: it reads the key from that secret, which it may only
//!   do when the secret is granted to it on that relation (as Juju enforces; otherwise
//!   it blocks saying so), writes its registration YAML, has Python's `cryptography`
//!   encrypt it with Fernet as the matrix_auth library does, and puts the token in its
//!   application databag as `registration_secret` (encrypted again only when the
//!   registration or the key changed). It then (re)starts the appservice process when
//!   what it serves changed; the process stays when the relation goes (so Synapse can
//!   be seen refusing its token) and stops with the application.
//! - Options shape the registration, to play bridges that send bad ones: `id`,
//!   `sender-localpart`, `users-regex`, `as-token`, `exclusive` (`true`/`false`) and
//!   `encryption` (`fernet`, `wrong-key`: another Fernet key, `garbage`: not a token).
//!   Defaults: id = the application name, sender `<app>-bot`, users `@_<app>_.*`
//!   exclusive; the process registers and uses the puppet `@_<app>_puppet:<server>`.
//! - Status: `active: Serving the appservice at http://127.0.0.1:<port>` once the
//!   process runs.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ProviderState;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "matrix-appservice";
pub const ENDPOINT: &str = "matrix-auth";
pub const OPTIONS: &[&str] = &[
    "id",
    "sender-localpart",
    "users-regex",
    "as-token",
    "exclusive",
    "encryption",
];
/// The content key of the provider's encryption-key secret (the matrix_auth library's).
pub const KEY_CONTENT: &str = "encryption-key-content";
const SCRIPT: &str = include_str!("matrix_appservice.py");
const SCRIPT_NAME: &str = "matrix_appservice.py";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub dir: PathBuf,
    pub port: u16,
    pub as_token: String,
    pub hs_token: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The appservice process and the serve configuration it runs with.
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub serving: Option<String>,
    /// Per relation id: what was encrypted last (registration, key, mode) and the token.
    #[serde(default)]
    pub sent: BTreeMap<u64, (String, String)>,
}

impl State {
    fn option<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn as_token(&self) -> String {
        self.option("as-token", &self.as_token).to_string()
    }

    /// The registration this bridge sends (pure).
    pub fn registration(&self, app: &str) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let sender = format!("{app}-bot");
        let regex = format!("@_{app}_.*");
        format!(
            "id: {}\nurl: {}\nas_token: {}\nhs_token: {}\nsender_localpart: {}\nrate_limited: false\nnamespaces:\n  users:\n    - exclusive: {}\n      regex: {}\n  aliases: []\n  rooms: []\n",
            q(self.option("id", app)),
            q(&self.url()),
            q(&self.as_token()),
            q(&self.hs_token),
            q(self.option("sender-localpart", &sender)),
            self.option("exclusive", "true"),
            q(self.option("users-regex", &regex)),
        )
    }

    /// What the appservice process is started with (JSON).
    fn serve_config(&self, app: &str, homeserver: &str) -> String {
        serde_json::json!({
            "homeserver": homeserver,
            "as_token": self.as_token(),
            "hs_token": self.hs_token,
            "id": self.option("id", app),
            "sender": self.option("sender-localpart", &format!("{app}-bot")),
            "puppet": format!("_{app}_puppet"),
            "host": "127.0.0.1",
            "port": self.port,
            "state_dir": self.dir,
        })
        .to_string()
    }

    fn running(&self) -> bool {
        self.pid > 0
            && std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(SCRIPT_NAME))
    }

    fn stop(&mut self) {
        if self.running() {
            crate::pod::stop(self.pid);
        }
        self.pid = 0;
        self.serving = None;
    }
}

fn state(pst: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(pst.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

fn saved(st: &State) -> ProviderState {
    ProviderState {
        charm: CHARM.into(),
        data: serde_json::to_value(st).unwrap_or_default(),
    }
}

/// `$JUJULOCAL_APPSERVICE_PYTHON`, else the project's appservice venv.
fn python() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("JUJULOCAL_APPSERVICE_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let tools =
        std::env::var_os("SYNAPSE_CHARM_TOOLS").unwrap_or_else(|| "/opt/synapse-charm".into());
    let p = Path::new(&tools).join("appservice-venv/bin/python");
    if p.is_file() {
        return Ok(p);
    }
    Err(Error::NotFound(format!(
        "{CHARM} stand-in: no appservice Python (run scripts/setup.sh, which makes \
         /opt/synapse-charm/appservice-venv with mautrix and cryptography, or set \
         JUJULOCAL_APPSERVICE_PYTHON)"
    )))
}

/// Encrypts `plaintext` with Python's `cryptography` Fernet (`mode`: `fernet` with
/// `key`, `wrong-key` with a fresh key, `garbage`: not a token at all).
fn encrypt(dir: &Path, key: &str, plaintext: &str, mode: &str) -> Result<String, Error> {
    if mode == "garbage" {
        return Ok("not-a-fernet-token".into());
    }
    let mut child = Command::new(python()?)
        .arg(dir.join(SCRIPT_NAME))
        .arg("encrypt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::os(Area::Model, "running the appservice Python"))?;
    let input = serde_json::json!({"key": key, "plaintext": plaintext, "mode": mode});
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.to_string().as_bytes())
            .map_err(Error::os(Area::Model, "writing to the appservice Python"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(Error::os(Area::Model, "running the appservice Python"))?;
    if !out.status.success() {
        return Err(Error::invalid(
            Area::Model,
            format!(
                "{CHARM} stand-in: encrypting the registration failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts the appservice process with `config` and waits (bounded) until it listens.
fn start(st: &mut State, config: &str) -> Result<(), Error> {
    st.stop();
    let conf_path = st.dir.join("serve.json");
    std::fs::write(&conf_path, config).map_err(Error::io(Area::Model, &conf_path))?;
    let log_path = st.dir.join("appservice.log");
    let log = std::fs::File::create(&log_path).map_err(Error::io(Area::Model, &log_path))?;
    let err = log.try_clone().map_err(Error::io(Area::Model, &log_path))?;
    let mut cmd = Command::new(python()?);
    cmd.arg(st.dir.join(SCRIPT_NAME))
        .arg("serve")
        .arg(&conf_path)
        .current_dir(&st.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the appservice outlives this CLI invocation
    // in its own session, and stopping it stops its whole group.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(Error::os(Area::Model, "starting the appservice"))?;
    st.pid = child.id();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, st.port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && child.try_wait().is_ok_and(|s| s.is_none()) {
        let req = http1::Request::new("GET", "/_matrix/mau/live");
        if http1::tcp_round_trip(addr, &req, Duration::from_secs(5)).is_ok_and(|r| r.status == 200)
        {
            st.serving = Some(config.to_string());
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    st.stop();
    Err(Error::invalid(
        Area::Model,
        format!("{CHARM} stand-in: the appservice did not start:\n{log}"),
    ))
}

/// `juju deploy matrix-appservice [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    python()?;
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlas-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    let script = dir.join(SCRIPT_NAME);
    std::fs::write(&script, SCRIPT).map_err(Error::io(Area::Model, &script))?;
    let st = State {
        dir,
        port: super::proxy::free_port()?,
        as_token: crate::util::uuid4()?,
        hs_token: crate::util::uuid4()?,
        config: BTreeMap::new(),
        pid: 0,
        serving: None,
        sent: BTreeMap::new(),
    };
    super::save(c, app, &saved(&st))?;
    let endpoints = [(ENDPOINT.into(), "matrix_auth".into(), Role::Requires)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "waiting", "Waiting for the matrix-auth relation")
}

/// Sends the encrypted registration on every relation whose provider answered, and
/// serves it.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let mut st = state(pst)?;
    let mut status = (
        "waiting",
        "Waiting for the matrix-auth relation".to_string(),
    );
    let mut homeserver = None;
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let bag = rel.app_data.get(&remote).cloned().unwrap_or_default();
        let (Some(hs), Some(key_id)) = (bag.get("homeserver"), bag.get("encryption_key_secret_id"))
        else {
            status = ("waiting", "Waiting for the homeserver's data".into());
            continue;
        };
        // Juju lets a consumer read a secret only through a grant.
        let key = c.model.secret_by_uri(key_id).and_then(|s| {
            s.grants
                .iter()
                .any(|g| g.relation_id == rel.id && g.app == app)
                .then(|| s.latest())
                .flatten()
                .and_then(|r| r.content.get(KEY_CONTENT).cloned())
        });
        let Some(key) = key else {
            status = (
                "blocked",
                format!(
                    "cannot read the encryption key {key_id}: not granted on relation {}",
                    rel.id
                ),
            );
            continue;
        };
        let registration = st.registration(app);
        let mode = st.option("encryption", "fernet").to_string();
        let input = format!("{registration}\n{key}\n{mode}");
        let token = match st.sent.get(&rel.id) {
            Some((sent, token)) if *sent == input => token.clone(),
            _ => {
                let token = encrypt(&st.dir, &key, &registration, &mode)?;
                st.sent.insert(rel.id, (input, token.clone()));
                token
            }
        };
        super::answer(
            c,
            app,
            rel.id,
            &remote,
            &BTreeMap::from([("registration_secret".to_string(), token)]),
        )?;
        homeserver = Some(hs.clone());
    }
    if let Some(hs) = homeserver {
        let config = st.serve_config(app, &hs);
        if st.serving.as_deref() != Some(&config) || !st.running() {
            start(&mut st, &config)?;
        }
        if status.0 == "waiting" {
            status = ("active", format!("Serving the appservice at {}", st.url()));
        }
    } else if st.running() {
        status = ("active", format!("Serving the appservice at {}", st.url()));
    }
    super::save(c, app, &saved(&st))?;
    super::set_unit_status(c, app, status.0, &status.1)?;
    c.save()
}

/// `juju config matrix-appservice key=value ...` (an empty value unsets).
pub fn configure(
    pst: &ProviderState,
    sets: &BTreeMap<String, String>,
) -> Result<ProviderState, Error> {
    let mut st = state(pst)?;
    for (k, v) in sets {
        if !OPTIONS.contains(&k.as_str()) {
            return Err(Error::Usage(format!(
                "{CHARM} stand-in: unknown option {k:?} (it knows {OPTIONS:?})"
            )));
        }
        let allowed: &[&str] = match k.as_str() {
            "exclusive" => &["true", "false"],
            "encryption" => &["fernet", "wrong-key", "garbage"],
            _ => &[],
        };
        if !v.is_empty() && !allowed.is_empty() && !allowed.contains(&v.as_str()) {
            return Err(Error::Usage(format!(
                "option {k:?}: {v:?} is not one of {allowed:?}"
            )));
        }
        st.config.insert(k.clone(), v.clone());
    }
    Ok(saved(&st))
}

/// Stops the appservice; its directory goes.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    let mut st = state(pst)?;
    st.stop();
    let _ = std::fs::remove_dir_all(&st.dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(config: &[(&str, &str)]) -> State {
        State {
            dir: "/tmp/x".into(),
            port: 4100,
            as_token: "at".into(),
            hs_token: "ht".into(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pid: 0,
            serving: None,
            sent: BTreeMap::new(),
        }
    }

    #[test]
    fn the_registration_follows_the_options_and_quotes_them() {
        let r = st(&[]).registration("irc");
        assert!(r.contains("id: 'irc'\n"), "{r}");
        assert!(r.contains("url: 'http://127.0.0.1:4100'\n"), "{r}");
        assert!(r.contains("sender_localpart: 'irc-bot'\n"), "{r}");
        assert!(r.contains("regex: '@_irc_.*'\n"), "{r}");
        assert!(r.contains("exclusive: true\n"), "{r}");
        let r = st(&[
            ("users-regex", "@it's_(.*"),
            ("as-token", "a b"),
            ("exclusive", "false"),
        ])
        .registration("irc");
        assert!(r.contains("regex: '@it''s_(.*'\n"), "{r}");
        assert!(r.contains("as_token: 'a b'\n"), "{r}");
        assert!(r.contains("exclusive: false\n"), "{r}");
    }

    #[test]
    fn only_known_options_with_their_values() {
        let pst = saved(&st(&[]));
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(configure(&pst, &set("users-regex", "(")).is_ok());
        assert!(configure(&pst, &set("encryption", "wrong-key")).is_ok());
        assert!(configure(&pst, &set("encryption", "rot13")).is_err());
        assert!(configure(&pst, &set("exclusive", "yes")).is_err());
        assert!(configure(&pst, &set("nope", "x")).is_err());
    }
}
