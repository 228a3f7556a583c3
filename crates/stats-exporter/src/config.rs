//! Configuration from environment variables.
//!
//! Names and defaults follow the reference exporter
//! (canonical/synapse_stats_exporter):
//!
//! | variable                     | default    |
//! |------------------------------|------------|
//! | `PROM_SYNAPSE_DATABASE`      | `synapse`  |
//! | `PROM_SYNAPSE_HOST`          | `host`     |
//! | `PROM_SYNAPSE_PORT`          | `5432`     |
//! | `PROM_SYNAPSE_USER`          | `user`     |
//! | `PROM_SYNAPSE_PASSWORD`      | `password` |
//! | `POLLING_INTERVAL_SECONDS`   | `60`       |
//! | `EXPORTER_PORT`              | `9877`     |
//!
//! Additions:
//! * `PROM_SYNAPSE_PASSWORD_FILE`: read the password from this file (one
//!   trailing newline trimmed); takes precedence over `PROM_SYNAPSE_PASSWORD`.
//! * `EXPORTER_BIND`: address to listen on; default `::`, falling back to
//!   `0.0.0.0` when IPv6 is unavailable.
//!
//! An empty value counts as unset. Parsing is pure: [`Config::from_lookup`]
//! takes the variable lookup and the file reader as functions.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

pub const ENV_DATABASE: &str = "PROM_SYNAPSE_DATABASE";
pub const ENV_HOST: &str = "PROM_SYNAPSE_HOST";
pub const ENV_PORT: &str = "PROM_SYNAPSE_PORT";
pub const ENV_USER: &str = "PROM_SYNAPSE_USER";
pub const ENV_PASSWORD: &str = "PROM_SYNAPSE_PASSWORD";
pub const ENV_PASSWORD_FILE: &str = "PROM_SYNAPSE_PASSWORD_FILE";
pub const ENV_INTERVAL: &str = "POLLING_INTERVAL_SECONDS";
pub const ENV_EXPORTER_PORT: &str = "EXPORTER_PORT";
pub const ENV_BIND: &str = "EXPORTER_BIND";

pub const DEFAULT_DATABASE: &str = "synapse";
pub const DEFAULT_HOST: &str = "host";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_USER: &str = "user";
pub const DEFAULT_PASSWORD: &str = "password";
pub const DEFAULT_INTERVAL_SECONDS: u64 = 60;
pub const DEFAULT_EXPORTER_PORT: u16 = 9877;
/// One year: anything longer is surely a typo, and it keeps `Instant`
/// arithmetic far from overflow.
pub const MAX_INTERVAL_SECONDS: u64 = 365 * 24 * 3600;

/// Everything the exporter needs to run.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub database: String,
    /// Host name, IP address, or (starting with `/`) a unix socket directory.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub polling_interval: Duration,
    pub exporter_port: u16,
    /// `None`: listen on `::`, or on `0.0.0.0` if IPv6 is unavailable.
    pub bind: Option<IpAddr>,
}

/// The password is never printed.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("polling_interval", &self.polling_interval)
            .field("exporter_port", &self.exporter_port)
            .field("bind", &self.bind)
            .finish()
    }
}

/// A variable that has a value the exporter cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment and the password file, if any.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(
            |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
            |path| std::fs::read_to_string(path),
        )
    }

    /// Builds the configuration from `lookup` (variable name to value) and
    /// `read_file` (used only for `PROM_SYNAPSE_PASSWORD_FILE`).
    pub fn from_lookup<L, R>(lookup: L, read_file: R) -> Result<Config, ConfigError>
    where
        L: Fn(&str) -> Option<String>,
        R: Fn(&Path) -> io::Result<String>,
    {
        // Empty counts as unset.
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let text = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());

        let port = match get(ENV_PORT) {
            Some(v) => parse_port(ENV_PORT, &v)?,
            None => DEFAULT_PORT,
        };
        let exporter_port = match get(ENV_EXPORTER_PORT) {
            Some(v) => parse_port(ENV_EXPORTER_PORT, &v)?,
            None => DEFAULT_EXPORTER_PORT,
        };
        let interval = match get(ENV_INTERVAL) {
            Some(v) => parse_interval(&v)?,
            None => DEFAULT_INTERVAL_SECONDS,
        };
        let bind = match get(ENV_BIND) {
            Some(v) => Some(parse_bind(&v)?),
            None => None,
        };
        let password = match get(ENV_PASSWORD_FILE) {
            Some(path) => read_password_file(&path, &read_file)?,
            None => text(ENV_PASSWORD, DEFAULT_PASSWORD),
        };

        Ok(Config {
            database: text(ENV_DATABASE, DEFAULT_DATABASE),
            host: text(ENV_HOST, DEFAULT_HOST),
            port,
            user: text(ENV_USER, DEFAULT_USER),
            password,
            polling_interval: Duration::from_secs(interval),
            exporter_port,
            bind,
        })
    }
}

