//! One HTTP/1.1 request over a fresh TCP connection.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::wire::{exchange, Request, Response};

/// What went wrong with a plain-TCP request, and where.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error("{url:?} is not an http://host:port/path URL")]
    Url { url: String },
    #[error("cannot resolve {authority:?}: {source}")]
    Resolve {
        authority: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// Connected, but sending the request or reading the reply failed: a
    /// timeout is `WouldBlock`/`TimedOut`, a malformed reply `InvalidData`.
    #[error("{addr}: {request}: {source}")]
    Exchange {
        addr: SocketAddr,
        /// `METHOD target` of the request.
        request: String,
        #[source]
        source: io::Error,
    },
}

/// Sends `request` to `addr` on a new connection and reads the whole reply.
///
/// `timeout` bounds the connect and each read and write on the socket.
pub fn tcp_round_trip(
    addr: SocketAddr,
    request: &Request,
    timeout: Duration,
) -> Result<Response, TcpError> {
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| TcpError::Connect { addr, source })?;
    let exchange_error = |source| TcpError::Exchange {
        addr,
        request: request.describe(),
        source,
    };
    stream
        .set_read_timeout(Some(timeout))
        .map_err(exchange_error)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(exchange_error)?;
    exchange(stream, request).map_err(exchange_error)
}

/// `GET http://host:port/path` (no TLS; the path defaults to `/`), with
/// [`tcp_round_trip`]'s timeouts. The first address `host:port` resolves to
/// is used.
pub fn get(url: &str, timeout: Duration) -> Result<Response, TcpError> {
    let bad_url = || TcpError::Url {
        url: url.to_string(),
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad_url)?;
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let resolve_error = |source| TcpError::Resolve {
        authority: authority.to_string(),
        source,
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(resolve_error)?
        .next()
        .ok_or_else(|| resolve_error(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
    tcp_round_trip(addr, &Request::new("GET", path), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::thread;

    /// A one-shot server: reads the request head, answers `reply`, returns
    /// the request line.
    fn serve_once(reply: &'static [u8]) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            (&stream).write_all(reply).unwrap();
            first
        });
        (addr, handle)
    }

    #[test]
    fn get_sends_the_path_and_reads_the_reply() {
        let (addr, server) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n");
        let r = get(&format!("http://{addr}/health?x=1"), Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 204);
        assert_eq!(server.join().unwrap(), "GET /health?x=1 HTTP/1.1\r\n");

        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            get(&format!("http://{addr}"), Duration::from_secs(5))
                .unwrap()
                .status,
            200
        );
        assert_eq!(server.join().unwrap(), "GET / HTTP/1.1\r\n");
    }

    #[test]
    fn get_errors_say_where_it_failed() {
        let t = Duration::from_secs(1);
        assert!(matches!(get("https://x:1/", t), Err(TcpError::Url { .. })));
        assert!(matches!(
            get("http://no-port/", t),
            Err(TcpError::Resolve { .. })
        ));
        // A port nobody listens on (bound, then released).
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            get(&format!("http://{addr}/"), t),
            Err(TcpError::Connect { .. })
        ));
    }

    #[test]
    fn silent_server_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let e = tcp_round_trip(addr, &Request::new("GET", "/"), Duration::from_millis(100))
            .unwrap_err();
        drop(listener);
        match e {
            TcpError::Exchange { source, .. } => assert!(
                matches!(
                    source.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "{source}"
            ),
            other => panic!("{other}"),
        }
    }
}
