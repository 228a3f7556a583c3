//! The charm's configuration options, validated into typed values.
//!
//! Every problem names the option and the reason, so the operator sees e.g.
//! `invalid configuration: ip_range_whitelist: "10.0.0.0/33" is not a CIDR`.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use pebble::GoDuration;

/// One invalid option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub option: &'static str,
    pub reason: String,
}

/// All invalid options, in option order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.option, p.reason)?;
        }
        Ok(())
    }
}

/// Period, threshold and timeout of the Synapse liveness check.
#[derive(Debug, Clone, PartialEq)]
pub struct AliveCheck {
    pub period: GoDuration,
    pub threshold: u32,
    pub timeout: GoDuration,
}

/// The validated configuration. Lists are already split, trimmed and prefixed.
#[derive(Debug, Clone, PartialEq)]
pub struct SynapseConfig {
    pub server_name: String,
    pub public_baseurl: Option<String>,
    /// Networks NGINX lets reach the admin API (canonical CIDRs); empty: closed.
    pub admin_api_allowed_cidrs: Vec<String>,
    pub allow_public_rooms_over_federation: bool,
    pub backup_passphrase: Option<String>,
    pub block_non_admin_invites: bool,
    pub enable_email_notifs: bool,
    pub enable_mjolnir: bool,
    pub enable_password_config: bool,
    pub enable_room_list_search: bool,
    pub federation_domain_whitelist: Vec<String>,
    pub ip_range_whitelist: Vec<String>,
    pub invite_checker_blocklist_allowlist_url: Option<String>,
    /// Room IDs with their leading `!`.
    pub invite_checker_policy_rooms: Vec<String>,
    pub limit_remote_rooms_complexity: Option<f64>,
    /// The sender of Synapse's mails, as set (checked to be an email address); unset,
    /// the smtp integration picks `noreply@` its domain or the server name.
    pub notif_from: Option<String>,
    pub experimental_alive_check: AliveCheck,
    pub rc_joins_remote_burst_count: u64,
    pub rc_joins_remote_per_second: f64,
    pub report_stats: bool,
    /// User IDs with their leading `@`.
    pub publish_rooms_allowlist: Vec<String>,
    pub trusted_key_servers: Vec<String>,
    pub workers_ignore_list: Vec<String>,
    /// Not an option: where this unit's local media live ([`crate::switch::media_store_path`]).
    pub media_store_path: String,
    /// Not an option: the application's topology once it runs on more than one unit
    /// (set by the reconcile with [`SynapseConfig::with_cluster`]), so that it enters
    /// homeserver.yaml, the layer and the shape hash like any option.
    pub cluster: Option<crate::topology::Cluster>,
}

struct Reader<'a> {
    raw: &'a Map<String, Value>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    fn problem(&mut self, option: &'static str, reason: impl Into<String>) {
        self.problems.push(ConfigProblem {
            option,
            reason: reason.into(),
        });
    }

    /// A string option; empty or whitespace-only counts as unset.
    fn string(&mut self, option: &'static str) -> Option<String> {
        match self.raw.get(option) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(other) => {
                self.problem(option, format!("expected a string, got {other}"));
                None
            }
        }
    }

    fn boolean(&mut self, option: &'static str, default: bool) -> bool {
        match self.raw.get(option) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(option, format!("expected true or false, got {other}"));
                default
            }
        }
    }

    fn float(&mut self, option: &'static str) -> Option<f64> {
        match self.raw.get(option) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() => Some(f),
                _ => {
                    self.problem(option, format!("{n} is not a finite number"));
                    None
                }
            },
            Some(other) => {
                self.problem(option, format!("expected a number, got {other}"));
                None
            }
        }
    }

    fn int(&mut self, option: &'static str) -> Option<i64> {
        match self.raw.get(option) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.problem(option, format!("{n} is not a whole number"));
                    None
                }
            },
            Some(other) => {
                self.problem(option, format!("expected a whole number, got {other}"));
                None
            }
        }
    }

    /// A comma-separated list; each item is trimmed, empty items dropped, then checked.
    fn list(
        &mut self,
        option: &'static str,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> Vec<String> {
        let Some(raw) = self.string(option) else {
            return vec![];
        };
        let mut out = vec![];
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match check(item) {
                Ok(v) => out.push(v),
                Err(reason) => self.problem(option, reason),
            }
        }
        out
    }
}

