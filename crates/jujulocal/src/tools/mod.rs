//! The hook tools, run as `<tool-name> args...` (symlinks to the jujulocal binary) or
//! in-process through a [`Session`].
//!
//! Each call loads the model, overlays the running hook's journal (so a unit sees its
//! own uncommitted writes, as in Juju), checks access like Juju does, prints the same
//! output formats and records the call. One function per tool, found by name in
//! [`TOOLS`]; one file per family of tools:
//!
//! - [`config`]: `config-get`, `is-leader`;
//! - [`relation`]: `relation-ids`, `relation-list`, `relation-get`, `relation-set`,
//!   `relation-model-get`;
//! - [`status`]: `status-set`, `status-get`, `application-version-set`, `juju-log`;
//! - [`secret`]: `secret-add`, `secret-get`, `secret-set`, `secret-info-get`,
//!   `secret-ids`, `secret-grant`, `secret-revoke`, `secret-remove`;
//! - [`network`]: `network-get`, `open-port`, `close-port`, `opened-ports`;
//! - [`action`]: `action-get`, `action-set`, `action-fail`, `action-log`;
//! - [`state`]: `state-get`, `state-set`, `state-delete`;
//! - [`storage`]: `storage-get`, `storage-list`, `goal-state`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::controller::faults::{self, FaultAction};
use crate::error::Area;
use crate::flags::{self, val, Flag, Parsed};
use crate::journal::{self, Call, HookCtx, Journal, Op};
use crate::model::{Bag, Model};
use crate::Error;

mod action;
mod config;
mod help;
mod network;
mod relation;
mod secret;
mod state;
mod status;
mod storage;

/// One hook tool: the arguments it was called with in, its output (or the error Juju
/// would print) out.
pub type Tool = fn(&mut Env, &[String]) -> Result<String, Error>;

/// Every hook tool JujuLocal provides, by name.
pub const TOOLS: &[(&str, Tool)] = &[
    ("config-get", config::config_get),
    ("is-leader", config::is_leader),
    ("relation-ids", relation::relation_ids),
    ("relation-list", relation::relation_list),
    ("relation-get", relation::relation_get),
    ("relation-set", relation::relation_set),
    ("relation-model-get", relation::relation_model_get),
    ("status-set", status::status_set),
    ("status-get", status::status_get),
    ("application-version-set", status::application_version_set),
    ("juju-log", status::juju_log),
    ("state-get", state::state_get),
    ("state-set", state::state_set),
    ("state-delete", state::state_delete),
    ("secret-add", secret::secret_add),
    ("secret-get", secret::secret_get),
    ("secret-set", secret::secret_set),
    ("secret-info-get", secret::secret_info_get),
    ("secret-ids", secret::secret_ids),
    ("secret-grant", secret::secret_grant),
    ("secret-revoke", secret::secret_revoke),
    ("secret-remove", secret::secret_remove),
    ("network-get", network::network_get),
    ("open-port", network::open_port),
    ("close-port", network::close_port),
    ("opened-ports", network::opened_ports),
    ("action-get", action::action_get),
    ("action-set", action::action_set),
    ("action-fail", action::action_fail),
    ("action-log", action::action_log),
    ("goal-state", storage::goal_state),
    ("storage-get", storage::storage_get),
    ("storage-list", storage::storage_list),
];

/// The names of all hook tools.
pub fn names() -> impl Iterator<Item = &'static str> {
    TOOLS.iter().map(|(name, _)| *name)
}

