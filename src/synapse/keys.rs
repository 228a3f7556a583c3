//! Synapse's secrets: generated once by the leader, kept in a Juju application secret,
//! and never changed afterwards (across hooks, pod churn, upgrades and leader changes).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::util::random;

/// Label of the application secret that holds the keys.
pub const SECRET_LABEL: &str = "synapse-keys";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynapseKeys {
    pub registration_shared_secret: String,
    pub macaroon_secret_key: String,
    pub form_secret: String,
    /// Synapse's signing key file content: `ed25519 <key id> <unpadded base64 seed>`.
    pub signing_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read random bytes: {0}")]
    Random(#[from] std::io::Error),
    #[error("the keys secret lacks {0:?}")]
    Missing(&'static str),
    #[error("the signing key in the keys secret is malformed")]
    BadSigningKey,
}

const FIELDS: [&str; 4] = [
    "registration-shared-secret",
    "macaroon-secret-key",
    "form-secret",
    "signing-key",
];

impl SynapseKeys {
    pub fn generate() -> Result<Self, KeysError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(std::io::Error::from)?;
        let key_id = format!("a_{}", random::alphanumeric(4)?);
        Ok(Self {
            registration_shared_secret: random::alphanumeric(48)?,
            macaroon_secret_key: random::alphanumeric(48)?,
            form_secret: random::alphanumeric(48)?,
            signing_key: format!("ed25519 {key_id} {}\n", STANDARD_NO_PAD.encode(seed)),
        })
    }

    /// Stand-in values of the same shape, to render the configuration around the keys.
    pub fn placeholder() -> Self {
        Self {
            registration_shared_secret: "<registration-shared-secret>".into(),
            macaroon_secret_key: "<macaroon-secret-key>".into(),
            form_secret: "<form-secret>".into(),
            signing_key: "<signing-key>".into(),
        }
    }

    /// The signing key's id (`a_XXXX`): public, and unique to these keys.
    pub fn key_id(&self) -> String {
        self.signing_key
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// Secret content (Juju secret keys: lowercase, digits and dashes).
    pub fn to_content(&self) -> BTreeMap<String, String> {
        let vals = [
            &self.registration_shared_secret,
            &self.macaroon_secret_key,
            &self.form_secret,
            &self.signing_key,
        ];
        FIELDS
            .iter()
            .zip(vals)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    pub fn from_content(c: &BTreeMap<String, String>) -> Result<Self, KeysError> {
        let get = |k: &'static str| {
            c.get(k)
                .cloned()
                .filter(|v| !v.is_empty())
                .ok_or(KeysError::Missing(k))
        };
        let keys = Self {
            registration_shared_secret: get(FIELDS[0])?,
            macaroon_secret_key: get(FIELDS[1])?,
            form_secret: get(FIELDS[2])?,
            signing_key: get(FIELDS[3])?,
        };
        let parts: Vec<&str> = keys.signing_key.split_whitespace().collect();
        if parts.len() != 3 || parts[0] != "ed25519" || !parts[1].starts_with("a_") {
            return Err(KeysError::BadSigningKey);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = SynapseKeys::generate().unwrap();
        let b = SynapseKeys::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SynapseKeys::from_content(&a.to_content()).unwrap(), a);
        let parts: Vec<&str> = a.signing_key.split_whitespace().collect();
        assert_eq!(parts[0], "ed25519");
        assert_eq!(parts[1].len(), 6);
        // 32 bytes, unpadded base64 = 43 characters.
        assert_eq!(parts[2].len(), 43);
        assert!(a.signing_key.ends_with('\n'));
    }

    #[test]
    fn missing_or_bad_fields_are_reported() {
        let mut c = SynapseKeys::generate().unwrap().to_content();
        c.remove("form-secret");
        assert!(matches!(
            SynapseKeys::from_content(&c),
            Err(KeysError::Missing("form-secret"))
        ));
        let mut c = SynapseKeys::generate().unwrap().to_content();
        c.insert("signing-key".into(), "rsa x y".into());
        assert!(matches!(
            SynapseKeys::from_content(&c),
            Err(KeysError::BadSigningKey)
        ));
    }
}
