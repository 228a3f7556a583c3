//! The nginx-ingress-integrator stand-in: a played application with an `nginx-route`
//! endpoint (interface `nginx-route`, provides) backed by a real NGINX
//! ([`super::proxy`]) in the role of the cluster's NGINX ingress controller.
//!
//! - Deploy: NGINX on the host's 127.0.0.1, on a free port; the unit's status says
//!   where (`Ingress IP(s): 127.0.0.1:<port>`).
//! - React (any event reaching its unit), for every live `nginx-route` relation, as the
//!   integrator turns the `nginx_route` requirer's application databag (plain strings)
//!   into a Kubernetes Ingress: a server for `service-hostname` (and
//!   `additional-hostnames`), `client_max_body_size` from `max-body-size` (megabytes,
//!   default 20), `path-routes` (default `/`), proxying to the Kubernetes Service
//!   `service-name` on `service-port` in `service-namespace` (default: the model). The
//!   Service is the application of that name in this model; its endpoints are its
//!   units' addresses. A route that cannot be built sets the unit `blocked` with the
//!   reason. Nothing is written back: the provider side of `nginx-route` is empty.
//! - Remove: NGINX stops and its directory goes.

use std::collections::BTreeMap;

use super::proxy::{safe_token, Proxy};
use super::ProviderState;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::model::Model;
use crate::Error;

pub const CHARM: &str = "nginx-ingress-integrator";
pub const ENDPOINT: &str = "nginx-route";
/// The integrator's default `max-body-size`, in megabytes.
pub const DEFAULT_MAX_BODY_MB: u32 = 20;

/// One route, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub hostnames: Vec<String>,
    pub paths: Vec<String>,
    pub max_body_mb: u32,
    pub backends: Vec<String>,
    pub port: u16,
}

/// The route a requirer asked for (pure), with the Service's endpoints from `model`.
pub fn parse_route(bag: &BTreeMap<String, String>, model: &Model) -> Result<Route, String> {
    let get = |k: &str| bag.get(k).filter(|v| !v.is_empty());
    let host = get("service-hostname").ok_or("no service-hostname")?;
    let service = get("service-name").ok_or("no service-name")?;
    let port: u16 = get("service-port")
        .ok_or("no service-port")?
        .parse()
        .map_err(|_| "service-port is not a port number")?;
    let namespace = get("service-namespace")
        .cloned()
        .unwrap_or(model.name.clone());
    if namespace != model.name {
        return Err(format!(
            "service-namespace {namespace:?}: no such namespace (the model is {:?})",
            model.name
        ));
    }
    let app = model
        .applications
        .get(service)
        .ok_or_else(|| format!("service-name {service:?}: no such Kubernetes Service"))?;
    let backends: Vec<String> = app
        .units
        .values()
        .map(|u| {
            if u.address.is_empty() {
                "127.0.0.1".to_string()
            } else {
                u.address.clone()
            }
        })
        .collect();
    if backends.is_empty() {
        return Err(format!("service {service:?} has no endpoints"));
    }
    let max_body_mb = match get("max-body-size") {
        None => DEFAULT_MAX_BODY_MB,
        Some(v) => v
            .parse()
            .map_err(|_| format!("max-body-size {v:?} is not a number of megabytes"))?,
    };
    let mut hostnames = vec![host.clone()];
    if let Some(extra) = get("additional-hostnames") {
        hostnames.extend(extra.split(',').map(|h| h.trim().to_string()));
    }
    let paths: Vec<String> = get("path-routes")
        .map(|p| p.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_else(|| vec!["/".into()]);
    for t in hostnames.iter().chain(&paths).chain(&backends) {
        if !safe_token(t) {
            return Err(format!("{t:?} cannot be routed"));
        }
    }
    Ok(Route {
        hostnames,
        paths,
        max_body_mb,
        backends,
        port,
    })
}

/// The NGINX configuration for these routes (pure).
pub fn render(proxy: &Proxy, routes: &[Route]) -> String {
    let mut servers = String::new();
    for (i, r) in routes.iter().enumerate() {
        let up = format!("service{i}");
        servers.push_str(&format!("  upstream {up} {{\n"));
        for b in &r.backends {
            servers.push_str(&format!("    server {b}:{};\n", r.port));
        }
        servers.push_str("  }\n");
        servers.push_str(&format!(
            "  server {{\n    listen 127.0.0.1:{};\n    server_name {};\n    client_max_body_size {}m;\n",
            proxy.port,
            r.hostnames.join(" "),
            r.max_body_mb
        ));
        for p in &r.paths {
            servers.push_str(&format!("    location {p} {{ proxy_pass http://{up}; }}\n"));
        }
        servers.push_str("  }\n");
    }
    proxy.render("", &servers)
}

fn proxy(st: &ProviderState) -> Result<Proxy, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

/// `juju deploy nginx-ingress-integrator [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let p = Proxy::start(&std::env::temp_dir().join(format!("jlproxy-{uuid}-{app}")))?;
    super::save_data(c, app, CHARM, &p)?;
    let endpoints = [(ENDPOINT.into(), "nginx-route".into(), Role::Provides)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        p.stop();
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "active", &ready(&p))
}

