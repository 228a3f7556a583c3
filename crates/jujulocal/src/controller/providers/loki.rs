//! The loki-k8s stand-in: a played application with a `logging` endpoint (interface
//! `loki_push_api`, provides) backed by a recorder of pushes, not a real Loki.
//!
//! - Deploy: the recorder (`jujulocal __loki-recorder DIR`, a hidden subcommand run as
//!   a daemon) on the host's 127.0.0.1, on a free port, in
//!   `/tmp/jlloki-<model uuid prefix>-<app>`; its status says
//!   `Loki at http://127.0.0.1:<port>`.
//! - React (any event reaching its unit), for every live `logging` relation, as the
//!   Loki charm does: its unit databag gets `endpoint` =
//!   `{"url": "http://127.0.0.1:<port>/loki/api/v1/push"}` and `public_address`; the
//!   requirer's units get `relation-changed` when that changed.
//! - The recorder answers `POST /loki/api/v1/push` (JSON, as Pebble sends it) with 204
//!   and appends each push as one line to `DIR/pushes.jsonl`; a push it cannot read
//!   (compressed, protobuf, bad JSON) is answered 400 and recorded as
//!   `{"unreadable": ...}`. `GET /ready` answers 200, and
//!   `GET /loki/api/v1/query_range?query={k="v",...}` returns the recorded streams whose
//!   labels match (equality matchers only), as Loki's API does, so a test reads the same
//!   way from the stand-in and from a real Loki.
//! - Remove: the recorder stops and its directory goes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{daemon, ProviderState};
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::Error;

pub const CHARM: &str = "loki-k8s";
pub const ENDPOINT: &str = "logging";
/// The hidden `jujulocal` subcommand that runs the recorder.
pub const RECORDER_COMMAND: &str = "__loki-recorder";
pub const PUSH_PATH: &str = "/loki/api/v1/push";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub dir: PathBuf,
    pub port: u16,
    pub pid: u32,
}

impl State {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the pushes are recorded, one JSON document a line.
    pub fn pushes(&self) -> PathBuf {
        self.dir.join("pushes.jsonl")
    }

