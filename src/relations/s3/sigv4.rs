//! AWS Signature Version 4 for S3 requests (pure): the canonical request, the string
//! to sign and the `Authorization` header, from the request's parts and a clock
//! reading. No I/O; [`super::client`] sends what this signs.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The SHA-256 of an empty payload, which GET and DELETE requests sign.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Percent-encodes as SigV4 wants: unreserved characters stay, `/` too when `path`.
pub fn uri_encode(value: &str, path: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (path && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string, sorted and encoded as it is both signed and sent.
pub fn canonical_query(query: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A UTC time as SigV4's `YYYYMMDD'T'HHMMSS'Z'` and the date part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmzDate {
    pub stamp: String,
    pub date: String,
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Splits seconds since the epoch into `(year, month, day, hour, minute, second)`.
pub fn utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

impl AmzDate {
    pub fn from_unix(secs: u64) -> Self {
        let (y, mo, d, h, mi, s) = utc(secs);
        AmzDate {
            stamp: format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
            date: format!("{y:04}{mo:02}{d:02}"),
        }
    }
}

/// What one request signs.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    pub method: &'a str,
    /// The path, already encoded (`uri_encode(.., true)`).
    pub path: &'a str,
    /// The canonical query ([`canonical_query`]).
    pub query: &'a str,
    /// Lower-case names; `host`, `x-amz-content-sha256` and `x-amz-date` must be here.
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub date: &'a AmzDate,
}

/// The canonical request of SigV4 (exposed for tests).
pub fn canonical_request(s: &Signing) -> (String, String) {
    let mut headers: Vec<(String, String)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            s.method, s.path, s.query, canonical_headers, signed, s.payload_sha256
        ),
        signed,
    )
}

/// The `Authorization` header value.
pub fn authorization(s: &Signing) -> String {
    let (request, signed) = canonical_request(s);
    let scope = format!("{}/{}/s3/aws4_request", s.date.date, s.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        s.date.stamp,
        sha256_hex(request.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", s.secret_key).as_bytes(),
        s.date.date.as_bytes(),
    );
    for part in [s.region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        s.access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The "GET Object" example of AWS's SigV4 documentation for S3.
    #[test]
    fn the_documented_get_object_example_signs_the_same() {
        let date = AmzDate {
            stamp: "20130524T000000Z".into(),
            date: "20130524".into(),
        };
        let headers = h(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let s = Signing {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
            region: "us-east-1",
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            date: &date,
        };
        assert_eq!(
            authorization(&s),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn queries_are_sorted_and_encoded() {
        assert_eq!(
            canonical_query(&[
                ("prefix", "a b/c".into()),
                ("list-type", "2".into()),
                ("continuation-token", "x+y=".into()),
            ]),
            "continuation-token=x%2By%3D&list-type=2&prefix=a%20b%2Fc"
        );
        assert_eq!(uri_encode("/b/k ey~.txt", true), "/b/k%20ey~.txt");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(AmzDate::from_unix(0).stamp, "19700101T000000Z");
        assert_eq!(AmzDate::from_unix(1_369_353_600).stamp, "20130524T000000Z");
        // A leap day.
        assert_eq!(AmzDate::from_unix(1_709_208_000).stamp, "20240229T120000Z");
        assert_eq!(AmzDate::from_unix(4_102_444_799).stamp, "20991231T235959Z");
    }
}
