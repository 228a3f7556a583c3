//! The Juju hook contract, shared by the charm and JujuLocal.
//!
//! Juju tells a charm what happened through environment variables: the dispatch path
//! (`hooks/<name>` or `actions/<name>`) and the variables of the event's kind
//! (`JUJU_RELATION_ID`, `JUJU_SECRET_ID`, ...). [`HookContext::from_env`] reads them
//! into typed values; [`HookContext::to_env`] writes them, so that a stand-in for Juju
//! sets exactly what the charm reads.

pub mod context;
pub mod event;
pub mod secret;

pub use context::HookContext;
pub use event::{
    parse_event, ContextError, Env, Event, ProcessEnv, RelationHook, RelationId, SecretHook,
    StorageHook,
};
pub use secret::{same_secret, secret_id, secret_uri};
