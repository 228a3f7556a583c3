//! The matrix-auth integration: the decision (pure) and whole dispatches against the
//! in-memory Juju model and Pebble.
