//! [`HookTools`] backed by the real hook-tool executables Juju puts on `PATH`.
//! Secret content and databags travel through files or stdin, never argv.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::event::RelationId;
use super::tools::*;

/// Runs one hook tool: its standard output, or the error it reported.
pub trait ToolRunner {
    fn run(&self, tool: &'static str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>>;
}

/// Runs hook tools as child processes that inherit the whole environment
/// (they need `JUJU_CONTEXT_ID` and the agent socket variables).
#[derive(Debug, Default, Clone, Copy)]
pub struct Spawn;

impl ToolRunner for Spawn {
    fn run(&self, tool: &'static str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
        spawn(tool, args, stdin)
    }
}

/// [`HookTools`] over hook-tool command lines: the arguments and formats Juju's tools
/// take, run by `R` (child processes in production; JujuLocal's tools in-process in
/// unit tests, so both go through the very same command lines).
#[derive(Debug, Default)]
pub struct ProcessTools<R = Spawn> {
    runner: R,
}

impl<R: ToolRunner> ProcessTools<R> {
    pub fn new(runner: R) -> Self {
        Self { runner }
    }

    pub fn into_runner(self) -> R {
        self.runner
    }

    fn run(&self, tool: &'static str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
        self.runner.run(tool, args, stdin)
    }

    fn run_json<T: serde::de::DeserializeOwned>(
        &self,
        tool: &'static str,
        args: &[&str],
    ) -> ToolResult<T> {
        parse_json(tool, &self.run(tool, args, None)?)
    }
}

fn spawn(tool: &'static str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
    tracing::trace!(tool, ?args, "hook tool");
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().map_err(|e| {
        ToolError::new(
            tool,
            ToolErrorKind::Spawn,
            format!("cannot run {tool}: {e}"),
        )
    })?;
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input).map_err(|e| {
                ToolError::new(tool, ToolErrorKind::Failed, format!("writing stdin: {e}"))
            })?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ToolError::new(tool, ToolErrorKind::Failed, e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = if stderr.trim().is_empty() {
            format!("exited with {}", out.status)
        } else {
            stderr.into_owned()
        };
        return Err(ToolError::from_stderr(tool, &stderr));
    }
    Ok(out.stdout)
}

fn parse_json<T: serde::de::DeserializeOwned>(tool: &'static str, out: &[u8]) -> ToolResult<T> {
    let text = String::from_utf8_lossy(out);
    let text = text.trim();
    // Juju 4 may print nothing or `null` for an empty map.
    let text = if text.is_empty() { "null" } else { text };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ToolError::new(
            tool,
            ToolErrorKind::BadOutput,
            format!("invalid JSON output: {e}"),
        )
    })?;
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        v => v,
    };
    serde_json::from_value(value).map_err(|e| {
        ToolError::new(
            tool,
            ToolErrorKind::BadOutput,
            format!("unexpected output: {e}"),
        )
    })
}

fn json_bytes(tool: &'static str, data: &Databag) -> ToolResult<Vec<u8>> {
    serde_json::to_vec(data).map_err(|e| ToolError::new(tool, ToolErrorKind::Failed, e.to_string()))
}

/// Writes each secret value to a private temporary file and returns `key#file=path` args.
struct SecretFiles {
    dir: std::path::PathBuf,
    args: Vec<String>,
}

