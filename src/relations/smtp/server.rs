//! What smtp-integrator sends, as a typed value (pure), and Synapse's `email` section
//! made from it.
//!
//! The provider writes its application databag in plain strings (the `smtp` charm
//! library): `host`, `port`, `auth_type` (`none`, `not_provided`, `plain`),
//! `transport_security` (`none`, `starttls`, `tls`), `skip_ssl_verify` (`True`/`False`),
//! optional `user`, `password` (plain text, older Juju) or `password_id` (a secret whose
//! content key `password` holds it), and `domain`.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::juju::Databag;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP: Synapse neither asks for nor requires TLS.
    None,
    /// Plain connection upgraded with STARTTLS; Synapse refuses to send without it.
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// The relay's credentials (never shown by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A relay Synapse can send through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// The mail domain the relay sends for, if the provider said.
    pub domain: Option<String>,
}

/// Where the password is, as the databag says: read the secret only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    /// Plain text in the databag.
    Plain(String),
    /// A secret URI whose content key `password` holds it.
    Secret(String),
}

/// The databag's fields, checked; the password comes from [`PasswordSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// `auth_type` is `plain` (credentials required) rather than `none`/`not_provided`.
    pub auth_plain: bool,
    pub user: Option<String>,
    pub password: PasswordSource,
    pub domain: Option<String>,
}

/// The provider's data cannot be used; the message names what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The provider has not written its data yet (no `host`).
    #[error("waiting for the smtp integration to send the relay's host")]
    Pending,
    #[error("smtp: {0}")]
    Invalid(String),
    #[error("smtp: {0} is not supported")]
    Unsupported(String),
}

impl SmtpError {
    /// Whether the operator has to act (blocked) rather than wait.
    pub fn blocks(&self) -> bool {
        !matches!(self, SmtpError::Pending)
    }
}

/// A value from the databag as a status shows it: quoted, one line, at most 64
/// characters.
fn shown(value: &str) -> String {
    let one = crate::util::bounded(value);
    if one.chars().count() <= 64 {
        return format!("\"{one}\"");
    }
    format!("\"{}…\"", one.chars().take(64).collect::<String>())
}

fn invalid(msg: String) -> SmtpError {
    SmtpError::Invalid(msg)
}

/// Parses the provider's application databag (pure; never panics).
pub fn parse(bag: &Databag) -> Result<Offer, SmtpError> {
    let get = |k: &str| bag.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let Some(host) = get("host") else {
        return Err(SmtpError::Pending);
    };
    if !is_host(host) {
        return Err(invalid(format!(
            "host {} is not a host name or IP address",
            shown(host)
        )));
    }
    let port =
        match get("port") {
            None => return Err(invalid("no port".into())),
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                invalid(format!("port {} is not a port number (1-65535)", shown(p)))
            })?,
        };
    let security = match get("transport_security").unwrap_or("none") {
        "none" => Security::None,
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        other => {
            return Err(SmtpError::Unsupported(format!(
                "transport_security {} (none, starttls or tls)",
                shown(other)
            )))
        }
    };
    let auth_plain = match get("auth_type").unwrap_or("none") {
        "none" | "not_provided" => false,
        "plain" => true,
        other => {
            return Err(SmtpError::Unsupported(format!(
                "auth_type {} (none, not_provided or plain)",
                shown(other)
            )))
        }
    };
    let skip_verify = match get("skip_ssl_verify").unwrap_or("False") {
        "True" | "true" => true,
        "False" | "false" => false,
        other => {
            return Err(invalid(format!(
                "skip_ssl_verify {} is not True or False",
                shown(other)
            )))
        }
    };
    if skip_verify && security != Security::None {
        return Err(SmtpError::Unsupported(
            "skip_ssl_verify=True (Synapse always verifies the relay's TLS certificate: give the relay a certificate trusted by the system's CA bundle, or set skip_ssl_verify=false)"
                .into(),
        ));
    }
    let user = get("user").map(str::to_string);
    let password = match (
        get("password_id"),
        bag.get("password").filter(|p| !p.is_empty()),
    ) {
        (Some(id), _) => PasswordSource::Secret(id.to_string()),
        (None, Some(p)) => PasswordSource::Plain(p.clone()),
        (None, None) => PasswordSource::None,
    };
    if auth_plain {
        if user.is_none() {
            return Err(invalid("auth_type plain needs a user".into()));
        }
        if password == PasswordSource::None {
            return Err(invalid(
                "auth_type plain needs a password (password or password_id)".into(),
            ));
        }
        if security == Security::None {
            return Err(SmtpError::Unsupported(
                "auth_type plain with transport_security none (the password would cross the network in clear; use starttls or tls)"
                    .into(),
            ));
        }
    }
    let domain = match get("domain") {
        Some(d) if is_host(d) && d.parse::<std::net::IpAddr>().is_err() => Some(d.to_string()),
        Some(d) => return Err(invalid(format!("domain {} is not a domain name", shown(d)))),
        None => None,
    };
    Ok(Offer {
        host: host.to_string(),
        port,
        security,
        auth_plain,
        user,
        password,
        domain,
    })
}

