//! JujuLocal's error: what went wrong, with the underlying error kept as the source.
//!
//! Hook tools print `ERROR <display>` on stderr and exit 2 for [`Error::Usage`], 1 for
//! everything else; charms classify that text ("not found", "permission denied",
//! "cannot write relation settings" ...), so the display texts are part of the contract.

use std::fmt;
use std::path::PathBuf;

/// Which part of JujuLocal an error concerns: the first word of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The model on disk and the hook contexts next to it.
    Model,
    /// The charm being deployed or run.
    Charm,
    /// Pods: the containers a unit runs in.
    Pod,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Area::Model => "model",
            Area::Charm => "charm",
            Area::Pod => "pod",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong use of a command or hook tool (hook tools exit 2).
    #[error("{0}")]
    Usage(String),
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The unit may not see or change this.
    #[error("permission denied")]
    PermissionDenied,
    /// Juju refuses the request, for the reason given.
    #[error("{0}")]
    Refused(String),
    /// Something JujuLocal needs is missing or inconsistent (no dispatch, no pod ...).
    #[error("{area}: {message}")]
    Invalid { area: Area, message: String },
    #[error("{area}: {}: {source}", path.display())]
    Io {
        area: Area,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A system call or process without a file of its own failed.
    #[error("{area}: {what}: {source}")]
    Os {
        area: Area,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{area}: {}: {source}", path.display())]
    Json {
        area: Area,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{area}: {source}")]
    JsonEncode {
        area: Area,
        #[source]
        source: serde_json::Error,
    },
    #[error("{area}: {}: {source}", path.display())]
    Yaml {
        area: Area,
        path: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("{area}: {source}")]
    YamlEncode {
        area: Area,
        #[source]
        source: Box<serde_saphyr::SerializeError>,
    },
    /// Reading what a hook tool was given (a file, standard input) failed.
    #[error("{what}: {source}")]
    Input {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// What a hook tool was given is not the YAML (or JSON) it needs.
    #[error("{what}: {source}")]
    InputYaml {
        what: String,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("model: cannot read {}: {source} (create a model with `jujulocal bootstrap`)", path.display())]
    NoModel {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model: {} is corrupt: {source}", path.display())]
    CorruptModel {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no random bytes from the system: {0}")]
    Random(#[source] getrandom::Error),
    #[error(transparent)]
    Context(#[from] juju_hook::ContextError),
    #[error("hook {hook} failed on {unit}: {reason}")]
    HookFailed {
        unit: String,
        hook: String,
        reason: String,
    },
}

impl Error {
    pub fn invalid(area: Area, message: impl Into<String>) -> Self {
        Error::Invalid {
            area,
            message: message.into(),
        }
    }

    pub fn io(area: Area, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { area, path, source }
    }

    pub fn os(area: Area, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Error::Os { area, what, source }
    }

    /// The exit code of a hook tool or CLI command that failed with this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_tool_texts_and_exit_codes() {
        assert_eq!(Error::PermissionDenied.to_string(), "permission denied");
        assert_eq!(Error::PermissionDenied.exit_code(), 1);
        let usage = Error::Usage("no relation id specified".into());
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(usage.to_string(), "no relation id specified");
        let io = Error::io(Area::Model, "/m/model.json")(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ));
        assert!(io.to_string().starts_with("model: /m/model.json: "));
        assert!(std::error::Error::source(&io).is_some());
        assert_eq!(io.exit_code(), 1);
    }
}