    fn marker(&self) -> String {
        self.dir.display().to_string()
    }
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

/// `juju deploy loki-k8s [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::warn_netns(c, CHARM);
    let uuid: String = c.model.uuid.chars().take(8).collect();
    let dir = std::env::temp_dir().join(format!("jlloki-{uuid}-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    let bin = crate::exe::jujulocal_bin()?;
    let log = dir.join("recorder.log");
    let pid = daemon::spawn(
        &bin,
        &[RECORDER_COMMAND.into(), dir.display().to_string()],
        &log,
    )?;
    let marker = dir.display().to_string();
    let port_file = dir.join("port");
    let deadline = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        // Only the PID while it starts: its command line reads empty while it execs.
        if Instant::now() > deadline || !daemon::running(pid) {
            daemon::stop(pid, &marker);
            return Err(Error::invalid(
                Area::Model,
                format!(
                    "{CHARM} stand-in: the recorder did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default().trim()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    daemon::wait_ready(addr, "/ready", pid, &marker, &log)?;
    let st = State { dir, port, pid };
    super::save_data(c, app, CHARM, &st)?;
    let endpoints = [(ENDPOINT.into(), "loki_push_api".into(), Role::Provides)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        let _ = super::remove(c, app);
        return Err(e);
    }
    super::set_unit_status(c, app, "active", &format!("Loki at {}", st.url()))
}

/// Publishes the push endpoint in the unit databag of every live relation.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let st = state(pst)?;
    let unit = format!("{app}/0");
    let mut bag = BTreeMap::new();
    bag.insert(
        "endpoint".to_string(),
        json!({ "url": format!("{}{PUSH_PATH}", st.url()) }).to_string(),
    );
    bag.insert("public_address".to_string(), "127.0.0.1".to_string());
    super::answer_unit_everywhere(c, app, ENDPOINT, &unit, &bag)
}

/// Stops the recorder and removes its directory.
pub fn remove(_c: &Controller, _app: &str, pst: &ProviderState) -> Result<(), Error> {
    if let Ok(st) = state(pst) {
        daemon::stop_and_remove(st.pid, &st.marker(), &st.dir);
    }
    Ok(())
}

// --- the recorder ---

/// A parsed `{k="v", ...}` stream selector (equality matchers only).
pub fn parse_selector(q: &str) -> Result<Vec<(String, String)>, String> {
    let inner = q
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("{q:?}: only a stream selector {{k=\"v\", ...}} is supported"))?;
    let mut out = vec![];
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("{q:?}: expected k=\"v\""))?;
        let name = name.trim();
        if name.is_empty() || name.ends_with('!') || after.starts_with('~') {
            return Err(format!("{q:?}: only equality matchers are supported"));
        }
        let after = after
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("{q:?}: values are quoted"))?;
        let end = after
            .find('"')
            .ok_or_else(|| format!("{q:?}: unterminated value"))?;
        out.push((name.to_string(), after[..end].to_string()));
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The recorded streams whose labels match the selector (pure): Loki's `streams`
/// result, one entry per distinct label set, values in push order.
pub fn query(pushes: &str, selector: &[(String, String)]) -> Value {
    let mut streams: Vec<(Map<String, Value>, Vec<Value>)> = vec![];
    for line in pushes.lines() {
        let Ok(push) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for s in push["streams"].as_array().into_iter().flatten() {
            let Some(labels) = s["stream"].as_object() else {
                continue;
            };
            if !selector
                .iter()
                .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v))
            {
                continue;
            }
            let values = s["values"].as_array().cloned().unwrap_or_default();
            match streams.iter_mut().find(|(l, _)| l == labels) {
                Some((_, vs)) => vs.extend(values),
                None => streams.push((labels.clone(), values)),
            }
        }
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(stream, values)| json!({"stream": stream, "values": values}))
        .collect();
    json!({"status": "success", "data": {"resultType": "streams", "result": result}})
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        if headers.len() > 100 {
            return Err(std::io::Error::other("too many headers"));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: vec![],
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        req.body = http1::decode_chunked(&mut r)?;
    } else {
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len.min(64 << 20)];
        r.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(req)
}

fn respond(mut stream: &TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn handle(stream: TcpStream, pushes: &Path, lock: &Mutex<()>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(req) = read_request(&stream) else {
        return;
    };
    let (path, query_string) = req
        .target
        .split_once('?')
        .unwrap_or((req.target.as_str(), ""));
    match (req.method.as_str(), path) {
        ("GET", "/ready") => respond(&stream, "200 OK", "text/plain", b"ready\n"),
        ("POST", PUSH_PATH) => {
            let readable = req.header("content-encoding").is_none()
                && !req
                    .header("content-type")
                    .is_some_and(|t| t.contains("protobuf"));
            let parsed = readable
                .then(|| serde_json::from_slice::<Value>(&req.body).ok())
                .flatten();
            let (record, status) = match parsed {
                Some(v) => (v, "204 No Content"),
                None => (
                    json!({"unreadable": format!(
                        "content-type {:?}, content-encoding {:?}, {} bytes",
                        req.header("content-type"), req.header("content-encoding"), req.body.len()
                    )}),
                    "400 Bad Request",
                ),
            };
            let _guard = lock.lock();
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(pushes)
                .and_then(|mut f| writeln!(f, "{record}"));
            match written {
                Ok(()) => respond(&stream, status, "text/plain", b""),
                Err(e) => respond(
                    &stream,
                    "500 Internal Server Error",
                    "text/plain",
                    e.to_string().as_bytes(),
                ),
            }
        }
        ("GET", "/loki/api/v1/query_range") | ("GET", "/loki/api/v1/query") => {
            let q = query_string
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "query")
                .map(|(_, v)| percent_decode(v))
                .unwrap_or_default();
            match parse_selector(&q) {
                Ok(sel) => {
                    let text = {
                        let _guard = lock.lock();
                        std::fs::read_to_string(pushes).unwrap_or_default()
                    };
                    let body = query(&text, &sel).to_string();
                    respond(&stream, "200 OK", "application/json", body.as_bytes());
                }
                Err(why) => respond(&stream, "400 Bad Request", "text/plain", why.as_bytes()),
            }
        }
        _ => respond(
            &stream,
            "404 Not Found",
            "text/plain",
            b"404 page not found\n",
        ),
    }
}

/// `jujulocal __loki-recorder DIR`: serves until killed; the port it listens on is
/// written to `DIR/port` once it accepts connections.
pub fn serve(dir: &Path) -> Result<(), Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(Error::os(Area::Model, "loki recorder: bind"))?;
    let port = listener
        .local_addr()
        .map_err(Error::os(Area::Model, "loki recorder: local address"))?
        .port();
    let tmp = dir.join("port.tmp");
    std::fs::write(&tmp, format!("{port}\n")).map_err(Error::io(Area::Model, &tmp))?;
    std::fs::rename(&tmp, dir.join("port")).map_err(Error::io(Area::Model, dir))?;
    let pushes = Arc::new(dir.join("pushes.jsonl"));
    let lock = Arc::new(Mutex::new(()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (pushes, lock) = (pushes.clone(), lock.clone());
        std::thread::spawn(move || handle(stream, &pushes, &lock));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_take_equality_matchers_only() {
        assert_eq!(
            parse_selector(r#"{pebble_service="synapse", juju_unit="synapse/0"}"#).unwrap(),
            vec![
                ("pebble_service".to_string(), "synapse".to_string()),
                ("juju_unit".to_string(), "synapse/0".to_string())
            ]
        );
        assert!(parse_selector(r#"{a=~"x"}"#).is_err());
        assert!(parse_selector(r#"{a!="x"}"#).is_err());
        assert!(parse_selector("a").is_err());
        assert_eq!(percent_decode("%7Ba%3D%22b%22%7D"), r#"{a="b"}"#);
    }

    #[test]
    fn queries_group_values_by_stream() {
        let push = |svc: &str, line: &str| {
            json!({"streams": [{"stream": {"pebble_service": svc}, "values": [["1", line]]}]})
                .to_string()
        };
        let text = [
            push("synapse", "a"),
            push("nginx", "b"),
            push("synapse", "c"),
        ]
        .join("\n");
        let sel = parse_selector(r#"{pebble_service="synapse"}"#).unwrap();
        let r = query(&text, &sel);
        assert_eq!(r["data"]["result"].as_array().unwrap().len(), 1);
        assert_eq!(
            r["data"]["result"][0]["values"],
            json!([["1", "a"], ["1", "c"]])
        );
    }
}