fn ready(p: &Proxy) -> String {
    format!("Ingress IP(s): 127.0.0.1:{}", p.port)
}

/// Builds every route it can; the unit says which one it cannot.
pub fn react(c: &mut Controller, app: &str, st: &ProviderState) -> Result<(), Error> {
    let p = proxy(st)?;
    let mut routes = vec![];
    let mut problems = vec![];
    for rel in super::live_relations(c, app, ENDPOINT) {
        let Some(remote) = rel.remote_app(app) else {
            continue;
        };
        let bag = rel.app_data.get(remote).cloned().unwrap_or_default();
        if bag.is_empty() {
            continue;
        }
        match parse_route(&bag, &c.model) {
            Ok(r) => routes.push(r),
            Err(why) => problems.push(format!("{remote}: {why}")),
        }
    }
    p.apply(&render(&p, &routes))?;
    if problems.is_empty() {
        super::set_unit_status(c, app, "active", &ready(&p))
    } else {
        super::set_unit_status(c, app, "blocked", &problems.join("; "))
    }
}

/// Stops NGINX.
pub fn remove(_c: &Controller, _app: &str, st: &ProviderState) -> Result<(), Error> {
    proxy(st)?.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Application, Unit};

    fn model() -> Model {
        let mut m = Model::new("m").unwrap();
        m.applications.insert(
            "synapse".into(),
            Application {
                charm_dir: None,
                meta: Default::default(),
                config: BTreeMap::new(),
                leader: None,
                units: [("synapse/0".to_string(), Unit::default())].into(),
                status: None,
                status_history: vec![],
                next_unit: 1,
                pods: false,
                stand_in: None,
            },
        );
        m
    }

    fn bag(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn routes_need_a_host_and_a_real_service() {
        let m = model();
        let ok = bag(&[
            ("service-hostname", "chat.test"),
            ("service-name", "synapse"),
            ("service-port", "8080"),
            ("max-body-size", "50"),
        ]);
        let r = parse_route(&ok, &m).unwrap();
        assert_eq!(
            (r.hostnames, r.backends, r.max_body_mb, r.port),
            (
                vec!["chat.test".to_string()],
                vec!["127.0.0.1".to_string()],
                50,
                8080
            )
        );
        for (k, v, needle) in [
            ("service-name", "nope", "no such Kubernetes Service"),
            ("service-namespace", "other", "no such namespace"),
            ("service-hostname", "a b", "cannot be routed"),
            ("service-port", "x", "not a port"),
            ("max-body-size", "50m", "megabytes"),
        ] {
            let mut b = ok.clone();
            b.insert(k.into(), v.into());
            let e = parse_route(&b, &m).unwrap_err();
            assert!(e.contains(needle), "{k}={v}: {e}");
        }
        let mut b = ok.clone();
        b.remove("max-body-size");
        assert_eq!(
            parse_route(&b, &m).unwrap().max_body_mb,
            DEFAULT_MAX_BODY_MB
        );
    }
}
