//! The HTTP/1.1 wire format, client side: request serialisation and
//! response parsing.
//!
//! One request per connection (`Connection: close`), `Host: localhost`
//! always sent, responses framed by `Content-Length`,
//! `Transfer-Encoding: chunked` or end of stream. Line lengths and header
//! counts are bounded, so a misbehaving peer cannot make the reader grow
//! without limit.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Largest status line or header line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Most header lines accepted in one response (or trailer section).
const MAX_HEADERS: usize = 256;

/// An HTTP request as the client builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path plus optional `?query`, already percent-encoded.
    pub target: String,
    /// Extra headers (`Connection`, `Content-Length` and, unless given here, `Host:
    /// localhost` are added by [`Request::to_bytes`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, target: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// `METHOD target`, used in error messages and logs.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.target)
    }

    /// Serialises the request head and body as sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        // A `Host` given by the caller (a signed request names its server) replaces
        // the default.
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !self.body.is_empty() || self.method != "GET" {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A complete HTTP response with its body decoded from the transfer framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `request` to `stream`, then reads the whole response from it.
///
/// Timeouts are the stream's own (socket timeouts, or a wrapper that enforces
/// a deadline); a timed-out read or write surfaces as the stream's
/// `WouldBlock`/`TimedOut` error, a malformed reply as `InvalidData`.
pub fn exchange<S: Read + Write>(mut stream: S, request: &Request) -> io::Result<Response> {
    stream.write_all(&request.to_bytes())?;
    stream.flush()?;
    read_response(&mut BufReader::new(stream))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line without the terminator.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the reply was complete",
        ));
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(invalid("header line too long"));
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of a line",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| invalid("header line is not UTF-8"))
}

fn read_headers<R: BufRead>(r: &mut R) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many header lines"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("malformed header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// Parses a status line such as `HTTP/1.1 200 OK`.
fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("bad status line {line:?}")));
    }
    parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| invalid(format!("bad status line {line:?}")))
}

/// Reads a full response (status, headers, framed body) from `r`.
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    loop {
        let status = parse_status(&read_line(r)?)?;
        let headers = read_headers(r)?;
        if (100..200).contains(&status) {
            // Interim response (e.g. 100 Continue): the real one follows.
            continue;
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("Transfer-Encoding")
            .map(|te| te.to_ascii_lowercase().contains("chunked"))
            .unwrap_or(false);
        if chunked {
            response.body = decode_chunked(r)?;
        } else if let Some(len) = response.header("Content-Length") {
            let len: u64 = len
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
            let mut body = Vec::with_capacity(len.min(16 << 20) as usize);
            r.by_ref().take(len).read_to_end(&mut body)?;
            if (body.len() as u64) < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body ended after {} of {len} bytes", body.len()),
                ));
            }
            response.body = body;
        } else {
            r.read_to_end(&mut response.body)?;
        }
        return Ok(response);
    }
}

/// Decodes a `Transfer-Encoding: chunked` body, consuming the trailer section.
pub fn decode_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Optional trailers, then the final empty line.
            read_headers(r)?;
            return Ok(body);
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if ((body.len() - before) as u64) < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body ended inside a chunk",
            ));
        }
        if !read_line(r)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &[u8]) -> io::Result<Response> {
        read_response(&mut Cursor::new(raw.to_vec()))
    }

    #[test]
    fn a_given_host_replaces_the_default() {
        let text = String::from_utf8(
            Request::new("GET", "/b/k")
                .header("Host", "s3.example.com:9000")
                .to_bytes(),
        )
        .unwrap();
        assert!(text.starts_with(
            "GET /b/k HTTP/1.1\r\nConnection: close\r\nHost: s3.example.com:9000\r\n"
        ));
        assert!(!text.contains("localhost"));
    }

    #[test]
    fn request_always_has_host() {
        let raw = Request::new("GET", "/v1/system-info")
            .header("Accept", "application/json")
            .to_bytes();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("GET /v1/system-info HTTP/1.1\r\nHost: localhost\r\n"));
        assert!(text.contains("Accept: application/json\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));

        let raw = Request::new("POST", "/v1/layers")
            .body(b"{}".to_vec())
            .to_bytes();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn content_length_body() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn short_content_length_body_is_an_error() {
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n\
            1;ext=1\r\n \r\n\
            A\r\n0123456789\r\n\
            0\r\nX-Trailer: yes\r\n\r\n";
        let r = parse(raw).unwrap();
        assert_eq!(r.body, b"hello 0123456789");
    }

    #[test]
    fn chunked_binary_content() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in data.chunks(100) {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(parse(&raw).unwrap().body, data);
    }

    #[test]
    fn chunked_errors() {
        let e = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n")
                .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn body_until_close_and_interim_responses() {
        let r =
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\n\r\nrest").unwrap();
        assert_eq!(r.status, 502);
        assert_eq!(r.body, b"rest");
    }

    /// A stream whose reads come from a script and whose writes are kept.
    struct Scripted {
        reply: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reply.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn exchange_sends_the_request_and_reads_the_reply() {
        let mut stream = Scripted {
            reply: Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            sent: Vec::new(),
        };
        let request = Request::new("GET", "/health");
        let r = exchange(&mut stream, &request).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(stream.sent, request.to_bytes());
    }

    #[test]
    fn bad_status_line() {
        assert_eq!(
            parse(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(parse(b"").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
