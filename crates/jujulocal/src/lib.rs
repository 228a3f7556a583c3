//! JujuLocal: a strict local stand-in for Juju.
//!
//! It keeps a model on disk, runs a charm the way Juju's unit agent does (same
//! environment, same event sequences, hook tools with the same flags, formats and
//! errors, changes committed only when a hook exits 0), and can run each unit in a
//! "pod": one real Pebble per workload container, each with its own filesystem view,
//! sharing one network.

pub mod cluster_net;
pub mod controller;
pub mod error;
pub mod exe;
pub mod flags;
pub mod journal;
pub mod juju_cli;
pub mod logfile;
pub mod meta;
pub mod model;
pub mod pebble_count;
pub mod pod;
pub mod status;
pub mod tools;
pub mod util;

pub use controller::Controller;
pub use error::{Area, Error};
/// The events JujuLocal delivers: the typed hook contract shared with the charm.
pub use juju_hook::{Event, RelationHook, RelationId, SecretHook, StorageHook};
