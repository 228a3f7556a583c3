//! The traefik-k8s stand-in: a played application with an `ingress` endpoint
//! (interface `ingress`, v2, provides) backed by a real NGINX ([`super::proxy`]).
//!
//! - Deploy: NGINX on the host's 127.0.0.1, on a free port, with no route.
//! - React (any event reaching its unit), for every live `ingress` relation, as
//!   traefik-k8s does with the ingress v2 library: read the requirer's application
//!   databag (`model`, `name`, `port`, `strip-prefix`, `scheme`; JSON per key) and every
//!   joined unit's `host`/`ip`; when all of it is valid, route and publish
//!   `ingress = {"url": ...}` in its application databag; when not, publish nothing
//!   (and withdraw an earlier URL). The requirer's units get `relation-changed`.
//! - Routing modes, set with `juju config traefik-k8s routing_mode=path|subdomain
//!   external_hostname=HOST`: `path` (the default) gives
//!   `http://<external_hostname>:<port>/<model>-<app>`, `subdomain` gives
//!   `http://<model>-<app>.<external_hostname>:<port>/`. The default external host is
//!   `127.0.0.1` (real Traefik uses its load balancer's address and port 80).
//! - Backends: each unit's `ip` (Traefik uses `host`, the pod's cluster DNS name, which
//!   does not resolve on a development machine). Pods must use the host network.
//! - Remove: NGINX stops and its directory goes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::proxy::{safe_token, Proxy};
use super::ProviderState;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "traefik-k8s";
pub const ENDPOINT: &str = "ingress";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub proxy: Proxy,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

pub const OPTIONS: &[&str] = &["external_hostname", "routing_mode"];

impl State {
    fn external_host(&self) -> String {
        self.config
            .get("external_hostname")
            .filter(|h| !h.is_empty())
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    fn subdomain(&self) -> bool {
        self.config.get("routing_mode").map(String::as_str) == Some("subdomain")
    }
}

/// What one requirer asked for, validated as the v2 library validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub model: String,
    pub name: String,
    pub port: u16,
    pub strip_prefix: bool,
    pub backends: Vec<String>,
}

fn json_field<T: serde::de::DeserializeOwned>(
    bag: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>, String> {
    match bag.get(key) {
        None => Ok(None),
        Some(raw) => serde_json::from_str(raw)
            .map(Some)
            .map_err(|e| format!("{key} {raw:?} is not valid JSON of its type: {e}")),
    }
}

/// The requirer's request (pure): its application databag and its units' databags.
pub fn parse_request(
    app: &BTreeMap<String, String>,
    units: &[BTreeMap<String, String>],
) -> Result<Request, String> {
    let model: String = json_field(app, "model")?.ok_or("no model")?;
    let name: String = json_field(app, "name")?.ok_or("no name")?;
    let port: u16 = json_field(app, "port")?.ok_or("no port")?;
    let strip_prefix: bool = json_field(app, "strip-prefix")?.unwrap_or(false);
    let scheme: String = json_field(app, "scheme")?.unwrap_or_else(|| "http".into());
    if scheme != "http" {
        return Err(format!(
            "scheme {scheme:?}: the stand-in proxies plain http only"
        ));
    }
    if !safe_token(&model) || !safe_token(&name) || port == 0 {
        return Err(format!("bad model/name/port {model:?} {name:?} {port}"));
    }
    if units.is_empty() {
        return Err("no unit has joined".into());
    }
    let mut backends = vec![];
    for bag in units {
        let host: String = json_field(bag, "host")?.ok_or("a unit has no host")?;
        let ip: Option<String> = json_field(bag, "ip")?;
        let addr = ip.unwrap_or(host);
        if !safe_token(&addr) {
            return Err(format!("bad unit address {addr:?}"));
        }
        backends.push(addr);
    }
    Ok(Request {
        model,
        name,
        port,
        strip_prefix,
        backends,
    })
}

/// The URL Traefik gives a request (pure).
pub fn url(st: &State, req: &Request) -> String {
    let prefix = format!("{}-{}", req.model, req.name);
    let port = st.proxy.port;
    if st.subdomain() {
        format!("http://{prefix}.{}:{port}/", st.external_host())
    } else {
        format!("http://{}:{port}/{prefix}", st.external_host())
    }
}

fn upstream(name: &str, req: &Request) -> String {
    let servers: String = req
        .backends
        .iter()
        .map(|b| format!("    server {b}:{};\n", req.port))
        .collect();
    format!("  upstream {name} {{\n{servers}  }}\n")
}

/// The NGINX configuration for these requests (pure): path routes in the default
/// server, subdomain routes as their own servers.
pub fn render(st: &State, reqs: &[Request]) -> String {
    let mut locations = String::new();
    let mut servers = String::new();
    for (i, req) in reqs.iter().enumerate() {
        let up = format!("route{i}");
        servers.push_str(&upstream(&up, req));
        let prefix = format!("{}-{}", req.model, req.name);
        if st.subdomain() {
            servers.push_str(&format!(
                "  server {{\n    listen 127.0.0.1:{};\n    server_name {prefix}.{};\n    client_max_body_size 0;\n    location / {{ proxy_pass http://{up}; }}\n  }}\n",
                st.proxy.port,
                st.external_host()
            ));
        } else {
            let pass = if req.strip_prefix {
                format!("http://{up}/")
            } else {
                format!("http://{up}/{prefix}/")
            };
            locations.push_str(&format!(
                "    location /{prefix}/ {{ client_max_body_size 0; proxy_pass {pass}; }}\n"
            ));
        }
    }
    st.proxy.render(&locations, &servers)
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

fn proxy_dir(c: &Controller, app: &str) -> std::path::PathBuf {
    let uuid: String = c.model.uuid.chars().take(8).collect();
    std::env::temp_dir().join(format!("jlproxy-{uuid}-{app}"))
}

/// `juju deploy traefik-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    let proxy = Proxy::start(&proxy_dir(c, app))?;
    let st = State {
        proxy: proxy.clone(),
        config: BTreeMap::new(),
    };
    super::save_data(c, app, CHARM, &st)?;
    let endpoints = [(ENDPOINT.into(), "ingress".into(), Role::Provides)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        proxy.stop();
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(
        c,
        app,
        "active",
        &format!("Serving at http://127.0.0.1:{}", proxy.port),
    )
}

/// Routes every complete request and publishes (or withdraws) its URL.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let mut routes = vec![];
    let mut answers = vec![];
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let app_bag = rel.app_data.get(&remote).cloned().unwrap_or_default();
        let units: Vec<_> = rel
            .joined
            .get(&remote)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|u| rel.unit_data.get(u).cloned().unwrap_or_default())
            .collect();
        let answer = match parse_request(&app_bag, &units) {
            Ok(req) => {
                let u = url(&st, &req);
                routes.push(req);
                Some(serde_json::json!({ "url": u }).to_string())
            }
            Err(why) => {
                if !app_bag.is_empty() {
                    eprintln!("jujulocal: {CHARM} stand-in: {remote} is not routed yet: {why}");
                }
                None
            }
        };
        answers.push((rel.id, remote, answer));
    }
    st.proxy.apply(&render(&st, &routes))?;
    for (id, remote, answer) in answers {
        let mut bag = BTreeMap::new();
        bag.insert("ingress".to_string(), answer.unwrap_or_default());
        super::answer(c, app, id, &remote, &bag)?;
    }
    c.save()
}

