//! `juju exec` and `juju ssh`: commands run in a unit's pod.
//!
//! The charm container is the host's file system in the pod's network (where JujuLocal
//! runs the charm), from the unit's charm directory; a workload container is reached
//! through its Pebble (`pebble exec`), which runs the command inside that container.
//! Unlike Juju, `exec` gives the command no hook context (no hook tools).

use std::io::Write;
use std::process::{Command, Output};

use serde_json::{json, Map};

use super::args::Args;
use super::models::{CliState, Models};
use super::{json as docs, open, print_doc, write_out};
use crate::error::Area;
use crate::model::app_of;
use crate::{Controller, Error};

/// A unit name, or `APP/leader` for the application's leader.
pub fn resolve_unit(c: &Controller, unit: &str) -> Result<String, Error> {
    let app = c.model.app(app_of(unit))?;
    if unit.ends_with("/leader") {
        return app.leader.clone().ok_or_else(|| {
            Error::NotFound(format!("application {:?} has no leader", app_of(unit)))
        });
    }
    if !app.units.contains_key(unit) {
        return Err(Error::NotFound(format!("unit {unit:?} not found")));
    }
    Ok(unit.to_string())
}

fn output(mut cmd: Command, what: &str) -> Result<Output, Error> {
    cmd.output().map_err(Error::os(Area::Pod, what.to_string()))
}

/// Runs a shell command line in the unit's charm container.
fn in_charm_container(c: &Controller, unit: &str, line: &str) -> Result<Output, Error> {
    let mut cmd = c.pod_command(unit, "sh")?;
    cmd.arg("-c").arg(line);
    let dir = c.unit_charm_dir(unit);
    if dir.is_dir() {
        cmd.current_dir(dir);
    }
    output(cmd, &format!("running {line:?} for {unit}"))
}

/// Runs a shell command line in one of the unit's workload containers, through Pebble.
fn in_workload(c: &Controller, unit: &str, container: &str, line: &str) -> Result<Output, Error> {
    let meta = &c.model.app(app_of(unit))?.meta;
    if !meta.containers.iter().any(|x| x.name == container) {
        return Err(Error::NotFound(format!(
            "container {container:?} not found in unit {unit:?}"
        )));
    }
    let pebble = c.pebble_bin().filter(|_| c.has_pod(unit)).ok_or_else(|| {
        Error::Refused(format!(
            "unit {unit} runs without pods: it has no containers"
        ))
    })?;
    let mut cmd = Command::new(pebble);
    cmd.env("PEBBLE_SOCKET", c.pebble_socket(unit, container))
        .args(["exec", "--", "sh", "-c", line]);
    output(
        cmd,
        &format!("running {line:?} in {unit}'s {container} container"),
    )
}

fn forward(out: &mut dyn Write, o: &Output) -> Result<i32, Error> {
    write_out(out, &String::from_utf8_lossy(&o.stdout))?;
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    Ok(o.status.code().unwrap_or(1))
}

/// `juju exec --unit UNIT [--format json] -- COMMAND...`
pub fn exec(a: &Args, models: &Models, out: &mut dyn Write) -> Result<i32, Error> {
    let Some(unit) = a.get("unit") else {
        return Err(Error::Usage(
            "jujulocal runs commands on one unit: use --unit UNIT (not --all, --application or --machine)".into(),
        ));
    };
    if a.pos.is_empty() {
        return Err(Error::Usage("no commands specified".into()));
    }
    let dir = models.current(a.get("model"))?;
    let c = open(models, a)?;
    let unit = resolve_unit(&c, unit)?;
    let o = in_charm_container(&c, &unit, &a.pos.join(" "))?;
    if a.get("format").is_none() {
        return forward(out, &o);
    }
    let code = o.status.code().unwrap_or(1);
    let mut st = CliState::load(&dir);
    st.next_task += 1;
    st.save(&dir)?;
    let mut results = Map::new();
    results.insert("return-code".into(), json!(code));
    results.insert("stdout".into(), json!(String::from_utf8_lossy(&o.stdout)));
    results.insert("stderr".into(), json!(String::from_utf8_lossy(&o.stderr)));
    let status = if code == 0 { "completed" } else { "failed" };
    let task = docs::task(&unit, st.next_task, status, None, &results, &[]);
    print_doc(out, a, "yaml", &task)?;
    if code != 0 {
        eprintln!(
            "ERROR the following task failed:\n id \"{}\" with return code {code}\n\nuse 'juju show-task' to inspect the failure",
            st.next_task
        );
        return Ok(1);
    }
    Ok(0)
}

/// `juju ssh [--container C] [USER@]UNIT COMMAND...`
pub fn ssh(a: &Args, models: &Models, out: &mut dyn Write) -> Result<i32, Error> {
    let Some((target, cmd)) = a.pos.split_first() else {
        return Err(Error::Usage("no target name specified".into()));
    };
    if cmd.is_empty() {
        return Err(Error::Usage(
            "jujulocal runs commands only: give a command after the target (no interactive shell)"
                .into(),
        ));
    }
    let target = target.rsplit('@').next().unwrap_or(target);
    let c = open(models, a)?;
    let unit = resolve_unit(&c, target)?;
    let line = cmd.join(" ");
    let o = match a.get("container") {
        Some(ct) if ct != "charm" => in_workload(&c, &unit, ct, &line)?,
        _ => in_charm_container(&c, &unit, &line)?,
    };
    forward(out, &o)
}
