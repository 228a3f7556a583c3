pub mod hash;
pub mod random;

/// Secret references (`secret:ID`, `secret://model/ID`, `ID`): the project's one
/// normaliser lives with the hook contract.
pub use juju_hook::{same_secret, secret_id, secret_uri};

/// Text from outside (a log line, a remote databag, Synapse's error) as one line of
/// at most 300 characters without control characters, for a status message.
pub fn bounded(text: &str) -> String {
    const MAX: usize = 300;
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX).collect();
    format!("{cut}…")
}