fn parse_port(variable: &'static str, value: &str) -> Result<u16, ConfigError> {
    let invalid = |reason: String| ConfigError { variable, reason };
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{value:?} is not a port number (expected 1-65535)")))?;
    match u16::try_from(n) {
        Ok(0) => Err(invalid(
            "port 0 is not allowed (expected 1-65535)".to_owned(),
        )),
        Ok(port) => Ok(port),
        Err(_) => Err(invalid(format!("{n} is out of range (expected 1-65535)"))),
    }
}

fn parse_interval(value: &str) -> Result<u64, ConfigError> {
    let invalid = |reason: String| ConfigError {
        variable: ENV_INTERVAL,
        reason,
    };
    let n: u64 = value.trim().parse().map_err(|_| {
        invalid(format!(
            "{value:?} is not a whole number of seconds (expected 1-{MAX_INTERVAL_SECONDS})"
        ))
    })?;
    if n == 0 {
        return Err(invalid(format!(
            "0 is not allowed (expected 1-{MAX_INTERVAL_SECONDS})"
        )));
    }
    if n > MAX_INTERVAL_SECONDS {
        return Err(invalid(format!(
            "{n} is too large (expected 1-{MAX_INTERVAL_SECONDS})"
        )));
    }
    Ok(n)
}

fn parse_bind(value: &str) -> Result<IpAddr, ConfigError> {
    let trimmed = value.trim();
    // Accept the bracketed IPv6 form too: "[::1]".
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(trimmed);
    bare.parse().map_err(|_| ConfigError {
        variable: ENV_BIND,
        reason: format!("{value:?} is not an IP address (for example :: or 0.0.0.0)"),
    })
}

