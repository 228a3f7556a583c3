//! The Synapse charm as a library: a pure core (state → desired files, layers, status)
//! and a thin effectful shell that talks to Juju (hook tools) and Pebble.

pub mod actions;
pub mod charm;
pub mod database;
pub mod juju;
pub mod nginx;
pub mod observability;
pub mod reconcile;
pub mod synapse;
#[cfg(test)]
pub mod testing;
pub mod util;
pub mod workload;
