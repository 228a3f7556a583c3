//! Error type shared by every call of the client.
//!
//! Callers branch on the variant: [`Error::Connect`] means "Pebble is not up
//! (yet)", [`Error::Api`] carries the daemon's own message, [`Error::Change`]
//! a change that finished in error, [`Error::Path`] a per-file failure.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to Pebble.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket does not exist or nobody listens on it: the container (or
    /// its Pebble) is not running yet.
    #[error("cannot connect to pebble at {}: {source} (container not ready?)", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Connected, but the daemon did not answer within the call's timeout.
    #[error("pebble at {}: {request}: no reply within {timeout:?}", socket.display())]
    Timeout {
        socket: PathBuf,
        /// `METHOD /path?query` of the request that timed out.
        request: String,
        timeout: Duration,
    },

    /// Connected, but reading or writing the socket failed.
    #[error("pebble at {}: {request}: {source}", socket.display())]
    Io {
        socket: PathBuf,
        request: String,
        #[source]
        source: io::Error,
    },

    /// The daemon answered with an error envelope.
    #[error("pebble at {}: {message} ({status})", socket.display())]
    Api {
        socket: PathBuf,
        /// HTTP status code (400, 404, 500, ...).
        status: u16,
        /// Error kind such as `not-found` or `no-default-services`, when given.
        kind: Option<String>,
        message: String,
    },

    /// A change the client waited for finished in the `Error` state.
    #[error(
        "pebble at {}: change {id} ({kind}) failed: {err}{}",
        socket.display(),
        format_logs(task_logs)
    )]
    Change {
        socket: PathBuf,
        id: String,
        kind: String,
        /// The change's `err` text as Pebble reports it.
        err: String,
        /// Log lines of the failing tasks (the service's last output lines
        /// for a failed start).
        task_logs: Vec<String>,
    },

    /// A per-path failure of a file operation (push, pull, list, make-dir,
    /// remove).
    #[error("pebble at {}: {path}: {message} ({kind})", socket.display())]
    Path {
        socket: PathBuf,
        path: String,
        /// `not-found`, `permission-denied`, `generic-file-error`, ...
        kind: String,
        message: String,
    },

    /// The change did not become ready before the caller's deadline.
    #[error("pebble at {}: change {id} not ready after {timeout:?}", socket.display())]
    WaitTimeout {
        socket: PathBuf,
        id: String,
        timeout: Duration,
    },

    /// The daemon's reply could not be understood.
    #[error("pebble at {}: malformed reply: {message}", socket.display())]
    Protocol { socket: PathBuf, message: String },

    /// A layer could not be converted to or from YAML.
    #[error("layer YAML: {0}")]
    Yaml(String),
}

fn format_logs(logs: &[String]) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!("\n{}", logs.join("\n"))
    }
}

impl Error {
    /// True when Pebble could not be reached at all (socket missing or
    /// connection refused): the container is not ready yet.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }

    /// True for a missing path or object: a [`Error::Path`] of kind
    /// `not-found`, or an API error of kind `not-found` or status 404 (an
    /// unknown change id is a 404 without a kind).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Path { kind, .. } => kind == "not-found",
            Error::Api { kind, status, .. } => {
                *status == 404 || kind.as_deref() == Some("not-found")
            }
            _ => false,
        }
    }

    /// True when a call or a wait ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::WaitTimeout { .. })
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error kind reported by Pebble (API or path errors).
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => kind.as_deref(),
            Error::Path { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_message_is_operator_readable() {
        let e = Error::Api {
            socket: "/x/pebble.socket".into(),
            status: 400,
            kind: None,
            message: "cannot start services: service \"x\" does not exist".into(),
        };
        assert_eq!(
            e.to_string(),
            "pebble at /x/pebble.socket: cannot start services: service \"x\" does not exist (400)"
        );
    }

    #[test]
    fn change_message_includes_logs() {
        let e = Error::Change {
            socket: "/s".into(),
            id: "3".into(),
            kind: "start".into(),
            err: "boom".into(),
            task_logs: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "pebble at /s: change 3 (start) failed: boom\na\nb"
        );
    }

    #[test]
    fn helpers() {
        let nf = Error::Path {
            socket: "/s".into(),
            path: "/f".into(),
            kind: "not-found".into(),
            message: "stat /f: no such file or directory".into(),
        };
        assert!(nf.is_not_found());
        assert_eq!(nf.kind(), Some("not-found"));
        let c = Error::Connect {
            socket: "/s".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(c.is_connect());
        assert!(!c.is_not_found());
    }
}