/// The hook tool called `name`, if there is one.
pub fn find(name: &str) -> Option<Tool> {
    TOOLS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Whether `name` is a hook tool.
pub fn is_tool(name: &str) -> bool {
    find(name).is_some()
}

/// What a hook tool works on: the hook's context, the model as this hook sees it, and
/// the journal of what it has done.
pub struct Env {
    ctx: HookCtx,
    view: Model,
    journal: Journal,
    dir: PathBuf,
    /// Standard input for `--file -`; `None` reads the process's own.
    stdin: Option<String>,
}

impl Env {
    fn queue(&mut self, op: Op) {
        journal::apply(&mut self.view, &self.ctx, &op);
        self.journal.ops.push(op);
    }
    fn app(&self) -> String {
        self.ctx.app().to_string()
    }
    fn is_leader(&self) -> bool {
        self.ctx.leader
    }
}

fn run(env: &mut Env, tool: &str, args: &[String]) -> Result<String, Error> {
    match find(tool) {
        Some(f) => f(env, args),
        None => Err(Error::Usage(format!("unknown hook tool {tool:?}"))),
    }
}

const FORMAT: Flag = val(&["format"]);

/// Entry point for a hook tool. Returns the process exit code.
pub fn main(tool: &str, args: Vec<String>) -> i32 {
    if help::asked(&args) {
        print!("{}", help::text(tool));
        return 0;
    }
    let started = std::time::Instant::now();
    let dir = match context_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ERROR {e}");
            return 1;
        }
    };
    let load = || -> Result<Env, Error> {
        let ctx: HookCtx = journal::read_json(&journal::ctx_path(&dir))?;
        let journal: Journal = journal::read_json(&journal::journal_path(&dir)).unwrap_or_default();
        let mut view = Model::load(&ctx.home)?;
        for op in &journal.ops {
            journal::apply(&mut view, &ctx, op);
        }
        Ok(Env {
            ctx,
            view,
            journal,
            dir: dir.clone(),
            stdin: None,
        })
    };
    let mut env = match load() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ERROR {e}");
            return 1;
        }
    };
    // A fault injected for this tool (see `controller::faults`) replaces the call.
    let fault = match faults::take(&env.ctx.home, tool) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ERROR {e}");
            return 1;
        }
    };
    let (code, out) = match &fault {
        Some(action) if action.fails_the_call() => {
            eprintln!("ERROR {}", faults::INJECTED);
            (1, String::new())
        }
        _ => match run(&mut env, tool, &args) {
            Ok(out) => (0, out),
            Err(e) => {
                eprintln!("ERROR {e}");
                (e.exit_code(), String::new())
            }
        },
    };
    env.journal.calls.push(Call {
        tool: tool.to_string(),
        args,
        exit: code,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    if let Err(e) = journal::write_json(&journal::journal_path(&env.dir), &env.journal) {
        eprintln!("ERROR cannot record the call: {e}");
        return 1;
    }
    match &fault {
        Some(FaultAction::KillCharm) => {
            // The call is on record; now the charm dies mid-hook, as on eviction.
            // SAFETY: getppid and kill have no memory effects; the parent is the charm
            // process that ran this tool.
            unsafe {
                libc::kill(libc::getppid(), libc::SIGKILL);
            }
        }
        Some(FaultAction::KillContainer(container)) => {
            match crate::controller::container_pid(&env.ctx.home, &env.ctx.unit, container) {
                // SAFETY: signals to the container's process group (its init and all
                // it runs), which the controller started; the controller reaps it.
                Some(pid) => unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                    libc::kill(pid as i32, libc::SIGKILL);
                },
                None => eprintln!("WARNING no container {container:?} to kill"),
            }
        }
        _ => {}
    }
    print!("{out}");
    code
}

/// Hook tools run in this process against an in-memory model: the same checks, outputs
/// and journal as the executables, for unit tests that must not allow what Juju forbids.
pub struct Session {
    env: Env,
}

impl Session {
    /// A hook running for `ctx` on `model` (the model as committed before the hook).
    pub fn new(ctx: HookCtx, model: Model) -> Self {
        Self {
            env: Env {
                ctx,
                view: model,
                journal: Journal::default(),
                dir: PathBuf::new(),
                stdin: None,
            },
        }
    }

