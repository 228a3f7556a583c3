//! The Synapse charm as a library: a pure core (state → desired files, layers, status)
//! and a thin effectful shell that talks to Juju (hook tools) and Pebble.
//!
//! Rooms: [`charm`] (dispatch, the event table, the reconcile), [`juju`] (hook context
//! and tools), [`workload`] (Pebble), one per concern ([`peers`], [`keys`], [`synapse`],
//! [`nginx`], [`topology`]: who runs main and who runs workers, [`switch`]: taking over a
//! previous charm's data), [`relations`] (one module per integration), [`actions`]. See
//! `docs/explanation/architecture.md`.

pub mod actions;
pub mod charm;
pub mod error;
pub mod juju;
pub mod keys;
pub mod nginx;
pub mod peers;
pub mod relations;
pub mod status;
pub mod switch;
pub mod synapse;
#[cfg(test)]
pub mod testing;
pub mod topology;
pub mod util;
pub mod workload;
