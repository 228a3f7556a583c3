//! Property tests: whatever Pebble answers (any JSON in the reply types, any envelope,
//! status and body through the client, any multipart body, any duration text) gives a
//! value or an error, never a panic; and Go durations, layers and multipart bodies
//! survive a round trip. Cases per property: `PROPTEST_CASES` (default 2000; `make
//! fuzz` runs 100000).

#[path = "../../../tests/support/json.rs"]
mod json;
#[path = "../../../tests/support/property.rs"]
mod property;

use std::sync::Arc;
use std::time::Duration;

use pebble::multipart::{self, Part};
use pebble::{
    Change, CheckInfo, Client, FileInfo, GoDuration, Layer, Notice, Response, ServiceInfo,
    SystemInfo, Task, Transport,
};
use proptest::prelude::*;
use serde_json::{json as j, Value};

use json::json;
use property::{check, text, text_or};

/// Field names of Pebble's replies and layers.
const KEYS: &[&str] = &[
    "name",
    "startup",
    "current",
    "current-since",
    "level",
    "status",
    "successes",
    "failures",
    "threshold",
    "change-id",
    "prev-change-id",
    "id",
    "kind",
    "summary",
    "tasks",
    "ready",
    "err",
    "spawn-time",
    "ready-time",
    "data",
    "services",
    "checks",
    "log-targets",
    "description",
    "command",
    "override",
    "period",
    "timeout",
    "http",
    "tcp",
    "exec",
    "url",
    "port",
    "host",
    "after",
    "before",
    "requires",
    "environment",
    "user",
    "user-id",
    "group",
    "group-id",
    "working-dir",
    "on-success",
    "on-failure",
    "on-check-failure",
    "backoff-delay",
    "backoff-factor",
    "backoff-limit",
    "kill-delay",
    "type",
    "location",
    "labels",
    "boot-id",
    "version",
    "log",
    "progress",
    "label",
    "done",
    "total",
    "path",
    "mode",
    "size",
    "last-modified",
    "user-id",
    "key",
    "first-occurred",
    "last-occurred",
    "last-repeated",
    "occurrences",
    "expire-after",
    "repeat-after",
    "last-data",
    "headers",
    "message",
    "result",
    "change",
];

/// Values Pebble's enums and durations take, and near misses.
const STRINGS: &[&str] = &[
    "enabled",
    "disabled",
    "active",
    "backoff",
    "error",
    "inactive",
    "up",
    "down",
    "alive",
    "ready",
    "Do",
    "Doing",
    "Done",
    "Error",
    "Hold",
    "Wait",
    "Undone",
    "replace",
    "merge",
    "restart",
    "shutdown",
    "ignore",
    "success-shutdown",
    "failure-shutdown",
    "loki",
    "opentelemetry",
    "file",
    "directory",
    "symlink",
    "custom",
    "change-update",
    "10s",
    "1m30s",
    "0",
    "-1s",
    "1.5µs",
    "2562047h47m16.854775807s",
    "2562047h47m16.854775808s",
    "sync",
    "async",
    "2024-01-02T03:04:05Z",
    "http://localhost:8008/health",
    "true",
];

fn reply() -> BoxedStrategy<Value> {
    json(KEYS, STRINGS)
}

fn must_not_panic<T: serde::de::DeserializeOwned>(v: &Value) {
    // Ok or a serde error: both fine, only a panic fails.
    let _ = serde_json::from_value::<T>(v.clone());
    let _ = serde_json::from_str::<T>(&v.to_string());
}

#[test]
fn pebble_replies() {
    check("pebble_replies", reply(), |v| {
        must_not_panic::<ServiceInfo>(&v);
        must_not_panic::<CheckInfo>(&v);
        must_not_panic::<Task>(&v);
        must_not_panic::<SystemInfo>(&v);
        must_not_panic::<FileInfo>(&v);
        must_not_panic::<Notice>(&v);
        must_not_panic::<Vec<ServiceInfo>>(&v);
        if let Ok(change) = serde_json::from_value::<Change>(v.clone()) {
            let _ = change.failed_task_logs();
        }
        Ok(())
    });
}

