//! A minimal HTTP/1.x responder for the metrics endpoint.
//!
//! Every connection carries one request: the server reads the request head
//! (request line and header lines, at most [`MAX_HEAD_BYTES`], within
//! [`READ_TIMEOUT`]), writes one response with `Connection: close`, and closes.
//! Any path is served (like the reference exporter, which answers on `/`):
//! `GET` gets the metrics, `HEAD` the same headers without the body, other
//! methods `405`. Request bodies are never read; they are drained (bounded)
//! after the response so that closing does not reset the connection before
//! the client has read the response.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::log;
use crate::metrics::CONTENT_TYPE;
use crate::poller::{lock, SharedMetrics};

/// Largest accepted request head (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a client has to send its request head, and to take the response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handled at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// After responding, how much of an unread request (e.g. a body) is drained,
/// and for how long, before closing.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens the listening socket. With `addr` unset it listens on `[::]`
/// (IPv4 too: IPV6_V6ONLY is cleared) and falls back to `0.0.0.0` when IPv6
/// is unavailable. The returned listener is non-blocking, ready for
/// [`TcpListener::from_std`].
pub fn bind(addr: Option<IpAddr>, port: u16) -> io::Result<std::net::TcpListener> {
    match addr {
        Some(ip) => listen(SocketAddr::new(ip, port)),
        None => match listen(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)) {
            Ok(listener) => Ok(listener),
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    || e.kind() == io::ErrorKind::PermissionDenied =>
            {
                Err(e)
            }
            Err(v6) => listen(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))
                .map_err(|v4| io::Error::new(v4.kind(), format!("[::]: {v6}; 0.0.0.0: {v4}"))),
        },
    }
}

fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Best effort: where it cannot be cleared, IPv6 alone is served.
        let _ = socket.set_only_v6(false);
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, metrics: SharedMetrics) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut accept_error_logged = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                accept_error_logged = false;
                stream
            }
            Err(e) => {
                // Typically EMFILE: log once per streak, back off, go on.
                if !accept_error_logged {
                    log(&format!("accepting a connection failed: {e}"));
                    accept_error_logged = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        let guard = ActiveGuard::new(&active);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            handle(stream, &metrics).await;
            drop(guard);
        });
    }
}

struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(counter: &Arc<AtomicUsize>) -> ActiveGuard {
        counter.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(counter.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(mut stream: TcpStream, metrics: &SharedMetrics) {
    let head = match timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        // Timed out, reset, or closed before a full request: nothing to say.
        Ok(Err(_)) | Err(_) => return,
    };
    let response = match head {
        Head::Complete(bytes) => match parse_request(&bytes) {
            Ok(method) => respond(method, || lock(metrics).render()),
            Err(status) => error_response(status),
        },
        Head::TooLarge => error_response(Status::HeaderFieldsTooLarge),
    };
    let written = timeout(READ_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        // Drain what the client may still send (a body, pipelined requests)
        // until it closes, so that our close does not turn into a reset.
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        let _ = timeout(DRAIN_TIMEOUT, async {
            while drained < DRAIN_BYTES {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    }
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
}

/// Reads until the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf, searched_from) {
            if end > MAX_HEAD_BYTES {
                return Ok(Head::TooLarge);
            }
            buf.truncate(end);
            return Ok(Head::Complete(buf));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
    }
}

/// Index just past the head's terminating blank line (`\r\n\r\n`, or the
/// lenient `\n\n`), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    MethodNotAllowed,
    HeaderFieldsTooLarge,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::HeaderFieldsTooLarge => "431 Request Header Fields Too Large",
            Status::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }
}

