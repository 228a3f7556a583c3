//! Counting the Pebble requests of one dispatch (for benchmarks), from outside the charm.
//!
//! Opt-in (`JUJULOCAL_COUNT_PEBBLE=1` in JujuLocal's environment): for the length of a
//! dispatch, each workload container's socket is moved aside and a proxy listens in its
//! place, forwarding every connection unchanged to the real Pebble and noting each HTTP
//! request line it sees (the charm's view is unchanged: same path, same daemon). A
//! request is noted before it is forwarded, so every request the charm sent before it
//! exited is counted, without waiting for anything. When the dispatch ends the real
//! socket goes back. A file push is a `POST /v1/files` whose body is multipart (the
//! other file actions, make-dirs and remove, are JSON).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The environment variable that turns counting on.
pub const ENV: &str = "JUJULOCAL_COUNT_PEBBLE";

/// One request the charm sent to a container's Pebble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PebbleCall {
    pub container: String,
    pub method: String,
    pub target: String,
    /// A file push (`POST /v1/files` with a multipart body).
    #[serde(default)]
    pub push: bool,
}

/// The request heads found in one direction of a connection, fed in any slicing.
/// Bodies are skipped by `Content-Length`; after a chunked body or an upgrade
/// (websockets of `exec`) the rest of the stream is passed through unparsed.
#[derive(Debug, Default)]
pub struct Parser {
    head: Vec<u8>,
    body_left: usize,
    raw: bool,
}

/// What a request head says (method, target, push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub push: bool,
}

const MAX_HEAD: usize = 64 * 1024;

impl Parser {
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<Seen> {
        let mut out = vec![];
        while !data.is_empty() && !self.raw {
            if self.body_left > 0 {
                let k = self.body_left.min(data.len());
                self.body_left -= k;
                data = &data[k..];
                continue;
            }
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                self.raw = self.head.len() > MAX_HEAD;
                break;
            };
            data = &data[end + 4 - before..];
            let head = String::from_utf8_lossy(&self.head[..end]).into_owned();
            self.head.clear();
            let (seen, body, raw) = parse_head(&head);
            out.extend(seen);
            self.body_left = body;
            self.raw = raw;
        }
        out
    }
}

/// (the request, its body length, whether the stream stops being HTTP requests).
fn parse_head(head: &str) -> (Option<Seen>, usize, bool) {
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return (None, 0, true);
    };
    let mut length = 0;
    let mut raw = false;
    let mut multipart = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => raw |= value.eq_ignore_ascii_case("chunked"),
            "upgrade" => raw = true,
            "content-type" => multipart = value.starts_with("multipart/"),
            _ => {}
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    let seen = Seen {
        method: method.to_string(),
        target: target.to_string(),
        push: method == "POST" && path == "/v1/files" && multipart,
    };
    (Some(seen), length, raw)
}

/// The proxies of one dispatch; [`Counter::finish`] puts the real sockets back.
pub struct Counter {
    proxies: Vec<Proxy>,
    calls: Arc<Mutex<Vec<PebbleCall>>>,
}

struct Proxy {
    socket: PathBuf,
    real: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// Where the real socket waits while the proxy stands in for it.
fn real_path(socket: &Path) -> PathBuf {
    socket.with_file_name(".pebble-real.socket")
}

/// Puts back a real socket a stopped JujuLocal left aside (its proxy is gone).
pub fn restore(socket: &Path) {
    let real = real_path(socket);
    if real.exists() {
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::rename(&real, socket);
    }
}

impl Counter {
    /// Stands a proxy in for each `(container, socket)` that exists now.
    pub fn start(sockets: &[(String, PathBuf)]) -> Counter {
        let calls = Arc::new(Mutex::new(vec![]));
        let mut proxies = vec![];
        for (container, socket) in sockets {
            restore(socket);
            match Proxy::start(container, socket, &calls) {
                Ok(p) => proxies.push(p),
                Err(e) => eprintln!("jujulocal: cannot count {container}'s Pebble requests: {e}"),
            }
        }
        Counter { proxies, calls }
    }

