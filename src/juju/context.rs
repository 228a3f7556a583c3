//! Who and where this dispatch runs: defined in the shared `juju-hook` crate;
//! re-exported here for the charm's paths.

pub use juju_hook::context::HookContext;
