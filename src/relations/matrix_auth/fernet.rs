//! Fernet (the token format of Python's `cryptography.fernet`), as the `matrix_auth`
//! library uses it: the requirer encrypts its registration with the key the provider
//! shares. Only what the charm needs: make a key, decrypt a token (no time-to-live,
//! as the library decrypts without one). Pure, and never panics on any input.
//!
//! A key is 32 bytes in URL-safe base64: 16 bytes of HMAC-SHA256 signing key, then 16
//! bytes of AES-128 key. A token, also URL-safe base64, is
//! `0x80 | timestamp (8) | IV (16) | AES-128-CBC ciphertext, PKCS#7 | HMAC (32)`, the
//! HMAC taken over everything before it.

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{KeyInit, Mac};

/// Why a token cannot be decrypted. The messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FernetError {
    #[error("the encryption key is not 32 bytes of URL-safe base64")]
    BadKey,
    #[error("the token is not URL-safe base64")]
    NotBase64,
    #[error("the token is too short or its length is not a whole number of blocks")]
    BadLength,
    #[error("the token's version byte is not 0x80")]
    BadVersion,
    #[error(
        "the token's signature does not match the key (encrypted with another key, or altered)"
    )]
    BadSignature,
    #[error("the token's padding is invalid")]
    BadPadding,
}

const VERSION: u8 = 0x80;
const HEADER: usize = 1 + 8 + 16;
const MAC_LEN: usize = 32;

/// A Fernet key, split into its two halves.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Parses a key as `Fernet.generate_key()` writes it (padding optional).
    pub fn parse(text: &str) -> Result<Self, FernetError> {
        let text = text.trim();
        let bytes = URL_SAFE
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| FernetError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| FernetError::BadKey)?;
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&bytes[..16]);
        encryption.copy_from_slice(&bytes[16..]);
        Ok(Self {
            signing,
            encryption,
        })
    }

    /// A new random key from the OS generator.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        // 32 bytes always make a key.
        Self::parse(&URL_SAFE.encode(bytes))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }

    /// The key as `Fernet.generate_key()` writes it: URL-safe base64 with padding.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&self.signing);
        bytes[16..].copy_from_slice(&self.encryption);
        URL_SAFE.encode(bytes)
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        // HMAC takes a key of any length: 16 bytes cannot be refused.
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.signing)
            .unwrap_or_else(|_| unreachable!())
    }

    /// Decrypts a token: the signature is checked (in constant time) before anything
    /// is decrypted.
    pub fn decrypt(&self, token: &str) -> Result<Vec<u8>, FernetError> {
        let token = token.trim();
        let raw = URL_SAFE
            .decode(token)
            .or_else(|_| URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')))
            .map_err(|_| FernetError::NotBase64)?;
        if raw.len() < HEADER + 16 + MAC_LEN || (raw.len() - HEADER - MAC_LEN) & 0xf != 0 {
            return Err(FernetError::BadLength);
        }
        if raw[0] != VERSION {
            return Err(FernetError::BadVersion);
        }
        let (signed, tag) = raw.split_at(raw.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag)
            .map_err(|_| FernetError::BadSignature)?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&signed[9..HEADER]);
        let mut buf = signed[HEADER..].to_vec();
        let plain = cbc::Decryptor::<aes::Aes128>::new(&self.encryption.into(), &iv.into())
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(|_| FernetError::BadPadding)?;
        Ok(plain.to_vec())
    }

    /// Encrypts `plain` with a given timestamp and IV. The charm never encrypts: this is
    /// for its tests (the integration tests encrypt with Python's `cryptography`).
    pub fn encrypt_with(&self, plain: &[u8], timestamp: u64, iv: [u8; 16]) -> String {
        use aes::cipher::BlockModeEncrypt;
        let pad = 16 - plain.len() % 16;
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + pad, 0);
        // The buffer has room for the padding: this cannot fail.
        let ct = cbc::Encryptor::<aes::Aes128>::new(&self.encryption.into(), &iv.into())
            .encrypt_padded::<Pkcs7>(&mut buf, plain.len())
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let mut raw = vec![VERSION];
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(&ct);
        let mut mac = self.mac();
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE.encode(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published test vector of the Fernet specification.
    const SPEC_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const SPEC_TOKEN: &str = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";

    #[test]
    fn decrypts_the_specification_vector() {
        let key = Key::parse(SPEC_KEY).unwrap();
        assert_eq!(key.decrypt(SPEC_TOKEN).unwrap(), b"hello");
        assert_eq!(key.encode(), SPEC_KEY);
    }

    #[test]
    fn encrypts_the_specification_vector() {
        let key = Key::parse(SPEC_KEY).unwrap();
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(key.encrypt_with(b"hello", 499162800, iv), SPEC_TOKEN);
    }

    #[test]
    fn refuses_another_key_altered_tokens_and_garbage() {
        let key = Key::parse(SPEC_KEY).unwrap();
        let other = Key::generate().unwrap();
        assert_eq!(other.decrypt(SPEC_TOKEN), Err(FernetError::BadSignature));
        let mut altered = SPEC_TOKEN.as_bytes().to_vec();
        altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(key.decrypt(&altered), Err(FernetError::BadSignature));
        assert_eq!(key.decrypt("not a token!"), Err(FernetError::NotBase64));
        assert_eq!(key.decrypt("gAAA"), Err(FernetError::BadLength));
        assert_eq!(key.decrypt(""), Err(FernetError::BadLength));
        let mut v1 = URL_SAFE.decode(SPEC_TOKEN).unwrap();
        v1[0] = 0x81;
        assert_eq!(
            key.decrypt(&URL_SAFE.encode(v1)),
            Err(FernetError::BadVersion)
        );
        assert_eq!(Key::parse("short"), Err(FernetError::BadKey));
        assert_eq!(Key::parse(""), Err(FernetError::BadKey));
    }

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(Key::parse(&a.encode()).unwrap(), a);
        let token = a.encrypt_with(b"id: bridge\n", 1, [7; 16]);
        assert_eq!(a.decrypt(&token).unwrap(), b"id: bridge\n");
        assert_eq!(format!("{a:?}"), "Key(<redacted>)");
    }
}
