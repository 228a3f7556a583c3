//! What each concern reports, and the one unit status made of them.

use crate::juju::Status;

/// The outcome of one concern in this dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Ready,
    Waiting(String),
    Blocked(String),
}

/// The unit status: the first `blocked` concern wins, then every `waiting` one is named.
pub fn aggregate(results: &[Progress]) -> Status {
    if let Some(m) = results.iter().find_map(|r| match r {
        Progress::Blocked(m) => Some(m),
        _ => None,
    }) {
        return Status::blocked(m.clone());
    }
    let waiting: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            Progress::Waiting(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    if !waiting.is_empty() {
        return Status::waiting(waiting.join("; "));
    }
    Status::active()
}

/// As [`aggregate`]; an active unit names the options it cannot honour.
pub fn aggregate_with_notes(results: &[Progress], notes: &[String]) -> Status {
    match aggregate(results) {
        s if s.kind == crate::juju::StatusKind::Active && !notes.is_empty() => {
            Status::new(s.kind, notes.join("; "))
        }
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_wins_then_waiting_messages_are_joined() {
        use Progress::*;
        assert_eq!(aggregate(&[Ready, Ready]), Status::active());
        assert_eq!(
            aggregate(&[Waiting("a".into()), Ready, Waiting("b".into())]),
            Status::waiting("a; b")
        );
        assert_eq!(
            aggregate(&[Waiting("a".into()), Blocked("x".into())]),
            Status::blocked("x")
        );
        let notes = ["a has no effect".to_string()];
        assert_eq!(
            aggregate_with_notes(&[Ready], &notes),
            Status::new(crate::juju::StatusKind::Active, "a has no effect")
        );
        assert_eq!(
            aggregate_with_notes(&[Waiting("w".into())], &notes),
            Status::waiting("w")
        );
    }
}
