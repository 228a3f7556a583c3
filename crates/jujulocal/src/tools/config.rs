//! Configuration and leadership: `config-get`, `is-leader`.

use super::{no_args, output, Env, FORMAT};
use crate::flags::{self, boolean};
use crate::Error;
use serde_json::Value;

pub(super) fn config_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT, boolean(&["a", "all"])])?;
    no_args(&p, 1)?;
    let app = env.view.app(&env.app())?;
    let mut all = serde_json::Map::new();
    for (name, opt) in &app.meta.options {
        if let Some(v) = app.config.get(name).or(opt.default.as_ref()) {
            all.insert(name.clone(), v.clone());
        } else if p.bool("a") {
            all.insert(name.clone(), Value::Null);
        }
    }
    match p.args.first() {
        Some(k) => output(&p, all.get(k).unwrap_or(&Value::Null)),
        None => output(&p, &Value::Object(all)),
    }
}

pub(super) fn is_leader(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    no_args(&p, 0)?;
    output(&p, &Value::Bool(env.is_leader()))
}