/// A DNS host name (labels of letters, digits and `-`), an IPv4 address or a
/// bracketed IPv6 address.
fn is_hostname(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A Matrix server name: a host name with an optional `:port`.
pub fn is_server_name(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (s, None), // bare IPv6: invalid below
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return false;
        }
    }
    is_hostname(host)
}

fn check_host(item: &str) -> Result<String, String> {
    if is_hostname(item) {
        Ok(item.to_string())
    } else {
        Err(format!("{item:?} is not a host name"))
    }
}

fn check_cidr(item: &str) -> Result<String, String> {
    let not = || format!("{item:?} is not a CIDR");
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| not())?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(not()),
        }
    }
    Ok(item.to_string())
}

fn is_localpart(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=/+-".contains(c))
}

fn check_user_id(item: &str) -> Result<String, String> {
    let bare = item.strip_prefix('@').unwrap_or(item);
    match bare.split_once(':') {
        Some((local, server)) if is_localpart(local) && is_server_name(server) => {
            Ok(format!("@{bare}"))
        }
        _ => Err(format!(
            "{item:?} is not a user ID of the form localpart:domain"
        )),
    }
}

fn check_room_id(item: &str) -> Result<String, String> {
    let bare = item.strip_prefix('!').unwrap_or(item);
    let opaque_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._=/+-".contains(c))
    };
    match bare.split_once(':') {
        Some((opaque, server)) if opaque_ok(opaque) && is_server_name(server) => {
            Ok(format!("!{bare}"))
        }
        _ => Err(format!(
            "{item:?} is not a room ID of the form opaque_id:domain"
        )),
    }
}

/// An http(s) URL whose host is valid and that has no fragment (`#...`); with
/// `query = false`, no query either (a base URL that other paths are appended to).
fn check_url_parts(item: &str, query: bool) -> Result<String, String> {
    let url = check_url(item)?;
    if item.contains('#') {
        return Err(format!("{item:?} must not have a fragment (#...)"));
    }
    if !query && item.contains('?') {
        return Err(format!(
            "{item:?} must not have a query (?...): paths are appended to it"
        ));
    }
    Ok(url)
}

/// Checks a base URL the way `public_baseurl` is checked (http(s), a valid host, no
/// query or fragment); for URLs that come from relations.
pub fn check_base_url(item: &str) -> Result<String, String> {
    check_url_parts(item, false)
}

fn check_url(item: &str) -> Result<String, String> {
    if item.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{item:?} must not contain spaces or control characters"
        ));
    }
    let rest = item
        .strip_prefix("https://")
        .or_else(|| item.strip_prefix("http://"))
        .ok_or_else(|| format!("{item:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || !is_server_name(host) {
        return Err(format!("{item:?} has no valid host"));
    }
    Ok(item.to_string())
}

fn check_worker_name(item: &str) -> Result<String, String> {
    if item
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(item.to_string())
    } else {
        Err(format!("{item:?} is not a worker name"))
    }
}

fn parse_alive_check(s: &str) -> Result<AliveCheck, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [period, threshold, timeout] = parts.as_slice() else {
        return Err(format!(
            "{s:?} must be three comma-separated values: period,threshold,timeout (e.g. 2m,5,20s)"
        ));
    };
    let duration = |what: &str, v: &str| -> Result<GoDuration, String> {
        // Whole seconds, minutes or hours: Pebble's checks run no faster than that
        // (`500ms` also ends in `s`).
        let unit_ok = v.ends_with(['s', 'm', 'h'])
            && !["ms", "us", "µs", "ns"].iter().any(|u| v.ends_with(u));
        if !unit_ok {
            return Err(format!("{what} {v:?} must end in s, m or h"));
        }
        let d: GoDuration = v.parse().map_err(|e| format!("{what} {v:?}: {e}"))?;
        let d_std = d.as_duration();
        if d_std.as_secs() == 0 {
            return Err(format!("{what} {v:?} must be at least 1s"));
        }
        if d_std.subsec_nanos() != 0 {
            return Err(format!("{what} {v:?} must be a whole number of seconds"));
        }
        if d_std.as_secs() > 24 * 3600 {
            return Err(format!("{what} {v:?} must not be longer than 24h"));
        }
        Ok(d)
    };
    let period = duration("period", period)?;
    let timeout = duration("timeout", timeout)?;
    let threshold: u32 = threshold
        .parse()
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| format!("threshold {threshold:?} must be a positive whole number"))?;
    if timeout > period {
        return Err(format!(
            "timeout {timeout} must not be longer than the period {period}"
        ));
    }
    Ok(AliveCheck {
        period,
        threshold,
        timeout,
    })
}

