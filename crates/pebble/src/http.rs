//! Pebble's transport: HTTP/1.1 (the [`http1`] crate) over the daemon's unix
//! stream socket, one connection per request. Every read and write is
//! bounded by the call's deadline, so a silent daemon can never hang the
//! caller.
//!
//! The [`Transport`] trait lets tests substitute a fake daemon.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use http1::{decode_chunked, read_response, Request, Response};

use crate::error::{Error, Result};

/// Sends one request and returns the whole response.
///
/// Implementations must return [`Error::Connect`] when the daemon cannot be
/// reached and must never block longer than `timeout`.
pub trait Transport: Send + Sync + fmt::Debug {
    fn round_trip(&self, request: &Request, timeout: Duration) -> Result<Response>;
}

/// The real transport: a fresh `UnixStream` per request.
#[derive(Debug, Clone)]
pub struct UnixTransport {
    socket: PathBuf,
}

impl UnixTransport {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        UnixTransport {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn map_io(&self, request: &Request, timeout: Duration, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                socket: self.socket.clone(),
                request: request.describe(),
                timeout,
            },
            io::ErrorKind::InvalidData => Error::Protocol {
                socket: self.socket.clone(),
                message: format!("{}: {e}", request.describe()),
            },
            _ => Error::Io {
                socket: self.socket.clone(),
                request: request.describe(),
                source: e,
            },
        }
    }
}

impl Transport for UnixTransport {
    fn round_trip(&self, request: &Request, timeout: Duration) -> Result<Response> {
        let deadline = Instant::now() + timeout;
        let stream = UnixStream::connect(&self.socket).map_err(|source| Error::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        let io = |e| self.map_io(request, timeout, e);
        // A zero timeout is rejected by the socket API; the deadline check
        // on reads still applies.
        let step = timeout.max(Duration::from_millis(1));
        stream.set_write_timeout(Some(step)).map_err(io)?;
        http1::exchange(DeadlineStream { stream, deadline }, request).map_err(io)
    }
}

/// A unix stream whose reads shrink the socket read timeout to what is left
/// of the overall deadline; writes use the socket's write timeout.
struct DeadlineStream {
    stream: UnixStream,
    deadline: Instant,
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
