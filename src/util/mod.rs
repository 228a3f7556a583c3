pub mod hash;
pub mod random;

/// Whether two secret references name the same secret (`secret:ID`, `secret://model/ID`, `ID`).
pub fn same_secret(a: &str, b: &str) -> bool {
    fn id(s: &str) -> &str {
        let s = s.strip_prefix("secret:").unwrap_or(s);
        s.rsplit('/').next().unwrap_or(s)
    }
    id(a) == id(b)
}
