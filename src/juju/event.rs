//! The typed Juju event: defined in the shared `juju-hook` crate (the hook contract
//! the charm and JujuLocal both follow); re-exported here for the charm's paths.

pub use juju_hook::event::{
    parse_event, ContextError, Env, Event, ProcessEnv, RelationHook, RelationId, SecretHook,
    StorageHook,
};
