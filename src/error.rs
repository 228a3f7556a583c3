//! The charm's error type: what can go wrong that no status can express. Expected
//! problems (bad config, a relation not ready, a workload that will not start) are
//! [`crate::status::Progress`] values instead; these errors fail the hook so Juju retries.

use crate::synapse::keys::KeysError;

#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
    #[error("Pebble in the {container} container")]
    Pebble {
        container: String,
        #[source]
        source: Box<pebble::Error>,
    },
    #[error("Synapse keys")]
    Keys(#[from] KeysError),
    #[error("preparing /data")]
    Data(#[source] std::io::Error),
    /// Taking over a previous charm's data is unsafe: the message says what to do
    /// (shown as `blocked`, see [`crate::switch`]).
    #[error("{0}")]
    Unsafe(String),
    #[error("generating a random key")]
    Random(#[source] std::io::Error),
}

/// Wraps a Pebble error with the container it came from.
pub fn pebble_err(container: &str) -> impl Fn(pebble::Error) -> CharmError + '_ {
    move |source| CharmError::Pebble {
        container: container.to_string(),
        source: Box::new(source),
    }
}

pub type CharmResult<T> = Result<T, CharmError>;

/// A container whose Pebble went away in the middle of a step is not an error of the
/// hook: the step reports `waiting`, and its pebble-ready brings the work back.
pub fn unreachable_is_waiting(
    result: CharmResult<crate::status::Progress>,
) -> CharmResult<crate::status::Progress> {
    match result {
        Err(CharmError::Pebble { container, source }) if source.is_connect() => {
            tracing::warn!(%container, "Pebble went away during the hook: {source}");
            Ok(crate::workload::unreachable(&container))
        }
        other => other,
    }
}

/// An error and its causes on one line, each once: `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        // Some library errors already show their cause: do not repeat it.
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let e = pebble_err("synapse")(pebble::Error::Connect {
            socket: "/charm/containers/synapse/pebble.socket".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        let text = chain(&e);
        assert!(
            text.starts_with("Pebble in the synapse container: "),
            "{text}"
        );
        let io = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
        assert_eq!(text.matches(&io).count(), 1, "{text}");
        let e = CharmError::Data(std::io::Error::other("permission denied"));
        assert_eq!(chain(&e), "preparing /data: permission denied");
    }
}
