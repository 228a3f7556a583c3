//! JujuLocal: a strict local stand-in for Juju.
//!
//! It keeps a model on disk, runs a charm the way Juju's unit agent does (same
//! environment, same event sequences, hook tools with the same flags, formats and
//! errors, changes committed only when a hook exits 0), and can run each unit in a
//! "pod": one real Pebble per workload container, each with its own filesystem view,
//! sharing one network.

pub mod controller;
pub mod flags;
pub mod journal;
pub mod meta;
pub mod model;
pub mod pod;
pub mod status;
pub mod tools;
pub mod util;

pub use controller::{Controller, HookSpec};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    #[error("model: {0}")]
    Model(String),
    #[error("charm: {0}")]
    Charm(String),
    #[error("pod: {0}")]
    Pod(String),
    #[error("hook {hook} failed on {unit}: {reason}")]
    HookFailed {
        unit: String,
        hook: String,
        reason: String,
    },
}
