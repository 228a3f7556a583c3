//! `juju deploy traefik-k8s` and `juju deploy nginx-ingress-integrator` deploy
//! JujuLocal's stand-ins: played providers backed by a real NGINX. A tiny shell
//! requirer publishes what the ingress v2 and nginx_route libraries publish; the
//! stand-ins answer as those charms do and route real HTTP requests to a backend this
//! test runs on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

mod support;
use support::{shell_charm, Juju};

/// A requirer: publishes the ingress v2 request and unit address, and the nginx route,
/// pointing at `port`; reports the ingress URL it is given as its status.
fn requirer_charm(dir: &Path, port: u16) -> PathBuf {
    let dispatch = format!(
        r#"#!/bin/sh
set -e
leader=$(is-leader)
case "$JUJU_DISPATCH_PATH" in
  hooks/ingress-relation-created)
    relation-set -r "$JUJU_RELATION_ID" host='"req-0.req-endpoints.m1.svc.cluster.local"' ip='"127.0.0.1"'
    case "$leader" in [Tt]rue) relation-set -r "$JUJU_RELATION_ID" --app model='"m1"' name='"req"' port={port} strip-prefix=true ;; esac ;;
  hooks/ingress-relation-changed)
    status-set active "$(relation-get -r "$JUJU_RELATION_ID" --app ingress "$JUJU_REMOTE_APP")"
    exit 0 ;;
  hooks/nginx-route-relation-created)
    case "$leader" in [Tt]rue) relation-set -r "$JUJU_RELATION_ID" --app service-hostname=chat.test service-name=req service-port={port} service-namespace=m1 max-body-size=1 ;; esac ;;
esac
"#
    );
    shell_charm(dir, "req", "name: req\nrequires:\n  ingress:\n    interface: ingress\n    limit: 1\n  nginx-route:\n    interface: nginx-route\n    limit: 1\n", &dispatch)
}

/// A backend answering every request with its method, path and Host header.
fn backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            let host = head
                .lines()
                .find_map(|l| l.strip_prefix("Host: "))
                .unwrap_or("")
                .to_string();
            let body = format!("{line} host={host}");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// One HTTP/1.1 request to 127.0.0.1:port: (status code, body).
fn http(port: u16, method: &str, path: &str, host: &str, body: usize) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    // NGINX answers 413 as soon as it sees the length: the body may be cut short.
    let _ = s.write_all(&vec![b'x'; body]);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, text)
}

fn proxy_port(status_message: &str) -> u16 {
    status_message
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn have_nginx() -> bool {
    Path::new("/usr/sbin/nginx").is_file() || std::env::var_os("JUJULOCAL_NGINX").is_some()
}

#[test]
fn traefik_k8s_stand_in_routes_by_path_and_subdomain_and_answers_with_the_url() {
    if !have_nginx() {
        eprintln!("skipped: no nginx");
        return;
    }
    let j = Juju::new("jujuing");
    let backend = backend();
    j.ok(&["add-model", "m1"]);
    let charm = requirer_charm(j.home(), backend);
    j.ok(&["deploy", &charm.display().to_string(), "req"]);
    j.ok(&[
        "deploy",
        "traefik-k8s",
        "--trust",
        "--channel",
        "latest/stable",
    ]);
    let (_, serving) = j.status("traefik-k8s/0");
    let port = proxy_port(&serving);
    j.ok(&["integrate", "req:ingress", "traefik-k8s:ingress"]);

    let path_url = format!("http://127.0.0.1:{port}/m1-req");
    let answer = j
        .app_databag("traefik-k8s")
        .get("ingress")
        .cloned()
        .expect("the stand-in answered");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()["url"],
        path_url.as_str()
    );
    assert_eq!(
        j.status("req/0").1,
        answer,
        "the requirer got relation-changed"
    );
    // strip-prefix: the backend sees the path without /m1-req.
    let (code, body) = http(port, "GET", "/m1-req/_matrix/x", "127.0.0.1", 0);
    assert_eq!(code, 200);
    assert!(body.starts_with("GET /_matrix/x HTTP/1.1"), "{body}");
    assert_eq!(http(port, "GET", "/other/", "127.0.0.1", 0).0, 404);

    j.ok(&[
        "config",
        "traefik-k8s",
        "routing_mode=subdomain",
        "external_hostname=ingress.test",
    ]);
    let sub = format!("http://m1-req.ingress.test:{port}/");
    assert!(j
        .app_databag("traefik-k8s")
        .get("ingress")
        .cloned()
        .unwrap()
        .contains(&sub));
    assert!(j.status("req/0").1.contains(&sub), "told again");
    let (code, body) = http(
        port,
        "GET",
        "/_matrix/key/v2/server",
        "m1-req.ingress.test",
        0,
    );
    assert_eq!(code, 200);
    assert!(
        body.starts_with("GET /_matrix/key/v2/server ")
            && body.contains("host=m1-req.ingress.test"),
        "{body}"
    );
    assert_eq!(http(port, "GET", "/", "other.ingress.test", 0).0, 404);
    assert!(
        j.cmd(&["config", "traefik-k8s", "routing_mode=nope"])
            .status
            .code()
            != Some(0)
    );

    j.ok(&["remove-relation", "req:ingress", "traefik-k8s:ingress"]);
    assert_eq!(
        http(port, "GET", "/", "m1-req.ingress.test", 0).0,
        404,
        "route gone"
    );
    let dir = j.controller();
    let state = dir.home.join("providers/traefik-k8s.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let proxy_dir: serde_json::Value = serde_json::from_str(&text).unwrap();
    let proxy_dir = PathBuf::from(proxy_dir["data"]["proxy"]["dir"].as_str().unwrap());
    assert!(proxy_dir.is_dir());
    j.ok(&["remove-application", "traefik-k8s"]);
    assert!(!proxy_dir.exists(), "NGINX stopped, its directory gone");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

#[test]
fn nginx_ingress_integrator_stand_in_routes_the_hostname_with_the_body_limit() {
    if !have_nginx() {
        eprintln!("skipped: no nginx");
        return;
    }
    let j = Juju::new("jujuing");
    let backend = backend();
    j.ok(&["add-model", "m1"]);
    let charm = requirer_charm(j.home(), backend);
    j.ok(&["deploy", &charm.display().to_string(), "req"]);
    j.ok(&["deploy", "nginx-ingress-integrator", "--trust"]);
    let (st, msg) = j.status("nginx-ingress-integrator/0");
    assert_eq!(st, "active");
    let port = proxy_port(&msg);
    j.ok(&[
        "integrate",
        "req:nginx-route",
        "nginx-ingress-integrator:nginx-route",
    ]);

    let (code, body) = http(port, "GET", "/_matrix/client/versions", "chat.test", 0);
    assert_eq!(code, 200);
    assert!(
        body.starts_with("GET /_matrix/client/versions ") && body.contains("host=chat.test"),
        "{body}"
    );
    assert_eq!(
        http(port, "GET", "/", "other.test", 0).0,
        404,
        "only its host"
    );
    // max-body-size=1 (MB): a 2 MB upload is refused at the proxy.
    assert_eq!(http(port, "POST", "/upload", "chat.test", 2 << 20).0, 413);
    assert_eq!(http(port, "POST", "/upload", "chat.test", 1000).0, 200);

    j.ok(&[
        "remove-relation",
        "req:nginx-route",
        "nginx-ingress-integrator:nginx-route",
    ]);
    assert_eq!(http(port, "GET", "/", "chat.test", 0).0, 404, "route gone");
}
