//! The Synapse domain: configuration options, homeserver.yaml, Synapse's Pebble layer.

pub mod config;