impl Offer {
    /// The relay, with the password the secret (or the databag) gave.
    pub fn with_password(self, password: Option<String>) -> Result<SmtpServer, SmtpError> {
        let credentials = match (self.auth_plain, self.user, password) {
            (true, Some(user), Some(password)) if !password.is_empty() => {
                Some(Credentials { user, password })
            }
            (true, _, _) => {
                return Err(invalid(
                    "auth_type plain needs a password, and the password secret holds none".into(),
                ))
            }
            // auth_type none/not_provided: nothing is sent, whatever the databag holds.
            (false, _, _) => None,
        };
        Ok(SmtpServer {
            host: self.host,
            port: self.port,
            security: self.security,
            credentials,
            domain: self.domain,
        })
    }
}

impl SmtpServer {
    /// A stand-in for the shape hash: the email section's form without the relation's
    /// values (which only change with relation or secret events).
    pub fn placeholder() -> Self {
        SmtpServer {
            host: "<host>".into(),
            port: 0,
            security: Security::None,
            credentials: None,
            domain: Some("<domain>".into()),
        }
    }
}

/// The sender when `notif_from` is not set: `noreply@` the relay's domain, else the
/// server name's host.
pub fn default_notif_from(server: &SmtpServer, server_name: &str) -> String {
    let host = server
        .domain
        .clone()
        .unwrap_or_else(|| server_host(server_name).to_string());
    format!("%(app)s <noreply@{host}>")
}

/// The host part of a server name (`host[:port]`, IPv6 in brackets).
fn server_host(server_name: &str) -> &str {
    if let Some(rest) = server_name.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    server_name.split(':').next().unwrap_or(server_name)
}

/// What the `email` section takes from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct EmailOptions<'a> {
    pub server_name: &'a str,
    pub notif_from: Option<&'a str>,
    pub enable_notifs: bool,
}

