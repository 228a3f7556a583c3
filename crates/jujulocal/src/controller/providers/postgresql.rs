//! The postgresql-k8s stand-in: a played application with a `database` endpoint
//! (`postgresql_client`, provides) backed by a real PostgreSQL server.
//!
//! - Deploy: `initdb` (newest `/usr/lib/postgresql/*/bin`, UTF8, a non-C locale:
//!   `en_US.UTF-8` if the machine has it, else `C.UTF-8`) into
//!   `/tmp/jlpg-<model uuid prefix>-<app>` (short: the unix socket lives there; under
//!   `/tmp` so that the `postgres` user can reach it when JujuLocal runs as root), then
//!   `pg_ctl start` listening on 127.0.0.1 on a free port. When pods have their own
//!   network namespace (`netns: true`), the server runs inside the model's cluster
//!   network namespace instead (`nsenter --net`), listening on its loopback and on the
//!   cluster's gateway address (`10.244.<n>.1`), which the endpoints name; JujuLocal
//!   itself talks to it over the unix socket either way.
//! - React (any event reaching its unit): for each relation whose other side asked
//!   for a `database`, as postgresql-k8s does: role `relation_id_<id>` with a random
//!   password (SUPERUSER / CREATEDB if in `extra-user-roles`), the database owned by
//!   it, a secret `{username, password, uris}` granted to the relation, and the app
//!   databag `endpoints`, `read-only-endpoints`, `database`, `secret-user`, `version`
//!   (fields not in `requested-secrets` go in plain text instead).
//! - Remove: `pg_ctl stop -m fast`, then the directory goes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use juju_hook::RelationHook;
use serde::{Deserialize, Serialize};

use super::{ProviderState, PROVIDERS};
use crate::controller::agent::relation_event;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::model::{Bag, Grant, Secret};
use crate::Error;

