//! The reference docs cannot drift from what the charm declares and does: every option
//! of `config.yaml`, action of `actions.yaml`, endpoint, container, resource and storage
//! of `metadata.yaml`, Pebble service, check and port of the layers, and every status
//! message written as a literal in `src/` must appear in `docs/reference/` exactly as the
//! source says, and the docs must list nothing the source does not have. Fast: reads
//! files and builds the layers in memory, runs no workload.
//!
//! Each failure names the file to fix and lists every difference at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use synapse_k8s_charm::nginx;
use synapse_k8s_charm::relations::redis::RedisInfo;
use synapse_k8s_charm::synapse::config::SynapseConfig;
use synapse_k8s_charm::synapse::homeserver::{CLIENT_PORT, METRICS_PORT};
use synapse_k8s_charm::synapse::layer as synapse_layer;
use synapse_k8s_charm::topology;

/// The repository; `DOCS_REFERENCE_ROOT` points the file checks at another checkout
/// (for example a merge candidate) without rebuilding.
fn root() -> PathBuf {
    std::env::var_os("DOCS_REFERENCE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn yaml(rel: &str) -> Map<String, Value> {
    match serde_saphyr::from_str::<Value>(&read(rel)) {
        Ok(Value::Object(m)) => m,
        Ok(other) => panic!("{rel}: not a YAML mapping: {other}"),
        Err(e) => panic!("{rel}: not valid YAML: {e}"),
    }
}

/// Fails with every problem, naming the file(s) to fix.
fn report(problems: &[String], fix: &str) {
    if !problems.is_empty() {
        panic!(
            "{} difference(s); fix {fix}:\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
}

/// The rows of the first Markdown table after the heading `heading` (exact line), header
/// and separator left out, each as its trimmed cells.
fn table(doc: &str, doc_path: &str, heading: &str) -> Vec<Vec<String>> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != heading);
    if lines.next().is_none() {
        panic!(
            "{doc_path}: heading `{heading}` is missing (the drift test reads the table under it)"
        );
    }
    let rows: Vec<Vec<String>> = lines
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(cells)
        .collect();
    if rows.len() < 2 {
        panic!("{doc_path}: no table under `{heading}`");
    }
    rows.into_iter().skip(2).collect()
}

/// Cells of one table row; `|` inside a code span does not split.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut in_code = false;
    for c in inner.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.last_mut().unwrap().push(c);
            }
            '|' if !in_code => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// `` `name` `` or `` [`name`](#anchor) `` → `name`.
fn name_cell(cell: &str) -> String {
    let c = cell.trim();
    let c = c
        .strip_prefix('[')
        .map_or(c, |r| r.split(']').next().unwrap_or(r));
    c.trim_matches('`').to_string()
}

