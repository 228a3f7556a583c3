//! Status and logs: `status-set`, `status-get`, `application-version-set`, `juju-log`.

use super::{output, Env, FORMAT};
use crate::flags::{self, boolean, val};
use crate::journal::Op;
use crate::Error;
use serde_json::{json, Value};

pub(super) fn status_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[boolean(&["application"])])?;
    let Some(status) = p.args.first() else {
        return Err(Error::Usage(
            "invalid args, require <status> [message] [data]".into(),
        ));
    };
    if !["maintenance", "blocked", "waiting", "active"].contains(&status.as_str()) {
        return Err(Error::Usage(format!(
            "invalid status {status:?}, expected one of [maintenance blocked waiting active]"
        )));
    }
    let application = p.bool("application");
    if application && !env.is_leader() {
        return Err(Error::Refused("this unit is not the leader".into()));
    }
    let message = p.args[1..].join(" ");
    env.queue(Op::StatusSet {
        application,
        status: status.clone(),
        message,
    });
    Ok(String::new())
}

pub(super) fn status_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            FORMAT,
            boolean(&["application"]),
            boolean(&["include-data"]),
        ],
    )?;
    let app = env.view.app(&env.app())?;
    // As Juju's status-get.go: without --include-data only the status value (the bare
    // word in the default format); with it also "message" and "status-data".
    let include = p.bool("include-data");
    let bare = !include && p.get("format").unwrap_or("smart") == "smart";
    let fmt = |s: &Option<crate::model::StatusEntry>| {
        let (status, message) = s
            .as_ref()
            .map_or(("unknown", ""), |s| (s.status.as_str(), s.message.as_str()));
        if include {
            json!({"status": status, "message": message, "status-data": {}})
        } else {
            json!({ "status": status })
        }
    };
    if p.bool("application") {
        if !env.is_leader() {
            return Err(Error::Refused(
                "finding application status: this unit is not the leader".into(),
            ));
        }
        if bare {
            return output(&p, &fmt(&app.status)["status"]);
        }
        let units: serde_json::Map<String, Value> = app
            .units
            .iter()
            .map(|(n, u)| (n.clone(), fmt(&u.status)))
            .collect();
        let mut st = fmt(&app.status);
        st["units"] = Value::Object(units);
        return output(&p, &json!({"application-status": st}));
    }
    let unit = fmt(&app.units.get(&env.ctx.unit).and_then(|u| u.status.clone()));
    if bare {
        return output(&p, &unit["status"]);
    }
    output(&p, &unit)
}

pub(super) fn application_version_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[])?;
    let [v] = p.args.as_slice() else {
        return Err(Error::Usage("no version specified".into()));
    };
    env.queue(Op::AppVersion { version: v.clone() });
    Ok(String::new())
}

pub(super) fn juju_log(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[val(&["l", "log-level"]), boolean(&["debug"]), FORMAT],
    )?;
    if p.args.is_empty() {
        return Err(Error::Usage("no message specified".into()));
    }
    let level = if p.bool("debug") {
        "DEBUG"
    } else {
        p.get("l").unwrap_or("INFO")
    };
    let level = level.to_uppercase();
    if !["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level.as_str()) {
        return Err(Error::Usage(format!("invalid log level {level:?}")));
    }
    let message = p.args.join(" ");
    crate::logfile::append_log(&env.ctx.home, &env.ctx.unit, &level, &message);
    env.queue(Op::Log { level, message });
    Ok(String::new())
}
