//! The Synapse domain: configuration options, keys, homeserver.yaml, Synapse's Pebble
//! layer, and Synapse's HTTP APIs (used by the actions).

pub mod admin;
pub mod check;
pub mod config;
pub mod desired;
pub mod homeserver;
pub mod keys;
pub mod layer;
pub mod reconcile;
pub mod version;
