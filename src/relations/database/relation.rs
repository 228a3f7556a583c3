//! The `database` relation (requirer side of `postgresql_client`): what the charm asks
//! for, and the connection details the provider (postgresql-k8s) answers with.

use crate::juju::Databag;
use crate::relations::Publish;

pub const ENDPOINT: &str = "database";
/// Database name the charm requests (the provider answers with the one it created).
pub const DATABASE_NAME: &str = "synapse";
pub const DEFAULT_PORT: u16 = 5432;

/// What the requirer publishes in its application databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub database: String,
    /// Fields the provider is to send as Juju secrets rather than in the databag.
    pub requested_secrets: Vec<String>,
    pub extra_user_roles: String,
}

/// The database, credentials as Juju secrets, and a superuser role so the charm can
/// give an empty database the `C` locale.
pub fn request() -> Request {
    Request {
        database: DATABASE_NAME.into(),
        requested_secrets: ["username", "password", "tls", "tls-ca", "uris"]
            .map(String::from)
            .to_vec(),
        extra_user_roles: "SUPERUSER".into(),
    }
}

impl Publish for Request {
    const KEYS: &'static [&'static str] = &["database", "requested-secrets", "extra-user-roles"];

    fn to_databag(&self) -> Databag {
        Databag::from([
            ("database".to_string(), self.database.clone()),
            (
                "requested-secrets".to_string(),
                serde_json::to_string(&self.requested_secrets).unwrap_or_default(),
            ),
            (
                "extra-user-roles".to_string(),
                self.extra_user_roles.clone(),
            ),
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// Parses `endpoints`: a comma-separated list of `host:port` (IPv6 as `[addr]:port`,
/// port optional). Returns every valid entry, in order; the first is the primary.
pub fn parse_endpoints(raw: &str) -> Result<Vec<Endpoint>, String> {
    let mut out = vec![];
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{item:?}: unclosed IPv6 bracket"))?;
            match after.strip_prefix(':') {
                Some(p) => (h.to_string(), Some(p)),
                None if after.is_empty() => (h.to_string(), None),
                None => return Err(format!("{item:?}: unexpected text after the address")),
            }
        } else if item.matches(':').count() > 1 {
            // A bare IPv6 address without a port.
            (item.to_string(), None)
        } else {
            match item.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (item.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{item:?}: no host"));
        }
        if host.starts_with('/') {
            return Err(format!("{item:?}: a socket path is not a network endpoint"));
        }
        if !is_host(&host) {
            return Err(format!(
                "{item:?}: {host:?} is not a host name or IP address"
            ));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{item:?}: bad port {p:?}"))?,
        };
        out.push(Endpoint { host, port });
    }
    if out.is_empty() {
        return Err("no endpoint".into());
    }
    Ok(out)
}

/// A DNS name (labels of letters, digits, `-` and `_`), or an IP address.
fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Everything Synapse needs to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The primary (first) endpoint: what Synapse connects to.
    pub host: String,
    pub port: u16,
    /// Every endpoint the provider listed, in order (the charm's own checks try
    /// them all).
    pub endpoints: Vec<Endpoint>,
    pub database: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for DatabaseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

/// What the provider has sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provided {
    /// Not everything is there yet (the provider is still creating the database).
    Pending(&'static str),
    Invalid(String),
    Ready(DatabaseInfo),
}

/// Builds the connection details from the provider's application databag and the
/// content of its `secret-user` secret (or the plain `username`/`password` fields).
pub fn provided(app_data: &Databag, user_secret: Option<&Databag>) -> Provided {
    let Some(endpoints) = app_data.get("endpoints") else {
        return Provided::Pending("endpoints");
    };
    let Some(database) = app_data.get("database").filter(|d| !d.is_empty()) else {
        return Provided::Pending("database");
    };
    // PostgreSQL names are at most 63 bytes; anything else is not a database name.
    if database.len() > 63 || database.chars().any(char::is_control) {
        return Provided::Invalid(crate::util::bounded(&format!(
            "database {database:?} is not a PostgreSQL database name"
        )));
    }
    let creds = user_secret.unwrap_or(app_data);
    let (Some(user), Some(password)) = (creds.get("username"), creds.get("password")) else {
        return Provided::Pending("credentials");
    };
    match parse_endpoints(endpoints) {
        Ok(eps) => Provided::Ready(DatabaseInfo {
            host: eps[0].host.clone(),
            port: eps[0].port,
            endpoints: eps.clone(),
            database: database.clone(),
            user: user.clone(),
            password: password.clone(),
        }),
        Err(e) => Provided::Invalid(crate::util::bounded(&format!(
            "endpoints {endpoints:?}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_endpoints_are_refused_with_a_bounded_message() {
        for (raw, needle) in [
            (
                "/var/run/postgresql:5432",
                "a socket path is not a network endpoint",
            ),
            ("bad host:5432", "is not a host name or IP address"),
            ("-x.example:5432", "is not a host name or IP address"),
            ("a..b:5432", "is not a host name or IP address"),
            ("h:0", "bad port"),
            ("h:99999", "bad port"),
            ("[::1", "unclosed IPv6 bracket"),
        ] {
            let e = parse_endpoints(raw).unwrap_err();
            assert!(e.contains(needle), "{raw}: {e}");
        }
        let huge = format!("{}:5432", "x".repeat(100_000));
        let app = bag(&[("endpoints", &huge), ("database", "synapse")]);
        let secret = bag(&[("username", "u"), ("password", "p")]);
        let Provided::Invalid(msg) = provided(&app, Some(&secret)) else {
            panic!("a huge endpoint is invalid")
        };
        assert!(msg.chars().count() <= 301, "bounded: {}", msg.len());
        let app = bag(&[("endpoints", "h:1"), ("database", "x\u{7}y")]);
        assert!(matches!(
            provided(&app, Some(&secret)),
            Provided::Invalid(_)
        ));
        // Several valid endpoints are all kept, in order.
        let app = bag(&[("endpoints", "a:1,b:2"), ("database", "synapse")]);
        let Provided::Ready(info) = provided(&app, Some(&secret)) else {
            panic!()
        };
        assert_eq!((info.host.as_str(), info.endpoints.len()), ("a", 2));
    }

    #[test]
    fn request_databag_is_what_postgresql_k8s_reads() {
        let bag = request().to_databag();
        assert_eq!(bag["database"], "synapse");
        assert_eq!(
            bag["requested-secrets"],
            r#"["username","password","tls","tls-ca","uris"]"#
        );
        assert_eq!(bag["extra-user-roles"], "SUPERUSER");
        assert_eq!(bag.keys().map(String::as_str).collect::<Vec<_>>(), {
            let mut k = Request::KEYS.to_vec();
            k.sort();
            k
        });
    }

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoints("pg-primary.ns.svc.cluster.local:5432").unwrap(),
            vec![Endpoint {
                host: "pg-primary.ns.svc.cluster.local".into(),
                port: 5432
            }]
        );
        let eps = parse_endpoints("10.0.0.1:5433, [fd00::1]:5434,db").unwrap();
        assert_eq!(
            eps[0],
            Endpoint {
                host: "10.0.0.1".into(),
                port: 5433
            }
        );
        assert_eq!(
            eps[1],
            Endpoint {
                host: "fd00::1".into(),
                port: 5434
            }
        );
        assert_eq!(
            eps[2],
            Endpoint {
                host: "db".into(),
                port: 5432
            }
        );
        assert_eq!(
            parse_endpoints("::1").unwrap()[0],
            Endpoint {
                host: "::1".into(),
                port: 5432
            }
        );
        assert!(parse_endpoints("").is_err());
        assert!(parse_endpoints("db:0").is_err());
        assert!(parse_endpoints("db:x").is_err());
        assert!(parse_endpoints("[::1").is_err());
    }

    #[test]
    fn provided_from_secret_or_plain_fields() {
        let app = bag(&[("endpoints", "h:5432"), ("database", "synapse")]);
        assert_eq!(provided(&app, None), Provided::Pending("credentials"));
        let secret = bag(&[("username", "relation_id_3"), ("password", "pw")]);
        let Provided::Ready(info) = provided(&app, Some(&secret)) else {
            panic!()
        };
        assert_eq!(
            (
                info.user.as_str(),
                info.password.as_str(),
                info.host.as_str()
            ),
            ("relation_id_3", "pw", "h")
        );
        assert!(
            !format!("{info:?}").contains("pw"),
            "Debug hides the password"
        );
        let plain = bag(&[
            ("endpoints", "h:5432"),
            ("database", "synapse"),
            ("username", "u"),
            ("password", "p"),
        ]);
        assert!(matches!(provided(&plain, None), Provided::Ready(_)));
        assert_eq!(provided(&bag(&[]), None), Provided::Pending("endpoints"));
        assert!(matches!(
            provided(
                &bag(&[
                    ("endpoints", "h:bad"),
                    ("database", "d"),
                    ("username", "u"),
                    ("password", "p")
                ]),
                None
            ),
            Provided::Invalid(_)
        ));
    }
}
