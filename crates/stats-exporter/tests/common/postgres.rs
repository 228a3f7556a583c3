//! Throwaway PostgreSQL clusters for tests.
//!
//! Self-contained (std + `tempfile` only) so that any test crate of the
//! workspace can include it:
//!
//! ```ignore
//! #[path = "../crates/stats-exporter/tests/common/postgres.rs"] // relative to the including file
//! mod postgres;
//!
//! let mut pg = postgres::start(postgres::PgOptions::default());
//! pg.create_role("synapse", "s3cret", false);
//! pg.create_database("synapse", "synapse");
//! pg.psql_in("synapse", "CREATE TABLE rooms(room_id text PRIMARY KEY);");
//! let n = pg.psql_in("synapse", "SELECT count(*) FROM rooms"); // "0"
//! // connect over TCP: 127.0.0.1:pg.port(), user synapse, password s3cret
//! pg.stop();
//! pg.start_again(); // same data directory and port
//! // dropping `pg` stops the server and removes its directory
//! ```
//!
//! # API
//! * [`PgOptions`] `{ locale: Option<String> }`: `None` picks
//!   [`default_locale`] (`en_US.UTF-8` if the machine has it, else
//!   `C.UTF-8`; never plain `C`).
//! * [`start`]`(opts) -> Pg` (panics with the reason, server log included);
//!   [`try_start`] returns `Result<Pg, String>` instead.
//! * [`Pg`]: [`port`](Pg::port), [`host`](Pg::host) (`127.0.0.1`),
//!   [`socket_dir`](Pg::socket_dir), [`data_dir`](Pg::data_dir),
//!   [`locale`](Pg::locale), [`bin_dir`](Pg::bin_dir),
//!   [`is_running`](Pg::is_running), [`log`](Pg::log) (server log so far);
//!   [`psql`](Pg::psql)`(sql) -> String` runs `sql` in database `postgres`,
//!   [`psql_in`](Pg::psql_in)`(db, sql)` in another one, both as superuser
//!   `postgres` over the unix socket with `psql -X -q -At -v ON_ERROR_STOP=1`,
//!   returning stdout without its trailing newline and panicking on error
//!   ([`try_psql_in`](Pg::try_psql_in) returns the error instead; `sql` may hold
//!   several statements, each run on its own);
//!   [`create_role`](Pg::create_role)`(name, password, superuser)` (a LOGIN
//!   role), [`create_database`](Pg::create_database)`(name, owner)` (with the
//!   cluster's default locale); [`stop`](Pg::stop) (fast shutdown),
//!   [`start_again`](Pg::start_again). `Drop` stops the server (immediate
//!   shutdown) and removes the directory.
//! * [`bin_dir`]: newest `/usr/lib/postgresql/N/bin` that has `initdb`
//!   (override with `PG_HARNESS_BIN_DIR`); [`free_port`];
//!   [`quote_ident`], [`quote_literal`].
//!
//! # How
//! The cluster lives in a fresh directory under `/tmp` (short, so the socket
//! path stays within the unix limit), with `initdb --encoding=UTF8
//! --locale=<locale>`. initdb and the server refuse to run as root: when the
//! tests run as root, the directory is chowned to the `postgres` system user
//! and every PostgreSQL program runs through `runuser -u postgres --`
//! (`setpriv` if there is no runuser); otherwise they run as the current user.
//! The server listens on 127.0.0.1 on a free port (found by binding port 0;
//! on a lost race with another process the start is retried on another port)
//! and on a unix socket inside the directory. `pg_hba.conf`: `trust` on the
//! unix socket, `scram-sha-256` over TCP. fsync is off. Each cluster has its
//! own directory and port, so tests may run in parallel.

#![allow(dead_code)]

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How to create the cluster.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Default locale of the cluster (`initdb --locale`), hence of every
    /// database created without an explicit one. `None`: [`default_locale`].
    pub locale: Option<String>,
}

/// A running (or stopped) throwaway cluster.
pub struct Pg {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    locale: String,
    /// `Some((uid, gid))` of `postgres` when programs run through runuser.
    run_as: Option<(u32, u32)>,
    running: bool,
}

