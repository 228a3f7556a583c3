//! Synchronous client for the [Pebble](https://github.com/canonical/pebble)
//! service manager's HTTP API over its unix socket.
//!
//! ```no_run
//! use std::time::Duration;
//! use pebble::{Client, Layer, Service, Startup};
//!
//! let client = Client::new("/charm/containers/app/pebble.socket");
//! let mut layer = Layer::default();
//! let mut svc = Service::new("/usr/bin/app --serve");
//! svc.startup = Some(Startup::Enabled);
//! layer.services.insert("app".into(), svc);
//! client.add_layer("app", &layer, true)?;
//! client.replan(Duration::from_secs(30))?;
//! # Ok::<(), pebble::Error>(())
//! ```

pub mod client;
pub mod duration;
pub mod error;
pub mod http;
pub mod layer;
pub mod multipart;
pub mod types;

pub use client::{Client, ExecOptions, ExecOutput, LogEntry, StreamedOutput, DEFAULT_TIMEOUT};
pub use duration::{GoDuration, ParseDurationError};
pub use error::{Error, Result};
pub use http::{Request, Response, Transport, UnixTransport};
pub use layer::{
    Check, CheckLevel, ExecCheck, HttpCheck, Layer, LogTarget, LogTargetType, Override, Service,
    ServiceAction, Startup, TcpCheck,
};
pub use types::{
    Change, CheckInfo, CheckStatus, FileInfo, FileType, MakeDirOptions, Notice, PushOptions,
    ServiceInfo, ServiceStatus, Status, SystemInfo, Task, TaskProgress,
};
