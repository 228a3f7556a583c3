//! Unit state: `state-get`, `state-set`, `state-delete`.

use super::{no_args, output, read_settings, Env, FORMAT};
use crate::flags;
use crate::journal::Op;
use crate::Error;
use serde_json::{json, Value};

pub(super) fn state_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    no_args(&p, 1)?;
    let state = env
        .view
        .app(&env.app())?
        .units
        .get(&env.ctx.unit)
        .map(|u| u.state.clone())
        .unwrap_or_default();
    match p.args.first() {
        Some(k) => output(
            &p,
            &state
                .get(k)
                .map(|v| Value::String(v.clone()))
                .unwrap_or(Value::Null),
        ),
        None => output(&p, &json!(state)),
    }
}

pub(super) fn state_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let data = read_settings(env, args, "state-set")?;
    for k in data.keys() {
        if k.len() > 256 {
            return Err(Error::Refused(format!("key {k:?} longer than 256 bytes")));
        }
    }
    env.queue(Op::StateSet { data });
    Ok(String::new())
}

pub(super) fn state_delete(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[])?;
    let [k] = p.args.as_slice() else {
        return Err(Error::Usage("no key specified".into()));
    };
    env.queue(Op::StateDelete { key: k.clone() });
    Ok(String::new())
}
