//! Actions: `action-get`, `action-set`, `action-fail`, `action-log`.

use std::collections::BTreeMap;

use super::{output, Env, FORMAT};
use crate::flags;
use crate::journal::Op;
use crate::Error;
use serde_json::Value;

pub(super) fn action_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    let action = current_action(env)?;
    let params = Value::Object(action.params.clone());
    match p.args.first() {
        None => output(&p, &params),
        Some(key) => {
            let mut v = &params;
            for part in key.split('.') {
                v = v.get(part).unwrap_or(&Value::Null);
            }
            output(&p, v)
        }
    }
}

pub(super) fn action_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    current_action(env)?;
    let p = flags::parse(args, &[])?;
    if p.args.is_empty() {
        return Err(Error::Usage("no key=value pairs specified".into()));
    }
    let mut results = BTreeMap::new();
    for kv in &p.args {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            Error::Usage(format!("argument {kv:?} must be of the form key=value"))
        })?;
        for part in k.split('.') {
            if !valid_action_key(part) {
                return Err(Error::Usage(format!(
                    "key {k:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
                )));
            }
        }
        if ["stdout", "stderr", "stdout-encoding", "stderr-encoding"].contains(&k) {
            return Err(Error::Usage(format!(
                "cannot set reserved action key {k:?}"
            )));
        }
        results.insert(k.to_string(), Value::String(v.to_string()));
    }
    env.queue(Op::ActionSet { results });
    Ok(String::new())
}

pub(super) fn action_fail(env: &mut Env, args: &[String]) -> Result<String, Error> {
    current_action(env)?;
    let p = flags::parse(args, &[])?;
    let message = if p.args.is_empty() {
        "action failed without reason given, check action for errors".to_string()
    } else {
        p.args.join(" ")
    };
    env.queue(Op::ActionFail { message });
    Ok(String::new())
}

pub(super) fn action_log(env: &mut Env, args: &[String]) -> Result<String, Error> {
    current_action(env)?;
    let p = flags::parse(args, &[])?;
    if p.args.is_empty() {
        return Err(Error::Usage("no message specified".into()));
    }
    env.queue(Op::ActionLog {
        message: p.args.join(" "),
    });
    Ok(String::new())
}

pub(super) fn valid_action_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub(super) fn current_action(env: &Env) -> Result<&crate::model::Action, Error> {
    let id = env
        .ctx
        .action_id
        .ok_or_else(|| Error::Refused("not running an action".into()))?;
    env.view
        .actions
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Error::Refused("not running an action".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_keys() {
        assert!(valid_action_key("user-password"));
        assert!(!valid_action_key("User"));
        assert!(!valid_action_key("-a"));
    }
}
