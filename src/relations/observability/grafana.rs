//! `grafana-dashboard` (provider side): the `dashboards` key of the leader's application
//! databag. Each dashboard file becomes the template `file:<stem>` whose `content` is
//! `base64(xz(<file text>))`, like Python's `lzma.compress` + `base64.b64encode`.
//!
//! The document carries a random `uuid` that changes on every write (so that Grafana
//! sees a relation-changed): it is written only when the templates differ from what the
//! databag holds, compared after decoding the contents.

use std::io::{Read, Write};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::topology::{Topology, CHARM_NAME};

pub const ENDPOINT: &str = "grafana-dashboard";
/// App databag key.
pub const DASHBOARDS: &str = "dashboards";

/// `observability/grafana_dashboards/*.json`, part of the binary (stem, text). A unit
/// test checks this list against the directory.
pub const DASHBOARD_FILES: [(&str, &str); 2] = [
    (
        "synapse_overview",
        include_str!("../../../observability/grafana_dashboards/synapse_overview.json"),
    ),
    (
        "synapse_statistics",
        include_str!("../../../observability/grafana_dashboards/synapse_statistics.json"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("dashboard {stem}: {message}")]
    Invalid { stem: &'static str, message: String },
    #[error("compressing or identifying the dashboards: {0}")]
    Io(#[from] std::io::Error),
}

/// Standard alphabet; decoding takes padding or not, and rejects non-zero
/// bits after the last byte, which no encoder writes.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding.
pub fn b64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

/// Standard base64 (padding optional, whitespace ignored); `None` if malformed.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(compact).ok()
}

/// xz container (CRC64, like Python's default), LZMA2 preset 6 with a 1 MiB dictionary
/// (the dashboards are far smaller, so a bigger one would only cost memory).
pub fn xz_compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut options = lzma_rust2::XzOptions::with_preset(6);
    options.lzma_options.dict_size = 1 << 20;
    let mut w = lzma_rust2::XzWriter::new(Vec::new(), options)?;
    w.write_all(data)?;
    w.finish()
}

pub fn xz_decompress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    lzma_rust2::XzReader::new(data, true).read_to_end(&mut out)?;
    Ok(out)
}

/// `content` of a template: base64(xz(text)).
pub fn encode_content(text: &str) -> std::io::Result<String> {
    Ok(b64_encode(&xz_compress(text.as_bytes())?))
}

/// The text behind a `content`; `None` if it is not base64 of an xz stream.
pub fn decode_content(content: &str) -> Option<Vec<u8>> {
    xz_decompress(&b64_decode(content)?).ok()
}

/// A random (version 4) UUID.
pub fn uuid4() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn template(topology: &Topology, content: Value) -> Value {
    json!({
        "charm": CHARM_NAME,
        "content": content,
        "juju_topology": {
            "model": topology.model,
            "model_uuid": topology.model_uuid,
            "application": topology.application,
            "unit": topology.unit,
        },
        "inject_dropdowns": true,
    })
}

/// The templates with each `content` decoded and parsed: the form in which the
/// databag's templates and the wanted ones are compared.
pub fn decoded_templates(topology: &Topology) -> Result<Map<String, Value>, DashboardError> {
    DASHBOARD_FILES
        .iter()
        .map(|(stem, text)| {
            let content: Value =
                serde_json::from_str(text).map_err(|e| DashboardError::Invalid {
                    stem,
                    message: e.to_string(),
                })?;
            Ok((format!("file:{stem}"), template(topology, content)))
        })
        .collect()
}

/// The `dashboards` document to write: encoded templates and a fresh `uuid`.
pub fn dashboards(topology: &Topology) -> Result<String, DashboardError> {
    let mut templates = Map::new();
    for (stem, text) in DASHBOARD_FILES {
        if let Err(e) = serde_json::from_str::<Value>(text) {
            return Err(DashboardError::Invalid {
                stem,
                message: e.to_string(),
            });
        }
        templates.insert(
            format!("file:{stem}"),
            template(topology, Value::String(encode_content(text)?)),
        );
    }
    Ok(json!({ "templates": templates, "uuid": uuid4()? }).to_string())
}

/// The templates of a `dashboards` document with their contents decoded (a content
/// that does not decode stays as it is, so it compares unequal). `uuid` is left out.
pub fn decode_dashboards(doc: &str) -> Option<Map<String, Value>> {
    let v: Value = serde_json::from_str(doc).ok()?;
    let mut templates = v.get("templates")?.as_object()?.clone();
    for t in templates.values_mut() {
        let Some(t) = t.as_object_mut() else { continue };
        let decoded = t
            .get("content")
            .and_then(Value::as_str)
            .and_then(decode_content)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(d) = decoded {
            t.insert("content".into(), d);
        }
    }
    Some(templates)
}

