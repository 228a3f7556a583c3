//! A `juju`-compatible front end for JujuLocal (the `jujulocal-juju` binary): the
//! subset of the Juju 3.6 client that Jubilant and operators use, with Juju's
//! arguments, output formats and exit codes, run against JujuLocal's [`Controller`].
//!
//! - [`args`]: Juju's flag syntax;
//! - [`models`]: where models live (`$JUJULOCAL_HOME`), pods files, per-model state;
//! - [`json`]: the `--format json` documents (status, config, tasks, units, secrets);
//! - [`commands`]: the application and unit commands; [`model_cmds`]: the model
//!   commands and `status`; [`exec`]: `exec` and `ssh`.
//!
//! Juju's commands return before the hooks they cause have run; JujuLocal runs them
//! in the command. A hook that fails does not fail the command: like in Juju, the
//! unit shows `error` in `juju status`.

use std::io::Write;

use serde_json::Value;

use crate::error::Area;
use crate::{Controller, Error};

pub mod args;
pub mod commands;
pub mod exec;
pub mod json;
pub mod model_cmds;
pub mod models;

use args::{boolean, val, Args, Flag};
use models::Models;

pub const USAGE: &str = "\
Usage: juju [options] <command> ...

jujulocal-juju: the `juju` client, answered by JujuLocal (a local stand-in for Juju).
Models live in $JUJULOCAL_HOME (default ./.jujulocal); see docs/reference/jujulocal.md.

Commands:
  add-model NAME                  create a model (and make it current)
  destroy-model NAME              stop a model's pods and delete it
  models                          list models
  show-model [NAME]               a model's details
  switch NAME                     select the current model
  status [APP...]                 the model's status (tabular, json, yaml)
  deploy CHARM [APP]              deploy a local charm directory or .charm file, or a stand-in (postgresql-k8s, traefik-k8s, nginx-ingress-integrator, s3-integrator)
  config APP [KEY | KEY=VALUE...] get or set configuration (--reset K,K)
  integrate A[:EP] B[:EP]         relate two applications
  remove-relation A[:EP] B[:EP]   remove a relation
  remove-application APP...       remove applications
  add-unit APP [-n N]             add units
  remove-unit APP --num-units N   remove units (Kubernetes models: by number)
  scale-application APP N         set the number of units
  run UNIT ACTION [K=V...]        run an action (--params FILE, --format json)
  exec --unit UNIT -- CMD...      run a command in the unit's charm container
  ssh [--container C] UNIT CMD... run a command in the unit's charm or workload container
  show-unit UNIT                  a unit's relation data
  secrets                         list secrets
  show-secret ID|LABEL            a secret (--reveal, --revision N, --revisions)
  debug-log                       the model's log (--limit N)
  version                         the client version
";

/// Runs `juju ARGS...` and returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match run(&args, &mut out) {
        Ok(code) => code,
        Err(e) => {
            let _ = out.flush();
            eprintln!("ERROR {e}");
            e.exit_code()
        }
    };
    let _ = out.flush();
    code
}

/// Flags of one command; `--help`/`-h` are accepted by all.
fn spec(extra: Vec<Flag>) -> Vec<Flag> {
    let mut v = extra;
    v.push(boolean(&["help", "h"]));
    v
}

/// One command: parses its flags, and prints (to `out`) what Juju prints.
pub fn run(argv: &[String], out: &mut dyn Write) -> Result<i32, Error> {
    let Some(cmd) = argv.first() else {
        write_out(out, USAGE)?;
        return Ok(0);
    };
    let rest = &argv[1..];
    if matches!(cmd.as_str(), "help" | "--help" | "-h") {
        write_out(out, USAGE)?;
        return Ok(0);
    }
    if cmd == "--version" {
        write_out(out, &format!("{}\n", json::version_string()))?;
        return Ok(0);
    }
    let Some((flags, stop)) = command_flags(cmd) else {
        return Err(Error::Refused(format!(
            "juju: {cmd:?} is not a juju command. See \"juju --help\"."
        )));
    };
    let a = args::parse(rest, &spec(flags), stop)?;
    if a.has("help") {
        write_out(out, &format!("Usage: juju {cmd} [options] ...\n\n{USAGE}"))?;
        return Ok(0);
    }
    let models = Models::from_env();
    commands::dispatch(cmd, &a, &models, out)
}

const FORMAT: Flag = val(&["format", "o"]);