/// Synapse's `email` section for this relay (pure).
pub fn email_section(server: &SmtpServer, opts: &EmailOptions) -> Value {
    let mut e = Map::new();
    e.insert("smtp_host".into(), json!(server.host));
    e.insert("smtp_port".into(), json!(server.port));
    if let Some(c) = &server.credentials {
        e.insert("smtp_user".into(), json!(c.user));
        e.insert("smtp_pass".into(), json!(c.password));
    }
    let (enable_tls, require, force) = match server.security {
        Security::None => (false, false, false),
        Security::StartTls => (true, true, false),
        Security::Tls => (true, true, true),
    };
    e.insert("enable_tls".into(), json!(enable_tls));
    e.insert("require_transport_security".into(), json!(require));
    e.insert("force_tls".into(), json!(force));
    let from = opts
        .notif_from
        .map(str::to_string)
        .unwrap_or_else(|| default_notif_from(server, opts.server_name));
    e.insert("notif_from".into(), json!(from));
    e.insert("enable_notifs".into(), json!(opts.enable_notifs));
    Value::Object(e)
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

/// Checks a sender address as `notif_from` takes it: `local@domain`, or
/// `Display Name <local@domain>` (the name may use Synapse's `%(app)s`).
pub fn check_sender(raw: &str) -> Result<(), String> {
    let s = raw.trim();
    let addr = match s.rfind('<') {
        Some(open) => {
            let Some(inner) = s[open + 1..].strip_suffix('>') else {
                return Err("the address in <...> must end the value".into());
            };
            if s[..open].contains(['<', '>']) {
                return Err("only one <address> is allowed".into());
            }
            inner
        }
        None => s,
    };
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err("has no @: give an email address".into());
    };
    let bad_local = local.is_empty()
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:@\"".contains(c));
    if bad_local {
        return Err(format!(
            "{local:?} is not the local part of an email address"
        ));
    }
    if !is_host(domain) || domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{domain:?} is not a mail domain"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "smtp.example.com"),
            ("port", "587"),
            ("auth_type", "plain"),
            ("transport_security", "starttls"),
            ("skip_ssl_verify", "False"),
            ("user", "synapse"),
            ("password_id", "secret:abc"),
        ]
    }

    fn with(over: &[(&'static str, &'static str)]) -> Databag {
        let mut b = bag(&base());
        for (k, v) in over {
            b.insert(k.to_string(), v.to_string());
        }
        b
    }

    #[test]
    fn a_complete_offer_parses() {
        let o = parse(&with(&[])).unwrap();
        assert_eq!(o.host, "smtp.example.com");
        assert_eq!(o.port, 587);
        assert_eq!(o.security, Security::StartTls);
        assert!(o.auth_plain);
        assert_eq!(o.password, PasswordSource::Secret("secret:abc".into()));
        // The secret wins over a plain password.
        let o = parse(&with(&[("password", "plain")])).unwrap();
        assert_eq!(o.password, PasswordSource::Secret("secret:abc".into()));
        let mut b = with(&[("password", "plain")]);
        b.remove("password_id");
        assert_eq!(
            parse(&b).unwrap().password,
            PasswordSource::Plain("plain".into())
        );
    }

    #[test]
    fn no_host_is_pending_not_blocked() {
        let e = parse(&bag(&[])).unwrap_err();
        assert_eq!(e, SmtpError::Pending);
        assert!(!e.blocks());
    }

    #[test]
    fn unsupported_combinations_are_named() {
        let cases: Vec<(Databag, &str)> = vec![
            (with(&[("auth_type", "cram-md5")]), "smtp: auth_type \"cram-md5\" (none, not_provided or plain) is not supported"),
            (with(&[("transport_security", "ssl")]), "smtp: transport_security \"ssl\" (none, starttls or tls) is not supported"),
            (with(&[("transport_security", "none")]), "smtp: auth_type plain with transport_security none (the password would cross the network in clear; use starttls or tls) is not supported"),
            (with(&[("skip_ssl_verify", "True")]), "smtp: skip_ssl_verify=True (Synapse always verifies the relay's TLS certificate: give the relay a certificate trusted by the system's CA bundle, or set skip_ssl_verify=false) is not supported"),
            (with(&[("port", "0")]), "smtp: port \"0\" is not a port number (1-65535)"),
            (with(&[("port", "65536")]), "smtp: port \"65536\" is not a port number (1-65535)"),
            (with(&[("host", "bad host")]), "smtp: host \"bad host\" is not a host name or IP address"),
            (with(&[("user", "")]), "smtp: auth_type plain needs a user"),
            (with(&[("skip_ssl_verify", "yes")]), "smtp: skip_ssl_verify \"yes\" is not True or False"),
            (with(&[("domain", "bad domain")]), "smtp: domain \"bad domain\" is not a domain name"),
        ];
        for (b, want) in cases {
            let e = parse(&b).unwrap_err();
            assert!(e.blocks());
            assert_eq!(e.to_string(), want);
        }
        let mut b = with(&[]);
        b.remove("password_id");
        assert_eq!(
            parse(&b).unwrap_err().to_string(),
            "smtp: auth_type plain needs a password (password or password_id)"
        );
    }

    #[test]
    fn no_auth_sends_no_credentials_and_plain_smtp_is_fine() {
        let o = parse(&bag(&[
            ("host", "10.0.0.1"),
            ("port", "25"),
            ("auth_type", "none"),
            ("transport_security", "none"),
            ("skip_ssl_verify", "True"),
            ("user", "ignored"),
        ]))
        .unwrap();
        let s = o.with_password(Some("ignored".into())).unwrap();
        assert_eq!(s.credentials, None);
        let e = email_section(
            &s,
            &EmailOptions {
                server_name: "example.com:8448",
                notif_from: None,
                enable_notifs: false,
            },
        );
        assert_eq!(
            e,
            json!({"smtp_host": "10.0.0.1", "smtp_port": 25, "enable_tls": false,
                "require_transport_security": false, "force_tls": false,
                "notif_from": "%(app)s <noreply@example.com>", "enable_notifs": false})
        );
    }

    #[test]
    fn tls_modes_map_to_synapse_flags() {
        let opts = EmailOptions {
            server_name: "example.com",
            notif_from: Some("Chat <chat@example.org>"),
            enable_notifs: true,
        };
        let server = |t| {
            parse(&with(&[
                ("transport_security", t),
                ("domain", "mail.example.org"),
            ]))
            .unwrap()
            .with_password(Some("s3cret".into()))
            .unwrap()
        };
        let e = email_section(&server("starttls"), &opts);
        assert_eq!(e["enable_tls"], json!(true));
        assert_eq!(e["require_transport_security"], json!(true));
        assert_eq!(e["force_tls"], json!(false));
        assert_eq!(e["smtp_user"], json!("synapse"));
        assert_eq!(e["smtp_pass"], json!("s3cret"));
        assert_eq!(e["notif_from"], json!("Chat <chat@example.org>"));
        assert_eq!(e["enable_notifs"], json!(true));
        let e = email_section(&server("tls"), &opts);
        assert_eq!(e["force_tls"], json!(true));
        let s = server("tls");
        assert_eq!(
            default_notif_from(&s, "example.com"),
            "%(app)s <noreply@mail.example.org>"
        );
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "Debug hides the password"
        );
    }

    #[test]
    fn an_empty_secret_password_is_refused() {
        let o = parse(&with(&[])).unwrap();
        assert!(o.clone().with_password(None).is_err());
        assert!(o.with_password(Some(String::new())).is_err());
    }

    #[test]
    fn senders() {
        for ok in [
            "noreply@example.com",
            "Matrix <noreply@example.com>",
            "%(app)s homeserver <a.b+c@mail.example.com>",
            "  x@y.z  ",
        ] {
            assert_eq!(check_sender(ok), Ok(()), "{ok}");
        }
        for bad in [
            "example.com",
            "@example.com",
            "a b@example.com",
            "Matrix <noreply@example.com",
            "Matrix <noreply@example.com> x",
            "a@",
            "a@bad domain",
            "a@1.2.3.4",
            "<a@b.c> <d@e.f>",
        ] {
            assert!(check_sender(bad).is_err(), "{bad}");
        }
    }
}
