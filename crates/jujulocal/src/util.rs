//! Small helpers: time stamps, identifiers, base64.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::Error;

pub use juju_hook::secret_id;

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(Error::Random)?;
    Ok(b)
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

pub fn uuid4() -> Result<String, Error> {
    let mut b: [u8; 16] = random_bytes()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// A 20-character secret ID in the alphabet Juju's xids use (base32hex, lower case).
pub fn secret_xid() -> Result<String, Error> {
    const ALPHA: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let b: [u8; 20] = random_bytes()?;
    Ok(b.iter().map(|x| ALPHA[(x % 32) as usize] as char).collect())
}

/// Juju's `#base64` values: standard or URL-safe alphabet, padding optional.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes base64 in either alphabet, ignoring line breaks.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let s: String = s.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    if s.contains(['-', '_']) {
        URL_SAFE.decode(s)
    } else {
        STANDARD.decode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(secret_id("secret:abc"), "abc");
        assert_eq!(secret_id("secret://uuid/abc"), "abc");
        assert_eq!(secret_id("abc"), "abc");
        assert_eq!(secret_xid().unwrap().len(), 20);
        assert_eq!(uuid4().unwrap().len(), 36);
        assert_ne!(uuid4().unwrap(), uuid4().unwrap());
        assert_eq!(now_rfc3339().len(), 24);
    }

    #[test]
    fn b64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(base64_decode("a*").is_err());
    }
}