/// Whether the databag's `dashboards` already holds `wanted` (see [`decoded_templates`]).
pub fn same_templates(existing: Option<&str>, wanted: &Map<String, Value>) -> bool {
    existing.and_then(decode_dashboards).as_ref() == Some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::observability::topology::tests::topology;

    #[test]
    fn base64_round_trip_and_rejects() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0, 255, 1],
        ] {
            let e = b64_encode(data);
            assert_eq!(b64_decode(&e).unwrap(), data, "{e}");
            assert_eq!(b64_decode(e.trim_end_matches('=')).unwrap(), data);
        }
        assert_eq!(b64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        for bad in ["Zg=x", "Z", "Zh==", "****", "Zg==="] {
            assert!(b64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn xz_round_trip_and_actually_compresses() {
        let text = DASHBOARD_FILES[0].1;
        let xz = xz_compress(text.as_bytes()).unwrap();
        assert_eq!(&xz[..6], b"\xfd7zXZ\x00", "xz magic");
        assert!(xz.len() * 5 < text.len(), "{} -> {}", text.len(), xz.len());
        assert_eq!(xz_decompress(&xz).unwrap(), text.as_bytes());
        assert!(decode_content("not base64!").is_none());
        assert!(decode_content(&b64_encode(b"not xz")).is_none());
    }

    #[test]
    fn uuid4_is_random_and_well_formed() {
        let a = uuid4().unwrap();
        assert_ne!(a, uuid4().unwrap());
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!("89ab".contains(&parts[3][..1]), "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn dashboards_decode_back_to_the_files() {
        let t = topology();
        let doc: Value = serde_json::from_str(&dashboards(&t).unwrap()).unwrap();
        let templates = doc["templates"].as_object().unwrap();
        assert_eq!(
            templates.keys().collect::<Vec<_>>(),
            vec!["file:synapse_overview", "file:synapse_statistics"]
        );
        for (stem, text) in DASHBOARD_FILES {
            let tpl = &templates[&format!("file:{stem}")];
            assert_eq!(tpl["charm"], "synapse");
            assert_eq!(tpl["inject_dropdowns"], true);
            assert_eq!(
                tpl["juju_topology"],
                json!({"model": "chat", "model_uuid": "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab",
                       "application": "synapse", "unit": "synapse/0"})
            );
            let bytes = decode_content(tpl["content"].as_str().unwrap()).unwrap();
            assert_eq!(bytes, text.as_bytes(), "{stem}: the file, byte for byte");
            let file = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("observability/grafana_dashboards/{stem}.json")),
            )
            .unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&bytes).unwrap(),
                serde_json::from_str::<Value>(&file).unwrap()
            );
        }
        let uuid = doc["uuid"].as_str().unwrap();
        assert_eq!(uuid.len(), 36);
    }

    #[test]
    fn dashboard_file_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("observability/grafana_dashboards");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = DASHBOARD_FILES.iter().map(|(s, _)| *s).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn templates_compare_decoded_and_ignore_the_uuid() {
        let t = topology();
        let wanted = decoded_templates(&t).unwrap();
        let first = dashboards(&t).unwrap();
        let second = dashboards(&t).unwrap();
        assert_ne!(first, second, "a new uuid each time");
        assert!(same_templates(Some(&first), &wanted));
        assert!(same_templates(Some(&second), &wanted));
        assert!(!same_templates(None, &wanted));
        assert!(!same_templates(Some("garbage"), &wanted));
        assert!(!same_templates(Some("{}"), &wanted));
        // Another application's (or model's) templates differ.
        let other = Topology {
            application: "other".into(),
            ..t.clone()
        };
        assert!(!same_templates(Some(&dashboards(&other).unwrap()), &wanted));
        // A changed dashboard differs.
        let mut doc: Value = serde_json::from_str(&first).unwrap();
        doc["templates"]["file:synapse_overview"]["content"] =
            Value::String(encode_content("{\"title\": \"old\"}").unwrap());
        assert!(!same_templates(Some(&doc.to_string()), &wanted));
        // Differently compressed or formatted, but the same dashboard: equal.
        let mut doc: Value = serde_json::from_str(&first).unwrap();
        let compact =
            serde_json::to_string(&serde_json::from_str::<Value>(DASHBOARD_FILES[0].1).unwrap())
                .unwrap();
        doc["templates"]["file:synapse_overview"]["content"] =
            Value::String(encode_content(&compact).unwrap());
        assert!(same_templates(Some(&doc.to_string()), &wanted));
    }

    /// An independent decoder: Python's `base64` + `lzma` read what the charm writes.
    #[test]
    fn python_decodes_the_dashboards() {
        let py = crate::relations::observability::tests::test_python();
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("dashboards.json");
        std::fs::write(&doc, dashboards(&topology()).unwrap()).unwrap();
        let script = r#"
import base64, json, lzma, sys
doc = json.load(open(sys.argv[1]))
out = {k: json.loads(lzma.decompress(base64.b64decode(t["content"])).decode())
       for k, t in doc["templates"].items()}
print(json.dumps(out))
"#;
        let out = std::process::Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(&doc)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
        for (stem, text) in DASHBOARD_FILES {
            assert_eq!(
                decoded[format!("file:{stem}")],
                serde_json::from_str::<Value>(text).unwrap(),
                "{stem}"
            );
        }
    }
}