pub const DEFAULT_ALIVE_CHECK: &str = "2m,5,20s";

impl SynapseConfig {
    /// The same configuration with local media kept in `path`.
    pub fn with_media_store(mut self, path: String) -> Self {
        self.media_store_path = path;
        self
    }

    /// The same configuration with the application's topology (`None` on one unit).
    pub fn with_cluster(&self, cluster: Option<crate::topology::Cluster>) -> Self {
        let mut c = self.clone();
        c.cluster = cluster;
        c
    }

    /// This unit runs the federation sender next to Synapse main.
    pub fn runs_federation_sender(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.runs_federation_sender(&self.workers_ignore_list))
    }

    /// This unit runs a Synapse worker (not Synapse main).
    pub fn is_worker(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| !c.is_main())
    }

    /// This configuration with `url` (an ingress URL) as `public_baseurl`, unless the
    /// option is set: the operator's value always wins.
    pub fn with_default_baseurl(&self, url: Option<&str>) -> Self {
        let mut c = self.clone();
        if c.public_baseurl.is_none() {
            c.public_baseurl = url.map(|u| u.trim_end_matches('/').to_string());
        }
        c
    }

    /// Options that are set but that the charm cannot honour in this deployment (pure):
    /// never silent, they are named in the status.
    /// `mail`: whether Synapse has a usable smtp integration.
    pub fn unhonoured(&self, mail: bool) -> Vec<String> {
        let mut notes = vec![];
        if !mail && self.enable_email_notifs {
            notes.push(
                "enable_email_notifs has no effect: no mail is sent without an smtp integration"
                    .to_string(),
            );
        } else if !mail && self.notif_from.is_some() {
            notes.push(
                "notif_from has no effect: no mail is sent without an smtp integration".to_string(),
            );
        }
        if self.enable_mjolnir {
            notes.push("enable_mjolnir has no effect: the charm does not run Mjolnir".to_string());
        }
        if !self.workers_ignore_list.is_empty() && self.cluster.is_none() {
            notes.push(
                "workers_ignore_list has no effect: Synapse runs no workers on one unit"
                    .to_string(),
            );
        }
        notes
    }
}