fn read_password_file<R>(path: &str, read_file: &R) -> Result<String, ConfigError>
where
    R: Fn(&Path) -> io::Result<String>,
{
    let mut content = read_file(Path::new(path)).map_err(|e| ConfigError {
        variable: ENV_PASSWORD_FILE,
        reason: format!("cannot read {path}: {e}"),
    })?;
    if content.ends_with('\n') {
        content.pop();
        if content.ends_with('\r') {
            content.pop();
        }
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        parse_with_files(vars, &[])
    }

    fn parse_with_files(
        vars: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(
            |name| vars.get(name).cloned(),
            |path| {
                files
                    .get(path.to_str().unwrap_or_default())
                    .cloned()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file"))
            },
        )
    }

    fn error(vars: &[(&str, &str)]) -> String {
        parse(vars).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_the_reference() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c,
            Config {
                database: "synapse".into(),
                host: "host".into(),
                port: 5432,
                user: "user".into(),
                password: "password".into(),
                polling_interval: Duration::from_secs(60),
                exporter_port: 9877,
                bind: None,
            }
        );
    }

    #[test]
    fn overrides() {
        let c = parse(&[
            ("PROM_SYNAPSE_DATABASE", "matrix"),
            ("PROM_SYNAPSE_HOST", "db.internal"),
            ("PROM_SYNAPSE_PORT", "6543"),
            ("PROM_SYNAPSE_USER", "synapse_user"),
            ("PROM_SYNAPSE_PASSWORD", "s3cret"),
            ("POLLING_INTERVAL_SECONDS", "15"),
            ("EXPORTER_PORT", "9100"),
            ("EXPORTER_BIND", "127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(c.database, "matrix");
        assert_eq!(c.host, "db.internal");
        assert_eq!(c.port, 6543);
        assert_eq!(c.user, "synapse_user");
        assert_eq!(c.password, "s3cret");
        assert_eq!(c.polling_interval, Duration::from_secs(15));
        assert_eq!(c.exporter_port, 9100);
        assert_eq!(c.bind, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = parse(&[
            ("PROM_SYNAPSE_DATABASE", ""),
            ("PROM_SYNAPSE_HOST", ""),
            ("PROM_SYNAPSE_PORT", ""),
            ("PROM_SYNAPSE_USER", ""),
            ("PROM_SYNAPSE_PASSWORD", ""),
            ("PROM_SYNAPSE_PASSWORD_FILE", ""),
            ("POLLING_INTERVAL_SECONDS", ""),
            ("EXPORTER_PORT", ""),
            ("EXPORTER_BIND", ""),
        ])
        .unwrap();
        assert_eq!(c, parse(&[]).unwrap());
    }

    #[test]
    fn surrounding_whitespace_in_numbers_is_tolerated() {
        let c = parse(&[
            ("PROM_SYNAPSE_PORT", " 5433 "),
            ("POLLING_INTERVAL_SECONDS", "5\n"),
        ])
        .unwrap();
        assert_eq!(c.port, 5433);
        assert_eq!(c.polling_interval, Duration::from_secs(5));
    }

    #[test]
    fn bind_accepts_ipv6_with_or_without_brackets() {
        let c = parse(&[("EXPORTER_BIND", "::")]).unwrap();
        assert_eq!(c.bind, Some("::".parse().unwrap()));
        let c = parse(&[("EXPORTER_BIND", "[::1]")]).unwrap();
        assert_eq!(c.bind, Some("::1".parse().unwrap()));
    }

    #[test]
    fn invalid_database_port() {
        assert_eq!(
            error(&[("PROM_SYNAPSE_PORT", "abc")]),
            r#"invalid PROM_SYNAPSE_PORT: "abc" is not a port number (expected 1-65535)"#
        );
        assert_eq!(
            error(&[("PROM_SYNAPSE_PORT", "0")]),
            "invalid PROM_SYNAPSE_PORT: port 0 is not allowed (expected 1-65535)"
        );
        assert_eq!(
            error(&[("PROM_SYNAPSE_PORT", "65536")]),
            "invalid PROM_SYNAPSE_PORT: 65536 is out of range (expected 1-65535)"
        );
        assert_eq!(
            error(&[("PROM_SYNAPSE_PORT", "-1")]),
            r#"invalid PROM_SYNAPSE_PORT: "-1" is not a port number (expected 1-65535)"#
        );
    }

    #[test]
    fn invalid_exporter_port() {
        assert_eq!(
            error(&[("EXPORTER_PORT", "http")]),
            r#"invalid EXPORTER_PORT: "http" is not a port number (expected 1-65535)"#
        );
        assert_eq!(
            error(&[("EXPORTER_PORT", "0")]),
            "invalid EXPORTER_PORT: port 0 is not allowed (expected 1-65535)"
        );
        assert_eq!(
            error(&[("EXPORTER_PORT", "99999")]),
            "invalid EXPORTER_PORT: 99999 is out of range (expected 1-65535)"
        );
    }

    #[test]
    fn invalid_interval() {
        assert_eq!(
            error(&[("POLLING_INTERVAL_SECONDS", "0")]),
            "invalid POLLING_INTERVAL_SECONDS: 0 is not allowed (expected 1-31536000)"
        );
        assert_eq!(
            error(&[("POLLING_INTERVAL_SECONDS", "1.5")]),
            r#"invalid POLLING_INTERVAL_SECONDS: "1.5" is not a whole number of seconds (expected 1-31536000)"#
        );
        assert_eq!(
            error(&[("POLLING_INTERVAL_SECONDS", "soon")]),
            r#"invalid POLLING_INTERVAL_SECONDS: "soon" is not a whole number of seconds (expected 1-31536000)"#
        );
        assert_eq!(
            error(&[("POLLING_INTERVAL_SECONDS", "31536001")]),
            "invalid POLLING_INTERVAL_SECONDS: 31536001 is too large (expected 1-31536000)"
        );
    }

    #[test]
    fn invalid_bind() {
        assert_eq!(
            error(&[("EXPORTER_BIND", "localhost")]),
            r#"invalid EXPORTER_BIND: "localhost" is not an IP address (for example :: or 0.0.0.0)"#
        );
    }

    #[test]
    fn password_file_takes_precedence_and_loses_one_trailing_newline() {
        let c = parse_with_files(
            &[
                ("PROM_SYNAPSE_PASSWORD", "from-env"),
                ("PROM_SYNAPSE_PASSWORD_FILE", "/secrets/pw"),
            ],
            &[("/secrets/pw", "from file \n")],
        )
        .unwrap();
        assert_eq!(c.password, "from file ");

        let c = parse_with_files(
            &[("PROM_SYNAPSE_PASSWORD_FILE", "/secrets/pw")],
            &[("/secrets/pw", "crlf\r\n")],
        )
        .unwrap();
        assert_eq!(c.password, "crlf");

        let c = parse_with_files(
            &[("PROM_SYNAPSE_PASSWORD_FILE", "/secrets/pw")],
            &[("/secrets/pw", "no-newline")],
        )
        .unwrap();
        assert_eq!(c.password, "no-newline");
    }

    #[test]
    fn unreadable_password_file() {
        let err = parse_with_files(
            &[
                ("PROM_SYNAPSE_PASSWORD", "from-env"),
                ("PROM_SYNAPSE_PASSWORD_FILE", "/missing"),
            ],
            &[],
        )
        .unwrap_err();
        assert_eq!(err.variable, "PROM_SYNAPSE_PASSWORD_FILE");
        assert_eq!(
            err.to_string(),
            "invalid PROM_SYNAPSE_PASSWORD_FILE: cannot read /missing: No such file"
        );
    }

    #[test]
    fn password_file_from_the_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "real\n").unwrap();
        let path = path.to_str().unwrap().to_owned();
        let c = Config::from_lookup(
            |name| (name == ENV_PASSWORD_FILE).then(|| path.clone()),
            |p| std::fs::read_to_string(p),
        )
        .unwrap();
        assert_eq!(c.password, "real");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = parse(&[("PROM_SYNAPSE_PASSWORD", "hunter2")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
