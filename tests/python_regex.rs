//! The charm's check of appservice namespace regexes against Python's own `re` (the
//! Synapse venv's Python, the interpreter Synapse compiles them with): on a corpus of
//! generated patterns, both must agree, except for the documented gaps.

use std::io::Write;
use std::process::{Command, Stdio};

use synapse_k8s_charm::relations::matrix_auth::pyre;

fn python() -> String {
    let tools =
        std::env::var("SYNAPSE_CHARM_TOOLS").unwrap_or_else(|_| "/opt/synapse-charm".into());
    let py = format!("{tools}/synapse-venv/bin/python");
    assert!(
        std::path::Path::new(&py).exists(),
        "{py} is missing: run scripts/setup.sh (the Synapse venv)"
    );
    py
}

/// Python's verdict on each pattern: true when `re.compile` accepts it.
fn python_verdicts(patterns: &[String]) -> Vec<bool> {
    let mut child = Command::new(python())
        .args([
            "-W",
            "ignore",
            "-c",
            "import json, re, sys\nfor line in sys.stdin:\n    p = json.loads(line)\n    try:\n        re.compile(p); print(1)\n    except Exception:\n        print(0)\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = patterns
        .iter()
        .map(|p| format!("{}\n", serde_json::to_string(p).unwrap()))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "1")
        .collect()
}

/// A deterministic corpus: short patterns over regex syntax characters.
fn corpus(n: usize) -> Vec<String> {
    const ATOMS: &[&str] = &[
        "a",
        "b",
        "_",
        "@",
        ":",
        ".",
        "\\.",
        "*",
        "+",
        "?",
        "|",
        "(",
        ")",
        "[",
        "]",
        "^",
        "$",
        "{",
        "}",
        "1",
        "2",
        ",",
        "-",
        "\\",
        "\\d",
        "\\w",
        "\\s",
        "\\b",
        "\\A",
        "\\Z",
        "(?:",
        "(?P<n>",
        "(?P=n)",
        "(?=",
        "(?!",
        "(?<=",
        "(?<!",
        "(?i)",
        "(?s:",
        "\\1",
        "[^",
        "{,2}",
        "{2,}",
        "{1,2}",
        "*?",
        "+?",
        "\\x41",
        "\\u00e9",
        "#",
        "\\p",
        "\\z",
        "(?>",
        "(?#c)",
        "\\8",
        "\\0",
        "\\12",
        "\\377",
        "\\400",
        "&&",
        "~~",
        "--",
        "[[:alpha:]]",
        "(?<n>",
        "\\x{41}",
        "(?U)",
        "(?m)",
        "a-z",
        "z-a",
        "\\pL",
        "\\-",
        "\\@",
        "\\q",
        "\\e",
        "\\Q",
        "\\<",
        " ",
        "(?x)",
        "\\n",
        "é",
        "(?P<m>",
        "(?-i:",
        "(?i-s:",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = (next() % 7) as usize;
            (0..len)
                .map(|_| ATOMS[(next() % ATOMS.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// Constructs the charm knowingly does not judge like Python (docs/reference/matrix-auth.md).
fn documented_gap(p: &str) -> bool {
    ["(?P=", "(?<=", "(?<!", "(?(", "\\N", "(?a", "(?L"]
        .iter()
        .any(|g| p.contains(g))
}

#[test]
fn agrees_with_python_re() {
    let patterns = corpus(50000);
    let verdicts = python_verdicts(&patterns);
    assert_eq!(verdicts.len(), patterns.len());
    let mut disagreements = vec![];
    let mut compared = 0;
    for (p, python_ok) in patterns.iter().zip(verdicts) {
        if documented_gap(p) {
            continue;
        }
        compared += 1;
        let ours = pyre::check(p);
        if ours.is_ok() != python_ok {
            disagreements.push(format!("{p:?}: Python {python_ok}, charm {ours:?}"));
        }
    }
    println!(
        "python regex: {compared} patterns compared, {} disagreements",
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {compared}:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