/// `juju config traefik-k8s key=value ...`.
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
        if k == "routing_mode" && !["path", "subdomain", ""].contains(&v.as_str()) {
            return Err(Error::Usage(format!(
                "routing_mode {v:?}: path or subdomain"
            )));
        }
        if k == "external_hostname" && !v.is_empty() && !safe_token(v) {
            return Err(Error::Usage(format!(
                "external_hostname {v:?} is not a host name"
            )));
        }
        st.config.insert(k.clone(), v.clone());
    }
    Ok(ProviderState {
        charm: CHARM.into(),
        data: serde_json::to_value(&st).unwrap_or_default(),
    })
}

/// Stops NGINX.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    state(pst)?.proxy.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_are_validated_like_the_v2_library() {
        let app = bag(&[
            ("model", "\"m\""),
            ("name", "\"synapse\""),
            ("port", "8080"),
            ("strip-prefix", "true"),
        ]);
        let unit = bag(&[("host", "\"synapse-0.x\""), ("ip", "\"127.0.0.1\"")]);
        let req = parse_request(&app, std::slice::from_ref(&unit)).unwrap();
        assert_eq!(req.backends, vec!["127.0.0.1"]);
        assert!(req.strip_prefix);
        assert!(parse_request(&app, &[]).is_err(), "no unit");
        assert!(
            parse_request(&app, &[unit.clone(), bag(&[])]).is_err(),
            "every unit needs a host"
        );
        assert!(
            parse_request(&bag(&[("model", "m")]), std::slice::from_ref(&unit)).is_err(),
            "JSON per key"
        );
        let https = {
            let mut a = app.clone();
            a.insert("scheme".into(), "\"https\"".into());
            a
        };
        assert!(parse_request(&https, &[unit]).is_err());
    }

    #[test]
    fn urls_follow_the_routing_mode() {
        let mut st = State {
            proxy: Proxy {
                dir: "/tmp/x".into(),
                port: 4000,
            },
            config: BTreeMap::new(),
        };
        let req = Request {
            model: "m".into(),
            name: "synapse".into(),
            port: 8080,
            strip_prefix: true,
            backends: vec!["127.0.0.1".into()],
        };
        assert_eq!(url(&st, &req), "http://127.0.0.1:4000/m-synapse");
        let conf = render(&st, std::slice::from_ref(&req));
        assert!(
            conf.contains(
                "location /m-synapse/ { client_max_body_size 0; proxy_pass http://route0/; }"
            ),
            "{conf}"
        );
        st.config.insert("routing_mode".into(), "subdomain".into());
        st.config
            .insert("external_hostname".into(), "ingress.test".into());
        assert_eq!(url(&st, &req), "http://m-synapse.ingress.test:4000/");
        assert!(render(&st, &[req]).contains("server_name m-synapse.ingress.test;"));
    }
}
