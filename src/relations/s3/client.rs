//! A small blocking S3 client for the backups: list, ranged get, put, multipart upload
//! and delete, signed with SigV4 ([`super::sigv4`]) and sent with [`http1`] (one
//! request per connection). Bodies are held one part at a time, never a whole object.
//!
//! Only `http://` endpoints: [`http1`] has no TLS, so an `https://` endpoint or an AWS
//! region without an endpoint is refused with [`ClientError::Https`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http1::{Request, Response};

use super::sigv4::{self, AmzDate, Signing};
use super::xml::{escape, parse_list, tag};
use super::{S3Info, UriStyle};

/// Size of the parts of a multipart upload and of the ranges of a download. S3's
/// minimum part is 5 MiB; 8 MiB parts allow backups up to 80 GB (10000 parts).
pub const PART_SIZE: usize = 8 << 20;
/// A request (one part) that takes longer than this has failed.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The region signed when the provider gives only an endpoint.
const DEFAULT_REGION: &str = "us-east-1";

/// Why an S3 request failed. Messages never hold the credentials.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the S3 endpoint {0:?} uses https, which this charm's S3 client does not support yet; use an http endpoint")]
    Https(String),
    #[error("cannot reach the S3 endpoint {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("S3 refused {request}: HTTP {status} {code}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Refused {
        request: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("S3 answered {request} with something unexpected: {0}", .reason)]
    Protocol { request: String, reason: String },
}

impl ClientError {
    /// The S3 error code (`NoSuchKey`, `NoSuchBucket`, `AccessDenied`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    /// As S3 gives it, e.g. `2024-05-24T10:00:00.000Z`.
    pub last_modified: String,
    pub size: u64,
}

/// A bucket on an endpoint, with the credentials to use it.
#[derive(Clone)]
pub struct Bucket {
    endpoint: String,
    /// `host[:port]` of the endpoint.
    authority: String,
    /// A path the endpoint sits under (usually empty).
    base_path: String,
    bucket: String,
    region: String,
    virtual_host: bool,
    access_key: String,
    secret_key: String,
    timeout: Duration,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("virtual_host", &self.virtual_host)
            .finish_non_exhaustive()
    }
}

/// Whether `host` is an IP address or `localhost`, where only path style works.
fn literal_host(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() || host == "localhost"
}