    /// Runs one tool with `args` (and `stdin` for `--file -`): its output, or the error
    /// the executable would print. The call is recorded in the journal.
    pub fn call(
        &mut self,
        tool: &str,
        args: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<String, Error> {
        self.env.stdin = stdin.map(|b| String::from_utf8_lossy(b).into_owned());
        let result = match find(tool) {
            Some(f) => f(&mut self.env, args),
            None => Err(Error::Usage(format!("{tool}: command not found"))),
        };
        self.env.stdin = None;
        self.env.journal.calls.push(Call {
            tool: tool.to_string(),
            args: args.to_vec(),
            exit: result.as_ref().map_or_else(Error::exit_code, |_| 0),
            ms: 0.0,
        });
        result
    }

    /// What the hook has written so far, and the calls it made.
    pub fn journal(&self) -> &Journal {
        &self.env.journal
    }

    pub fn ctx(&self) -> &HookCtx {
        &self.env.ctx
    }
}

fn context_dir() -> Result<PathBuf, Error> {
    let sock = std::env::var("JUJU_AGENT_SOCKET_ADDRESS")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::Usage(
                "JUJU_AGENT_SOCKET_ADDRESS is not set: hook tools only work inside a hook".into(),
            )
        })?;
    std::env::var("JUJU_CONTEXT_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::Usage("JUJU_CONTEXT_ID is not set: hook tools only work inside a hook".into())
        })?;
    Path::new(&sock)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Usage("bad JUJU_AGENT_SOCKET_ADDRESS".into()))
}

/// Formats output: `json`, `yaml`, or Juju's default "smart" format.
pub(super) fn output(p: &Parsed, v: &Value) -> Result<String, Error> {
    match p.get("format").unwrap_or("smart") {
        "json" => Ok(format!(
            "{}\n",
            serde_json::to_string(v).map_err(|source| Error::JsonEncode {
                area: Area::Model,
                source,
            })?
        )),
        "yaml" => serde_saphyr::to_string(v).map_err(|source| Error::YamlEncode {
            area: Area::Model,
            source: Box::new(source),
        }),
        "smart" => Ok(match v {
            Value::Null => String::new(),
            Value::String(s) => format!("{s}\n"),
            Value::Bool(b) => format!("{b}\n"),
            Value::Number(n) => format!("{n}\n"),
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => format!("{s}\n"),
                    other => format!("{other}\n"),
                })
                .collect(),
            other => serde_saphyr::to_string(other).map_err(|source| Error::YamlEncode {
                area: Area::Model,
                source: Box::new(source),
            })?,
        }),
        f => Err(Error::Usage(format!(
            "invalid value {f:?} for option --format: unknown format {f:?}"
        ))),
    }
}

pub(super) fn no_args(p: &Parsed, max: usize) -> Result<(), Error> {
    if p.args.len() > max {
        return Err(Error::Usage(format!(
            "unrecognized args: {:?}",
            &p.args[max..]
        )));
    }
    Ok(())
}

/// Reads `--file path|-` (YAML or JSON map) and `key=value` args into a settings map.
pub(super) fn read_settings(env: &mut Env, args: &[String], tool: &str) -> Result<Bag, Error> {
    let p = flags::parse(args, &[val(&["file"])])?;
    read_settings_parsed(env, &p, tool)
}

pub(super) fn read_settings_parsed(env: &mut Env, p: &Parsed, tool: &str) -> Result<Bag, Error> {
    let mut data = Bag::new();
    if let Some(file) = p.get("file") {
        let mut text = String::new();
        if file == "-" {
            match env.stdin.take() {
                Some(given) => text = given,
                None => {
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|source| Error::Input {
                            what: "reading stdin".into(),
                            source,
                        })?;
                }
            }
        } else {
            text = std::fs::read_to_string(file).map_err(|source| Error::Input {
                what: file.to_string(),
                source,
            })?;
        }
        let v: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(&text).map_err(|source| Error::InputYaml {
                what: format!("{tool}: cannot parse settings"),
                source: Box::new(source),
            })?
        };
        match v {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(Error::Refused(format!(
                                "{tool}: value of {k:?} must be a string, got {other}"
                            )))
                        }
                    };
                    data.insert(k, s);
                }
            }
            other => {
                return Err(Error::Refused(format!(
                    "{tool}: expected a map of settings, got {other}"
                )))
            }
        }
    }
    for kv in &p.args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("expected \"key=value\", got {kv:?}")))?;
        if k.is_empty() {
            return Err(Error::Usage(format!("expected \"key=value\", got {kv:?}")));
        }
        data.insert(k.to_string(), v.to_string());
    }
    Ok(data)
}
