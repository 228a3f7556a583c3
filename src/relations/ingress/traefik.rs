//! The `ingress` relation (requirer side of ingress v2, as traefik-k8s speaks it):
//! what the charm publishes and the URL the provider answers with (pure).
//!
//! Every value is JSON-encoded, one key at a time (the v2 library's databag models).

use crate::juju::Databag;
use crate::relations::Publish;

pub const ENDPOINT: &str = "ingress";
/// NGINX in the `synapse-nginx` container: the one entry point of the pod.
pub const PORT: u16 = 8080;
/// The provider's key in its application databag.
pub const URL_KEY: &str = "ingress";

/// The leader's request, in the requirer application databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequest {
    pub model: String,
    pub name: String,
    pub port: u16,
    /// Traefik strips the `/<model>-<app>` prefix before forwarding, so that NGINX sees
    /// `/_matrix/...` whatever the routing mode.
    pub strip_prefix: bool,
    pub redirect_https: bool,
    pub scheme: &'static str,
}

pub fn request(model: &str, app: &str) -> AppRequest {
    AppRequest {
        model: model.into(),
        name: app.into(),
        port: PORT,
        strip_prefix: true,
        redirect_https: false,
        scheme: "http",
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl Publish for AppRequest {
    const KEYS: &'static [&'static str] = &[
        "model",
        "name",
        "port",
        "strip-prefix",
        "redirect-https",
        "scheme",
    ];

    fn to_databag(&self) -> Databag {
        Databag::from([
            ("model".to_string(), json_str(&self.model)),
            ("name".to_string(), json_str(&self.name)),
            ("port".to_string(), self.port.to_string()),
            ("strip-prefix".to_string(), self.strip_prefix.to_string()),
            (
                "redirect-https".to_string(),
                self.redirect_https.to_string(),
            ),
            ("scheme".to_string(), json_str(self.scheme)),
        ])
    }
}

/// Where the provider reaches this unit, in the requirer unit databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitAddress {
    pub host: String,
    pub ip: Option<String>,
}

/// The unit's stable DNS name on Kubernetes: `<app>-<n>.<app>-endpoints.<model>.svc.cluster.local`
/// (what `socket.getfqdn()` answers in the charm container).
pub fn unit_fqdn(unit: &str, app: &str, model: &str) -> String {
    format!(
        "{}.{app}-endpoints.{model}.svc.cluster.local",
        unit.replace('/', "-")
    )
}

impl Publish for UnitAddress {
    const KEYS: &'static [&'static str] = &["host", "ip"];

    fn to_databag(&self) -> Databag {
        let mut bag = Databag::from([("host".to_string(), json_str(&self.host))]);
        if let Some(ip) = &self.ip {
            bag.insert("ip".to_string(), json_str(ip));
        }
        bag
    }
}

/// The URL the provider gives this application, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressUrl {
    /// Without a trailing slash.
    pub url: String,
    /// The path after the host (`/model-synapse`), empty when the URL is the root of
    /// its host.
    pub path: String,
}

impl IngressUrl {
    /// Matrix federation needs `/_matrix` at the root of the host.
    pub fn path_prefixed(&self) -> bool {
        !self.path.is_empty()
    }
}

/// What the provider has sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provided {
    /// No URL yet (the provider has not seen every unit's address, or is starting).
    Pending,
    Invalid(String),
    Ready(IngressUrl),
}

/// Reads the provider's `ingress` value: `{"url": "http(s)://host[:port][/path]"}`.
pub fn provided(raw: Option<&str>) -> Provided {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Provided::Pending;
    };
    let invalid = |why: String| Provided::Invalid(crate::util::bounded(&why));
    let value: serde_json::Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => return invalid(format!("{URL_KEY} {raw:?} is not JSON: {e}")),
    };
    let Some(url) = value.get("url").and_then(|u| u.as_str()) else {
        return invalid(format!("{URL_KEY} {raw:?} has no \"url\" string"));
    };
    if let Err(why) = crate::synapse::config::check_base_url(url) {
        return invalid(format!("url {why}"));
    }
    let url = url.trim_end_matches('/').to_string();
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let path = after_scheme
        .find('/')
        .map(|i| after_scheme[i..].to_string())
        .unwrap_or_default();
    Provided::Ready(IngressUrl { url, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_json_per_key_as_the_v2_library_writes_it() {
        let bag = request("prod", "synapse").to_databag();
        assert_eq!(bag["model"], "\"prod\"");
        assert_eq!(bag["name"], "\"synapse\"");
        assert_eq!(bag["port"], "8080");
        assert_eq!(bag["strip-prefix"], "true");
        assert_eq!(bag["redirect-https"], "false");
        assert_eq!(bag["scheme"], "\"http\"");
        let mut keys = AppRequest::KEYS.to_vec();
        keys.sort();
        assert_eq!(bag.keys().map(String::as_str).collect::<Vec<_>>(), keys);
    }

    #[test]
    fn unit_address_is_the_pod_fqdn_and_ip() {
        let host = unit_fqdn("synapse/1", "synapse", "prod");
        assert_eq!(host, "synapse-1.synapse-endpoints.prod.svc.cluster.local");
        let bag = UnitAddress {
            host,
            ip: Some("10.1.2.3".into()),
        }
        .to_databag();
        assert_eq!(
            bag["host"],
            "\"synapse-1.synapse-endpoints.prod.svc.cluster.local\""
        );
        assert_eq!(bag["ip"], "\"10.1.2.3\"");
    }

    #[test]
    fn provider_url_is_validated_and_split() {
        assert_eq!(provided(None), Provided::Pending);
        assert_eq!(provided(Some("")), Provided::Pending);
        assert_eq!(
            provided(Some(
                r#"{"url": "http://ingress.example.com/prod-synapse/"}"#
            )),
            Provided::Ready(IngressUrl {
                url: "http://ingress.example.com/prod-synapse".into(),
                path: "/prod-synapse".into(),
            })
        );
        let Provided::Ready(root) =
            provided(Some(r#"{"url": "https://prod-synapse.example.com:8443"}"#))
        else {
            panic!("a root URL is valid")
        };
        assert!(!root.path_prefixed());
        assert_eq!(root.url, "https://prod-synapse.example.com:8443");
        for (raw, needle) in [
            ("not json", "is not JSON"),
            (r#"{"uri": "http://x"}"#, "has no \"url\" string"),
            (r#"{"url": 3}"#, "has no \"url\" string"),
            (
                r#"{"url": "ftp://x.example"}"#,
                "is not an http:// or https:// URL",
            ),
            (r#"{"url": "http://bad host/"}"#, "spaces"),
            (
                r#"{"url": "http://x.example/?a=b"}"#,
                "must not have a query",
            ),
            (r#"{"url": "http:///p"}"#, "has no valid host"),
        ] {
            match provided(Some(raw)) {
                Provided::Invalid(m) => assert!(m.contains(needle), "{raw}: {m}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
        let huge = format!(r#"{{"url": "http://{}.example"}}"#, "x".repeat(100_000));
        let Provided::Invalid(m) = provided(Some(&huge)) else {
            panic!()
        };
        assert!(m.chars().count() <= 301);
    }
}