/// Starts a new cluster; panics with the reason if it cannot.
pub fn start(opts: PgOptions) -> Pg {
    match try_start(opts) {
        Ok(pg) => pg,
        Err(e) => panic!("cannot start a test PostgreSQL: {e}"),
    }
}

/// Starts a new cluster.
pub fn try_start(opts: PgOptions) -> Result<Pg, String> {
    let bin = bin_dir().ok_or_else(|| {
        "no PostgreSQL server found under /usr/lib/postgresql/*/bin \
         (install Debian's postgresql package, or set PG_HARNESS_BIN_DIR)"
            .to_owned()
    })?;
    let run_as = if running_as_root() {
        Some(postgres_ids()?)
    } else {
        None
    };
    let locale = opts.locale.unwrap_or_else(default_locale);

    let parent = if Path::new("/tmp").is_dir() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("pgh-")
        .tempdir_in(&parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()))?;
    let root = dir.path().to_path_buf();
    let data = root.join("data");
    let socket_dir = root.join("sock");
    let log_file = root.join("postgres.log");
    fs::create_dir(&socket_dir).map_err(|e| format!("mkdir {}: {e}", socket_dir.display()))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", root.display()))?;
    if let Some((uid, gid)) = run_as {
        for path in [&root, &socket_dir] {
            chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", path.display()))?;
        }
    }

    let mut pg = Pg {
        dir: Some(dir),
        bin,
        data,
        socket_dir,
        log_file,
        port: 0,
        locale,
        run_as,
        running: false,
    };

    let initdb = pg
        .pg_command("initdb")
        .arg("-D")
        .arg(&pg.data)
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .arg(format!("--locale={}", pg.locale))
        .args(["--no-sync", "--no-instructions"])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!("initdb failed: {}", describe(&initdb)));
    }

    let hba = "\
# Written by the test harness.
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
";
    pg.write_owned(&pg.data.join("pg_hba.conf"), hba, false)?;
    let conf = format!(
        "\n# Added by the test harness.\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\n\
         password_encryption = 'scram-sha-256'\n\
         max_connections = 40\n\
         shared_buffers = 16MB\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         log_min_messages = warning\n",
        pg.socket_dir.display()
    );
    pg.write_owned(&pg.data.join("postgresql.conf"), &conf, true)?;

    let mut last_error = String::new();
    for _ in 0..5 {
        pg.port = free_port();
        match pg.pg_ctl_start() {
            Ok(()) => {
                pg.running = true;
                return Ok(pg);
            }
            Err(e) => {
                let raced = e.contains("could not bind") || e.contains("already in use");
                last_error = e;
                if !raced {
                    break;
                }
            }
        }
    }
    Err(last_error)
}

