//! The s3-integrator stand-in: a played application with an `s3-credentials` endpoint
//! (interface `s3`, provides) backed by a real S3 server, moto's standalone server
//! (`moto_server` from PyPI), in its own process on the host's 127.0.0.1.
//!
//! - Deploy: `moto_server -H 127.0.0.1 -p <free port>` in its own session, logging to
//!   `/tmp/jls3-<model uuid prefix>-<app>/moto.log`; the deploy returns once it
//!   answers. Until it has credentials its status is, as the real charm's,
//!   `blocked: Missing parameters: ['access-key', 'secret-key']`.
//! - Options (`juju config s3-integrator k=v`): the real charm's `endpoint`, `bucket`,
//!   `region`, `path`, `attributes`, `s3-uri-style`, `storage-class`, `tls-ca-chain`
//!   (base64 of a PEM chain), `s3-api-version`, `experimental-delete-older-than-days`,
//!   `access-key` and `secret-key`. Defaults of the stand-in: `endpoint` is its moto
//!   server (`http://127.0.0.1:<port>`); everything else is unset, as in the real charm.
//! - React (any event reaching its unit, and after `juju config`), for every live
//!   `s3-credentials` relation whose requirer asked for a `bucket` (the library's
//!   `S3Requirer` does on joining): the bucket is its own `bucket` option, else the
//!   requested one; it creates that bucket in moto (when the endpoint is moto's), then
//!   writes the provider application databag as the `s3` library does (only options
//!   that are set, lists as JSON) and the requirer's units get `relation-changed` when
//!   it changed. Without credentials it answers nothing.
//! - Remove: moto stops, its directory goes.

use std::collections::BTreeMap;
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

pub const CHARM: &str = "s3-integrator";
pub const ENDPOINT: &str = "s3-credentials";

/// The real charm's options (its config.yaml).
pub const OPTIONS: &[&str] = &[
    "endpoint",
    "bucket",
    "region",
    "path",
    "attributes",
    "s3-uri-style",
    "storage-class",
    "tls-ca-chain",
    "s3-api-version",
    "experimental-delete-older-than-days",
    "access-key",
    "secret-key",
];

/// moto's server, as kept in the provider state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moto {
    pub dir: PathBuf,
    pub port: u16,
    pub pid: u32,
}