/// Parses a complete request head: the request line
/// `METHOD SP request-target SP HTTP/1.x` and `name: value` header lines.
pub fn parse_request(head: &[u8]) -> Result<Method, Status> {
    let text = std::str::from_utf8(head).map_err(|_| Status::BadRequest)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // RFC 9112 2.2: ignore empty lines before the request line.
    let request_line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or(Status::BadRequest)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Status::BadRequest);
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(Status::BadRequest);
    }
    match version.strip_prefix("HTTP/") {
        Some("1.0" | "1.1") => {}
        Some(v)
            if v.len() == 3
                && v.as_bytes()[1] == b'.'
                && v.bytes().all(|b| b == b'.' || b.is_ascii_digit()) =>
        {
            return Err(Status::VersionNotSupported)
        }
        _ => return Err(Status::BadRequest),
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, _value)) = line.split_once(':') else {
            return Err(Status::BadRequest);
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Status::BadRequest);
        }
    }
    Ok(match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    })
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The full response to a well-formed request; `body` renders the metrics
/// and is only called for GET and HEAD.
pub fn respond(method: Method, body: impl FnOnce() -> String) -> Vec<u8> {
    match method {
        Method::Get => response(Status::Ok, &[("Content-Type", CONTENT_TYPE)], &body(), true),
        Method::Head => response(
            Status::Ok,
            &[("Content-Type", CONTENT_TYPE)],
            &body(),
            false,
        ),
        Method::Other => response(
            Status::MethodNotAllowed,
            &[
                ("Allow", "GET, HEAD"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
            "Method Not Allowed: only GET is supported\n",
            true,
        ),
    }
}

fn error_response(status: Status) -> Vec<u8> {
    let body = format!("{}\n", status.line());
    response(
        status,
        &[("Content-Type", "text/plain; charset=utf-8")],
        &body,
        true,
    )
}

fn response(status: Status, headers: &[(&str, &str)], body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {}\r\n", status.line());
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    if with_body {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counts, Metrics};
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    #[test]
    fn parses_requests() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
            Ok(Method::Get)
        );
        assert_eq!(parse_request(b"GET / HTTP/1.0\r\n\r\n"), Ok(Method::Get));
        assert_eq!(parse_request(b"\r\nGET / HTTP/1.1\n\n"), Ok(Method::Get));
        assert_eq!(parse_request(b"HEAD /x HTTP/1.1\r\n\r\n"), Ok(Method::Head));
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n"),
            Ok(Method::Other)
        );
        assert_eq!(
            parse_request(b"DELETE / HTTP/1.1\r\n\r\n"),
            Ok(Method::Other)
        );
    }

    #[test]
    fn rejects_malformed_requests() {
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(bad),
                Err(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_request(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Status::VersionNotSupported)
        );
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
    }

    #[test]
    fn get_response_is_exact() {
        let response = respond(Method::Get, || "a 1\n".to_owned());
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "HTTP/1.1 200 OK\r\n\
             Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\n\
             Connection: close\r\n\
             \r\n\
             a 1\n"
        );
    }

    #[test]
    fn head_response_has_no_body() {
        let response = String::from_utf8(respond(Method::Head, || "a 1\n".to_owned())).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(response.contains("Content-Length: 4\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn other_methods_get_405_without_rendering() {
        let response = String::from_utf8(respond(Method::Other, || {
            panic!("must not render for a 405")
        }))
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(response.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(response.contains("\r\nConnection: close\r\n"));
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn serves_over_tcp() {
        let listener = bind(Some(Ipv4Addr::LOCALHOST.into()), 0).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics: SharedMetrics = Arc::new(Mutex::new(Metrics::new()));
        lock(&metrics).record_success(Counts { rooms: 4, users: 9 }, UNIX_EPOCH, Duration::ZERO);
        let server = tokio::spawn(serve(listener, metrics));

        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("\nsynapse_total_rooms 4\n"), "{ok}");
        assert!(ok.contains("\nsynapse_total_users 9\n"), "{ok}");
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));

        let root = exchange(addr, b"GET / HTTP/1.0\r\n\r\n").await;
        assert_eq!(root.split_once("\r\n\r\n").unwrap().1, body);

        let post = exchange(addr, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");

        let garbage = exchange(addr, b"hello\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

        let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
        while huge.len() <= MAX_HEAD_BYTES {
            huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        huge.extend_from_slice(b"\r\n");
        let too_large = exchange(addr, &huge).await;
        assert!(too_large.starts_with("HTTP/1.1 431 "), "{too_large}");

        // A client that connects and closes without a request is harmless.
        drop(TcpStream::connect(addr).await.unwrap());
        let again = exchange(addr, b"GET /x HTTP/1.1\r\n\r\n").await;
        assert!(again.starts_with("HTTP/1.1 200 OK\r\n"));

        server.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn default_bind_serves_ipv4_too() {
        // Port 0: let the system choose, then connect over IPv4 loopback.
        let listener = bind(None, 0).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(listener).unwrap();
        let metrics: SharedMetrics = Arc::new(Mutex::new(Metrics::new()));
        let server = tokio::spawn(serve(listener, metrics));
        let reply = exchange(
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            b"GET / HTTP/1.1\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(!reply.contains("synapse_total_rooms"));
        server.abort();
    }
}