impl Pg {
    /// TCP port on 127.0.0.1 (the same after [`Pg::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP address the server listens on.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Directory holding the unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The cluster's default locale, as given to initdb.
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// The PostgreSQL `bin` directory in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Runs `sql` in database `postgres`; panics on error.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// Runs `sql` in database `db`; panics on error.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        match self.try_psql_in(db, sql) {
            Ok(out) => out,
            Err(e) => panic!("psql in {db} failed: {e}\nSQL: {sql}"),
        }
    }

    /// Runs `sql` in database `db` as `postgres` over the unix socket,
    /// unaligned tuples-only output; stdout without its trailing newlines.
    pub fn try_psql_in(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut child = self
            .pg_command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(|e| format!("cannot write to psql: {e}"))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("cannot wait for psql: {e}"))?;
        if !output.status.success() {
            return Err(describe(&output));
        }
        let mut out = String::from_utf8_lossy(&output.stdout).into_owned();
        while out.ends_with('\n') {
            out.pop();
        }
        Ok(out)
    }

    /// `CREATE ROLE name LOGIN PASSWORD 'password' [NO]SUPERUSER`.
    pub fn create_role(&self, name: &str, password: &str, superuser: bool) {
        self.psql(&format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD {} {};",
            quote_ident(name),
            quote_literal(password),
            if superuser {
                "SUPERUSER"
            } else {
                "NOSUPERUSER"
            }
        ));
    }

    /// `CREATE DATABASE name OWNER owner` (the cluster's default locale).
    pub fn create_database(&self, name: &str, owner: &str) {
        self.psql(&format!(
            "CREATE DATABASE {} OWNER {};",
            quote_ident(name),
            quote_ident(owner)
        ));
    }

    /// Stops the server (fast shutdown: clients are disconnected). Panics if
    /// it cannot.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .output();
        match out {
            Ok(out) if out.status.success() => self.running = false,
            Ok(out) => panic!("pg_ctl stop failed: {}", describe(&out)),
            Err(e) => panic!("cannot run pg_ctl: {e}"),
        }
    }

    /// Starts the stopped server again, same data directory and port. Panics
    /// if it cannot (for example if another process took the port).
    pub fn start_again(&mut self) {
        if self.running {
            return;
        }
        if let Err(e) = self.pg_ctl_start() {
            panic!("cannot start PostgreSQL again: {e}");
        }
        self.running = true;
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start on port {} failed: {}\nserver log:\n{}",
                self.port,
                describe(&out),
                self.log()
            ))
        }
    }

    /// A command for PostgreSQL program `program`, run as `postgres` when
    /// the tests run as root, in the cluster directory, without the caller's
    /// libpq environment.
    fn pg_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut cmd = if let Some(runuser) = find_program(&["runuser"]) {
                    let mut cmd = Command::new(runuser);
                    cmd.args(["-u", "postgres", "--"]);
                    cmd
                } else {
                    let mut cmd = Command::new("setpriv");
                    cmd.args([
                        "--reuid=postgres",
                        "--regid=postgres",
                        "--init-groups",
                        "--reset-env",
                    ]);
                    cmd
                };
                cmd.arg(path);
                cmd
            }
            None => Command::new(path),
        };
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir.path());
        }
        for var in [
            "PGHOST",
            "PGHOSTADDR",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGOPTIONS",
            "PGDATA",
            "PGSSLMODE",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Writes (or appends to) a file and gives it to `postgres` if needed.
    fn write_owned(&self, path: &Path, content: &str, append: bool) -> Result<(), String> {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        file.write_all(content.as_bytes())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        if let Some((uid, gid)) = self.run_as {
            chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
        // TempDir removes the directory.
        drop(self.dir.take());
    }
}

/// Newest `/usr/lib/postgresql/<N>/bin` holding `initdb`, or
/// `$PG_HARNESS_BIN_DIR`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_HARNESS_BIN_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(version) = name
            .split('.')
            .map(str::parse::<u32>)
            .collect::<Result<Vec<u32>, _>>()
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if !bin.join("initdb").is_file() {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// `en_US.UTF-8` if the machine has that locale, else `C.UTF-8`.
pub fn default_locale() -> String {
    if locale_exists("en_US.UTF-8") {
        "en_US.UTF-8".to_owned()
    } else {
        "C.UTF-8".to_owned()
    }
}

/// Whether `locale -a` lists `name` (compared the way glibc normalises
/// codesets: `en_US.UTF-8` matches `en_US.utf8`).
pub fn locale_exists(name: &str) -> bool {
    let normalise = |s: &str| s.to_ascii_lowercase().replace('-', "");
    let wanted = normalise(name);
    Command::new("locale")
        .arg("-a")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| normalise(l.trim()) == wanted)
        })
        .unwrap_or(false)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn running_as_root() -> bool {
    // Effective uid: second field of "Uid:" in /proc/self/status.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() == Some(&"postgres") && fields.len() > 3 {
                Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
            } else {
                None
            }
        })
        .ok_or_else(|| {
            "running as root but there is no `postgres` user to run PostgreSQL as \
             (Debian's postgresql package creates it)"
                .to_owned()
        })
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

fn describe(out: &Output) -> String {
    format!(
        "{}; stderr: {}; stdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )
}