/// A layer parsed from any JSON prints as YAML that parses back to the same layer.
#[test]
fn layer_round_trip() {
    check("layer_round_trip", reply(), |v| {
        let Ok(layer) = serde_json::from_value::<Layer>(v) else {
            return Ok(());
        };
        let yaml = layer.to_yaml();
        prop_assert!(yaml.is_ok(), "{layer:?}: {yaml:?}");
        let yaml = yaml.unwrap_or_default();
        let back = Layer::from_yaml(&yaml);
        prop_assert!(
            back.as_ref().ok() == Some(&layer),
            "{layer:?}\n{yaml}\n{back:?}"
        );
        Ok(())
    });
}

#[test]
fn layer_from_yaml_text() {
    let yaml_bits: &'static [&'static str] = &[
        "services:\n  a:\n    override: replace\n    command: x\n",
        "checks:\n  c:\n    override: merge\n    period: 10s\n    http:\n      url: u\n",
        "log-targets:\n  l:\n    override: replace\n    type: loki\n",
        "{}",
        "[]",
        "~",
        ": :",
        "- - -",
        "&a [*a]",
        "!!binary AAAA",
        "\t",
        "'",
        "\"\\u\"",
        "period: 1h2m3.5s",
        "backoff-factor: .nan",
        "summary: |\n  x\n",
    ];
    check("layer_from_yaml_text", text_or(yaml_bits), |text| {
        match Layer::from_yaml(&text) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

#[test]
fn go_duration_text() {
    check("go_duration_text", text_or(STRINGS), |text| {
        match text.parse::<GoDuration>() {
            Ok(d) => {
                // Whatever parses prints as Go would, and that parses to the same length.
                prop_assert_eq!(d.to_string().parse::<GoDuration>(), Ok(d), "{:?}", text);
            }
            Err(e) => prop_assert!(
                e.to_string().starts_with("invalid duration "),
                "{text:?}: {e}"
            ),
        }
        Ok(())
    });
}

const MAX_NANOS: u64 = i64::MAX as u64;
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's own printing of any representable length parses back to it; and a duration
/// written as Go allows (`1h2m3.5s`, `300ms`) parses to the sum of its parts.
#[test]
fn go_duration_round_trip() {
    let parts = proptest::collection::vec(
        (
            0u64..100_000,
            proptest::option::of(0u32..1000),
            0..UNITS.len(),
        ),
        1..5,
    );
    check(
        "go_duration_round_trip",
        (0..=MAX_NANOS, parts),
        |(nanos, parts)| {
            let d = GoDuration::from(Duration::from_nanos(nanos));
            prop_assert_eq!(d.to_string().parse::<GoDuration>(), Ok(d));

            let mut text = String::new();
            let mut expected: u128 = 0;
            for (int, frac, unit) in &parts {
                let (name, scale) = UNITS[*unit];
                text.push_str(&int.to_string());
                expected += u128::from(*int) * scale;
                if let Some(f) = frac {
                    text.push_str(&format!(".{f:03}"));
                    expected += u128::from(*f) * scale / 1000;
                }
                text.push_str(name);
            }
            let parsed = text
                .parse::<GoDuration>()
                .map(|d| d.as_duration().as_nanos());
            prop_assert_eq!(parsed, Ok(expected), "{}", text);
            Ok(())
        },
    );
}

/// A fake Pebble that answers every request with one response.
#[derive(Debug)]
struct Answer(Response);

impl Transport for Answer {
    fn round_trip(&self, _: &pebble::Request, _: Duration) -> pebble::Result<Response> {
        Ok(self.0.clone())
    }
}

fn response() -> impl Strategy<Value = Response> {
    let status = prop_oneof![
        Just(200u16),
        Just(202),
        Just(400),
        Just(404),
        Just(500),
        any::<u16>()
    ];
    let envelope = (
        text_or(&["sync", "async", "error", ""]),
        proptest::option::of(text_or(&["1", ""])),
        reply(),
    )
        .prop_map(|(kind, change, result)| {
            j!({"type": kind, "change": change, "result": result})
                .to_string()
                .into_bytes()
        });
    let body = prop_oneof![
        3 => envelope,
        1 => reply().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ];
    let content_type = proptest::option::of(text_or(&[
        "application/json",
        "multipart/form-data; boundary=b",
        "multipart/form-data; boundary=\"b\"",
        "multipart/form-data; boundary=",
    ]));
    (status, body, content_type, any::<bool>()).prop_map(|(status, body, ct, multi)| {
        let body = if multi {
            // A multipart body around the envelope, as `pull` gets it.
            let parts = [
                Part::form_data("response", None, "application/json", body),
                Part::form_data(
                    "files",
                    Some("/f"),
                    "application/octet-stream",
                    b"x".to_vec(),
                ),
            ];
            multipart::build("b", &parts)
        } else {
            body
        };
        Response {
            status,
            headers: ct
                .map(|c| ("Content-Type".to_string(), c))
                .into_iter()
                .collect(),
            body,
        }
    })
}

/// Every read the charm makes, against any reply: a value or an error.
#[test]
fn pebble_client_replies() {
    check("pebble_client_replies", response(), |resp| {
        let client = Client::with_transport("/fake.socket", Arc::new(Answer(resp)));
        let _ = client.system_info();
        let _ = client.services(&[]);
        let _ = client.checks(None, &["c"]);
        let _ = client.health(None, &[]);
        let _ = client.change("1");
        let _ = client.plan();
        let _ = client.plan_yaml();
        let _ = client.pull("/f");
        let _ = client.list_files("/", None, false);
        let _ = client.notices(&[], &[]);
        let _ = client.logs(&[], 10);
        let _ = client.start_checks(&["c"]);
        if let Err(e) = client.services(&["a"]) {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    });
}

#[test]
fn multipart_parse_any_body() {
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            text(),
            text(),
            proptest::collection::vec(any::<u8>(), 0..50)
        )
            .prop_map(|(h, v, b)| {
                let mut out = format!("--b\r\n{h}: {v}\r\n\r\n").into_bytes();
                out.extend(b);
                out.extend(b"\r\n--b--\r\n");
                out
            }),
    ];
    check(
        "multipart_parse_any_body",
        (text_or(&["b", "", "--"]), body, text()),
        |(boundary, body, content_type)| {
            let _ = multipart::parse(&boundary, &body);
            let _ = multipart::header_params(&content_type);
            if let Some(b) = multipart::boundary_from_content_type(&content_type) {
                prop_assert!(!b.is_empty());
            }
            Ok(())
        },
    );
}

/// What `build` writes, `parse` reads back: names, file names and bodies.
#[test]
fn multipart_round_trip() {
    let part = (
        "[^\r\n]{0,30}",
        proptest::option::of("[^\r\n]{0,30}"),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    check(
        "multipart_round_trip",
        proptest::collection::vec(part, 0..4),
        |parts| {
            let boundary = multipart::new_boundary();
            let built: Vec<Part> = parts
                .iter()
                .map(|(n, f, b)| {
                    Part::form_data(n, f.as_deref(), "application/octet-stream", b.clone())
                })
                .collect();
            let back = multipart::parse(&boundary, &multipart::build(&boundary, &built));
            prop_assert!(back.is_ok(), "{back:?}");
            let back = back.unwrap_or_default();
            prop_assert_eq!(back.len(), parts.len());
            for ((n, f, b), p) in parts.iter().zip(&back) {
                prop_assert_eq!(p.name(), Some(n.clone()));
                prop_assert_eq!(p.filename(), f.clone());
                prop_assert_eq!(&p.body, b);
            }
            Ok(())
        },
    );
}
