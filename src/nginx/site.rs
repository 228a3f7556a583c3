//! What the charm renders for NGINX (pure): the two well-known answers and the admin
//! API's location. NGINX serves the well-known files as static files (a new content
//! is served at once) and includes the admin file in its server block (a change needs
//! a reload, never a restart).
//!
//! Delegation: `m.server` names the host and port of `public_baseurl` (443 unless the
//! URL has a port: federation is always HTTPS, and the entry point's TLS is in front
//! of us); `m.homeserver.base_url` is `public_baseurl` itself.

use std::fmt;
use std::net::IpAddr;

use serde_json::json;

use crate::util::hash::fnv1a_hex;

/// Where the charm pushes NGINX's rendered files: `/var/lib/nginx/charm/`, writable in
/// the rock and in the local view; nginx.conf refers to these paths.
pub const WELL_KNOWN_SERVER_PATH: &str = "/var/lib/nginx/charm/well-known-server.json";
pub const WELL_KNOWN_CLIENT_PATH: &str = "/var/lib/nginx/charm/well-known-client.json";
/// Included in the server block by `include /var/lib/nginx/charm/*.conf`.
pub const ADMIN_API_PATH: &str = "/var/lib/nginx/charm/admin-api.conf";
/// Included in nginx.conf's `map $uri $synapse_upstream` ([`super::routes`]).
pub const ROUTES_PATH: &str = "/var/lib/nginx/charm/routes.map";
/// Included at NGINX's http level: the upstream of Synapse main on worker units.
pub const UPSTREAMS_PATH: &str = "/var/lib/nginx/charm/upstreams.http";

/// The config option that opens the admin API.
pub const ADMIN_OPTION: &str = "admin_api_allowed_cidrs";

/// An IPv4 or IPv6 network: address with no host bits set, and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Strict: `address/prefix`, the prefix within the family's width, no host bits
    /// set (NGINX would silently widen `10.0.0.1/8` to `10.0.0.0/8`).
    pub fn parse(item: &str) -> Result<Self, String> {
        let Some((addr, prefix)) = item.split_once('/') else {
            return Err(format!(
                "{item:?} is not a CIDR: write address/prefix (e.g. {item}/32 for one address)"
            ));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{item:?} is not a CIDR: {addr:?} is not an IP address"))?;
        let width: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.parse::<u8>() {
            Ok(p) if p <= width && prefix.chars().all(|c| c.is_ascii_digit()) => p,
            _ => {
                return Err(format!(
                    "{item:?} is not a CIDR: the prefix must be 0 to {width}"
                ))
            }
        };
        let network = mask(addr, prefix);
        if network != addr {
            return Err(format!(
                "{item:?} has bits set after the prefix; the network is {network}/{prefix}"
            ));
        }
        Ok(Self { addr, prefix })
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The config check for `admin_api_allowed_cidrs` entries (canonical form).
pub fn check_cidr(item: &str) -> Result<String, String> {
    Cidr::parse(item).map(|c| c.to_string())
}

/// Everything NGINX serves from the charm's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `m.server` of `/.well-known/matrix/server`: `host:port`.
    pub delegated_server: String,
    /// `m.homeserver.base_url` of `/.well-known/matrix/client`, without trailing slash.
    pub client_base_url: String,
    /// Empty: the admin API stays closed.
    pub admin_cidrs: Vec<Cidr>,
    /// `host:port` of Synapse main when this unit runs a worker ([`super::routes`]).
    pub main: Option<String>,
}

impl Site {
    /// From the public base URL (`homeserver::public_baseurl`, already validated) and
    /// the validated admin networks.
    pub fn new(public_baseurl: &str, admin_cidrs: &[String]) -> Self {
        Self {
            delegated_server: delegated_server(public_baseurl),
            client_base_url: public_baseurl.trim_end_matches('/').to_string(),
            admin_cidrs: admin_cidrs
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            main: None,
        }
    }

    /// On a worker unit: where Synapse main answers.
    pub fn with_main(mut self, main: Option<String>) -> Self {
        self.main = main;
        self
    }

    /// `(path, content)` of each file, in a fixed order.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        vec![
            (WELL_KNOWN_SERVER_PATH, self.server_well_known()),
            (WELL_KNOWN_CLIENT_PATH, self.client_well_known()),
            (ADMIN_API_PATH, self.admin_api()),
            (ROUTES_PATH, super::routes::routes_map(self.main.as_deref())),
            (
                UPSTREAMS_PATH,
                super::routes::upstreams(self.main.as_deref()),
            ),
        ]
    }

    /// A hash of every file (remembered to skip the pulls in steady state).
    pub fn hash(&self) -> String {
        let files = self.files();
        fnv1a_hex(files.iter().flat_map(|(p, c)| [p.as_bytes(), c.as_bytes()]))
    }

    pub fn server_well_known(&self) -> String {
        format!("{}\n", json!({"m.server": self.delegated_server}))
    }

    pub fn client_well_known(&self) -> String {
        format!(
            "{}\n",
            json!({"m.homeserver": {"base_url": self.client_base_url}})
        )
    }

    /// The admin API's location: a comment only while closed (NGINX's `/_synapse/`
    /// location answers 404), else proxied to Synapse for the allowed networks and
    /// refused with 403 for everyone else. The addresses are re-printed from parsed
    /// values, so nothing from the option reaches NGINX's syntax verbatim.
    pub fn admin_api(&self) -> String {
        let mut out = String::from(
            "# Rendered by the Synapse charm from the admin_api_allowed_cidrs option.\n",
        );
        if self.admin_cidrs.is_empty() {
            out.push_str("# Unset: the admin API stays closed (404 from location /_synapse/).\n");
            return out;
        }
        out.push_str("location /_synapse/admin/ {\n");
        for c in &self.admin_cidrs {
            out.push_str(&format!("    allow {c};\n"));
        }
        out.push_str("    deny all;\n");
        out.push_str("    include /etc/nginx/snippets/synapse-proxy.conf;\n}\n");
        out
    }
}