/// The flags each command accepts, and where its own command line starts (exec, ssh).
fn command_flags(cmd: &str) -> Option<(Vec<Flag>, Option<usize>)> {
    Some(match cmd {
        "status" => (
            vec![
                FORMAT,
                boolean(&["relations"]),
                boolean(&["storage"]),
                boolean(&["color"]),
                boolean(&["utc"]),
                boolean(&["integrations"]),
                val(&["watch"]),
            ],
            None,
        ),
        "deploy" => (
            vec![
                val(&["channel"]),
                val(&["config"]),
                val(&["resource"]),
                val(&["num-units", "n"]),
                boolean(&["trust"]),
                val(&["base"]),
                val(&["constraints"]),
                val(&["storage"]),
                val(&["bind"]),
                boolean(&["force"]),
                boolean(&["dry-run"]),
            ],
            None,
        ),
        "config" => (vec![FORMAT, val(&["reset"]), val(&["file"])], None),
        "integrate" | "relate" => (vec![val(&["via"])], None),
        "remove-relation" => (vec![boolean(&["force"])], None),
        "remove-application" => (
            vec![
                boolean(&["no-prompt"]),
                boolean(&["force"]),
                boolean(&["no-wait"]),
                boolean(&["destroy-storage"]),
                boolean(&["dry-run"]),
            ],
            None,
        ),
        "add-unit" => (
            vec![
                val(&["num-units", "n"]),
                val(&["to"]),
                val(&["attach-storage"]),
            ],
            None,
        ),
        "remove-unit" => (
            vec![
                boolean(&["no-prompt"]),
                val(&["num-units"]),
                boolean(&["force"]),
                boolean(&["no-wait"]),
                boolean(&["destroy-storage"]),
                boolean(&["dry-run"]),
            ],
            None,
        ),
        "scale-application" => (vec![], None),
        "run" => (
            vec![
                FORMAT,
                val(&["params"]),
                val(&["wait"]),
                boolean(&["background"]),
                boolean(&["string-args"]),
                boolean(&["utc"]),
            ],
            None,
        ),
        "exec" => (
            vec![
                FORMAT,
                val(&["unit", "u"]),
                val(&["wait"]),
                boolean(&["background"]),
                boolean(&["all"]),
                val(&["application", "a"]),
                val(&["machine"]),
            ],
            Some(0),
        ),
        "ssh" => (
            vec![
                val(&["container"]),
                boolean(&["no-host-key-checks"]),
                boolean(&["pty"]),
                val(&["proxy"]),
            ],
            Some(1),
        ),
        "show-unit" => (vec![FORMAT, val(&["endpoint"]), boolean(&["app"])], None),
        "secrets" | "list-secrets" => (vec![FORMAT, val(&["owner"]), boolean(&["reveal"])], None),
        "show-secret" => (
            vec![
                FORMAT,
                boolean(&["reveal"]),
                val(&["revision", "r"]),
                boolean(&["revisions"]),
            ],
            None,
        ),
        "debug-log" => (
            vec![
                val(&["limit"]),
                val(&["lines", "n"]),
                boolean(&["replay"]),
                boolean(&["no-tail"]),
                boolean(&["tail"]),
                val(&["include"]),
                val(&["level"]),
                boolean(&["ms"]),
                boolean(&["utc"]),
                boolean(&["date"]),
            ],
            None,
        ),
        "add-model" => (
            vec![
                boolean(&["no-switch"]),
                val(&["config"]),
                val(&["controller", "c"]),
                val(&["credential"]),
                val(&["owner"]),
                val(&["target-controller"]),
            ],
            None,
        ),
        "destroy-model" => (
            vec![
                boolean(&["no-prompt"]),
                boolean(&["yes", "y"]),
                boolean(&["force"]),
                boolean(&["no-wait"]),
                boolean(&["destroy-storage"]),
                boolean(&["release-storage"]),
                val(&["timeout"]),
            ],
            None,
        ),
        "models" | "list-models" => (
            vec![
                FORMAT,
                boolean(&["all"]),
                val(&["controller", "c"]),
                boolean(&["uuid"]),
                val(&["user"]),
                boolean(&["exact-time"]),
            ],
            None,
        ),
        "show-model" => (vec![FORMAT], None),
        "switch" => (vec![], None),
        "version" => (vec![FORMAT, boolean(&["all"])], None),
        _ => return None,
    })
}

pub(crate) fn write_out(out: &mut dyn Write, s: &str) -> Result<(), Error> {
    out.write_all(s.as_bytes()).map_err(|source| Error::Input {
        what: "writing standard output".into(),
        source,
    })
}

/// Prints a document in the format asked for (`json`, `yaml`; `default` otherwise).
pub(crate) fn print_doc(
    out: &mut dyn Write,
    a: &Args,
    default: &str,
    v: &Value,
) -> Result<(), Error> {
    let text = match a.get("format").unwrap_or(default) {
        "json" => format!(
            "{}\n",
            serde_json::to_string(v).map_err(|source| Error::JsonEncode {
                area: Area::Model,
                source,
            })?
        ),
        "yaml" => serde_saphyr::to_string(v).map_err(|source| Error::YamlEncode {
            area: Area::Model,
            source: Box::new(source),
        })?,
        f => {
            return Err(Error::Usage(format!(
                "invalid value {f:?} for option --format: unknown format {f:?}"
            )))
        }
    };
    write_out(out, &text)
}

/// A command that causes hooks: a failing hook leaves the unit in error (shown by
/// `juju status`) but, as in Juju, is not the command's failure.
pub(crate) fn hooks_ran(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(Error::HookFailed { unit, hook, reason }) => {
            eprintln!("jujulocal: hook {hook} failed on {unit} ({reason}); see `juju status`");
            Ok(())
        }
        other => other,
    }
}

/// Opens the model the command works on.
pub(crate) fn open(models: &Models, a: &Args) -> Result<Controller, Error> {
    Controller::open(&models.current(a.get("model"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_s(args: &[&str]) -> (Result<i32, Error>, String) {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = vec![];
        let r = run(&argv, &mut out);
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn unknown_commands_and_flags_fail_like_juju() {
        let (r, _) = run_s(&["frobnicate"]);
        let e = r.unwrap_err();
        assert_eq!(
            e.to_string(),
            "juju: \"frobnicate\" is not a juju command. See \"juju --help\"."
        );
        assert_ne!(e.exit_code(), 0);
        let (r, _) = run_s(&["status", "--bogus"]);
        assert_eq!(r.unwrap_err().exit_code(), 2);
    }

    #[test]
    fn help_and_version_answer_without_a_model() {
        let (r, out) = run_s(&["status", "--help"]);
        assert_eq!(r.unwrap(), 0);
        assert!(out.contains("Usage: juju status"));
        let (r, out) = run_s(&["version", "--format", "json", "--all"]);
        assert_eq!(r.unwrap(), 0);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["version"].as_str().unwrap().ends_with("-ubuntu-amd64"));
    }
}
