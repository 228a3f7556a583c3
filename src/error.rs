//! The charm's error type: what can go wrong that no status can express. Expected
//! problems (bad config, a relation not ready, a workload that will not start) are
//! [`crate::status::Progress`] values instead; these errors fail the hook so Juju retries.

use crate::synapse::keys::KeysError;

#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error("Pebble in the {container} container: {source}")]
    Pebble {
        container: String,
        #[source]
        source: Box<pebble::Error>,
    },
    #[error("Synapse keys: {0}")]
    Keys(#[from] KeysError),
    #[error("preparing /data: {0}")]
    Data(#[source] std::io::Error),
}

/// Wraps a Pebble error with the container it came from.
pub fn pebble_err(container: &str) -> impl Fn(pebble::Error) -> CharmError + '_ {
    move |source| CharmError::Pebble {
        container: container.to_string(),
        source: Box::new(source),
    }
}

pub type CharmResult<T> = Result<T, CharmError>;