/// `host:port` of a validated http(s) URL; the port defaults to 443 whatever the
/// scheme, because federation only speaks HTTPS.
pub fn delegated_server(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = if let Some(end) = authority.find(']') {
        let (h, p) = authority.split_at(end + 1);
        (h, p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = port.filter(|p| !p.is_empty()).unwrap_or("443");
    format!("{}:{port}", host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(url: &str, cidrs: &[&str]) -> Site {
        Site::new(
            url,
            &cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn server_name_is_the_public_host() {
        let s = site("https://matrix.example.com/", &[]);
        assert_eq!(
            s.server_well_known(),
            "{\"m.server\":\"matrix.example.com:443\"}\n"
        );
        assert_eq!(
            s.client_well_known(),
            "{\"m.homeserver\":{\"base_url\":\"https://matrix.example.com\"}}\n"
        );
    }

    #[test]
    fn a_base_domain_delegates_to_the_public_host() {
        // server_name example.com, public_baseurl on the matrix. host: the well-known
        // answers (served for example.com) name the matrix. host.
        let s = site("https://matrix.example.com", &[]);
        assert_eq!(s.delegated_server, "matrix.example.com:443");
        assert_eq!(s.client_base_url, "https://matrix.example.com");
    }

    #[test]
    fn a_non_default_port_is_kept() {
        let s = site("https://Matrix.Example.com:8448/", &[]);
        assert_eq!(s.delegated_server, "matrix.example.com:8448");
        assert_eq!(s.client_base_url, "https://Matrix.Example.com:8448");
        assert_eq!(delegated_server("http://[fd00::1]:8080/"), "[fd00::1]:8080");
        assert_eq!(delegated_server("https://[fd00::1]"), "[fd00::1]:443");
        assert_eq!(
            delegated_server("http://chat.example.com"),
            "chat.example.com:443"
        );
        assert_eq!(
            delegated_server("https://example.com/model-synapse"),
            "example.com:443"
        );
    }

    #[test]
    fn the_admin_api_is_closed_by_default() {
        let s = site("https://m.example.com/", &[]);
        assert!(!s.admin_api().contains('{'), "{}", s.admin_api());
    }

    #[test]
    fn the_admin_api_opens_to_the_allowed_networks_only() {
        let s = site("https://m.example.com/", &["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(
            s.admin_api(),
            "# Rendered by the Synapse charm from the admin_api_allowed_cidrs option.\n\
             location /_synapse/admin/ {\n    allow 10.0.0.0/8;\n    allow fd00::/8;\n    deny all;\n    \
             include /etc/nginx/snippets/synapse-proxy.conf;\n}\n"
        );
        assert_ne!(s.hash(), site("https://m.example.com/", &[]).hash());
    }

    #[test]
    fn cidrs_are_parsed_strictly() {
        assert_eq!(check_cidr("10.1.0.0/16").as_deref(), Ok("10.1.0.0/16"));
        assert_eq!(check_cidr("0.0.0.0/0").as_deref(), Ok("0.0.0.0/0"));
        assert_eq!(check_cidr("FD00:0::/8").as_deref(), Ok("fd00::/8"));
        assert_eq!(
            check_cidr("192.168.1.7/32").as_deref(),
            Ok("192.168.1.7/32")
        );
        for (bad, why) in [
            ("10.0.0.1", "write address/prefix"),
            ("10.0.0.0/33", "the prefix must be 0 to 32"),
            ("10.0.0.0/+8", "the prefix must be 0 to 32"),
            ("fd00::/129", "the prefix must be 0 to 128"),
            ("10.0.0.1/8", "the network is 10.0.0.0/8"),
            ("example.com/8", "is not an IP address"),
            ("10.0.0.0/8;", "the prefix"),
            ("10.0.0.0/8 deny", "the prefix"),
            ("010.0.0.0/8", "is not an IP address"),
        ] {
            let e = check_cidr(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}

/// The reference files in `tests/nginx_site/<setup>/` (reviewed by hand, and served by
/// the real NGINX in `tests/nginx_config.sh`) are exactly what the charm renders.
#[cfg(test)]
mod reference {
    use serde_json::{json, Value};

    use super::Site;
    use crate::synapse::config::SynapseConfig;
    use crate::synapse::homeserver::public_baseurl;

    fn render(config: Value) -> Site {
        let Value::Object(raw) = config else {
            panic!("an object")
        };
        let c = SynapseConfig::from_juju(&raw).unwrap_or_else(|e| panic!("{e}"));
        Site::new(&public_baseurl(&c, None), &c.admin_api_allowed_cidrs)
    }

    fn same(setup: &str, site: &Site) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/nginx_site")
            .join(setup);
        for (path, content) in site.files() {
            let name = path.rsplit('/').next().unwrap_or(path);
            let want = std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("{setup}/{name}: {e}"));
            assert_eq!(content, want, "{setup}/{name}");
        }
    }

    #[test]
    fn server_name_equal_to_the_public_host() {
        same(
            "same-host",
            &render(json!({"server_name": "matrix.example.test"})),
        );
    }

    #[test]
    fn base_domain_delegating_to_a_matrix_host() {
        same(
            "delegated",
            &render(json!({
                "server_name": "example.test",
                "public_baseurl": "https://matrix.example.test",
                "admin_api_allowed_cidrs": "127.0.0.1/32, ::1/128",
            })),
        );
    }

    #[test]
    fn non_default_port() {
        same(
            "port",
            &render(json!({
                "server_name": "example.test",
                "public_baseurl": "https://matrix.example.test:8448/",
                "admin_api_allowed_cidrs": "10.0.0.0/8",
            })),
        );
    }
}
