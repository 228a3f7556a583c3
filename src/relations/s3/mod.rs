//! The `s3` interface, requirer side, shared by every endpoint that uses it (`media`
//! and `backup`): the typed connection info read from the provider's application
//! databag (s3-integrator, through the data-platform `s3` library), its validation
//! ([`parse`]), the bucket request this charm publishes ([`BucketRequest`]) and the
//! reading of one endpoint's relation ([`read`]).
//!
//! Nothing here knows which endpoint it serves: `media` and `backup` each call it
//! with their own endpoint name and decide what the info means for them.
//!
//! The provider's databag (interface `s3`, LIBAPI 0): `access-key` and `secret-key`
//! (required: until both are there the library reports no credentials), `bucket`,
//! `path`, `endpoint`, `region`, `s3-uri-style` (`host` | `path`), `storage-class`,
//! `s3-api-version`, `delete-older-than-days`, and the JSON lists `tls-ca-chain` and
//! `attributes`. The provider also keeps its own `data` key there (the library's diff
//! of the requirer's bag), which means nothing to the requirer.

use std::fmt;

pub mod client;
pub mod sigv4;
pub mod xml;

use crate::juju::{Databag, HookTools, RelationId, ToolResult};
use crate::relations::{Leaving, Publish};

/// How the bucket is addressed on the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriStyle {
    /// Virtual-hosted style (`https://<bucket>.<endpoint host>/key`), the default.
    Host,
    /// Path style (`https://<endpoint host>/<bucket>/key`).
    Path,
}

impl UriStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            UriStyle::Host => "host",
            UriStyle::Path => "path",
        }
    }
}

/// The connection info of one `s3` relation, validated. The two keys never show in
/// `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Info {
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    /// The prefix inside the bucket: empty, or without a leading `/` and ending in `/`.
    pub path: String,
    /// `http(s)://host[:port][/...]`, without a trailing `/`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub uri_style: UriStyle,
    pub storage_class: Option<String>,
    pub s3_api_version: Option<String>,
    pub delete_older_than_days: Option<u32>,
    /// PEM certificates to trust for `https` endpoints.
    pub tls_ca_chain: Vec<String>,
    pub attributes: Vec<String>,
}

impl fmt::Debug for S3Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Info")
            .field("access_key", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field("bucket", &self.bucket)
            .field("path", &self.path)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("uri_style", &self.uri_style)
            .field("storage_class", &self.storage_class)
            .field("s3_api_version", &self.s3_api_version)
            .field("delete_older_than_days", &self.delete_older_than_days)
            .field("tls_ca_chain", &self.tls_ca_chain.len())
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Why a provider's databag cannot be used. [`S3Error::MissingCredentials`] means
/// "not yet" (the provider has not been given credentials); the others are invalid
/// data the operator must fix on the provider. Messages never contain the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    #[error("no {} yet", .0.join(" or "))]
    MissingCredentials(Vec<&'static str>),
    #[error("{0} is empty or holds control characters or spaces")]
    BadCredential(&'static str),
    #[error("no bucket")]
    NoBucket,
    #[error("bucket {0:?} is not a valid bucket name (3-63 letters, digits, '.', '-' or '_', starting and ending with a letter or digit)")]
    BadBucket(String),
    #[error("neither endpoint nor region is set")]
    NoLocation,
    #[error("endpoint {0:?} is not an http:// or https:// URL with a host")]
    BadEndpoint(String),
    #[error("region {0:?} is not a region name (letters, digits and '-')")]
    BadRegion(String),
    #[error("s3-uri-style {0:?} is neither \"host\" nor \"path\"")]
    BadUriStyle(String),
    #[error("path {0:?} holds control characters, a '..' segment or a backslash")]
    BadPath(String),
    #[error("storage-class {0:?} is not a storage class name")]
    BadStorageClass(String),
    #[error("delete-older-than-days {0:?} is not a whole number of days from 1 to 9999999")]
    BadDays(String),
    #[error("{key} is not a JSON list of strings: {reason}")]
    BadList { key: &'static str, reason: String },
    #[error("tls-ca-chain entry {0} is not a PEM certificate")]
    BadCertificate(usize),
}

impl S3Error {
    /// Whether the provider simply has not answered yet (wait), rather than answered
    /// with something unusable (block).
    pub fn is_pending(&self) -> bool {
        matches!(self, S3Error::MissingCredentials(_))
    }
}

/// A value from the provider, quoted (`{:?}`) in a message: one line, at most 64
/// characters once quoted, counting the escapes `{:?}` writes for characters that do
/// not print (a `\u{e000}` is 8).
fn shown(text: &str) -> String {
    let one_line = crate::util::bounded(text);
    let mut out = String::new();
    let mut width = 0;
    for c in one_line.chars() {
        width += c.escape_debug().count();
        if width > 64 {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

fn field<'a>(bag: &'a Databag, key: &str) -> Option<&'a str> {
    bag.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn credential(bag: &Databag, key: &'static str) -> Result<String, S3Error> {
    let raw = bag.get(key).map(String::as_str).unwrap_or_default();
    if raw.is_empty() || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(S3Error::BadCredential(key));
    }
    Ok(raw.to_string())
}

/// S3's bucket naming rules, relaxed as S3-compatible stores are (underscores and
/// upper case are accepted by several): 3-63 characters of letters, digits, `.`, `-`,
/// `_`, starting and ending with a letter or digit.
pub fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `http(s)://host[:port][/path]` with a plausible host; returned without a trailing `/`.
pub fn normalise_endpoint(raw: &str) -> Option<String> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))?;
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            (addr.parse::<std::net::Ipv6Addr>().is_ok(), after)
        }
        None => {
            let (host, port) = authority
                .split_once(':')
                .map_or((authority, ""), |(h, _)| (h, &authority[h.len()..]));
            (
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
                port,
            )
        }
    };
    let port_ok = match port {
        "" => true,
        p => p
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p > 0),
    };
    (host_ok && port_ok).then(|| raw.trim_end_matches('/').to_string())
}

