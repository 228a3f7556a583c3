//! Random strings for secrets and names, from the OS generator (`getrandom`).

/// A random string of `len` characters from `[A-Za-z0-9]`, without modulo bias.
pub fn alphanumeric(len: usize) -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for b in buf {
            // 62 * 4 = 248: reject 248..=255 to keep the distribution uniform.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A random token of 16 hex digits (for plans: changes when something changed,
/// derived from nothing).
pub fn token() -> std::io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn alphanumeric_has_requested_length_and_alphabet() {
        let s = super::alphanumeric(100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, super::alphanumeric(100).unwrap());
    }
}
