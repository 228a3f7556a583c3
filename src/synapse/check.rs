//! Synapse checks a new configuration before the running Synapse sees it (pure part:
//! the command, reading its answer, naming the options involved).
//!
//! The candidate `homeserver.yaml` is written beside the live one and loaded by
//! Synapse's own configuration code inside the `synapse` container, the way a start
//! loads it: every section is parsed and every configured module is imported and
//! given its configuration. Only a configuration that loads replaces the live one.

use super::homeserver::DATA_DIR;

/// Where the candidate is written (beside the live file, same owner and mode).
pub const CANDIDATE_PATH: &str = "/data/homeserver.yaml.candidate";
/// Synapse's interpreter in the rock.
pub const PYTHON: &str = "/opt/synapse/bin/python";

/// Loads the file named by `argv[1]` with Synapse's configuration code and prints
/// one JSON line: `{"ok": true}` or `{"ok": false, "path": [...], "error": "..."}`.
/// Importing `synapse.app.homeserver` first gives modules the import order of a start.
const SCRIPT: &str = r#"
import json, sys
def answer(ok, path=None, error=""):
    print(json.dumps({"ok": ok, "path": [str(p) for p in (path or [])], "error": error}))
    sys.exit(0 if ok else 1)
try:
    import synapse.app.homeserver  # noqa: F401
    from synapse.config._base import ConfigError
    from synapse.config.homeserver import HomeServerConfig
except Exception as e:
    print(f"cannot import Synapse: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(2)
try:
    HomeServerConfig.load_config("config check", ["--config-path", sys.argv[1]])
except ConfigError as e:
    cause = e.__cause__ or e.__context__
    msg = str(e.msg if hasattr(e, "msg") else e)
    if cause is not None and str(cause) and str(cause) not in msg:
        msg = f"{msg}: {cause}"
    answer(False, getattr(e, "path", None), msg)
except SystemExit:
    raise
except BaseException as e:
    answer(False, None, f"{type(e).__name__}: {e}")
answer(True)
"#;

/// The command that checks the candidate.
pub fn command() -> Vec<String> {
    vec![
        PYTHON.to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        CANDIDATE_PATH.to_string(),
    ]
}

/// The working directory of the check.
pub fn working_dir() -> &'static str {
    DATA_DIR
}

/// What Synapse said about the candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Synapse rejects it: the charm options involved (may be empty) and Synapse's
    /// message, bounded and free of control characters.
    Rejected {
        options: Vec<&'static str>,
        message: String,
    },
    /// The check itself could not run (Synapse cannot be imported, ...).
    Failed(String),
}

#[derive(serde::Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    path: Vec<String>,
    #[serde(default)]
    error: String,
}

/// Reads the check's exit code and output (pure).
pub fn verdict(exit_code: i64, stdout: &[u8], stderr: &[u8]) -> Verdict {
    let answer = String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Answer>(l).ok());
    match (exit_code, answer) {
        (0, Some(a)) if a.ok => Verdict::Accepted,
        (1, Some(a)) if !a.ok => {
            let options = options_for(a.path.first().map(String::as_str), &a.error);
            Verdict::Rejected {
                options,
                message: bounded(&a.error),
            }
        }
        _ => {
            let last = String::from_utf8_lossy(stderr)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("exit code {exit_code}"));
            Verdict::Failed(bounded(&last))
        }
    }
}

/// The charm options that render a top-level `homeserver.yaml` key.
const OPTIONS_BY_KEY: &[(&str, &[&str])] = &[
    (
        "modules",
        &[
            "invite_checker_blocklist_allowlist_url",
            "invite_checker_policy_rooms",
        ],
    ),
    ("public_baseurl", &["public_baseurl"]),
    ("server_name", &["server_name"]),
    (
        "federation_domain_whitelist",
        &["federation_domain_whitelist"],
    ),
    ("ip_range_whitelist", &["ip_range_whitelist"]),
    ("trusted_key_servers", &["trusted_key_servers"]),
    ("room_list_publication_rules", &["publish_rooms_allowlist"]),
    (
        "rc_joins",
        &["rc_joins_remote_burst_count", "rc_joins_remote_per_second"],
    ),
    ("limit_remote_rooms", &["limit_remote_rooms_complexity"]),
    ("password_config", &["enable_password_config"]),
    ("enable_room_list_search", &["enable_room_list_search"]),
    (
        "allow_public_rooms_over_federation",
        &["allow_public_rooms_over_federation"],
    ),
    ("block_non_admin_invites", &["block_non_admin_invites"]),
    ("report_stats", &["report_stats"]),
];

/// The options behind the key Synapse names (its error path, or else a key quoted in
/// its message).
fn options_for(key: Option<&str>, message: &str) -> Vec<&'static str> {
    let found = key
        .and_then(|k| OPTIONS_BY_KEY.iter().find(|(name, _)| *name == k))
        .or_else(|| {
            OPTIONS_BY_KEY
                .iter()
                .find(|(name, _)| message.contains(&format!("'{name}'")))
        });
    found.map(|(_, opts)| opts.to_vec()).unwrap_or_default()
}

pub use crate::util::bounded;

/// The status message for a rejected configuration.
pub fn rejected_message(options: &[&str], message: &str) -> String {
    let which = if options.is_empty() {
        String::new()
    } else {
        format!(" ({})", options.join(", "))
    };
    format!(
        "Synapse rejects the new configuration{which}: {message}; Synapse keeps its last good configuration"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(0, br#"{"ok": true}"#, b""), Verdict::Accepted);
        let v = verdict(
            1,
            br#"{"ok": false, "path": ["modules", "<item 0>", "config"], "error": "Failed to parse config for module 'x': Incomplete federation list config"}"#,
            b"noise",
        );
        assert_eq!(
            v,
            Verdict::Rejected {
                options: vec![
                    "invite_checker_blocklist_allowlist_url",
                    "invite_checker_policy_rooms"
                ],
                message: "Failed to parse config for module 'x': Incomplete federation list config"
                    .into()
            }
        );
        // No path: a key quoted in the message still names the option.
        let v = verdict(
            1,
            br#"{"ok": false, "path": [], "error": "bad value for 'public_baseurl'"}"#,
            b"",
        );
        assert!(matches!(v, Verdict::Rejected { options, .. } if options == ["public_baseurl"]));
        // The checker itself failed: the last line of stderr.
        assert_eq!(
            verdict(
                2,
                b"",
                b"Traceback...\ncannot import Synapse: ImportError: x\n"
            ),
            Verdict::Failed("cannot import Synapse: ImportError: x".into())
        );
        // An exit code that does not match the answer is not trusted.
        assert!(matches!(
            verdict(0, br#"{"ok": false}"#, b""),
            Verdict::Failed(_)
        ));
        assert!(matches!(verdict(-1, b"", b""), Verdict::Failed(m) if m == "exit code -1"));
    }

    #[test]
    fn messages_are_bounded_and_single_line() {
        let hostile = format!("a\nb\r\x1b[31mc{}", "x".repeat(1000));
        let b = bounded(&hostile);
        assert!(!b.chars().any(char::is_control), "{b:?}");
        assert!(b.chars().count() <= 301);
        assert!(b.starts_with("a b [31mc"), "{b}");
        assert_eq!(
            rejected_message(&["public_baseurl"], "no"),
            "Synapse rejects the new configuration (public_baseurl): no; Synapse keeps its last good configuration"
        );
    }
}