/// The path as a key prefix: no leading `/`, a trailing `/` unless empty.
fn normalise_path(raw: &str) -> Result<String, S3Error> {
    let trimmed = raw.trim_matches('/');
    if raw.chars().any(char::is_control)
        || raw.contains('\\')
        || trimmed.split('/').any(|s| s == ".." || s == ".")
        || trimmed.contains("//")
    {
        return Err(S3Error::BadPath(raw.to_string()));
    }
    Ok(if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    })
}

fn string_list(bag: &Databag, key: &'static str) -> Result<Vec<String>, S3Error> {
    match field(bag, key) {
        None => Ok(vec![]),
        Some(raw) => serde_json::from_str::<Vec<String>>(raw).map_err(|e| S3Error::BadList {
            key,
            reason: shown(&e.to_string()),
        }),
    }
}

/// The connection info in a provider's application databag (pure). Validation as the
/// reference charm's, made explicit: credentials required, a bucket, an endpoint or a
/// region, `path` defaults to empty, `s3-uri-style` to `host`.
pub fn parse(bag: &Databag) -> Result<S3Info, S3Error> {
    let missing: Vec<&'static str> = ["access-key", "secret-key"]
        .into_iter()
        .filter(|k| !bag.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(S3Error::MissingCredentials(missing));
    }
    let access_key = credential(bag, "access-key")?;
    let secret_key = credential(bag, "secret-key")?;
    let bucket = field(bag, "bucket").ok_or(S3Error::NoBucket)?;
    if !valid_bucket(bucket) {
        return Err(S3Error::BadBucket(shown(bucket)));
    }
    let endpoint = match field(bag, "endpoint") {
        None => None,
        Some(raw) => Some(normalise_endpoint(raw).ok_or_else(|| S3Error::BadEndpoint(shown(raw)))?),
    };
    let region = match field(bag, "region") {
        None => None,
        Some(r) if r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Some(r.to_string())
        }
        Some(r) => return Err(S3Error::BadRegion(shown(r))),
    };
    if endpoint.is_none() && region.is_none() {
        return Err(S3Error::NoLocation);
    }
    let uri_style = match field(bag, "s3-uri-style") {
        None | Some("host") => UriStyle::Host,
        Some("path") => UriStyle::Path,
        Some(other) => return Err(S3Error::BadUriStyle(shown(other))),
    };
    let path = normalise_path(bag.get("path").map(String::as_str).unwrap_or_default())
        .map_err(|_| S3Error::BadPath(shown(bag.get("path").map_or("", |p| p))))?;
    let storage_class = match field(bag, "storage-class") {
        None => None,
        Some(s) if s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Some(s.to_string())
        }
        Some(s) => return Err(S3Error::BadStorageClass(shown(s))),
    };
    let delete_older_than_days = match field(bag, "delete-older-than-days") {
        None => None,
        Some(d) => Some(
            d.parse::<u32>()
                .ok()
                .filter(|n| (1..=9_999_999).contains(n))
                .ok_or_else(|| S3Error::BadDays(shown(d)))?,
        ),
    };
    let tls_ca_chain = string_list(bag, "tls-ca-chain")?;
    if let Some(i) = tls_ca_chain.iter().position(|c| {
        !c.contains("-----BEGIN CERTIFICATE-----") || !c.contains("-----END CERTIFICATE-----")
    }) {
        return Err(S3Error::BadCertificate(i));
    }
    let attributes = string_list(bag, "attributes")?;
    Ok(S3Info {
        access_key,
        secret_key,
        bucket: bucket.to_string(),
        path,
        endpoint,
        region,
        uri_style,
        storage_class,
        s3_api_version: field(bag, "s3-api-version").map(str::to_string),
        delete_older_than_days,
        tls_ca_chain,
        attributes,
    })
}

