//! The Synapse domain: configuration options, keys, homeserver.yaml, Synapse's Pebble layer.

pub mod config;
pub mod homeserver;
pub mod keys;
pub mod layer;
