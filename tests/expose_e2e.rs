//! Reachable from outside, end to end under JujuLocal with real Pebble, real Synapse
//! and real NGINX, every request made with `curl` inside the pod through NGINX's
//! entry point (8080): the well-known delegation of each setup (server name equal to
//! the public host, a base domain delegating to a `matrix.` host, a non-default port)
//! with its CORS and cache headers, the server keys and the federation version
//! endpoint, the admin API closed by default and opened to allowed networks only, and
//! Synapse's version in `juju status`.

mod common;

use common::{TestModel, UNIT};
use serde_json::Value;

const URL: &str = "http://localhost:8080";

/// `curl -i` inside the pod: (status, headers lower-cased, body).
fn get(m: &TestModel, args: &[&str]) -> (u16, Vec<(String, String)>, String) {
    let mut full = vec!["-sS", "-i", "--max-time", "10"];
    full.extend_from_slice(args);
    let out = m.in_pod("curl", &full);
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Both well-known answers through NGINX, with the headers the spec asks for.
fn well_known(m: &TestModel) -> (Value, Value) {
    let mut out = vec![];
    for which in ["server", "client"] {
        let (status, h, body) = get(m, &[&format!("{URL}/.well-known/matrix/{which}")]);
        assert_eq!(status, 200, "/.well-known/matrix/{which}: {body}");
        assert_eq!(header(&h, "content-type"), Some("application/json"));
        assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            header(&h, "access-control-allow-methods"),
            Some("GET, POST, PUT, DELETE, OPTIONS")
        );
        assert_eq!(header(&h, "cache-control"), Some("public, max-age=3600"));
        out.push(json(&body));
    }
    let client = out.pop().unwrap_or_default();
    (out.pop().unwrap_or_default(), client)
}

/// NGINX applies a reload (SIGHUP) asynchronously: waits until `url` answers `code`.
fn wait_for_status(m: &TestModel, url: &str, code: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = m.http_status(url);
        if got == code {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} answers {got}, not {code}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn app_version(m: &TestModel) -> Value {
    jujulocal::juju_cli::json::status(&m.c.model)["applications"]["synapse"]["version"].clone()
}

#[test]
fn delegation_federation_admin_api_and_version_through_the_entry_point() {
    let mut m = TestModel::with_pods();
    m.deploy(&[("server_name", "example.test")]);
    m.wait_ready();
    assert_eq!(m.status(), ("active".to_string(), String::new()));

    // Server name equal to the public host.
    let (server, client) = well_known(&m);
    assert_eq!(server, serde_json::json!({"m.server": "example.test:443"}));
    assert_eq!(
        client,
        serde_json::json!({"m.homeserver": {"base_url": "https://example.test"}})
    );
    // A browser's preflight for the client well-known.
    let (status, h, _) = get(
        &m,
        &[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://app.example.org",
            &format!("{URL}/.well-known/matrix/client"),
        ],
    );
    assert_eq!(status, 204);
    assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));

    // Federation reaches Synapse through NGINX: its keys and its version.
    let (status, _, body) = get(&m, &[&format!("{URL}/_matrix/key/v2/server")]);
    assert_eq!(status, 200, "{body}");
    let keys = json(&body);
    assert_eq!(keys["server_name"], "example.test");
    assert!(
        keys["verify_keys"]
            .as_object()
            .is_some_and(|k| k.keys().any(|id| id.starts_with("ed25519:"))),
        "{keys}"
    );
    let (status, _, body) = get(&m, &[&format!("{URL}/_matrix/federation/v1/version")]);
    assert_eq!(status, 200, "{body}");
    let version = json(&body)["server"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("no version in {body}"))
        .to_string();
    assert_eq!(json(&body)["server"]["name"], "Synapse");

    // The workload version, as `juju status --format json` prints it.
    assert_eq!(app_version(&m), Value::String(version.clone()));
    assert_eq!(
        m.c.model.applications["synapse"].units[UNIT].workload_version,
        version
    );

    // The admin API is closed by default; shared-secret registration stays open.
    let admin = format!("{URL}/_synapse/admin/v1/server_version");
    assert_eq!(m.http_status(&admin), 404);
    assert_eq!(
        m.http_status(&format!("{URL}/_synapse/admin/v1/register")),
        200
    );

    // A base domain delegating to a matrix. host: Synapse restarts once (the URL is
    // in homeserver.yaml), NGINX serves the new answers without a restart.
    let nginx_starts = m.starts("synapse-nginx", "nginx");
    let synapse_starts = m.starts("synapse", "synapse");
    m.config(&[("public_baseurl", "https://matrix.example.test")]);
    m.wait_ready();
    let (server, client) = well_known(&m);
    assert_eq!(
        server,
        serde_json::json!({"m.server": "matrix.example.test:443"})
    );
    assert_eq!(
        client,
        serde_json::json!({"m.homeserver": {"base_url": "https://matrix.example.test"}})
    );
    assert_eq!(m.starts("synapse", "synapse"), synapse_starts + 1);

    // A non-default port.
    m.config(&[("public_baseurl", "https://matrix.example.test:8448/")]);
    m.wait_ready();
    let (server, client) = well_known(&m);
    assert_eq!(
        server,
        serde_json::json!({"m.server": "matrix.example.test:8448"})
    );
    assert_eq!(
        client,
        serde_json::json!({"m.homeserver": {"base_url": "https://matrix.example.test:8448"}})
    );
    assert_eq!(m.starts("synapse-nginx", "nginx"), nginx_starts);
    // Read again after each restart, and still Synapse's.
    assert_eq!(app_version(&m), Value::String(version.clone()));

    // The admin API opened to the pod's loopback only: NGINX reloads, nothing restarts.
    let synapse_starts = m.starts("synapse", "synapse");
    m.config(&[("admin_api_allowed_cidrs", "127.0.0.1/32,::1/128")]);
    assert_eq!(m.status(), ("active".to_string(), String::new()));
    wait_for_status(&m, &admin, 200);
    let (status, _, body) = get(&m, &[&admin]);
    assert_eq!(status, 200, "allowed address: {body}");
    assert!(json(&body)["server_version"].is_string(), "{body}");
    // An endpoint that needs an admin's token answers Synapse's 401, not NGINX's.
    let (status, _, body) = get(&m, &[&format!("{URL}/_synapse/admin/v2/users")]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(json(&body)["errcode"], "M_MISSING_TOKEN");
    // Another address of the pod is outside the allowed networks.
    let add = m.in_pod("ip", &["addr", "add", "192.0.2.10/32", "dev", "lo"]);
    assert!(add.status.success(), "{add:?}");
    let (status, _, _) = get(
        &m,
        &[
            "--interface",
            "192.0.2.10",
            "http://192.0.2.10:8080/_synapse/admin/v1/server_version",
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(m.starts("synapse-nginx", "nginx"), nginx_starts, "reloaded");
    assert_eq!(m.starts("synapse", "synapse"), synapse_starts);

    // Closed again.
    m.config(&[("admin_api_allowed_cidrs", "")]);
    wait_for_status(&m, &admin, 404);

    // A bad entry blocks, names the option and the entry, and changes nothing.
    m.config(&[("admin_api_allowed_cidrs", "10.0.0.1/8")]);
    assert_eq!(
        m.status(),
        (
            "blocked".to_string(),
            "invalid configuration: admin_api_allowed_cidrs: \"10.0.0.1/8\" has bits set after the prefix; the network is 10.0.0.0/8".to_string()
        )
    );
    assert_eq!(m.http_status(&admin), 404);
    assert_eq!(m.starts("synapse", "synapse"), synapse_starts);
}