/// Compares documented rows (keyed by their first cell) with the expected ones.
fn compare_rows(
    what: &str,
    doc_path: &str,
    expected: &BTreeMap<String, Vec<String>>,
    documented: &[Vec<String>],
    columns: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for row in documented {
        let key = name_cell(&row[0]);
        seen.insert(key.clone());
        let Some(want) = expected.get(&key) else {
            problems.push(format!(
                "{doc_path} documents {what} `{key}`, which does not exist"
            ));
            continue;
        };
        for (i, w) in want.iter().enumerate() {
            let got = row.get(i + 1).map(String::as_str).unwrap_or("");
            if got != w {
                problems.push(format!(
                    "{doc_path}: {what} `{key}`, column {:?}: documented `{got}`, expected `{w}`",
                    columns[i]
                ));
            }
        }
    }
    for key in expected.keys().filter(|k| !seen.contains(*k)) {
        problems.push(format!(
            "{doc_path}: {what} `{key}` is missing; add the row | `{key}` | {} |",
            expected[key].join(" | ")
        ));
    }
    problems
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- config.yaml

#[test]
fn config_reference_matches_config_yaml() {
    const DOC: &str = "docs/reference/config.md";
    let options = yaml("config.yaml");
    let Some(Value::Object(options)) = options.get("options") else {
        panic!("config.yaml has no `options` mapping");
    };
    let doc = read(DOC);
    let mut expected = BTreeMap::new();
    for (name, o) in options {
        let ty = o.get("type").map(scalar).unwrap_or_default();
        let default = match o.get("default") {
            Some(v) => format!("`{}`", scalar(v)),
            None => "unset".to_string(),
        };
        expected.insert(name.clone(), vec![ty, default]);
    }
    // The default column may explain an unset default: "unset (…)".
    let rows: Vec<Vec<String>> = table(&doc, DOC, "## Summary")
        .into_iter()
        .map(|mut r| {
            if r.len() > 2 && r[2].starts_with("unset") {
                r[2] = "unset".into();
            }
            r
        })
        .collect();
    let mut problems = compare_rows("option", DOC, &expected, &rows, &["Type", "Default"]);
    for name in options.keys() {
        if !doc.lines().any(|l| l.trim() == format!("### `{name}`")) {
            problems.push(format!(
                "{DOC}: option `{name}` has no section \"### `{name}`\""
            ));
        }
    }
    let options_part = doc.split("\n## Options\n").nth(1).unwrap_or("");
    let options_part = options_part.split("\n## ").next().unwrap_or("");
    for l in options_part.lines() {
        if let Some(name) = l.strip_prefix("### `").and_then(|r| r.strip_suffix('`')) {
            if !options.contains_key(name) {
                problems.push(format!(
                    "{DOC}: section \"### `{name}`\" documents an option config.yaml does not have"
                ));
            }
        }
    }
    report(&problems, &format!("{DOC} (or config.yaml)"));
}

// ---------------------------------------------------------------- actions.yaml

/// `` `name` (type, required) `` / `` `name` (type, default `v`) ``, joined by `; `, or `none`.
fn params_cell(action: &Map<String, Value>) -> String {
    let required: BTreeSet<String> = match action.get("required") {
        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
        _ => BTreeSet::new(),
    };
    let params = match action.get("params") {
        Some(Value::Object(p)) if !p.is_empty() => p,
        _ => return "none".into(),
    };
    params
        .iter()
        .map(|(name, p)| {
            let ty = p.get("type").map(scalar).unwrap_or_default();
            let how = if required.contains(name) {
                "required".to_string()
            } else if let Some(d) = p.get("default") {
                format!("default `{}`", scalar(d))
            } else {
                "optional".to_string()
            };
            format!("`{name}` ({ty}, {how})")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn actions_reference_matches_actions_yaml() {
    const DOC: &str = "docs/reference/actions.md";
    let actions = yaml("actions.yaml");
    let expected: BTreeMap<String, Vec<String>> = actions
        .iter()
        .map(|(name, a)| {
            let a = a.as_object().cloned().unwrap_or_default();
            (name.clone(), vec![params_cell(&a)])
        })
        .collect();
    let doc = read(DOC);
    let rows = table(&doc, DOC, "## Summary");
    report(
        &compare_rows("action", DOC, &expected, &rows, &["Parameters"]),
        &format!("{DOC} (or actions.yaml)"),
    );
}

// ---------------------------------------------------------------- metadata.yaml

#[test]
fn integrations_reference_matches_metadata_yaml() {
    const DOC: &str = "docs/reference/integrations.md";
    let meta = yaml("metadata.yaml");
    let doc = read(DOC);
    let mut problems = Vec::new();

    let mut endpoints = BTreeMap::new();
    for role in ["provides", "requires", "peers"] {
        let Some(Value::Object(eps)) = meta.get(role) else {
            continue;
        };
        for (name, e) in eps {
            let limit = e.get("limit").map(scalar).unwrap_or_else(|| "none".into());
            let interface = format!("`{}`", e.get("interface").map(scalar).unwrap_or_default());
            endpoints.insert(name.clone(), vec![role.to_string(), interface, limit]);
        }
    }
    problems.extend(compare_rows(
        "endpoint",
        DOC,
        &endpoints,
        &table(&doc, DOC, "## Endpoints"),
        &["Role", "Interface", "Limit"],
    ));

    let mut containers = BTreeMap::new();
    if let Some(Value::Object(cs)) = meta.get("containers") {
        for (name, c) in cs {
            let resource = format!("`{}`", c.get("resource").map(scalar).unwrap_or_default());
            let mounts = match c.get("mounts") {
                Some(Value::Array(ms)) => ms
                    .iter()
                    .map(|m| {
                        format!(
                            "`{}` at `{}`",
                            m.get("storage").map(scalar).unwrap_or_default(),
                            m.get("location").map(scalar).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => "none".into(),
            };
            containers.insert(name.clone(), vec![resource, mounts]);
        }
    }
    problems.extend(compare_rows(
        "container",
        DOC,
        &containers,
        &table(&doc, DOC, "## Containers"),
        &["Resource", "Mounts"],
    ));

    let mut resources = BTreeMap::new();
    if let Some(Value::Object(rs)) = meta.get("resources") {
        for (name, r) in rs {
            resources.insert(
                name.clone(),
                vec![r.get("type").map(scalar).unwrap_or_default()],
            );
        }
    }
    problems.extend(compare_rows(
        "resource",
        DOC,
        &resources,
        &table(&doc, DOC, "## Resources"),
        &["Type"],
    ));

    let mut storage = BTreeMap::new();
    if let Some(Value::Object(ss)) = meta.get("storage") {
        for (name, s) in ss {
            storage.insert(
                name.clone(),
                vec![
                    s.get("type").map(scalar).unwrap_or_default(),
                    format!("`{}`", s.get("location").map(scalar).unwrap_or_default()),
                ],
            );
        }
    }
    problems.extend(compare_rows(
        "storage",
        DOC,
        &storage,
        &table(&doc, DOC, "## Storage"),
        &["Type", "Location"],
    ));
    report(&problems, &format!("{DOC} (or metadata.yaml)"));
}

// ---------------------------------------------------------------- Pebble layers and ports

/// Synapse's options at their `config.yaml` defaults, with a server name.
fn default_config() -> SynapseConfig {
    let options = yaml("config.yaml");
    let mut raw = Map::new();
    if let Some(Value::Object(opts)) = options.get("options") {
        for (name, o) in opts {
            if let Some(d) = o.get("default") {
                raw.insert(name.clone(), d.clone());
            }
        }
    }
    raw.insert("server_name".into(), Value::String("example.com".into()));
    SynapseConfig::from_juju(&raw).unwrap_or_else(|e| panic!("config.yaml's defaults: {e}"))
}

fn json_str(v: &Value, key: &str) -> String {
    v.get(key).map(scalar).unwrap_or_else(|| "none".into())
}

#[test]
fn workloads_reference_matches_the_layers() {
    const DOC: &str = "docs/reference/workloads.md";
    let doc = read(DOC);
    let mut problems = Vec::new();

    // The main unit of a scaled-out application: Synapse main and the federation sender.
    let main_unit = topology::Cluster {
        app: "synapse".into(),
        me: "synapse/0".into(),
        main: "synapse/0".into(),
        workers: vec!["synapse/1".into()],
        redis: RedisInfo {
            host: "redis".into(),
            port: 6379,
        },
    };
    let scaled = default_config().with_cluster(Some(main_unit));
    let synapse = synapse_layer::layer(&scaled, "s", "c", None, &BTreeMap::new());
    let nginx = nginx::layer();
    let exporter = synapse_layer::exporter_service(None);

    let mut services = BTreeMap::new();
    let mut checks = BTreeMap::new();
    for (container, layer) in [
        (synapse_layer::CONTAINER, &synapse),
        (nginx::CONTAINER, &nginx),
    ] {
        let l = serde_json::to_value(layer).expect("a layer serialises");
        for (name, s) in l["services"].as_object().into_iter().flatten() {
            services.insert(
                name.clone(),
                vec![
                    format!("`{container}`"),
                    format!("`{}`", json_str(s, "command")),
                    json_str(s, "startup"),
                ],
            );
        }
        for (name, c) in l["checks"].as_object().into_iter().flatten() {
            let target = if let Some(h) = c.get("http") {
                format!("http `{}`", json_str(h, "url"))
            } else if let Some(t) = c.get("tcp") {
                format!("tcp port `{}`", json_str(t, "port"))
            } else {
                "exec".into()
            };
            checks.insert(
                name.clone(),
                vec![
                    format!("`{container}`"),
                    json_str(c, "level"),
                    target,
                    format!("`{}`", json_str(c, "period")),
                    format!("`{}`", json_str(c, "timeout")),
                    json_str(c, "threshold"),
                ],
            );
        }
    }
    // The exporter joins Synapse's layer only with PostgreSQL; its command is fixed.
    let e = serde_json::to_value(&exporter).expect("a service serialises");
    services.insert(
        synapse_layer::EXPORTER.to_string(),
        vec![
            format!("`{}`", synapse_layer::CONTAINER),
            format!("`{}`", json_str(&e, "command")),
            "enabled (with PostgreSQL), else disabled".into(),
        ],
    );
    problems.extend(compare_rows(
        "Pebble service",
        DOC,
        &services,
        &table(&doc, DOC, "## Pebble services"),
        &["Container", "Command", "Startup"],
    ));
    problems.extend(compare_rows(
        "Pebble check",
        DOC,
        &checks,
        &table(&doc, DOC, "## Pebble checks"),
        &[
            "Container",
            "Level",
            "Target",
            "Period",
            "Timeout",
            "Threshold",
        ],
    ));

    let ports = BTreeMap::from([
        (
            CLIENT_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            METRICS_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            synapse_layer::EXPORTER_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            topology::MAIN_REPLICATION_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            topology::WORKER_REPLICATION_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            topology::FEDERATION_SENDER_METRICS_PORT.to_string(),
            vec![format!("`{}`", synapse_layer::CONTAINER)],
        ),
        (
            nginx::PORT.to_string(),
            vec![format!("`{}`", nginx::CONTAINER)],
        ),
    ]);
    problems.extend(compare_rows(
        "port",
        DOC,
        &ports,
        &table(&doc, DOC, "## Ports"),
        &["Container"],
    ));
    report(
        &problems,
        &format!("{DOC} (or the layers in src/synapse/layer.rs, src/nginx/mod.rs)"),
    );
}

// ---------------------------------------------------------------- status messages

/// Calls whose first argument is a unit status message, or a note of an active one
/// (so are the literals of the functions named `*_message`, `note` or `*_note`).
const STATUS_CALLS: &[&str] = &[
    "Progress::Blocked(",
    "Progress::Waiting(",
    "Status::blocked(",
    "Status::waiting(",
    "notes.push(",
];

/// Error enums (file, name) whose `Display` becomes a status message unchanged.
const STATUS_ERRORS: &[(&str, &str)] = &[
    ("src/relations/database/postgres.rs", "DbError"),
    ("src/relations/smtp/server.rs", "SmtpError"),
];

/// How much of a message (its fixed text, placeholders skipped) must be in the docs: a
/// stable prefix, so the docs may end a long message with `...`.
const PREFIX_CHARS: usize = 24;

/// The `.rs` files under `dir`, without test modules: `src/testing/` and every file a
/// `#[cfg(test)] mod <name>;` declares (`tests.rs`, `bad_configs.rs`, ...).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut test_modules = BTreeSet::new();
    for p in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = fs::read_to_string(p).unwrap_or_default();
        let mut lines = text.lines().map(str::trim).peekable();
        while let Some(l) = lines.next() {
            if l == "#[cfg(test)]" {
                if let Some(name) = lines
                    .peek()
                    .and_then(|n| n.strip_prefix("mod "))
                    .and_then(|n| n.strip_suffix(';'))
                {
                    test_modules.insert(name.to_string());
                }
            }
        }
    }
    for p in entries {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if test_modules.contains(&stem) || stem == "testing" {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's text before its inline `#[cfg(test)] mod tests {`, if any (a `mod tests;`
/// declaration keeps the rest).
fn non_test_part(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod ") && n.trim_end().ends_with('{'))
        {
            return &text[..offset];
        }
        offset += l.len() + 1;
    }
    text
}

/// Parses the Rust string literal at the start of `s` (after its opening `"`).
fn string_literal(s: &str) -> Option<String> {
    literal_and_len(s).map(|(text, _)| text)
}

/// The literal's text and the bytes it takes in `s`, closing quote included.
fn literal_and_len(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\n' => {
                    while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                        chars.next();
                    }
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Where each string literal of `code` starts (its opening quote).
fn literal_starts(code: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(q) = code[pos..].find('"') {
        let start = pos + q;
        if code[..start].ends_with('\'') {
            pos = start + 1;
            continue;
        }
        out.push(start);
        match literal_and_len(&code[start + 1..]) {
            Some((_, len)) => pos = start + 1 + len,
            None => break,
        }
    }
    out
}

/// The message literal of a status call starting at `rest` (just after its `(`), if the
/// argument is a literal or a `format!` of one.
fn call_literal(rest: &str) -> Option<String> {
    let r = rest.trim_start();
    let r = r.strip_prefix("format!(").map_or(r, str::trim_start);
    string_literal(r.strip_prefix('"')?)
}

/// A format string's fixed parts, split at its placeholders (`{{`/`}}` unescaped).
fn segments(fmt: &str) -> Vec<String> {
    let mut segs = vec![String::new()];
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                segs.last_mut().unwrap().push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                segs.last_mut().unwrap().push('}');
            }
            '{' => {
                let spec: String = chars.by_ref().take_while(|c| *c != '}').collect();
                // `{x:?}` of a string shows it in double quotes: `"<x>"` in the docs.
                let quote = if spec.ends_with(":?") { "\"" } else { "" };
                segs.last_mut().unwrap().push_str(quote);
                segs.push(quote.to_string());
            }
            c => segs.last_mut().unwrap().push(c),
        }
    }
    segs
}

/// Whether `doc` holds the message's stable prefix, each placeholder written `<...>`.
fn documented(doc: &str, segs: &[String]) -> bool {
    let segs: Vec<&str> = segs
        .iter()
        .map(String::as_str)
        .skip_while(|s| s.is_empty())
        .collect();
    let Some(first) = segs.first() else {
        return true;
    };
    let total: usize = segs.iter().map(|s| s.chars().count()).sum();
    let needed = total.min(PREFIX_CHARS);
    let head: String = first.chars().take(needed).collect();
    doc.match_indices(head.as_str()).any(|(start, _)| {
        let mut pos = start;
        let mut matched = 0;
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 {
                // A placeholder: `<...>` on one line.
                let rest = &doc[pos..];
                let Some(after) = rest.strip_prefix('<') else {
                    return false;
                };
                let Some(end) = after.find('>').filter(|e| !after[..*e].contains('\n')) else {
                    return false;
                };
                pos += 1 + end + 1;
            }
            let take: String = seg.chars().take(needed - matched).collect();
            if !doc[pos..].starts_with(&take) {
                return false;
            }
            matched += take.chars().count();
            pos += take.len();
            if matched >= needed {
                return true;
            }
        }
        true
    })
}

#[test]
fn every_status_message_is_in_the_statuses_reference() {
    const DOC: &str = "docs/reference/statuses.md";
    let doc = read(DOC);
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut found = 0;
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("a source file reads");
        let code = non_test_part(&text);
        // The calls, and the `fn <name>_message(` helpers that build a status message.
        let mut sites: Vec<(usize, usize)> = STATUS_CALLS
            .iter()
            .flat_map(|call| code.match_indices(call).map(|(at, c)| (at, at + c.len())))
            .collect();
        // Error enums whose `Display` is a whole status message.
        for (path, name) in STATUS_ERRORS {
            if !file.ends_with(path) {
                continue;
            }
            let Some(at) = code.find(&format!("enum {name} {{")) else {
                problems.push(format!("{path}: enum {name} not found (update STATUS_ERRORS in tests/docs_reference.rs)"));
                continue;
            };
            let end = code[at..].find("\n}").map_or(code.len(), |e| at + e);
            sites.extend(
                code[at..end]
                    .match_indices("#[error(")
                    .map(|(e, c)| (at + e, at + e + c.len())),
            );
        }
        // `let note = ... format!(...)`: the note's text is the first `format!` after it.
        for (at, _) in code.match_indices("let note =") {
            let window = &code[at..code.len().min(at + 300)];
            if let Some(f) = window.find("format!(") {
                sites.push((at, at + f));
            }
        }
        for (at, _) in code.match_indices("fn ") {
            let name: String = code[at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.ends_with("_message") || name == "note" || name.ends_with("_note") {
                let body = &code[at..];
                let end = body.find("\n}").unwrap_or(body.len());
                sites.extend(
                    literal_starts(&body[..end])
                        .into_iter()
                        .map(|q| (at, at + q)),
                );
            }
        }
        for (at, arg) in sites {
            let Some(msg) = call_literal(&code[arg..]) else {
                continue; // not a literal: built elsewhere
            };
            let segs = segments(&msg);
            if segs.iter().map(|s| s.trim().len()).sum::<usize>() < 6 {
                continue; // only placeholders, e.g. `format!("{e}")`
            }
            found += 1;
            if !documented(&doc, &segs) {
                let line = code[..at].lines().count();
                let rel = file.strip_prefix(root()).unwrap_or(file);
                let shown = segs.join("<...>");
                problems.push(format!(
                    "{}:{line}: `{shown}` (write each placeholder as <name>)",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        found > 10,
        "the scan of src/ found only {found} status literals: is the scan broken?"
    );
    report(
        &problems,
        &format!("{DOC}: add these status messages (with what to do about them)"),
    );
}

#[test]
fn the_status_matcher_accepts_placeholders_and_prefixes_only() {
    let doc = "| `cannot reach PostgreSQL at <endpoints>: <reason>` | x |";
    assert!(documented(
        doc,
        &segments("cannot reach PostgreSQL at {}: {reason}")
    ));
    assert!(!documented(
        doc,
        &segments("cannot reach Redis at {}: {reason}")
    ));
    let doc = "`database \"<db>\" holds no Synapse data, but ...`";
    assert!(documented(
        doc,
        &segments("database \"{db}\" holds no Synapse data, but the rest")
    ));
    assert!(!documented(
        doc,
        &segments("database \"{db}\" holds some Synapse data")
    ));
    assert!(documented(
        doc,
        &segments("database {db:?} holds no Synapse data, but")
    ));
    // A long enough fixed start is enough, whatever follows.
    assert!(documented(
        "`PostgreSQL did not answer within 10s`",
        &segments("PostgreSQL did not answer within {0:?}")
    ));
    assert_eq!(literal_starts(r#"f("a \" b", 'x', "c")"#), vec![2, 17]);
    assert_eq!(
        call_literal(" format!(\n  \"a {x} \\\n    b\", x = 1)"),
        Some("a {x} b".into())
    );
}

// ---------------------------------------------------------------- links

/// Pages other branches are writing: linked already, checked once they exist.
const ARRIVING: &[&str] = &[
    "docs/how-to/scale.md",
    "docs/how-to/switch-from-canonical-charm.md",
];

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir)
        .expect("docs/ lists")
        .filter_map(Result::ok)
    {
        let p = e.path();
        if p.is_dir() {
            markdown_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "md") {
            out.push(p);
        }
    }
}

/// The lines of a Markdown file outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, l));
        }
    }
    out
}

/// GitHub's anchors of a page's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, l)| {
            let t = l.trim_start_matches('#');
            (t.len() < l.len() && t.starts_with(' ')).then_some(t.trim())
        })
        .map(|t| {
            t.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut files = vec![root().join("README.md")];
    markdown_files(&root().join("docs"), &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("a page reads");
        let rel = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in prose_lines(&text) {
            for (at, _) in line.match_indices("](") {
                let rest = &line[at + 2..];
                let Some(end) = rest.find(')') else { continue };
                let link = &rest[..end];
                if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                    continue;
                }
                let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
                let target = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().expect("a page has a folder").join(path)
                };
                let Ok(target) = target.canonicalize() else {
                    let wanted = file.parent().unwrap().join(path);
                    let wanted = wanted.strip_prefix(root()).unwrap_or(&wanted);
                    let norm: PathBuf = wanted.components().fold(PathBuf::new(), |mut p, c| {
                        match c {
                            std::path::Component::ParentDir => {
                                p.pop();
                            }
                            c => p.push(c),
                        }
                        p
                    });
                    if !ARRIVING.contains(&norm.to_string_lossy().as_ref()) {
                        problems.push(format!("{rel}:{n}: `{link}`: no such file"));
                    }
                    continue;
                };
                if anchor.is_empty() || target.extension().is_none_or(|e| e != "md") {
                    continue;
                }
                let page = fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&page).contains(anchor) {
                    problems.push(format!("{rel}:{n}: `{link}`: no heading with that anchor"));
                }
            }
        }
    }
    report(
        &problems,
        "the links named (the first path is the page that links)",
    );
}