    /// Stops the proxies, puts the real sockets back and returns what was seen.
    pub fn finish(mut self) -> Vec<PebbleCall> {
        for p in &mut self.proxies {
            p.stop();
        }
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Proxy {
    fn start(
        container: &str,
        socket: &Path,
        calls: &Arc<Mutex<Vec<PebbleCall>>>,
    ) -> std::io::Result<Proxy> {
        let real = real_path(socket);
        std::fs::rename(socket, &real)?;
        let listener = match UnixListener::bind(socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::rename(&real, socket);
                return Err(e);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, real2, calls) = (stop.clone(), real.clone(), calls.clone());
        let container = container.to_string();
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = UnixStream::connect(&real2) else {
                    continue;
                };
                let (calls, container) = (calls.clone(), container.clone());
                std::thread::spawn(move || relay(client, server, &container, &calls));
            }
        });
        Ok(Proxy {
            socket: socket.to_path_buf(),
            real,
            stop,
            accept: Some(accept),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::rename(&self.real, &self.socket);
    }
}

/// Copies both directions; the client's side is parsed (and noted) before it is sent on.
fn relay(
    mut client: UnixStream,
    mut server: UnixStream,
    container: &str,
    calls: &Mutex<Vec<PebbleCall>>,
) {
    let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let seen = parser.feed(&buf[..n]);
        if !seen.is_empty() {
            let mut all = calls.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(seen.into_iter().map(|s| PebbleCall {
                container: container.to_string(),
                method: s.method,
                target: s.target,
                push: s.push,
            }));
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    let _ = back.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(seen: &[Seen]) -> Vec<String> {
        seen.iter()
            .map(|s| {
                format!(
                    "{} {}{}",
                    s.method,
                    s.target,
                    if s.push { " push" } else { "" }
                )
            })
            .collect()
    }

    const PUSH: &str = "POST /v1/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 10\r\n\r\n0123456789";
    const DIRS: &str =
        "POST /v1/files HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    const PLAN: &str = "GET /v1/plan?format=yaml HTTP/1.1\r\nHost: localhost\r\n\r\n";

    #[test]
    fn requests_on_one_connection_are_each_seen_with_pushes_told_apart() {
        let stream = format!("{PUSH}{DIRS}{PLAN}");
        let mut p = Parser::default();
        assert_eq!(
            targets(&p.feed(stream.as_bytes())),
            [
                "POST /v1/files push",
                "POST /v1/files",
                "GET /v1/plan?format=yaml"
            ]
        );
    }

    #[test]
    fn any_slicing_of_the_stream_gives_the_same_requests() {
        let stream = format!("{PUSH}{PLAN}{DIRS}");
        let whole = targets(&Parser::default().feed(stream.as_bytes()));
        for size in [1, 2, 3, 7, 50] {
            let mut p = Parser::default();
            let seen: Vec<Seen> = stream
                .as_bytes()
                .chunks(size)
                .flat_map(|c| p.feed(c))
                .collect();
            assert_eq!(targets(&seen), whole, "chunks of {size}");
        }
    }

    #[test]
    fn an_upgrade_stops_parsing_the_stream() {
        let ws = "GET /v1/tasks/1/websocket/io HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        let mut p = Parser::default();
        let seen = p.feed(format!("{ws}{PLAN}").as_bytes());
        assert_eq!(targets(&seen), ["GET /v1/tasks/1/websocket/io"]);
    }

    #[test]
    fn the_proxy_forwards_counts_and_puts_the_socket_back() {
        let dir = std::env::temp_dir().join(format!("pebble-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("pebble.socket");
        let _ = std::fs::remove_file(&socket);
        // A fake daemon answering every request on its connection with "ok".
        let daemon = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for conn in daemon.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let mut p = Parser::default();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        for _ in p.feed(&buf[..n]) {
                            let _ =
                                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                        }
                    }
                });
            }
        });
        let counter = Counter::start(&[("synapse".into(), socket.clone())]);
        for req in [PUSH, PLAN] {
            let mut c = UnixStream::connect(&socket).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).unwrap();
            assert!(answer.ends_with("\r\n\r\nok"), "{answer:?}");
        }
        let calls = counter.finish();
        let seen: Vec<(String, String, bool)> = calls
            .into_iter()
            .map(|c| (c.container, c.target, c.push))
            .collect();
        assert_eq!(
            seen,
            [
                ("synapse".into(), "/v1/files".into(), true),
                ("synapse".into(), "/v1/plan?format=yaml".into(), false)
            ]
        );
        // The daemon answers on its own path again, and nothing is left aside.
        let mut c = UnixStream::connect(&socket).unwrap();
        c.write_all(PLAN.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        assert!(c.read(&mut buf).unwrap() > 0);
        assert!(!real_path(&socket).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
