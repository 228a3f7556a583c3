//! The workload version: Synapse's own answer to `GET /_matrix/federation/v1/version`,
//! set with `application-version-set`. The binary can only change with a new container,
//! which the charm always (re)starts itself; so the version is read once Synapse is
//! ready after each start by the charm, and never in a steady-state hook.

use crate::juju::hints::UnitHints;
use crate::juju::HookTools;
use crate::workload::Workload;

/// Answered by Synapse without authentication.
pub const VERSION_URL: &str = "http://localhost:8008/_matrix/federation/v1/version";

/// The version in Synapse's answer (pure): `{"server": {"name": .., "version": ..}}`.
/// Only a short, printable value is accepted.
pub fn parse(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let version = v.get("server")?.get("version")?.as_str()?.trim();
    let ok =
        !version.is_empty() && version.len() <= 64 && version.chars().all(|c| c.is_ascii_graphic());
    ok.then(|| version.to_string())
}

/// Marks the version as unknown: the charm has just (re)started Synapse.
pub fn forget(hints: &mut UnitHints) {
    hints.workload_version = None;
}

/// Reads and sets the version if it is not known since the last start. A Synapse that
/// does not answer is asked again on the next hook.
pub fn update(
    tools: &dyn HookTools,
    w: &dyn Workload,
    hints: &mut UnitHints,
) -> Result<(), crate::juju::ToolError> {
    if hints.workload_version.is_some() {
        return Ok(());
    }
    let Some(version) = w.fetch(VERSION_URL).as_deref().and_then(parse) else {
        tracing::debug!("Synapse did not tell its version yet");
        return Ok(());
    };
    tools.application_version_set(&version)?;
    tracing::info!(%version, "workload version set");
    hints.workload_version = Some(version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_synapse_answer() {
        assert_eq!(
            parse(br#"{"server": {"name": "Synapse", "version": "1.140.0"}}"#).as_deref(),
            Some("1.140.0")
        );
        for bad in [
            &br#"{"server": {"name": "Synapse"}}"#[..],
            br#"{"server": {"version": ""}}"#,
            br#"{"server": {"version": "1 2"}}"#,
            br#"{"server": {"version": 3}}"#,
            br#"not json"#,
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let long = format!(r#"{{"server": {{"version": "{}"}}}}"#, "1".repeat(65));
        assert_eq!(parse(long.as_bytes()), None);
    }
}