impl Moto {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("moto.log")).unwrap_or_default()
    }

    fn request(&self, method: &str, target: &str) -> Result<http1::Response, Error> {
        let req = http1::Request::new(method, target);
        http1::tcp_round_trip(self.addr(), &req, Duration::from_secs(10))
            .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in: moto: {e}")))
    }

    /// Creates `bucket` (S3 answers 200 for a bucket that exists and is ours).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), Error> {
        let resp = self.request("PUT", &format!("/{bucket}"))?;
        if resp.status == 200 {
            return Ok(());
        }
        Err(Error::invalid(
            Area::Model,
            format!(
                "{CHARM} stand-in: creating bucket {bucket:?} failed: {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            ),
        ))
    }

    /// Whether the process with our pid is still moto's server.
    fn running(&self) -> bool {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("moto_server"))
    }

    fn stop(&self) {
        if self.pid > 0 && self.running() {
            crate::pod::stop(self.pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `$JUJULOCAL_MOTO_SERVER`, else the project's s3 venv.
fn moto_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("JUJULOCAL_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let tools =
        std::env::var_os("SYNAPSE_CHARM_TOOLS").unwrap_or_else(|| "/opt/synapse-charm".into());
    let p = Path::new(&tools).join("s3-venv/bin/moto_server");
    p.is_file().then_some(p)
}

/// Starts moto on a free port and waits (bounded) until it answers.
fn start(dir: &Path) -> Result<Moto, Error> {
    let bin = moto_bin().ok_or_else(|| {
        Error::NotFound(format!(
            "{CHARM} stand-in: no moto_server (run scripts/setup.sh, which makes \
             /opt/synapse-charm/s3-venv, or set JUJULOCAL_MOTO_SERVER)"
        ))
    })?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(Error::io(Area::Model, dir))?;
    let mut last = None;
    for _ in 0..5 {
        let port = super::proxy::free_port()?;
        let log = std::fs::File::create(dir.join("moto.log"))
            .map_err(Error::io(Area::Model, dir.join("moto.log")))?;
        let err = log
            .try_clone()
            .map_err(Error::io(Area::Model, dir.join("moto.log")))?;
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // SAFETY: setsid is async-signal-safe; moto outlives this CLI invocation in
        // its own session, and stopping it stops its whole group.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(Error::os(Area::Model, "starting moto_server"))?;
        let moto = Moto {
            dir: dir.to_path_buf(),
            port,
            pid: child.id(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && child.try_wait().is_ok_and(|s| s.is_none()) {
            if moto.request("GET", "/").is_ok_and(|r| r.status == 200) {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = moto.log();
        moto.stop();
        std::fs::create_dir_all(dir).map_err(Error::io(Area::Model, dir))?;
        last = Some(Error::invalid(
            Area::Model,
            format!("{CHARM} stand-in: moto_server did not answer on port {port}:\n{log}"),
        ));
    }
    Err(last.unwrap_or_else(|| Error::invalid(Area::Model, "moto_server did not start")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub moto: Moto,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl State {
    fn option(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The mandatory options not set, as the real charm names them.
    pub fn missing(&self) -> Vec<&'static str> {
        ["access-key", "secret-key"]
            .into_iter()
            .filter(|k| self.option(k).is_none())
            .collect()
    }

    fn endpoint(&self) -> String {
        self.option("endpoint")
            .map(str::to_string)
            .unwrap_or_else(|| self.moto.url())
    }

    fn serves_moto(&self) -> bool {
        self.endpoint().trim_end_matches('/') == self.moto.url()
    }
}

fn state(pst: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(pst.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

/// The stand-in's moto server for application `app`, if it is one.
pub fn moto_of(c: &Controller, app: &str) -> Option<Moto> {
    let st = super::load(c, app)?;
    (st.charm == CHARM)
        .then(|| state(&st).ok())
        .flatten()
        .map(|s| s.moto)
}

/// PEM certificates in a chain (pure): each `BEGIN`..`END CERTIFICATE` block.
pub fn pem_certificates(chain: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = vec![];
    let mut rest = chain;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let stop = start + len + END.len();
        out.push(rest[start..stop].to_string());
        rest = &rest[stop..];
    }
    out
}

/// The provider application databag for a relation whose bucket is `bucket` (pure):
/// every option that is set, lists as JSON, as the `s3` library writes them.
pub fn connection_info(st: &State, bucket: &str) -> BTreeMap<String, String> {
    let mut bag = BTreeMap::new();
    for key in OPTIONS {
        let Some(v) = st.option(key) else { continue };
        let (name, value) = match *key {
            "attributes" => {
                let list: Vec<&str> = v.split(',').collect();
                (*key, serde_json::to_string(&list).unwrap_or_default())
            }
            "tls-ca-chain" => {
                let pem = crate::util::base64_decode(v)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                (
                    *key,
                    serde_json::to_string(&pem_certificates(&pem)).unwrap_or_default(),
                )
            }
            "experimental-delete-older-than-days" => ("delete-older-than-days", v.to_string()),
            _ => (*key, v.to_string()),
        };
        bag.insert(name.to_string(), value);
    }
    bag.insert("endpoint".into(), st.endpoint());
    bag.insert("bucket".into(), bucket.to_string());
    bag
}

fn status(st: &State) -> (&'static str, String) {
    let missing = st.missing();
    if missing.is_empty() {
        ("active", format!("Serving S3 at {}", st.moto.url()))
    } else {
        let names: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
        (
            "blocked",
            format!("Missing parameters: [{}]", names.join(", ")),
        )
    }
}

/// `juju deploy s3-integrator [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jls3-{uuid}-{app}"));
    let moto = start(&dir)?;
    let st = State {
        moto: moto.clone(),
        config: BTreeMap::new(),
    };
    super::save_data(c, app, CHARM, &st)?;
    let endpoints = [(ENDPOINT.into(), "s3".into(), Role::Provides)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        moto.stop();
        let _ = super::remove(c, app);
        return Err(e);
    }
    let (kind, message) = status(&st);
    super::set_unit_status(c, app, kind, &message)
}

/// Answers every relation whose requirer asked for a bucket, once credentials are set.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let (kind, message) = status(&st);
    super::set_unit_status(c, app, kind, &message)?;
    if !st.missing().is_empty() {
        return Ok(());
    }
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let requested = rel
            .app_data
            .get(&remote)
            .and_then(|b| b.get("bucket"))
            .filter(|b| !b.is_empty())
            .cloned();
        let Some(bucket) = st.option("bucket").map(str::to_string).or(requested) else {
            continue;
        };
        if st.serves_moto() {
            st.moto.create_bucket(&bucket)?;
        }
        let mut bag = connection_info(&st, &bucket);
        // Options unset since the last answer are withdrawn.
        let before = rel.app_data.get(app).cloned().unwrap_or_default();
        for k in before.keys() {
            if !bag.contains_key(k) {
                bag.insert(k.clone(), String::new());
            }
        }
        super::answer(c, app, rel.id, &remote, &bag)?;
    }
    c.save()
}

/// `juju config s3-integrator key=value ...` (an empty value unsets).
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
        if k == "experimental-delete-older-than-days" && !v.is_empty() && v.parse::<i64>().is_err()
        {
            return Err(Error::Usage(format!(
                "option \"{k}\" expected int, got {v:?}"
            )));
        }
        if k == "tls-ca-chain" && !v.is_empty() {
            let pem = crate::util::base64_decode(v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if pem_certificates(&pem).is_empty() {
                return Err(Error::Usage(
                    "tls-ca-chain: not the base64 of a PEM chain (no certificate found)".into(),
                ));
            }
        }
        st.config.insert(k.clone(), v.clone());
    }
    Ok(ProviderState {
        charm: CHARM.into(),
        data: serde_json::to_value(&st).unwrap_or_default(),
    })
}

/// Stops moto.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    state(pst)?.moto.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(config: &[(&str, &str)]) -> State {
        State {
            moto: Moto {
                dir: "/tmp/x".into(),
                port: 4000,
                pid: 0,
            },
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn credentials_are_mandatory_as_in_the_real_charm() {
        assert_eq!(
            status(&st(&[])),
            (
                "blocked",
                "Missing parameters: ['access-key', 'secret-key']".to_string()
            )
        );
        assert_eq!(
            status(&st(&[("access-key", "a")])).1,
            "Missing parameters: ['secret-key']"
        );
        assert_eq!(
            status(&st(&[("access-key", "a"), ("secret-key", "b")])),
            ("active", "Serving S3 at http://127.0.0.1:4000".to_string())
        );
    }

    #[test]
    fn the_databag_holds_the_set_options_as_the_library_writes_them() {
        let chain = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n\
                     -----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, chain);
        let s = st(&[
            ("access-key", "a"),
            ("secret-key", "b"),
            ("path", "synapse"),
            ("s3-uri-style", "path"),
            ("region", ""),
            ("attributes", "x:1,y:2"),
            ("tls-ca-chain", &b64),
            ("experimental-delete-older-than-days", "7"),
        ]);
        let bag = connection_info(&s, "media");
        assert_eq!(bag["endpoint"], "http://127.0.0.1:4000");
        assert_eq!(bag["bucket"], "media");
        assert_eq!(bag["path"], "synapse");
        assert_eq!(bag["s3-uri-style"], "path");
        assert_eq!(bag["attributes"], "[\"x:1\",\"y:2\"]");
        assert_eq!(bag["delete-older-than-days"], "7");
        let certs: Vec<String> = serde_json::from_str(&bag["tls-ca-chain"]).unwrap();
        assert_eq!(certs.len(), 2);
        assert!(!bag.contains_key("region"), "unset options are not written");
        assert!(s.serves_moto());
        let other = st(&[("endpoint", "https://s3.example.com")]);
        assert_eq!(
            connection_info(&other, "b")["endpoint"],
            "https://s3.example.com"
        );
        assert!(!other.serves_moto());
    }

    #[test]
    fn only_known_options_with_their_types() {
        let pst = ProviderState {
            charm: CHARM.into(),
            data: serde_json::to_value(st(&[])).unwrap(),
        };
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(configure(&pst, &set("bucket", "b")).is_ok());
        assert!(configure(&pst, &set("nope", "b")).is_err());
        assert!(configure(&pst, &set("experimental-delete-older-than-days", "x")).is_err());
        assert!(configure(&pst, &set("tls-ca-chain", "bm90IGEgY2VydA==")).is_err());
    }
}
