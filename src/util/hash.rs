//! A stable content hash for change detection (FNV-1a, 64 bit): the same bytes give the
//! same hash in every build, so an upgrade of the charm alone never restarts Synapse.
//! Hand-written on purpose: the hash is stored in Pebble plans and decides restarts, so it
//! must never change; std's `DefaultHasher` may change between Rust releases, and FNV-1a
//! is fixed by definition and a few lines long.

pub fn fnv1a_hex<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        for b in (part.len() as u64).to_le_bytes().iter().chain(part) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::fnv1a_hex;

    #[test]
    fn stable_and_sensitive() {
        assert_eq!(fnv1a_hex([b"a".as_slice()]), fnv1a_hex([b"a".as_slice()]));
        assert_ne!(
            fnv1a_hex([b"ab".as_slice(), b"c"]),
            fnv1a_hex([b"a".as_slice(), b"bc"])
        );
        assert_eq!(fnv1a_hex(std::iter::empty()), "cbf29ce484222325");
    }
}