/// The cluster, as kept in the provider state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
    pub locale: String,
    /// The cluster network's namespace holder and gateway address, when the server
    /// runs there.
    #[serde(default)]
    pub netns: Option<(u32, String)>,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// A PostgreSQL program, run as `postgres` when we are root (initdb and the server
    /// refuse root), without the caller's libpq environment.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        cmd.current_dir(&self.dir);
        for var in [
            "PGHOST",
            "PGHOSTADDR",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSERVICE",
            "PGOPTIONS",
            "PGDATA",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs `sql` as superuser `postgres` over the unix socket; stdout, trimmed.
    pub fn psql(&self, sql: &str) -> Result<String, Error> {
        let mut child = self
            .command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d"])
            .args(["postgres", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::os(Area::Model, "running psql"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(Error::os(Area::Model, "writing to psql"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(Error::os(Area::Model, "waiting for psql"))?;
        if !out.status.success() {
            return Err(Error::invalid(
                Area::Model,
                format!("postgresql-k8s stand-in: psql failed: {}", describe(&out)),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The address clients connect to.
    pub fn host(&self) -> &str {
        self.netns.as_ref().map_or("127.0.0.1", |(_, a)| a.as_str())
    }

    fn start(&self) -> Result<(), Error> {
        let mut cmd = self.command("pg_ctl");
        let mut options = format!("-p {}", self.port);
        if let Some((holder, addr)) = &self.netns {
            // The same command, entered into the cluster network first.
            let inner = cmd;
            cmd = Command::new("nsenter");
            cmd.arg(format!("--net=/proc/{holder}/ns/net"))
                .arg("--")
                .arg(inner.get_program())
                .args(inner.get_args())
                .current_dir(&self.dir);
            for (k, v) in inner.get_envs() {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            options.push_str(&format!(" -c listen_addresses=127.0.0.1,{addr}"));
        }
        let out = cmd
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(options)
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(Error::os(Area::Model, "running pg_ctl"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::invalid(
            Area::Model,
            format!(
                "postgresql-k8s stand-in: pg_ctl start on port {} failed: {}\n{}",
                self.port,
                describe(&out),
                self.log()
            ),
        ))
    }

    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{}; {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Newest `/usr/lib/postgresql/<N>/bin` with `initdb`.
fn bin_dir() -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(v) = name
            .split('.')
            .map(str::parse::<u32>)
            .collect::<Result<Vec<u32>, _>>()
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, bin));
        }
    }
    best.map(|(_, b)| b)
}

/// `en_US.UTF-8` if the machine has it, else `C.UTF-8` (never plain `C`, like a
/// real postgresql-k8s, whose databases get a real collation).
fn default_locale() -> String {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "");
    let has_en = Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| norm(l.trim()) == "en_us.utf8")
        })
        .unwrap_or(false);
    if has_en { "en_US.UTF-8" } else { "C.UTF-8" }.to_string()
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(Error::os(Area::Model, "finding a free port"))
}

fn chown_postgres(path: &Path) -> Result<(), Error> {
    if !is_root() {
        return Ok(());
    }
    let st = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map_err(Error::os(Area::Model, "running chown"))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::invalid(
            Area::Model,
            format!("cannot give {} to the postgres user", path.display()),
        ))
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn cluster(st: &ProviderState) -> Result<Cluster, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("postgresql-k8s stand-in state: {e}")))
}

/// The stand-in's cluster for application `app`, if it is one.
pub fn cluster_of(c: &Controller, app: &str) -> Option<Cluster> {
    let st = super::load(c, app)?;
    cluster(&st).ok()
}

/// `juju deploy postgresql-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    let bin = bin_dir().ok_or_else(|| {
        Error::NotFound(
            "postgresql-k8s stand-in: no PostgreSQL server under /usr/lib/postgresql/*/bin \
             (install Debian's postgresql package)"
                .into(),
        )
    })?;
    let netns = c.cluster_gateway()?;
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlpg-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    let mut cl = Cluster {
        dir: dir.clone(),
        bin,
        port: 0,
        locale: default_locale(),
        netns,
    };
    chown_postgres(&dir)?;
    let out = cl
        .command("initdb")
        .arg("-D")
        .arg(cl.data())
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .arg(format!("--locale={}", cl.locale))
        .args(["--no-sync", "--no-instructions"])
        .output()
        .map_err(Error::os(Area::Model, "running initdb"))?;
    if !out.status.success() {
        return Err(Error::invalid(
            Area::Model,
            format!("postgresql-k8s stand-in: initdb failed: {}", describe(&out)),
        ));
    }
    let hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\nhost all all 10.244.0.0/16 scram-sha-256\n";
    std::fs::write(cl.data().join("pg_hba.conf"), hba)
        .map_err(Error::io(Area::Model, cl.data()))?;
    let conf = format!(
        "\n# JujuLocal's postgresql-k8s stand-in\nlisten_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\n\
         max_connections = 100\nshared_buffers = 16MB\nfsync = off\n\
         synchronous_commit = off\nfull_page_writes = off\n",
        dir.display()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(cl.data().join("postgresql.conf"))
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(Error::io(Area::Model, cl.data()))?;
    chown_postgres(&dir)?;
    let mut last = None;
    for _ in 0..5 {
        cl.port = free_port()?;
        match cl.start() {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        return Err(e);
    }
    let charm = PROVIDERS[0].0;
    super::save_data(c, app, charm, &cl)?;
    if let Err(e) = super::add_stand_in(
        c,
        app,
        charm,
        &[(
            "database".into(),
            "postgresql_client".into(),
            Role::Provides,
        )],
    ) {
        cl.stop();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = super::remove(c, app);
        return Err(e);
    }
    Ok(())
}

/// Answers every database request not answered yet.
pub fn react(c: &mut Controller, app: &str, st: &ProviderState) -> Result<(), Error> {
    let cl = cluster(st)?;
    for rel in c.model.relations.clone() {
        if rel.is_peer() {
            continue;
        }
        let Some(remote) = rel.remote_app(app) else {
            continue;
        };
        let remote = remote.to_string();
        let request = rel.app_data.get(&remote).cloned().unwrap_or_default();
        let Some(db) = request.get("database").filter(|d| !d.is_empty()).cloned() else {
            continue;
        };
        let answer = rel.app_data.get(app).cloned().unwrap_or_default();
        if answer.get("database") == Some(&db) {
            continue;
        }
        let roles = request
            .get("extra-user-roles")
            .map(|r| r.to_ascii_uppercase())
            .unwrap_or_default();
        let roles: Vec<&str> = roles.split(',').map(str::trim).collect();
        let user = format!("relation_id_{}", rel.id);
        let password = crate::util::secret_xid()?;
        let exists = cl.psql(&format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = {}",
            quote_literal(&user)
        ))? != "0";
        cl.psql(&format!(
            "{} ROLE {} WITH LOGIN PASSWORD {} {} {};",
            if exists { "ALTER" } else { "CREATE" },
            quote_ident(&user),
            quote_literal(&password),
            if roles.contains(&"SUPERUSER") {
                "SUPERUSER"
            } else {
                "NOSUPERUSER"
            },
            if roles.contains(&"CREATEDB") {
                "CREATEDB"
            } else {
                "NOCREATEDB"
            }
        ))?;
        let db_exists = cl.psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(&db)
        ))? != "0";
        cl.psql(&if db_exists {
            format!(
                "ALTER DATABASE {} OWNER TO {};",
                quote_ident(&db),
                quote_ident(&user)
            )
        } else {
            format!(
                "CREATE DATABASE {} OWNER {};",
                quote_ident(&db),
                quote_ident(&user)
            )
        })?;
        let version = cl.psql("SHOW server_version")?;
        let version = version.split_whitespace().next().unwrap_or("").to_string();
        let endpoint = format!("{}:{}", cl.host(), cl.port);
        let uri = format!("postgresql://{user}:{password}@{endpoint}/{db}");
        let mut bag: Bag = BTreeMap::new();
        bag.insert("endpoints".into(), endpoint.clone());
        bag.insert("read-only-endpoints".into(), endpoint);
        bag.insert("database".into(), db.clone());
        bag.insert("version".into(), version);
        let requested = request
            .get("requested-secrets")
            .cloned()
            .unwrap_or_default();
        let creds = [
            ("username", user.clone()),
            ("password", password),
            ("uris", uri),
        ];
        if requested.contains("\"password\"") {
            let id = crate::util::secret_xid()?;
            let mut secret = Secret::new(
                &id,
                app,
                None,
                creds
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            );
            secret.grants.push(Grant {
                relation_id: rel.id,
                app: remote.clone(),
                unit: None,
            });
            c.model.secrets.insert(id.clone(), secret);
            bag.insert("secret-user".into(), format!("secret:{id}"));
        } else {
            for (k, v) in creds {
                bag.insert(k.into(), v);
            }
        }
        if let Some(r) = c.model.relation_mut(rel.id) {
            r.app_data.insert(app.to_string(), bag);
        }
        let targets = rel.joined.get(&remote).cloned().unwrap_or_default();
        let remote_ep = rel
            .end_for(&remote)
            .map(|e| e.endpoint.clone())
            .unwrap_or_default();
        for t in targets {
            c.enqueue(
                &t,
                relation_event(RelationHook::Changed, &remote_ep, rel.id, app, None),
            );
        }
    }
    c.save()
}

/// Stops the server and removes its directory.
pub fn remove(_c: &Controller, _app: &str, st: &ProviderState) -> Result<(), Error> {
    let cl = cluster(st)?;
    cl.stop();
    let _ = std::fs::remove_dir_all(&cl.dir);
    Ok(())
}
