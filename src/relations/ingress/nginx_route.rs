//! The `nginx-route` relation (requirer side, as nginx-ingress-integrator's
//! `nginx_route` library speaks it): the route the leader asks for (pure).
//!
//! Values are plain strings. The provider writes nothing back. The library deletes any
//! key that is not in the requirer's current configuration, so the charm owns the whole
//! key set and writes all of it each time.

use crate::juju::Databag;
use crate::relations::Publish;
use crate::synapse::config::SynapseConfig;
use crate::synapse::homeserver;

pub const ENDPOINT: &str = "nginx-route";
pub const PORT: u16 = 8080;
/// Synapse's `max_upload_size` (`50M` in `homeserver.yaml`) and the pod NGINX's
/// `client_max_body_size`, in megabytes: an upload Synapse accepts must get through.
pub const MAX_BODY_SIZE_MB: u32 = 50;

/// Every key the library knows: the charm owns them all (a key it no longer sets is
/// deleted).
pub const ALL_KEYS: &[&str] = &[
    "service-hostname",
    "service-name",
    "service-port",
    "service-namespace",
    "additional-hostnames",
    "limit-rps",
    "limit-whitelist",
    "max-body-size",
    "owasp-modsecurity-crs",
    "owasp-modsecurity-custom-rules",
    "path-routes",
    "retry-errors",
    "rewrite-enabled",
    "rewrite-target",
    "session-cookie-max-age",
    "tls-secret-name",
    "whitelist-source-range",
    "proxy-read-timeout",
];

/// The route the leader publishes in its application databag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service_hostname: String,
    /// The Kubernetes Service in front of the pods: the application's name.
    pub service_name: String,
    pub service_port: u16,
    pub service_namespace: String,
    pub max_body_size_mb: u32,
}

/// The host clients use: the host of `public_baseurl` (the option, else
/// `https://<server_name>`), without a port. The reference charm sends the
/// application's name instead, which no client can resolve.
pub fn public_host(config: &SynapseConfig) -> String {
    let base = homeserver::public_baseurl(config, None);
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(&base);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    authority.split(':').next().unwrap_or(authority).to_string()
}

pub fn route(config: &SynapseConfig, app: &str, model: &str) -> Route {
    Route {
        service_hostname: public_host(config),
        service_name: app.into(),
        service_port: PORT,
        service_namespace: model.into(),
        max_body_size_mb: MAX_BODY_SIZE_MB,
    }
}

impl Publish for Route {
    const KEYS: &'static [&'static str] = ALL_KEYS;

    fn to_databag(&self) -> Databag {
        Databag::from([
            (
                "service-hostname".to_string(),
                self.service_hostname.clone(),
            ),
            ("service-name".to_string(), self.service_name.clone()),
            ("service-port".to_string(), self.service_port.to_string()),
            (
                "service-namespace".to_string(),
                self.service_namespace.clone(),
            ),
            (
                "max-body-size".to_string(),
                self.max_body_size_mb.to_string(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: serde_json::Value) -> SynapseConfig {
        SynapseConfig::from_juju(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn hostname_follows_public_baseurl_then_server_name() {
        let c = config(json!({"server_name": "example.com"}));
        assert_eq!(public_host(&c), "example.com");
        let c = config(json!({"server_name": "example.com:8448"}));
        assert_eq!(public_host(&c), "example.com", "no port in a host name");
        let c = config(json!({
            "server_name": "example.com",
            "public_baseurl": "https://matrix.example.com:8443/"
        }));
        assert_eq!(public_host(&c), "matrix.example.com");
    }

    #[test]
    fn route_is_the_full_plain_key_set() {
        let c = config(json!({"server_name": "example.com"}));
        let bag = route(&c, "synapse", "prod").to_databag();
        assert_eq!(
            bag,
            Databag::from([
                ("service-hostname".into(), "example.com".into()),
                ("service-name".into(), "synapse".into()),
                ("service-port".into(), "8080".into()),
                ("service-namespace".into(), "prod".into()),
                ("max-body-size".into(), "50".into()),
            ])
        );
        assert!(bag.keys().all(|k| ALL_KEYS.contains(&k.as_str())));
    }
}