impl Bucket {
    pub fn new(info: &S3Info) -> ClientResult<Self> {
        let endpoint = match &info.endpoint {
            Some(e) => e.clone(),
            None => {
                let region = info.region.as_deref().unwrap_or(DEFAULT_REGION);
                return Err(ClientError::Https(format!(
                    "https://s3.{region}.amazonaws.com"
                )));
            }
        };
        let Some(rest) = endpoint.strip_prefix("http://") else {
            return Err(ClientError::Https(endpoint));
        };
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => authority,
        };
        Ok(Bucket {
            authority: authority.to_string(),
            base_path: base.trim_matches('/').to_string(),
            bucket: info.bucket.clone(),
            region: info
                .region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
            virtual_host: info.uri_style == UriStyle::Host && !literal_host(host),
            access_key: info.access_key.clone(),
            secret_key: info.secret_key.clone(),
            endpoint,
            timeout: TIMEOUT,
        })
    }

    /// Bounds the connection and each read and write of every request (default 120 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// The `Host` header and encoded path of `key` (empty: the bucket itself).
    fn location(&self, key: &str) -> (String, String) {
        let mut path = String::from("/");
        if !self.base_path.is_empty() {
            path.push_str(&self.base_path);
            path.push('/');
        }
        let host = if self.virtual_host {
            format!("{}.{}", self.bucket, self.authority)
        } else {
            path.push_str(&self.bucket);
            if !key.is_empty() {
                path.push('/');
            }
            self.authority.clone()
        };
        path.push_str(key);
        (host, sigv4::uri_encode(&path, true))
    }

    /// Signs and sends one request.
    fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, String)],
        extra: &[(&str, String)],
        body: Vec<u8>,
    ) -> ClientResult<Response> {
        let (host, path) = self.location(key);
        let query = sigv4::canonical_query(query);
        let payload = if body.is_empty() {
            sigv4::EMPTY_SHA256.to_string()
        } else {
            sigv4::sha256_hex(&body)
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let date = AmzDate::from_unix(now);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            ("x-amz-content-sha256".into(), payload.clone()),
            ("x-amz-date".into(), date.stamp.clone()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let auth = sigv4::authorization(&Signing {
            method,
            path: &path,
            query: &query,
            headers: &headers,
            payload_sha256: &payload,
            region: &self.region,
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            date: &date,
        });
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut request = Request::new(method, target);
        for (n, v) in headers {
            request = request.header(&n, v);
        }
        request = request.header("Authorization", auth).body(body);
        let addr = self.resolve(&host)?;
        let response = http1::tcp_round_trip(addr, &request, self.timeout).map_err(|e| {
            ClientError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            }
        })?;
        if (200..300).contains(&response.status) {
            return Ok(response);
        }
        let text = String::from_utf8_lossy(&response.body);
        Err(ClientError::Refused {
            request: format!("{method} {}", describe(&self.bucket, key)),
            status: response.status,
            code: tag(&text, "Code").unwrap_or_default(),
            message: crate::util::bounded(&tag(&text, "Message").unwrap_or_default()),
        })
    }

    fn resolve(&self, host: &str) -> ClientResult<SocketAddr> {
        let with_port = if host.rsplit_once(':').is_some_and(|(h, p)| {
            !h.ends_with(':') && !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())
        }) && !host.ends_with(']')
        {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let unreachable = |reason: String| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        };
        with_port
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| unreachable(format!("{host} has no address")))
    }

    /// Whether the bucket exists and these credentials may list it.
    pub fn check(&self) -> ClientResult<()> {
        self.send(
            "GET",
            "",
            &[("list-type", "2".into()), ("max-keys", "1".into())],
            &[],
            vec![],
        )
        .map(drop)
    }

    /// Every object whose key starts with `prefix`, across pages.
    pub fn list(&self, prefix: &str) -> ClientResult<Vec<Object>> {
        let mut out = vec![];
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_string()), ("prefix", prefix.into())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let r = self.send("GET", "", &query, &[], vec![])?;
            let text = String::from_utf8_lossy(&r.body);
            let page = parse_list(&text).map_err(|reason| ClientError::Protocol {
                request: format!("list {}", self.bucket),
                reason,
            })?;
            out.extend(page.objects);
            match page.next {
                Some(t) if page.truncated => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// The object with exactly this key, if there is one.
    pub fn find(&self, key: &str) -> ClientResult<Option<Object>> {
        Ok(self.list(key)?.into_iter().find(|o| o.key == key))
    }

    pub fn put(&self, key: &str, body: Vec<u8>) -> ClientResult<()> {
        self.send("PUT", key, &[], &[], body).map(drop)
    }

    pub fn delete(&self, key: &str) -> ClientResult<()> {
        self.send("DELETE", key, &[], &[], vec![]).map(drop)
    }

    /// Bytes `start..=end` of an object.
    pub fn get_range(&self, key: &str, start: u64, end: u64) -> ClientResult<Vec<u8>> {
        let r = self.send(
            "GET",
            key,
            &[],
            &[("range", format!("bytes={start}-{end}"))],
            vec![],
        )?;
        Ok(r.body)
    }

    fn create_multipart(&self, key: &str) -> ClientResult<String> {
        let r = self.send("POST", key, &[("uploads", String::new())], &[], vec![])?;
        tag(&String::from_utf8_lossy(&r.body), "UploadId").ok_or_else(|| ClientError::Protocol {
            request: format!("start an upload of {key}"),
            reason: "no UploadId".into(),
        })
    }

    fn upload_part(&self, key: &str, id: &str, n: usize, body: Vec<u8>) -> ClientResult<String> {
        let r = self.send(
            "PUT",
            key,
            &[("partNumber", n.to_string()), ("uploadId", id.into())],
            &[],
            body,
        )?;
        r.header("ETag")
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol {
                request: format!("upload part {n} of {key}"),
                reason: "no ETag".into(),
            })
    }

    fn complete_multipart(&self, key: &str, id: &str, etags: &[String]) -> ClientResult<()> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let r = self.send(
            "POST",
            key,
            &[("uploadId", id.into())],
            &[],
            xml.into_bytes(),
        )?;
        // S3 may answer 200 with an error document.
        let text = String::from_utf8_lossy(&r.body);
        if let (Some(code), true) = (tag(&text, "Code"), text.contains("<Error>")) {
            return Err(ClientError::Refused {
                request: format!("complete the upload of {key}"),
                status: r.status,
                code,
                message: crate::util::bounded(&tag(&text, "Message").unwrap_or_default()),
            });
        }
        Ok(())
    }

    fn abort_multipart(&self, key: &str, id: &str) -> ClientResult<()> {
        self.send("DELETE", key, &[("uploadId", id.into())], &[], vec![])
            .map(drop)
    }

    /// A writer that uploads what it is given to `key`, a part at a time.
    pub fn upload<'a>(&'a self, key: &str) -> Upload<'a> {
        Upload {
            bucket: self,
            key: key.to_string(),
            buf: Vec::with_capacity(PART_SIZE),
            upload_id: None,
            etags: vec![],
            failed: None,
            size: 0,
        }
    }

    /// A reader of the object `key` of `size` bytes, a range at a time.
    pub fn download<'a>(&'a self, key: &str, size: u64) -> Download<'a> {
        Download {
            bucket: self,
            key: key.to_string(),
            size,
            offset: 0,
            chunk: vec![],
            pos: 0,
            failed: None,
        }
    }
}

fn describe(bucket: &str, key: &str) -> String {
    if key.is_empty() {
        format!("bucket {bucket}")
    } else {
        format!("{bucket}/{key}")
    }
}

