//! Secret URIs in every form Juju prints them, reduced to one bare ID.
//!
//! Juju names a secret `secret:<id>` in hook tools, `secret://<model-uuid>/<id>` in some
//! outputs, and the bare `<id>` in others; two names refer to the same secret when
//! their bare IDs are equal.

/// The bare ID of `secret:<id>`, `secret://<model-uuid>/<id>`, `secret:<model-uuid>/<id>` or `<id>`.
pub fn secret_id(uri: &str) -> &str {
    let s = uri.strip_prefix("secret:").unwrap_or(uri);
    let s = s.strip_prefix("//").unwrap_or(s);
    s.rsplit('/').next().unwrap_or(s)
}

/// The canonical `secret:<id>` form of any of the forms above (how hook environments
/// and `secret-add` name a secret in this model).
pub fn secret_uri(uri: &str) -> String {
    format!("secret:{}", secret_id(uri))
}

/// Whether two secret names (in any of the forms above) refer to the same secret.
pub fn same_secret(a: &str, b: &str) -> bool {
    secret_id(a) == secret_id(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_gives_the_bare_id() {
        for uri in [
            "secret:abc",
            "secret://0b5b5a54-0000-4000-8000-000000000000/abc",
            "secret:0b5b5a54-0000-4000-8000-000000000000/abc",
            "abc",
        ] {
            assert_eq!(secret_id(uri), "abc", "{uri}");
        }
        assert_eq!(secret_id(""), "");
    }

    #[test]
    fn same_secret_ignores_the_form() {
        assert!(same_secret("secret:abc", "secret://uuid/abc"));
        assert!(same_secret("abc", "secret:abc"));
        assert!(!same_secret("secret:abc", "secret:abd"));
        assert_eq!(secret_uri("secret://uuid/abc"), "secret:abc");
        assert_eq!(secret_uri("abc"), "secret:abc");
    }
}