impl SecretFiles {
    fn new(tool: &'static str, content: &Databag) -> ToolResult<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let err = |e: std::io::Error| ToolError::new(tool, ToolErrorKind::Failed, e.to_string());
        let mut rand = [0u8; 8];
        getrandom::fill(&mut rand).map_err(|e| err(e.into()))?;
        let dir = std::env::temp_dir().join(format!(
            "synapse-charm-secret-{}",
            rand.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(err)?;
        let mut files = SecretFiles { dir, args: vec![] };
        for (i, (k, v)) in content.iter().enumerate() {
            let path = files.dir.join(format!("v{i}"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(err)?;
            f.write_all(v.as_bytes()).map_err(err)?;
            files.args.push(format!("{k}#file={}", path.display()));
        }
        Ok(files)
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<R: ToolRunner> HookTools for ProcessTools<R> {
    fn config_get(&self) -> ToolResult<serde_json::Map<String, Value>> {
        self.run_json("config-get", &["--format=json"])
    }

    fn is_leader(&self) -> ToolResult<bool> {
        self.run_json("is-leader", &["--format=json"])
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        let ids: Vec<String> = self.run_json("relation-ids", &[endpoint, "--format=json"])?;
        ids.iter()
            .map(|s| {
                RelationId::parse(s).ok_or_else(|| {
                    ToolError::new(
                        "relation-ids",
                        ToolErrorKind::BadOutput,
                        format!("bad id {s:?}"),
                    )
                })
            })
            .collect()
    }

    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<String>> {
        let r = relation.to_string();
        self.run_json("relation-list", &["--format=json", "-r", &r])
    }

    fn planned_units(&self) -> ToolResult<Vec<String>> {
        let v: Value = self.run_json("goal-state", &["--format=json"])?;
        let units = v.get("units").and_then(Value::as_object);
        Ok(units
            .map(|m| {
                m.iter()
                    .filter(|(_, u)| u.get("status").and_then(Value::as_str) != Some("dying"))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<String>> {
        let r = relation.to_string();
        let v: Value = self.run_json("relation-list", &["--format=json", "-r", &r, "--app"])?;
        Ok(v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
    }

    fn relation_get(&self, relation: &RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        let r = relation.to_string();
        let mut args = vec!["--format=json", "-r", &r];
        if app {
            args.push("--app");
        }
        args.extend(["-", target]);
        self.run_json("relation-get", &args)
    }

    fn relation_set(&self, relation: &RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        let r = relation.to_string();
        let mut args = vec!["-r", &r];
        if app {
            args.push("--app");
        }
        args.extend(["--file", "-"]);
        self.run(
            "relation-set",
            &args,
            Some(&json_bytes("relation-set", data)?),
        )
        .map(drop)
    }

    fn status_set(&self, status: &Status, application: bool) -> ToolResult<()> {
        let app = if application {
            "--application=True"
        } else {
            "--application=False"
        };
        self.run(
            "status-set",
            &[app, status.kind.as_str(), "--", &status.message],
            None,
        )
        .map(drop)
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.run("application-version-set", &["--", version], None)
            .map(drop)
    }

    fn state_get(&self) -> ToolResult<Databag> {
        self.run_json("state-get", &["--format=json"])
    }

    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.run(
            "state-set",
            &["--file", "-"],
            Some(&json_bytes("state-set", data)?),
        )
        .map(drop)
    }

    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.run("state-delete", &["--", key], None).map(drop)
    }

    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        mode: SecretRead,
    ) -> ToolResult<Databag> {
        let mut args = vec!["--format=json"];
        if let Some(id) = id {
            args.push(id);
        }
        if let Some(label) = label {
            args.extend(["--label", label]);
        }
        match mode {
            SecretRead::Pinned => {}
            SecretRead::Refresh => args.push("--refresh"),
            SecretRead::Peek => args.push("--peek"),
        }
        self.run_json("secret-get", &args)
    }

    fn secret_info_by_label(&self, label: &str) -> ToolResult<Option<SecretInfo>> {
        #[derive(serde::Deserialize)]
        struct Info {
            #[serde(default)]
            revision: u64,
            label: Option<String>,
        }
        match self.run_json::<std::collections::BTreeMap<String, Info>>(
            "secret-info-get",
            &["--format=json", "--label", label],
        ) {
            Ok(map) => Ok(map.into_iter().next().map(|(id, info)| SecretInfo {
                id,
                label: info.label,
                revision: info.revision,
            })),
            Err(e) if e.kind == ToolErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn secret_add(
        &self,
        content: &Databag,
        label: &str,
        description: &str,
        owner: SecretOwner,
    ) -> ToolResult<String> {
        let files = SecretFiles::new("secret-add", content)?;
        let owner = match owner {
            SecretOwner::Application => "application",
            SecretOwner::Unit => "unit",
        };
        let mut args = vec![
            "--label",
            label,
            "--description",
            description,
            "--owner",
            owner,
        ];
        args.extend(files.args.iter().map(String::as_str));
        let out = self.run("secret-add", &args, None)?;
        let uri = String::from_utf8_lossy(&out).trim().to_string();
        if uri.is_empty() {
            return Err(ToolError::new(
                "secret-add",
                ToolErrorKind::BadOutput,
                "no secret URI printed",
            ));
        }
        Ok(uri)
    }

    fn secret_set(&self, id: &str, content: &Databag) -> ToolResult<()> {
        let files = SecretFiles::new("secret-set", content)?;
        let mut args = vec![id];
        args.extend(files.args.iter().map(String::as_str));
        self.run("secret-set", &args, None).map(drop)
    }

    fn secret_grant(&self, id: &str, relation: &RelationId) -> ToolResult<()> {
        let rel = relation.to_string();
        self.run("secret-grant", &[id, "-r", &rel], None).map(drop)
    }

    fn secret_revoke(&self, id: &str, relation: &RelationId) -> ToolResult<()> {
        let rel = relation.to_string();
        self.run("secret-revoke", &[id, "-r", &rel], None).map(drop)
    }

    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        let v: Value = self.run_json("network-get", &["--format=json", binding])?;
        let bind_address = v["bind-addresses"]
            .get(0)
            .and_then(|b| b["addresses"].get(0))
            .and_then(|a| a["value"].as_str())
            .map(str::to_string);
        let ingress_addresses = v["ingress-addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(NetworkInfo {
            bind_address,
            ingress_addresses,
        })
    }

    fn open_port(&self, port: u16) -> ToolResult<()> {
        self.run("open-port", &[&format!("{port}/tcp")], None)
            .map(drop)
    }

    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        self.run_json("opened-ports", &["--format=json"])
    }

    fn action_get(&self) -> ToolResult<serde_json::Map<String, Value>> {
        self.run_json("action-get", &["--format=json"])
    }

    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        let args: Vec<String> = results.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("action-set", &args, None).map(drop)
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.run("action-fail", &["--", message], None).map(drop)
    }

    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.run("action-log", &["--", message], None).map(drop)
    }
}
