//! `multipart/form-data` bodies for file push (request) and pull (response).
//!
//! Hand-written on purpose: Pebble needs one fixed two-part request shape and
//! a parser of buffered replies, a few hundred lines, while multipart crates
//! are built around server frameworks or async streams and would pull those in.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One part: its headers and raw body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// A `form-data` part named `name`, optionally with a `filename`.
    pub fn form_data(
        name: &str,
        filename: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Self {
        let mut disposition = format!("form-data; name={}", quote(name));
        if let Some(filename) = filename {
            disposition.push_str(&format!("; filename={}", quote(filename)));
        }
        Part {
            headers: vec![
                ("Content-Disposition".into(), disposition),
                ("Content-Type".into(), content_type.into()),
            ],
            body,
        }
    }

    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name` parameter of `Content-Disposition`.
    pub fn name(&self) -> Option<String> {
        self.disposition_param("name")
    }

    /// The `filename` parameter of `Content-Disposition` (Pebble puts the
    /// full path there).
    pub fn filename(&self) -> Option<String> {
        self.disposition_param("filename")
    }

    fn disposition_param(&self, key: &str) -> Option<String> {
        header_params(self.header("Content-Disposition")?)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
}

/// Quotes a parameter value, escaping `\` and `"`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parameters (`key=value` or `key="quoted"`) after the first `;` of a
/// header value such as `Content-Disposition` or `Content-Type`.
pub fn header_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the leading token (`form-data`, `multipart/form-data`).
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ';') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return params;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                val.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => val.push(c),
                    }
                }
                // Skip anything up to the next separator.
                while matches!(chars.peek(), Some(c) if *c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
                val = val.trim().to_string();
            }
        }
        let key = key.trim().to_string();
        if !key.is_empty() {
            params.push((key, val));
        }
    }
}

/// The boundary of a `multipart/...; boundary=...` content type.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    let media = content_type.split(';').next()?.trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    header_params(content_type)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty())
}

/// A fresh random boundary of 32 hex digits.
pub fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for round in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u64(round);
        h.write_u32(std::process::id());
        if let Ok(t) = SystemTime::now().duration_since(UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Serialises `parts` with `boundary`.
pub fn build(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let size: usize = parts.iter().map(|p| p.body.len() + 256).sum();
    let mut out = Vec::with_capacity(size + boundary.len() + 8);
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        for (name, value) in &part.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// True when `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle, 0).is_some()
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= haystack.len() {
        let offset = haystack[i..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        i += offset;
        if haystack[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Splits a multipart body into its parts.
pub fn parse(boundary: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    if boundary.is_empty() {
        return Err("empty multipart boundary".into());
    }
    let dash = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    // The first delimiter may start the body or follow a preamble.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        find(body, delim.as_bytes(), 0)
            .map(|i| i + delim.len())
            .ok_or_else(|| format!("multipart boundary {boundary:?} not found"))?
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break ending the delimiter line.
        let pad = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        pos += pad;
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            return Err("malformed multipart delimiter line".into());
        }
        // Headers up to the empty line.
        let mut headers = Vec::new();
        loop {
            let end = find(body, b"\r\n", pos).ok_or("multipart part headers not terminated")?;
            let line = std::str::from_utf8(&body[pos..end])
                .map_err(|_| "multipart part header is not UTF-8".to_string())?;
            pos = end + 2;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("malformed multipart header {line:?}"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let end = find(body, delim.as_bytes(), pos)
            .ok_or("multipart body ends without a closing boundary")?;
        parts.push(Part {
            headers,
            body: body[pos..end].to_vec(),
        });
        pos = end + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binary_parts() {
        let data: Vec<u8> = (0..=255u8)
            .chain(b"\r\n--\r\n\r\n".iter().copied())
            .collect();
        let boundary = new_boundary();
        assert_eq!(boundary.len(), 32);
        assert!(boundary.bytes().all(|b| b.is_ascii_hexdigit()));
        let parts = vec![
            Part::form_data("request", None, "application/json", b"{\"a\":1}".to_vec()),
            Part::form_data(
                "files",
                Some("/tmp/we\"ird\\name"),
                "application/octet-stream",
                data.clone(),
            ),
            Part::form_data("empty", None, "text/plain", Vec::new()),
        ];
        let body = build(&boundary, &parts);
        assert!(body.starts_with(format!("--{boundary}\r\n").as_bytes()));
        assert!(body.ends_with(format!("\r\n--{boundary}--\r\n").as_bytes()));
        let back = parse(&boundary, &body).unwrap();
        assert_eq!(back, parts);
        assert_eq!(back[0].name().as_deref(), Some("request"));
        assert_eq!(back[0].filename(), None);
        assert_eq!(back[1].name().as_deref(), Some("files"));
        assert_eq!(back[1].filename().as_deref(), Some("/tmp/we\"ird\\name"));
        assert_eq!(back[1].body, data);
        assert!(back[2].body.is_empty());
    }

    #[test]
    fn parse_go_style_reply_with_preamble_and_epilogue() {
        let body = b"preamble\r\n--abc\r\n\
Content-Disposition: form-data; name=\"files\"; filename=\"/a/b\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
hello\r\n--abc  \r\n\
Content-Disposition: form-data; name=response\r\n\r\n\
{\"type\":\"sync\"}\r\n--abc--\r\nepilogue";
        let parts = parse("abc", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].filename().as_deref(), Some("/a/b"));
        assert_eq!(parts[0].body, b"hello");
        assert_eq!(parts[1].name().as_deref(), Some("response"));
        assert_eq!(parts[1].body, b"{\"type\":\"sync\"}");
    }

    #[test]
    fn parse_errors() {
        assert!(parse("abc", b"no boundary here").is_err());
        assert!(parse("abc", b"--abc\r\nX: y\r\n\r\nbody without end").is_err());
        assert!(parse("abc", b"--abcjunk\r\n").is_err());
        assert!(parse("", b"--\r\n").is_err());
        assert_eq!(parse("abc", b"--abc--\r\n").unwrap(), vec![]);
    }

    #[test]
    fn content_type_boundary() {
        assert_eq!(
            boundary_from_content_type("multipart/form-data; boundary=abc123").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data; charset=x; boundary=\"a b\"")
                .as_deref(),
            Some("a b")
        );
        assert_eq!(boundary_from_content_type("application/json"), None);
        assert_eq!(boundary_from_content_type("multipart/form-data"), None);
    }

    #[test]
    fn find_bytes() {
        assert!(contains(b"xx--abcyy", b"--abc"));
        assert!(!contains(b"xx--ab", b"--abc"));
        assert!(!contains(b"", b"a"));
        assert!(!contains(b"abc", b""));
        assert_eq!(find(b"aaab", b"ab", 0), Some(2));
    }
}
