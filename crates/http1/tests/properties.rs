//! Property tests: any bytes from the other end give a response or an I/O error (never a
//! panic, never an endless read), and every framing a server may use (Content-Length,
//! chunked, read to close, interim 1xx replies first) gives back the status, headers
//! and body it framed. Cases per property: `PROPTEST_CASES` (default 2000; `make fuzz`
//! runs 100000).

#[path = "../../../tests/support/property.rs"]
mod property;

use std::io::{Cursor, ErrorKind};

use http1::{decode_chunked, read_response};
use proptest::prelude::*;

use property::{check, text_or};

/// Pieces of HTTP replies, glued together in random order with random bytes.
const PIECES: &[&str] = &[
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.0 204 No Content\r\n",
    "HTTP/1.1 999 x\r\n",
    "HTTP/1.1 1000 x\r\n",
    "HTTP/2 200\r\n",
    "Content-Length: 5\r\n",
    "Content-Length: 18446744073709551616\r\n",
    "Content-Length: -1\r\n",
    "Transfer-Encoding: chunked\r\n",
    "\r\n",
    "\n",
    "5\r\nhello\r\n",
    "ffffffffffffffff\r\n",
    "0\r\n\r\n",
    "0;ext=1\r\nTrailer: x\r\n\r\n",
    "no colon\r\n",
];

fn wire() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => text_or(PIECES).prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

#[test]
fn http_response_bytes() {
    check("http_response_bytes", wire(), |bytes| {
        match read_response(&mut Cursor::new(&bytes)) {
            Ok(r) => prop_assert!((200..1000).contains(&r.status), "{r:?}"),
            Err(e) => prop_assert!(
                matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof),
                "{e:?}"
            ),
        }
        let _ = decode_chunked(&mut Cursor::new(&bytes));
        Ok(())
    });
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length,
    Chunked,
    Close,
}

fn header() -> impl Strategy<Value = (String, String)> {
    // A token name and a value without line breaks or surrounding blanks (the parser
    // trims them, as HTTP says).
    ("[A-Za-z][A-Za-z0-9-]{0,15}", "([!-~]([ -~]{0,30}[!-~])?)?").prop_filter(
        "framing headers are the test's",
        |(n, _)| {
            !n.eq_ignore_ascii_case("content-length")
                && !n.eq_ignore_ascii_case("transfer-encoding")
        },
    )
}

#[test]
fn http_response_round_trip() {
    let status = prop_oneof![200u16..204, 205u16..304, 305u16..1000];
    let framing = prop_oneof![
        Just(Framing::Length),
        Just(Framing::Chunked),
        Just(Framing::Close)
    ];
    check(
        "http_response_round_trip",
        (
            status,
            proptest::collection::vec(header(), 0..6),
            proptest::collection::vec(any::<u8>(), 0..2000),
            framing,
            proptest::collection::vec(1usize..300, 0..8),
            0..3usize,
        ),
        |(status, headers, body, framing, cuts, interim)| {
            let mut wire = Vec::new();
            for _ in 0..interim {
                wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            wire.extend_from_slice(format!("HTTP/1.1 {status} Whatever\r\n").as_bytes());
            for (n, v) in &headers {
                wire.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            match framing {
                Framing::Length => {
                    wire.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    wire.extend_from_slice(&body);
                }
                Framing::Chunked => {
                    wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = &body[..];
                    let mut cuts = cuts.iter().cycle();
                    while !rest.is_empty() {
                        let n = cuts.next().copied().unwrap_or(rest.len()).min(rest.len());
                        wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                        wire.extend_from_slice(&rest[..n]);
                        wire.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    wire.extend_from_slice(b"0\r\n\r\n");
                }
                Framing::Close => {
                    wire.extend_from_slice(b"\r\n");
                    wire.extend_from_slice(&body);
                }
            }
            let r = read_response(&mut Cursor::new(&wire));
            prop_assert!(r.is_ok(), "{r:?}");
            let Ok(r) = r else { return Ok(()) };
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(&r.body, &body);
            let got: Vec<(String, String)> = r
                .headers
                .into_iter()
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-length")
                        && !n.eq_ignore_ascii_case("transfer-encoding")
                })
                .collect();
            prop_assert_eq!(got, headers);
            Ok(())
        },
    );
}
