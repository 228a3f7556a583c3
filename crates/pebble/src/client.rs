//! The Pebble API calls: the [`Client`], its request plumbing (JSON
//! envelopes, sync and async calls), system info and layers. Services and
//! changes, files, and checks and notices are in the submodules.

mod checks;
mod exec;
mod files;
mod services;

pub use exec::{ExecOptions, ExecOutput, LogEntry, StreamedOutput};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::{Request, Response, Transport, UnixTransport};
use crate::layer::{CheckLevel, Layer};
use crate::types::SystemInfo;

/// Per-call timeout unless changed with [`Client::with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Synchronous client for one Pebble daemon.
///
/// Every call opens its own connection and is bounded by the client's
/// timeout; waiting for changes is bounded by the caller's timeout.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
    transport: Arc<dyn Transport>,
}

/// The JSON envelope around every reply.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    change: Option<String>,
    #[serde(default)]
    result: Option<Value>,
}

/// Percent-encodes a query value (keeps unreserved characters and `/`).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `path?k=v&...`, skipping empty values.
fn target(path: &str, query: &[(&str, String)]) -> String {
    let mut out = path.to_string();
    let mut sep = '?';
    for (key, value) in query {
        if value.is_empty() {
            continue;
        }
        out.push(sep);
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        sep = '&';
    }
    out
}

/// Encodes a list as one comma-separated query value.
fn list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| encode(v))
        .collect::<Vec<_>>()
        .join(",")
}

