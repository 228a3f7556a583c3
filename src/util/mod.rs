pub mod hash;
pub mod random;

/// The bare ID of a secret reference (`secret:ID`, `secret://model/ID` or `ID`).
pub fn secret_id(s: &str) -> &str {
    let s = s.strip_prefix("secret:").unwrap_or(s);
    s.rsplit('/').next().unwrap_or(s)
}

/// Whether two secret references name the same secret.
pub fn same_secret(a: &str, b: &str) -> bool {
    secret_id(a) == secret_id(b)
}

/// A secret reference as a URI: `secret-info-get` prints bare IDs, `secret-add` URIs.
pub fn secret_uri(id: &str) -> String {
    if id.starts_with("secret:") {
        id.to_string()
    } else {
        format!("secret:{id}")
    }
}

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