/// Streams into an object: the first full part starts a multipart upload; a stream
/// smaller than one part is a single PUT. [`Upload::finish`] completes it, and an
/// upload that is not finished is aborted (S3 keeps no parts of it).
pub struct Upload<'a> {
    bucket: &'a Bucket,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    etags: Vec<String>,
    /// The first S3 error, kept for the caller (io::Error loses the type).
    failed: Option<ClientError>,
    size: u64,
}

impl Upload<'_> {
    fn flush_part(&mut self) -> ClientResult<()> {
        let id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.bucket.create_multipart(&self.key)?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let etag = self
            .bucket
            .upload_part(&self.key, &id, self.etags.len() + 1, body)?;
        self.etags.push(etag);
        Ok(())
    }

    /// The error that made a write fail, if any.
    pub fn take_error(&mut self) -> Option<ClientError> {
        self.failed.take()
    }

    /// Completes the object; returns its size.
    pub fn finish(mut self) -> ClientResult<u64> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let result = match self.upload_id.clone() {
            None => self
                .bucket
                .put(&self.key, std::mem::take(&mut self.buf))
                .map(|_| self.size),
            Some(id) => {
                let last = if self.buf.is_empty() {
                    Ok(())
                } else {
                    self.flush_part()
                };
                last.and_then(|_| self.bucket.complete_multipart(&self.key, &id, &self.etags))
                    .map(|_| self.size)
            }
        };
        if result.is_ok() {
            self.upload_id = None;
        }
        result
    }
}

impl Write for Upload<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("the upload failed"));
        }
        let room = PART_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == PART_SIZE {
            if let Err(e) = self.flush_part() {
                let msg = e.to_string();
                self.failed = Some(e);
                return Err(io::Error::other(msg));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.upload_id.take() {
            if let Err(e) = self.bucket.abort_multipart(&self.key, &id) {
                tracing::warn!(key = %self.key, "could not abort the unfinished upload: {e}");
            }
        }
    }
}

/// Reads an object in ranges of [`PART_SIZE`].
pub struct Download<'a> {
    bucket: &'a Bucket,
    key: String,
    size: u64,
    offset: u64,
    chunk: Vec<u8>,
    pos: usize,
    failed: Option<ClientError>,
}

impl Download<'_> {
    pub fn take_error(&mut self) -> Option<ClientError> {
        self.failed.take()
    }
}

impl Read for Download<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            if self.offset >= self.size {
                return Ok(0);
            }
            let end = (self.offset + PART_SIZE as u64).min(self.size) - 1;
            match self.bucket.get_range(&self.key, self.offset, end) {
                Ok(body) if body.len() as u64 == end - self.offset + 1 => {
                    self.offset = end + 1;
                    self.chunk = body;
                    self.pos = 0;
                }
                Ok(body) => {
                    let e = ClientError::Protocol {
                        request: format!("get {}", self.key),
                        reason: format!(
                            "asked for {} bytes, got {}",
                            end - self.offset + 1,
                            body.len()
                        ),
                    };
                    let msg = e.to_string();
                    self.failed = Some(e);
                    return Err(io::Error::other(msg));
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.failed = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(endpoint: Option<&str>, style: UriStyle) -> S3Info {
        S3Info {
            endpoint: endpoint.map(str::to_string),
            uri_style: style,
            bucket: "backups".into(),
            access_key: "AK".into(),
            secret_key: "SK".into(),
            ..crate::relations::media::placeholder()
        }
    }

    #[test]
    fn addressing_follows_the_uri_style_except_on_literal_hosts() {
        let b = Bucket::new(&info(Some("http://s3.example.com:9000"), UriStyle::Host)).unwrap();
        assert_eq!(
            b.location("p/backup-1"),
            ("backups.s3.example.com:9000".into(), "/p/backup-1".into())
        );
        let b = Bucket::new(&info(Some("http://s3.example.com"), UriStyle::Path)).unwrap();
        assert_eq!(
            b.location("a b"),
            ("s3.example.com".into(), "/backups/a%20b".into())
        );
        assert_eq!(b.location(""), ("s3.example.com".into(), "/backups".into()));
        let b = Bucket::new(&info(Some("http://127.0.0.1:9000"), UriStyle::Host)).unwrap();
        assert_eq!(
            b.location("k"),
            ("127.0.0.1:9000".into(), "/backups/k".into())
        );
        assert!(format!("{b:?}").contains("backups") && !format!("{b:?}").contains("SK"));
    }

    #[test]
    fn https_and_region_only_are_refused_clearly() {
        let e = Bucket::new(&info(Some("https://s3.example.com"), UriStyle::Host)).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        let mut i = info(None, UriStyle::Host);
        i.region = Some("eu-west-1".into());
        let e = Bucket::new(&i).unwrap_err();
        assert!(e.to_string().contains("s3.eu-west-1.amazonaws.com"), "{e}");
    }
}