impl Client {
    /// A client for the daemon listening on `socket` (e.g.
    /// `/charm/containers/synapse/pebble.socket`).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        let socket = socket.into();
        Client {
            transport: Arc::new(UnixTransport::new(socket.clone())),
            socket,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client using another transport (a fake daemon in tests).
    pub fn with_transport(socket: impl Into<PathBuf>, transport: Arc<dyn Transport>) -> Self {
        Client {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
            transport,
        }
    }

    /// Sets the per-call timeout (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    // ----- plumbing ---------------------------------------------------------

    fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            socket: self.socket.clone(),
            message: message.into(),
        }
    }

    fn send(&self, request: Request, timeout: Duration) -> Result<Response> {
        let started = Instant::now();
        let result = self.transport.round_trip(&request, timeout);
        match &result {
            Ok(resp) => tracing::debug!(
                method = %request.method,
                target = %request.target,
                status = resp.status,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "pebble request"
            ),
            Err(e) => tracing::debug!(
                method = %request.method,
                target = %request.target,
                error = %e,
                "pebble request failed"
            ),
        }
        result
    }

    /// Decodes a JSON envelope; error envelopes become [`Error::Api`].
    fn envelope(&self, resp: &Response, what: &str) -> Result<Envelope> {
        let env: Envelope = serde_json::from_slice(&resp.body).map_err(|e| {
            let snippet = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]);
            self.protocol(format!(
                "{what}: HTTP {} with a body that is not a JSON envelope ({e}): {snippet:?}",
                resp.status
            ))
        })?;
        match env.kind.as_str() {
            "error" => {
                let result = env.result.unwrap_or(Value::Null);
                let message = result
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("server error: HTTP {}", resp.status));
                let kind = result
                    .get("kind")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string);
                Err(Error::Api {
                    socket: self.socket.clone(),
                    status: resp.status,
                    kind,
                    message,
                })
            }
            "sync" | "async" => Ok(env),
            other => Err(self.protocol(format!("{what}: unknown reply type {other:?}"))),
        }
    }

    fn json_request(&self, method: &str, target: String, body: Option<&Value>) -> Request {
        let mut req = Request::new(method, target).header("Accept", "application/json");
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string().into_bytes());
        }
        req
    }

    fn decode<T: DeserializeOwned>(&self, result: Option<Value>, what: &str) -> Result<T> {
        serde_json::from_value(result.unwrap_or(Value::Null))
            .map_err(|e| self.protocol(format!("{what}: unexpected result: {e}")))
    }

    /// A synchronous call returning `result` decoded as `T`.
    fn sync<T: DeserializeOwned>(
        &self,
        method: &str,
        target: String,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<T> {
        let req = self.json_request(method, target, body);
        let what = req.describe();
        let resp = self.send(req, timeout)?;
        let env = self.envelope(&resp, &what)?;
        if env.kind != "sync" {
            return Err(self.protocol(format!("{what}: expected a sync reply, got {}", env.kind)));
        }
        self.decode(env.result, &what)
    }

    fn get<T: DeserializeOwned>(&self, target: String) -> Result<T> {
        self.sync("GET", target, None, self.timeout)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.sync("POST", path.to_string(), Some(body), self.timeout)
    }

    /// An asynchronous call; returns the change id.
    fn post_async(&self, path: &str, body: &Value) -> Result<String> {
        self.post_async_full(path, body).map(|(id, _)| id)
    }

    /// An asynchronous call; returns the change id and the reply's `result`.
    fn post_async_full(&self, path: &str, body: &Value) -> Result<(String, Option<Value>)> {
        let req = self.json_request("POST", path.to_string(), Some(body));
        let what = req.describe();
        let resp = self.send(req, self.timeout)?;
        let env = self.envelope(&resp, &what)?;
        match env.change {
            Some(id) if env.kind == "async" && resp.status == 202 && !id.is_empty() => {
                Ok((id, env.result))
            }
            _ => Err(self.protocol(format!(
                "{what}: expected an async reply with a change id, got {} (HTTP {})",
                env.kind, resp.status
            ))),
        }
    }

    // ----- system -----------------------------------------------------------

    /// `GET /v1/system-info`: the cheapest "is Pebble up" probe.
    pub fn system_info(&self) -> Result<SystemInfo> {
        self.get("/v1/system-info".into())
    }

    /// True when [`Client::system_info`] succeeds right now.
    pub fn can_connect(&self) -> bool {
        self.system_info().is_ok()
    }

    /// `GET /v1/health`: `Ok(false)` when a matching check is down (HTTP 502).
    pub fn health(&self, level: Option<CheckLevel>, names: &[&str]) -> Result<bool> {
        #[derive(Deserialize)]
        struct Health {
            healthy: bool,
        }
        let health: Health = self.get(target(
            "/v1/health",
            &[
                (
                    "level",
                    level.map(|l| l.as_str().to_string()).unwrap_or_default(),
                ),
                ("names", list(names)),
            ],
        ))?;
        Ok(health.healthy)
    }

    // ----- layers and plan --------------------------------------------------

    /// `POST /v1/layers`. With `combine`, a layer with the same label is
    /// merged in place (use it always: re-adding without it fails).
    pub fn add_layer(&self, label: &str, layer: &Layer, combine: bool) -> Result<()> {
        let yaml = layer.to_yaml()?;
        let body = json!({
            "action": "add",
            "combine": combine,
            "label": label,
            "format": "yaml",
            "layer": yaml,
        });
        let _: Value = self.post("/v1/layers", &body)?;
        Ok(())
    }

    /// `GET /v1/plan?format=yaml`, parsed.
    pub fn plan(&self) -> Result<Layer> {
        let text = self.plan_yaml()?;
        Layer::from_yaml(&text).map_err(|e| self.protocol(format!("cannot parse plan: {e}")))
    }

    /// The combined plan as the YAML text Pebble prints.
    pub fn plan_yaml(&self) -> Result<String> {
        self.get("/v1/plan?format=yaml".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multipart::{self, Part};
    use crate::types::{PushOptions, Status};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A scripted daemon: replies in order and records the requests.
    #[derive(Debug, Default)]
    struct Fake {
        replies: Mutex<VecDeque<Response>>,
        seen: Mutex<Vec<(Request, Duration)>>,
    }

    impl Transport for Fake {
        fn round_trip(&self, request: &Request, timeout: Duration) -> Result<Response> {
            self.seen.lock().unwrap().push((request.clone(), timeout));
            self.replies
                .lock()
                .unwrap()
                .pop_front()
                .ok_or(Error::Connect {
                    socket: "/fake".into(),
                    source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                })
        }
    }

    fn json_reply(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn sync(result: Value) -> Response {
        json_reply(
            200,
            json!({"type": "sync", "status-code": 200, "status": "OK", "result": result}),
        )
    }

    fn error(status: u16, message: &str, kind: Option<&str>) -> Response {
        let mut result = json!({"message": message});
        if let Some(kind) = kind {
            result["kind"] = json!(kind);
        }
        json_reply(
            status,
            json!({"type": "error", "status-code": status, "status": "x", "result": result}),
        )
    }

    fn change(id: &str, status: &str, ready: bool) -> Value {
        json!({"id": id, "kind": "start", "summary": "s", "status": status, "ready": ready,
               "tasks": [], "spawn-time": "t"})
    }

    fn client(replies: Vec<Response>) -> (Client, Arc<Fake>) {
        let fake = Arc::new(Fake {
            replies: Mutex::new(replies.into()),
            ..Fake::default()
        });
        (Client::with_transport("/fake.socket", fake.clone()), fake)
    }

    fn targets(fake: &Fake) -> Vec<String> {
        fake.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.describe())
            .collect()
    }

    #[test]
    fn query_encoding() {
        assert_eq!(encode("/a b/*.txt"), "/a%20b/%2A.txt");
        assert_eq!(
            target(
                "/v1/x",
                &[("a", "1".into()), ("b", String::new()), ("c", "3".into())]
            ),
            "/v1/x?a=1&c=3"
        );
        assert_eq!(list(&["a", "b,c"]), "a,b%2Cc");
    }

    #[test]
    fn api_error_envelope() {
        let (c, _) = client(vec![error(
            400,
            "cannot start services: service \"x\" does not exist",
            None,
        )]);
        let e = c.services(&[]).unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            e.to_string(),
            "pebble at /fake.socket: cannot start services: service \"x\" does not exist (400)"
        );
    }

    #[test]
    fn non_json_reply_is_protocol_error() {
        let (c, _) = client(vec![Response {
            status: 200,
            headers: vec![],
            body: b"<html>".to_vec(),
        }]);
        assert!(matches!(c.system_info(), Err(Error::Protocol { .. })));
    }

    #[test]
    fn health_502_is_false() {
        let (c, fake) = client(vec![json_reply(
            502,
            json!({"type": "sync", "status-code": 502, "result": {"healthy": false}}),
        )]);
        assert!(!c.health(Some(CheckLevel::Ready), &["a", "b"]).unwrap());
        assert_eq!(targets(&fake), ["GET /v1/health?level=ready&names=a,b"]);
    }

    #[test]
    fn checks_null_changed_is_empty() {
        let (c, _) = client(vec![sync(json!({"changed": null})), sync(json!({}))]);
        assert!(c.start_checks(&["a"]).unwrap().is_empty());
        assert!(c.stop_checks(&["a"]).unwrap().is_empty());
    }

    #[test]
    fn wait_change_retries_on_504_and_slices_below_the_socket_timeout() {
        let (c, fake) = client(vec![
            error(504, "timed out waiting for change after 4s", None),
            sync(change("7", "Done", true)),
        ]);
        let ch = c.wait_change("7", Duration::from_secs(60)).unwrap();
        assert_eq!(ch.status, Status::Done);
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0.target, "/v1/changes/7/wait?timeout=4s");
        // The socket timeout is longer than the server-side wait.
        assert!(seen[0].1 >= Duration::from_secs(5));
    }

    #[test]
    fn wait_change_falls_back_to_polling_on_404() {
        let (c, fake) = client(vec![
            error(404, "invalid API endpoint requested", None),
            sync(change("7", "Doing", false)),
            sync(change("7", "Done", true)),
        ]);
        let ch = c.wait_change("7", Duration::from_secs(10)).unwrap();
        assert!(ch.ready);
        assert_eq!(
            targets(&fake)[1..],
            ["GET /v1/changes/7", "GET /v1/changes/7"]
        );
    }

    #[test]
    fn wait_change_deadline() {
        let (c, _) = client(vec![sync(change("7", "Doing", false))]);
        let e = c.wait_change("7", Duration::ZERO).unwrap_err();
        assert!(
            matches!(e, Error::WaitTimeout { ref id, .. } if id == "7"),
            "{e:?}"
        );
    }

    #[test]
    fn service_action_change_error() {
        let mut failed = change("3", "Error", true);
        failed["err"] = json!("cannot perform the following tasks:\n- Start service \"x\" (boom)");
        failed["tasks"] = json!([{"id": "1", "kind": "start", "summary": "s", "status": "Error",
            "log": ["2024-01-01T00:00:00Z ERROR boom"], "spawn-time": "t"}]);
        let (c, fake) = client(vec![
            json_reply(
                202,
                json!({"type": "async", "status-code": 202, "change": "3", "result": null}),
            ),
            sync(failed),
        ]);
        let e = c.start(&["x"], Duration::from_secs(5)).unwrap_err();
        match e {
            Error::Change {
                id, err, task_logs, ..
            } => {
                assert_eq!(id, "3");
                assert!(err.contains("boom"));
                assert_eq!(task_logs, ["2024-01-01T00:00:00Z ERROR boom"]);
            }
            other => panic!("{other:?}"),
        }
        let seen = fake.seen.lock().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&seen[0].0.body),
            r#"{"action":"start","services":["x"]}"#
        );
    }

    #[test]
    fn push_request_shape() {
        let (c, fake) = client(vec![sync(json!([{"path": "/etc/x"}]))]);
        let opts = PushOptions {
            make_dirs: true,
            permissions: Some(0o600),
            user_id: Some(65534),
            group: Some("nogroup".into()),
            ..PushOptions::default()
        };
        c.push("/etc/x", b"data", &opts).unwrap();
        let seen = fake.seen.lock().unwrap();
        let req = &seen[0].0;
        let ct = req
            .headers
            .iter()
            .find(|(n, _)| n == "Content-Type")
            .map(|(_, v)| v.clone())
            .unwrap();
        let boundary = multipart::boundary_from_content_type(&ct).unwrap();
        let parts = multipart::parse(&boundary, &req.body).unwrap();
        assert_eq!(parts.len(), 2);
        let meta: Value = serde_json::from_slice(&parts[0].body).unwrap();
        assert_eq!(
            meta,
            json!({"action": "write", "files": [{"path": "/etc/x", "make-dirs": true,
                   "permissions": "600", "user-id": 65534, "group": "nogroup"}]})
        );
        assert_eq!(parts[1].filename().as_deref(), Some("/etc/x"));
        assert_eq!(parts[1].body, b"data");
    }

    #[test]
    fn push_item_error_is_path_error() {
        let (c, _) = client(vec![sync(json!([{"path": "/x/y", "error":
            {"message": "open /x/y: no such file or directory", "kind": "not-found"}}]))]);
        let e = c.push("/x/y", b"", &PushOptions::default()).unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
    }

    #[test]
    fn pull_parses_multipart() {
        let body = multipart::build(
            "b0undary",
            &[
                Part::form_data(
                    "files",
                    Some("/a"),
                    "application/octet-stream",
                    vec![0, 1, 2],
                ),
                Part::form_data(
                    "response",
                    None,
                    "application/json",
                    json!({"type": "sync", "result": [{"path": "/a"}]})
                        .to_string()
                        .into_bytes(),
                ),
            ],
        );
        let (c, fake) = client(vec![Response {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "multipart/form-data; boundary=b0undary".into(),
            )],
            body,
        }]);
        assert_eq!(c.pull("/a").unwrap(), vec![0, 1, 2]);
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen[0].0.target, "/v1/files?action=read&path=/a");
        assert!(seen[0]
            .0
            .headers
            .contains(&("Accept".into(), "multipart/form-data".into())));
    }
}