impl SynapseConfig {
    /// Validates `config-get --format=json` output.
    pub fn from_juju(raw: &Map<String, Value>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            raw,
            problems: vec![],
        };
        let server_name = match r.string("server_name") {
            // A value of the wrong type is already reported.
            None if !r.problems.is_empty() => String::new(),
            None => {
                r.problem(
                    "server_name",
                    "must be set to the domain of the server's Matrix IDs, e.g. matrix.example.com",
                );
                String::new()
            }
            Some(s) if !is_server_name(&s) => {
                r.problem(
                    "server_name",
                    format!("{s:?} is not a valid server name (host name with an optional :port)"),
                );
                s
            }
            Some(s) => s,
        };
        let public_baseurl =
            r.string("public_baseurl")
                .and_then(|u| match check_url_parts(&u, false) {
                    Ok(u) => Some(u.trim_end_matches('/').to_string()),
                    Err(reason) => {
                        r.problem("public_baseurl", reason);
                        None
                    }
                });
        let alive_raw = r
            .string("experimental_alive_check")
            .unwrap_or_else(|| DEFAULT_ALIVE_CHECK.to_string());
        let experimental_alive_check = match parse_alive_check(&alive_raw) {
            Ok(c) => c,
            Err(reason) => {
                r.problem("experimental_alive_check", reason);
                parse_alive_check(DEFAULT_ALIVE_CHECK).unwrap_or(AliveCheck {
                    period: GoDuration::from_secs(120),
                    threshold: 5,
                    timeout: GoDuration::from_secs(20),
                })
            }
        };
        let limit_remote_rooms_complexity = r.float("limit_remote_rooms_complexity");
        if let Some(c) = limit_remote_rooms_complexity {
            if c <= 0.0 {
                r.problem(
                    "limit_remote_rooms_complexity",
                    format!("{c} must be greater than zero"),
                );
            }
        }
        let burst = r.int("rc_joins_remote_burst_count").unwrap_or(10);
        if burst < 0 {
            r.problem(
                "rc_joins_remote_burst_count",
                format!("{burst} must not be negative"),
            );
        }
        let per_second = r.float("rc_joins_remote_per_second").unwrap_or(0.01);
        if per_second < 0.0 {
            r.problem(
                "rc_joins_remote_per_second",
                format!("{per_second} must not be negative"),
            );
        }
        let invite_checker_blocklist_allowlist_url = r
            .string("invite_checker_blocklist_allowlist_url")
            .and_then(|u| match check_url_parts(&u, true) {
                Ok(u) => Some(u),
                Err(reason) => {
                    r.problem("invite_checker_blocklist_allowlist_url", reason);
                    None
                }
            });
        let invite_rooms = r.list("invite_checker_policy_rooms", check_room_id);
        // The invite checker module takes both: a list URL without policy rooms (or
        // the reverse) is a half-configured module.
        // Whether each is set at all (an invalid value is reported as such, not as unset).
        let set = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty())
        };
        match (
            set("invite_checker_blocklist_allowlist_url"),
            !set("invite_checker_policy_rooms"),
        ) {
            (true, true) => r.problem(
                "invite_checker_policy_rooms",
                "must be set too when invite_checker_blocklist_allowlist_url is set",
            ),
            (false, false) => r.problem(
                "invite_checker_blocklist_allowlist_url",
                "must be set too when invite_checker_policy_rooms is set",
            ),
            _ => {}
        }
        let notif_from = r.string("notif_from").map(|n| n.trim().to_string());
        if let Some(n) = &notif_from {
            if n.chars().any(char::is_control) {
                r.problem("notif_from", "must not contain control characters");
            } else if let Err(why) = crate::relations::smtp::server::check_sender(n) {
                r.problem(
                    "notif_from",
                    format!(
                        "{:?} is not an email address ({why}); e.g. Matrix <noreply@example.com>",
                        crate::util::bounded(n)
                    ),
                );
            }
        }
        let cfg = SynapseConfig {
            admin_api_allowed_cidrs: r.list(
                crate::nginx::site::ADMIN_OPTION,
                crate::nginx::site::check_cidr,
            ),
            allow_public_rooms_over_federation: r
                .boolean("allow_public_rooms_over_federation", false),
            backup_passphrase: r.string("backup_passphrase"),
            block_non_admin_invites: r.boolean("block_non_admin_invites", false),
            enable_email_notifs: r.boolean("enable_email_notifs", false),
            enable_mjolnir: r.boolean("enable_mjolnir", false),
            enable_password_config: r.boolean("enable_password_config", true),
            enable_room_list_search: r.boolean("enable_room_list_search", true),
            federation_domain_whitelist: r.list("federation_domain_whitelist", check_host),
            ip_range_whitelist: r.list("ip_range_whitelist", check_cidr),
            invite_checker_blocklist_allowlist_url,
            invite_checker_policy_rooms: invite_rooms,
            limit_remote_rooms_complexity,
            notif_from,
            experimental_alive_check,
            rc_joins_remote_burst_count: burst.max(0) as u64,
            rc_joins_remote_per_second: per_second.max(0.0),
            report_stats: r.boolean("report_stats", false),
            publish_rooms_allowlist: r.list("publish_rooms_allowlist", check_user_id),
            trusted_key_servers: r.list("trusted_key_servers", check_host),
            workers_ignore_list: r.list("workers_ignore_list", check_worker_name),
            cluster: None,
            server_name,
            public_baseurl,
            media_store_path: super::homeserver::MEDIA_STORE_PATH.to_string(),
        };
        if r.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(r.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<SynapseConfig, ConfigError> {
        let Value::Object(map) = v else { panic!() };
        SynapseConfig::from_juju(&map)
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    fn with(extra: Value) -> Value {
        let mut base = json!({"server_name": "example.com", "enable_password_config": true,
            "enable_room_list_search": true, "experimental_alive_check": "2m,5,20s",
            "rc_joins_remote_burst_count": 10, "rc_joins_remote_per_second": 0.01});
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        base
    }

    #[test]
    fn defaults() {
        let c = parse(with(json!({}))).unwrap();
        assert_eq!(c.server_name, "example.com");
        assert_eq!(c.notif_from, None);
        assert!(c.enable_password_config && c.enable_room_list_search && !c.report_stats);
        assert_eq!(c.experimental_alive_check.period.to_string(), "2m0s");
        assert_eq!(c.experimental_alive_check.threshold, 5);
        assert_eq!(c.rc_joins_remote_burst_count, 10);
        assert_eq!(c.public_baseurl, None);
    }

    #[test]
    fn server_name_required() {
        assert_eq!(
            err(json!({})),
            "invalid configuration: server_name: must be set to the domain of the server's Matrix IDs, e.g. matrix.example.com"
        );
        assert_eq!(err(json!({"server_name": "  "})), err(json!({})));
        assert!(err(json!({"server_name": "bad name"}))
            .starts_with("invalid configuration: server_name: \"bad name\""));
        assert!(parse(json!({"server_name": "matrix.example.com:8448"})).is_ok());
        assert!(parse(json!({"server_name": "ex:0"})).is_err());
        assert!(parse(json!({"server_name": "[::1]:8448"})).is_ok());
    }

    #[test]
    fn ip_range_whitelist() {
        let c = parse(with(
            json!({"ip_range_whitelist": "10.0.0.0/8, fd00::/8,192.168.1.1"}),
        ))
        .unwrap();
        assert_eq!(
            c.ip_range_whitelist,
            vec!["10.0.0.0/8", "fd00::/8", "192.168.1.1"]
        );
        assert_eq!(
            err(with(json!({"ip_range_whitelist": "10.0.0.0/33"}))),
            "invalid configuration: ip_range_whitelist: \"10.0.0.0/33\" is not a CIDR"
        );
        assert!(err(with(json!({"ip_range_whitelist": "abc"}))).contains("\"abc\" is not a CIDR"));
        assert!(err(with(json!({"ip_range_whitelist": "fd00::/129"}))).contains("is not a CIDR"));
    }

    #[test]
    fn host_lists() {
        let c = parse(with(
            json!({"trusted_key_servers": "matrix.org, key.example.technology",
            "federation_domain_whitelist": "a.org,b.example"}),
        ))
        .unwrap();
        assert_eq!(
            c.trusted_key_servers,
            vec!["matrix.org", "key.example.technology"]
        );
        assert_eq!(c.federation_domain_whitelist, vec!["a.org", "b.example"]);
        assert!(err(with(json!({"trusted_key_servers": "bad_host!"})))
            .contains("trusted_key_servers: \"bad_host!\" is not a host name"));
        assert!(err(with(json!({"federation_domain_whitelist": "-x.org"})))
            .contains("federation_domain_whitelist"));
    }

    #[test]
    fn publish_rooms_allowlist_prefixes_at() {
        let c = parse(with(
            json!({"publish_rooms_allowlist": "alice:example.com,@bob:chat.example.co.uk"}),
        ))
        .unwrap();
        assert_eq!(
            c.publish_rooms_allowlist,
            vec!["@alice:example.com", "@bob:chat.example.co.uk"]
        );
        assert!(err(with(json!({"publish_rooms_allowlist": "Alice"})))
            .contains("publish_rooms_allowlist: \"Alice\" is not a user ID"));
    }

    #[test]
    fn invite_checker_rooms_prefix_bang() {
        let c = parse(with(
            json!({"invite_checker_policy_rooms": "abc:example.com",
            "invite_checker_blocklist_allowlist_url": "https://lists.example.com/a.json"}),
        ))
        .unwrap();
        assert_eq!(c.invite_checker_policy_rooms, vec!["!abc:example.com"]);
        // Set together or not at all.
        assert!(
            err(with(json!({"invite_checker_policy_rooms": "abc:example.com"}))).contains(
                "invite_checker_blocklist_allowlist_url: must be set too when invite_checker_policy_rooms is set"
            )
        );
        assert!(err(with(
            json!({"invite_checker_blocklist_allowlist_url": "https://lists.example.com/a.json"})
        ))
        .contains(
            "invite_checker_policy_rooms: must be set too when invite_checker_blocklist_allowlist_url is set"
        ));
        assert!(err(with(
            json!({"invite_checker_policy_rooms": "abc:example.com",
            "invite_checker_blocklist_allowlist_url": "https://lists.example.com/a.json#top"})
        ))
        .contains("must not have a fragment"));
        assert!(
            err(with(json!({"invite_checker_policy_rooms": "no-server"})))
                .contains("invite_checker_policy_rooms")
        );
        assert!(err(with(
            json!({"invite_checker_blocklist_allowlist_url": "ftp://x"})
        ))
        .contains(
            "invite_checker_blocklist_allowlist_url: \"ftp://x\" is not an http:// or https:// URL"
        ));
    }

    #[test]
    fn public_baseurl() {
        let c = parse(with(
            json!({"public_baseurl": "https://matrix.example.com/"}),
        ))
        .unwrap();
        assert_eq!(
            c.public_baseurl.as_deref(),
            Some("https://matrix.example.com")
        );
        assert!(
            err(with(json!({"public_baseurl": "matrix.example.com"}))).contains("public_baseurl")
        );
        for (bad, needle) in [
            ("https://matrix.example.com/?a=b", "must not have a query"),
            ("https://matrix.example.com/#x", "must not have a fragment"),
            ("https://matrix.example.com/a b", "must not contain spaces"),
        ] {
            let e = err(with(json!({ "public_baseurl": bad })));
            assert!(
                e.contains("public_baseurl") && e.contains(needle),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn alive_check() {
        let c = parse(with(json!({"experimental_alive_check": "1m,3,10s"}))).unwrap();
        assert_eq!(c.experimental_alive_check.threshold, 3);
        for (bad, needle) in [
            ("1m,3", "three comma-separated values"),
            ("1m,x,10s", "threshold \"x\""),
            ("1m,0,10s", "threshold \"0\""),
            ("60,3,10s", "period \"60\" must end in s, m or h"),
            ("1m,3,2m", "must not be longer than the period"),
            ("0s,3,0s", "must be at least 1s"),
            ("500ms,3,100ms", "period \"500ms\" must end in s, m or h"),
            ("1m,3,1.5s", "must be a whole number of seconds"),
            ("48h,3,10s", "must not be longer than 24h"),
        ] {
            let e = err(with(json!({"experimental_alive_check": bad})));
            assert!(
                e.contains("experimental_alive_check") && e.contains(needle),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn options_without_effect_are_named() {
        let c = parse(with(json!({}))).unwrap();
        assert!(c.unhonoured(false).is_empty());
        let c = parse(with(
            json!({"enable_email_notifs": true, "notif_from": "a@example.com",
            "enable_mjolnir": true, "backup_passphrase": "x", "workers_ignore_list": "w1"}),
        ))
        .unwrap();
        let notes = c.unhonoured(false).join("; ");
        for option in [
            "enable_email_notifs",
            "enable_mjolnir",
            "workers_ignore_list",
        ] {
            assert!(notes.contains(option), "{notes}");
        }
        let c = parse(with(json!({"notif_from": "a@example.com"}))).unwrap();
        assert_eq!(
            c.unhonoured(false),
            vec!["notif_from has no effect: no mail is sent without an smtp integration"]
        );
        // With a usable smtp integration both take effect.
        let c = parse(with(
            json!({"enable_email_notifs": true, "notif_from": "a@example.com"}),
        ))
        .unwrap();
        assert!(c.unhonoured(true).is_empty());
    }

    #[test]
    fn numbers() {
        let c = parse(with(
            json!({"limit_remote_rooms_complexity": 1.5, "rc_joins_remote_burst_count": 3,
            "rc_joins_remote_per_second": 0.5}),
        ))
        .unwrap();
        assert_eq!(c.limit_remote_rooms_complexity, Some(1.5));
        assert!(err(with(json!({"limit_remote_rooms_complexity": -1.0})))
            .contains("limit_remote_rooms_complexity"));
        assert!(err(with(json!({"rc_joins_remote_burst_count": -1})))
            .contains("rc_joins_remote_burst_count"));
        assert!(err(with(json!({"rc_joins_remote_per_second": -0.1})))
            .contains("rc_joins_remote_per_second"));
        assert!(err(with(json!({"rc_joins_remote_burst_count": "x"})))
            .contains("expected a whole number"));
    }

    #[test]
    fn several_problems_are_all_reported() {
        let e = err(json!({"ip_range_whitelist": "x", "report_stats": "yes"}));
        assert!(
            e.contains("server_name")
                && e.contains("ip_range_whitelist")
                && e.contains("report_stats"),
            "{e}"
        );
    }
}