/// What the requirer publishes in its application databag: the bucket it would like
/// (the library's `S3Requirer` writes it when the relation is joined; s3-integrator
/// answers a relation only once it is there, and uses its own `bucket` option first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRequest {
    pub bucket: String,
}

impl Publish for BucketRequest {
    const KEYS: &'static [&'static str] = &["bucket"];

    fn to_databag(&self) -> Databag {
        Databag::from([("bucket".to_string(), self.bucket.clone())])
    }
}

/// One endpoint's live `s3` relation, as read in this dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub relation: RelationId,
    /// What the provider's databag holds now.
    pub info: Result<S3Info, S3Error>,
}

/// Reads `endpoint`'s relation, `None` without one (the endpoint has `limit: 1`; a
/// relation being broken counts as gone), and the provider's application databag.
/// With `request` (the caller passes it on the leader only), publishes the bucket
/// request first, writing only what changed.
pub fn read(
    tools: &dyn HookTools,
    endpoint: &str,
    own_app: &str,
    leaving: &Leaving,
    request: Option<&BucketRequest>,
) -> ToolResult<Option<Related>> {
    let Some(relation) = tools
        .relation_ids(endpoint)?
        .into_iter()
        .find(|r| Some(r) != leaving.broken)
    else {
        return Ok(None);
    };
    if let Some(req) = request {
        let own = tools.relation_get(&relation, own_app, true)?;
        if crate::relations::publish_value(tools, &relation, true, &own, req)? {
            tracing::info!(%endpoint, bucket = %req.bucket, "asked the S3 provider for a bucket");
        }
    }
    let bag = match tools.relation_remote_app(&relation)? {
        Some(remote) => tools.relation_get(&relation, &remote, true)?,
        None => Databag::new(),
    };
    Ok(Some(Related {
        relation,
        info: parse(&bag),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_does_not_print_is_quoted_short() {
        let bucket: String = std::iter::repeat_n('\u{e000}', 80).collect();
        let msg = parse(&bag(&[
            ("access-key", "a"),
            ("secret-key", "b"),
            ("bucket", &bucket),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            msg.chars().count() < 200,
            "{} chars: {msg}",
            msg.chars().count()
        );
        assert!(msg.contains(r"\u{e000}"), "{msg}");
        assert!(msg.contains('…'), "{msg}");
    }

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> Databag {
        bag(&[
            ("access-key", "AKIA123"),
            ("secret-key", "s3cr3t/+="),
            ("bucket", "synapse-media"),
            ("endpoint", "http://127.0.0.1:9000/"),
            ("data", "{\"bucket\": \"synapse-media\"}"),
        ])
    }

    #[test]
    fn a_complete_databag_parses_with_the_reference_defaults() {
        let info = parse(&good()).expect("valid");
        assert_eq!(info.bucket, "synapse-media");
        assert_eq!(info.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(info.region, None);
        assert_eq!(info.path, "");
        assert_eq!(info.uri_style, UriStyle::Host);
        assert!(info.tls_ca_chain.is_empty());
    }

    #[test]
    fn every_field_is_read() {
        let mut b = good();
        for (k, v) in [
            ("path", "/synapse/media/"),
            ("region", "eu-west-1"),
            ("s3-uri-style", "path"),
            ("storage-class", "STANDARD_IA"),
            ("s3-api-version", "4"),
            ("delete-older-than-days", "30"),
            (
                "tls-ca-chain",
                "[\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\"]",
            ),
            ("attributes", "[\"a:b\"]"),
        ] {
            b.insert(k.into(), v.into());
        }
        let info = parse(&b).expect("valid");
        assert_eq!(info.path, "synapse/media/");
        assert_eq!(info.region.as_deref(), Some("eu-west-1"));
        assert_eq!(info.uri_style, UriStyle::Path);
        assert_eq!(info.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(info.s3_api_version.as_deref(), Some("4"));
        assert_eq!(info.delete_older_than_days, Some(30));
        assert_eq!(info.tls_ca_chain.len(), 1);
        assert_eq!(info.attributes, vec!["a:b".to_string()]);
    }

    #[test]
    fn no_credentials_yet_is_pending_not_invalid() {
        let mut b = good();
        b.remove("secret-key");
        let e = parse(&b).unwrap_err();
        assert!(e.is_pending());
        assert_eq!(e.to_string(), "no secret-key yet");
        let e = parse(&Databag::new()).unwrap_err();
        assert_eq!(e.to_string(), "no access-key or secret-key yet");
    }

    #[test]
    fn invalid_data_names_the_field_and_never_the_keys() {
        let cases: &[(&str, &str, &str)] = &[
            ("bucket", "", "no bucket"),
            ("bucket", "a", "bucket \"a\" is not a valid bucket name"),
            ("bucket", "-bad-", "bucket \"-bad-\""),
            ("endpoint", "ftp://x", "endpoint \"ftp://x\""),
            ("endpoint", "http://", "endpoint \"http://\""),
            ("endpoint", "http://h:99999", "endpoint \"http://h:99999\""),
            ("endpoint", "http://a b", "endpoint"),
            ("s3-uri-style", "virtual", "s3-uri-style \"virtual\""),
            ("path", "a/../b", "path \"a/../b\""),
            (
                "delete-older-than-days",
                "0",
                "delete-older-than-days \"0\"",
            ),
            (
                "tls-ca-chain",
                "not json",
                "tls-ca-chain is not a JSON list",
            ),
            ("tls-ca-chain", "[\"x\"]", "tls-ca-chain entry 0"),
            ("region", "eu west", "region \"eu west\""),
        ];
        for (k, v, want) in cases {
            let mut b = good();
            b.insert(k.to_string(), v.to_string());
            let e = parse(&b).unwrap_err();
            assert!(!e.is_pending(), "{k}={v}");
            let msg = e.to_string();
            assert!(msg.starts_with(want), "{k}={v}: {msg}");
            assert!(!msg.contains("AKIA123") && !msg.contains("s3cr3t"), "{msg}");
        }
        let mut b = good();
        b.remove("endpoint");
        assert_eq!(parse(&b).unwrap_err(), S3Error::NoLocation);
        b.insert("region".into(), "us-east-1".into());
        assert!(parse(&b).is_ok());
        let mut b = good();
        b.insert("secret-key".into(), "two words".into());
        assert_eq!(
            parse(&b).unwrap_err().to_string(),
            "secret-key is empty or holds control characters or spaces"
        );
    }

    #[test]
    fn debug_output_hides_the_keys() {
        let shown = format!("{:?}", parse(&good()));
        assert!(
            !shown.contains("AKIA123") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(shown.contains("synapse-media"));
    }

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalise_endpoint("https://s3.example.com").as_deref(),
            Some("https://s3.example.com")
        );
        assert_eq!(
            normalise_endpoint("http://[::1]:9000/").as_deref(),
            Some("http://[::1]:9000")
        );
        assert_eq!(normalise_endpoint("http://[zz]:1"), None);
        assert_eq!(normalise_endpoint("s3.example.com"), None);
    }

    #[test]
    fn the_bucket_request_owns_its_key() {
        let r = BucketRequest {
            bucket: "synapse-media".into(),
        };
        assert_eq!(r.to_databag(), bag(&[("bucket", "synapse-media")]));
        assert_eq!(BucketRequest::KEYS, &["bucket"]);
    }
}
